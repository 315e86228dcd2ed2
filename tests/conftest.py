"""Shared fixtures: a real moorage server process on a loopback port, and the real-client harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moorage import MoorageServer
from tests.support.postgres import Postgres
from tests.support.procs import running

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def moorage_on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    """One registry for the session: two worker processes, SQLite and files in a temporary data dir."""
    yield from running(lambda: MoorageServer(tmp_path_factory.mktemp("moorage"), workers=2))


@pytest.fixture(scope="session")
def moorage_on_postgresql(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[MoorageServer]:
    """The same with its metadata in PostgreSQL, the scale-out setup (blobs stay in the data dir)."""
    data_dir = tmp_path_factory.mktemp("moorage-pg")
    url = postgres.new_database(data_dir.name.replace("-", "_"))
    yield from running(lambda: MoorageServer(data_dir, workers=2, env={"MOORAGE_DATABASE_URL": url}))


@pytest.fixture(scope="session")
def moorage(moorage_on_sqlite: MoorageServer) -> MoorageServer:
    """The registry most tests talk to; the protocol and API suites widen it to every metadata store
    (``tests.support.databases``)."""
    return moorage_on_sqlite
