"""Running a suite once per metadata store: a directory's conftest imports ``moorage_on_each_database``, and
each of its tests that asks for ``moorage`` then runs against moorage on SQLite and again on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.moorage import MoorageServer


@pytest.fixture(name="moorage", params=["sqlite", "postgresql"])
def moorage_on_each_database(request: pytest.FixtureRequest) -> MoorageServer:
    server: MoorageServer = request.getfixturevalue(f"moorage_on_{request.param}")
    return server
