"""``moorage doctor`` as a user runs it: the real CLI process against a real HTTPS registry."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.harbor import PASSWORD, add_member, make_project, make_user, push_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Setup:
    server: MoorageServer
    image: str
    username: str


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    server = MoorageServer(tmp_path_factory.mktemp("doctor-cli-registry"), workers=1, tls=True)
    server.start()
    try:
        with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                          verify=server.verify) as admin:
            project = make_project(admin)
            _, username = make_user(admin)
            add_member(admin, project, username, 2)
        with server.client() as client:
            push_image(client, f"{project}/web", "1.0")
        yield Setup(server, f"{server.host}/{project}/web:1.0", username)
    finally:
        server.stop()


def trusted_root(setup: Setup, root: Path) -> Path:
    done = cli("node-config", "--runtime", "containerd", "--registry", setup.server.host, "--ca-file",
               str(setup.server.ca_file), "--apply", "--root", str(root))
    assert done.returncode == 0, done.stderr
    return root


def docker_config(setup: Setup, path: Path, password: str = PASSWORD) -> Path:
    auth = base64.b64encode(f"{setup.username}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {setup.server.host: {"auth": auth}}}))
    return path


def test_json_report_for_a_node_that_can_pull(setup: Setup, tmp_path: Path) -> None:
    root = trusted_root(setup, tmp_path / "node")
    config = docker_config(setup, tmp_path / "config.json")

    done = cli("doctor", setup.image, "--docker-config", str(config), "--root", str(root), "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["finding"] is None
    assert [s["status"] for s in report["steps"]] == ["pass"] * 9
    assert report["steps"][6]["facts"]["candidates"] == [
        {"key": setup.server.host, "username": setup.username, "source": f"file {config}"}]
    assert PASSWORD not in done.stdout


def test_json_report_names_the_cause_and_exits_1(setup: Setup, tmp_path: Path) -> None:
    root = trusted_root(setup, tmp_path / "node")
    config = docker_config(setup, tmp_path / "config.json", password="wrong-password")

    done = cli("doctor", setup.image, "--docker-config", str(config), "--root", str(root), "--json")

    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert report["finding"]["cause"] == "unauthorized"
    assert report["steps"][-1]["id"] == "token" and report["steps"][-1]["status"] == "fail"


def test_checklist_shows_the_failed_step_and_the_fix(setup: Setup, tmp_path: Path) -> None:
    root = tmp_path / "untrusting-node"
    root.mkdir()

    done = cli("doctor", setup.image, "--root", str(root), "--runtime", "containerd")

    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "✓  1. image reference parses" in out
    assert "✗  4. TLS" in out
    assert "x509: certificate signed by unknown authority" in out
    assert "tls-unknown-authority" in out
    assert "moorage node-config --runtime containerd" in out
    assert "(not checked)" in out  # steps after the failure
    assert "config_path" in out and "All checks passed" not in out


def test_bad_usage_exits_2(setup: Setup, tmp_path: Path) -> None:
    config = docker_config(setup, tmp_path / "config.json")
    both = cli("doctor", setup.image, "--docker-config", str(config), "--secret", str(config))
    missing = cli("doctor", setup.image, "--secret", str(tmp_path / "nope.yaml"))
    not_a_secret = tmp_path / "cm.yaml"
    not_a_secret.write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    wrong_kind = cli("doctor", setup.image, "--secret", str(not_a_secret))

    assert both.returncode == 2 and "not both" in both.stderr
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert wrong_kind.returncode == 2 and "no Secret" in wrong_kind.stderr
