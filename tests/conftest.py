"""Shared fixtures, and the two test tiers.

The fast tier runs in this process: the domain, and the ASGI app through ``httpx.ASGITransport`` (fixtures
``inprocess`` and ``inprocess_factory``, tests.support.inprocess). ``make test-fast`` runs it (``pytest -m fast``)
in seconds; ``make test`` runs every test, both tiers. Everything else is the real-process tier: a real
``moorage serve`` on a loopback port (``moorage`` below) and real clients (tests.support.fixtures).

A test joins the fast tier explicitly, with the ``fast`` marker (``pytestmark = pytest.mark.fast`` for a module).
It is not inferred from the fixtures a test asks for, because many tests start processes in their own body
(``subprocess``, ``MoorageServer(...)``). Instead the marker's promise is enforced: a fast test that starts a
process while it sets up or runs fails (tests.support.tiers).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moorage import MoorageServer
from tests.support.postgres import Postgres
from tests.support.procs import running

pytest_plugins = ["tests.support.fixtures", "tests.support.inprocess", "tests.support.tiers"]


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
