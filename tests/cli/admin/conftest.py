"""A real moorage server for the admin CLI tests, and a harness that runs ``moorage`` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import wait_until

SRC = Path(__file__).resolve().parents[3] / "src"


def _api_answers(server: MoorageServer) -> bool:
    response = httpx.get(f"{server.url}/api/v2.0/ping", timeout=2)
    if response.status_code == 404:
        pytest.fail("the server does not serve the Harbor API yet: GET /api/v2.0/ping answered 404 "
                    f"({response.text[:200]!r})")
    return response.status_code == 200


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    """``moorage serve`` (2 workers, plain HTTP on 127.0.0.1) with the admin password set, API ready."""
    server = MoorageServer(tmp_path_factory.mktemp("admin-cli-data"), workers=2)
    server.start()
    try:
        wait_until(lambda: _api_answers(server), timeout=30, what=f"GET {server.url}/api/v2.0/ping",
                   process=server.process)
        yield server
    finally:
        server.stop()


@dataclass
class Result:
    args: list[str]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"moorage {' '.join(self.args)} -> {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Cli:
    """Runs ``python -m moorage.cli.main`` with its own HOME, so profiles never touch the real one."""

    def __init__(self, home: Path, env: Mapping[str, str]) -> None:
        self.home = home
        self.env = dict(env)

    def run(self, *args: str, input: str | None = None, env: Mapping[str, str | None] | None = None,
            ok: bool | None = True) -> Result:
        """``ok=True`` asserts exit 0, ``ok=False`` asserts a non-zero exit; ``None`` checks nothing."""
        merged = {**self.env}
        for key, value in (env or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        completed = subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], input=input,
                                   capture_output=True, text=True, env=merged, timeout=120)
        result = Result(list(args), completed.returncode, completed.stdout, completed.stderr)
        assert "Traceback" not in result.stderr + result.stdout, result
        if ok is True:
            assert result.code == 0, result
        elif ok is False:
            assert result.code != 0, result
        return result

    def json(self, *args: str, input: str | None = None, env: Mapping[str, str | None] | None = None) -> Any:
        return self.run(*args, "--json", input=input, env=env).json()


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_") and k != "XDG_CONFIG_HOME"}
    env.update({"HOME": str(home), "PYTHONPATH": f"{SRC}{os.pathsep}{env.get('PYTHONPATH', '')}",
                "NO_COLOR": "1", "COLUMNS": "200"})
    return env


@pytest.fixture
def cli(api_server: MoorageServer, tmp_path: Path) -> Cli:
    """The CLI as the admin, credentials from the environment (MOORAGE_SERVER/USERNAME/PASSWORD)."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, {**cli_env(home), "MOORAGE_SERVER": api_server.url, "MOORAGE_USERNAME": "admin",
                      "MOORAGE_PASSWORD": ADMIN_PASSWORD})


@pytest.fixture
def bare_cli(tmp_path: Path) -> Cli:
    """The CLI with no server, no credentials and an empty HOME."""
    home = tmp_path / "bare-home"
    home.mkdir()
    return Cli(home, cli_env(home))


@pytest.fixture
def unique() -> str:
    """A suffix that keeps names apart between tests sharing one server."""
    return uuid.uuid4().hex[:8]


def can_authenticate(server: MoorageServer, username: str, password: str) -> bool:
    """Does the server accept these credentials? Asked the way docker does: ``GET /v2/`` with Basic auth."""
    response = httpx.get(f"{server.url}/v2/", auth=(username, password), timeout=10)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def api_can_authenticate(server: MoorageServer, username: str, password: str) -> bool:
    """Does the management API accept a user's password (``GET /api/v2.0/users/current``)?"""
    response = httpx.get(f"{server.url}/api/v2.0/users/current", auth=(username, password), timeout=10)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200
