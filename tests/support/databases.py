"""Running a suite once per metadata store: a directory's conftest imports ``moorage_on_each_database``, and
each of its tests that asks for ``moorage`` then runs against moorage on SQLite and again on PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.moorage import MoorageServer
from tests.support.postgres import Postgres
from tests.support.procs import running
from tests.support.s3 import SeaweedFS


@pytest.fixture(name="moorage", params=["sqlite", "postgresql"])
def moorage_on_each_database(request: pytest.FixtureRequest) -> MoorageServer:
    server: MoorageServer = request.getfixturevalue(f"moorage_on_{request.param}")
    return server


@pytest.fixture(scope="session")
def moorage_on_postgresql_s3(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres,
                             seaweedfs: SeaweedFS) -> Iterator[MoorageServer]:
    """The scale-out setup whole: metadata in PostgreSQL, blobs in an S3 bucket (SeaweedFS)."""
    data_dir = tmp_path_factory.mktemp("moorage-pg-s3")
    url = postgres.new_database(data_dir.name.replace("-", "_"))
    env = {**seaweedfs.settings_env(seaweedfs.new_bucket()), "MOORAGE_DATABASE_URL": url}
    yield from running(lambda: MoorageServer(data_dir, workers=2, env=env))


@pytest.fixture(name="moorage", params=["sqlite", "postgresql", "postgresql_s3"])
def moorage_on_each_store(request: pytest.FixtureRequest) -> MoorageServer:
    """As ``moorage_on_each_database``, and a third time with the blobs in object storage."""
    server: MoorageServer = request.getfixturevalue(f"moorage_on_{request.param}")
    return server


def own_server(request: pytest.FixtureRequest, data_dir: Path, env: dict[str, str]) -> Iterator[MoorageServer]:
    """The body of a fixture parametrized by store ("sqlite" or "postgresql"): a registry of its own, with ``env``,
    for tests that change server-wide state (garbage collection, quotas) the shared registries must not see."""
    env = dict(env)
    if request.param == "postgresql":
        postgres: Postgres = request.getfixturevalue("postgres")
        env["MOORAGE_DATABASE_URL"] = postgres.new_database(f"own_{secrets.token_hex(4)}")
    yield from running(lambda: MoorageServer(data_dir, env=env))
