"""Shared fixtures: a real moorage server process on a loopback port, and the real-client harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moorage import MoorageServer

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def moorage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    """One registry for the session: two worker processes, SQLite and files in a temporary data dir."""
    server = MoorageServer(tmp_path_factory.mktemp("moorage"), workers=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()
