"""The kubelet exec plugin, run as the kubelet runs it: a process with the request on stdin.

Minting goes to the real registry: the session's ``moorage`` server (plain HTTP; the TLS path and
real pulls are in ``tests/e2e/test_credential_provider_e2e.py``), with a real system robot as the node's
long-lived credential and ``POST /api/v2.0/node-credentials`` answering.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from moorage.client.auth import Credentials
from moorage.kube.credential_provider import ProviderError, mint_credentials
from moorage.kube.dockerconfig import encode_auth
from moorage.kube.provider_protocol import API_VERSION, parse_go_duration
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import free_port

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass(frozen=True)
class MintServer:
    url: str
    host: str
    project: str
    node: Credentials


@pytest.fixture(scope="module")
def mint_server(moorage: MoorageServer) -> MintServer:
    """The real registry with a private project and a system robot that may pull from it."""
    project = moorage.project(f"kube-cp-{secrets.token_hex(3)}")
    body = {"name": f"node-{secrets.token_hex(4)}", "level": "system", "duration": -1,
            "permissions": [{"kind": "project", "namespace": project,
                             "access": [{"resource": "repository", "action": "pull"}]}]}
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30) as api:
        created = api.post("/robots", json=body)
    assert created.status_code == 201, created.text
    robot = created.json()
    return MintServer(moorage.url, moorage.host, project, Credentials(robot["name"], robot["secret"]))


def run_plugin(stdin: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": f"{SRC}:{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    return subprocess.run([sys.executable, "-m", "moorage.kube.credential_provider", *args], input=stdin,
                          capture_output=True, text=True, env=full_env, timeout=60, check=False)


def request(image: str) -> str:
    return json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderRequest", "image": image})


def credential_file(directory: Path, credentials: Credentials) -> Path:
    path = directory / "node-credential.json"
    path.write_text(json.dumps({"username": credentials.username, "password": credentials.password}))
    path.chmod(0o600)
    return path


@pytest.fixture
def node_file(tmp_path: Path, mint_server: MintServer) -> Path:
    return credential_file(tmp_path, mint_server.node)


@pytest.fixture
def offline_node_file(tmp_path: Path) -> Path:
    """A well-formed credential file for tests that never reach a registry."""
    return credential_file(tmp_path, Credentials("robot$node", "never-sent"))


def test_plugin_answers_with_minted_credentials(mint_server: MintServer, node_file: Path) -> None:
    host, project = mint_server.host, mint_server.project
    before = int(time.time())
    done = run_plugin(request(f"{host}/{project}/traefik:2.6.2"), "--registry", mint_server.url,
                      "--credential-file", str(node_file), "--ttl", "600")
    assert done.returncode == 0, done.stderr
    response: dict[str, Any] = json.loads(done.stdout)
    assert response["apiVersion"] == API_VERSION
    assert response["kind"] == "CredentialProviderResponse"
    assert response["cacheKeyType"] == "Image"
    assert list(response["auth"]) == [f"{host}/{project}/traefik"]
    minted = response["auth"][f"{host}/{project}/traefik"]
    assert minted["username"] == mint_server.node.username
    assert minted["password"] != mint_server.node.password
    claims = jwt.decode(minted["password"], options={"verify_signature": False})
    assert before + 600 - 1 <= claims["exp"] <= int(time.time()) + 600
    # Cached no longer than the credential lives, minus the safety margin.
    assert parse_go_duration(response["cacheDuration"]).total_seconds() in range(500, 541)


def test_plugin_config_from_env_and_docker_config_file(mint_server: MintServer, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {mint_server.host: {"auth": encode_auth(mint_server.node)}}}))
    done = run_plugin(request(f"{mint_server.host}/{mint_server.project}/app@sha256:{'a' * 64}"), env={
        "MOORAGE_PROVIDER_REGISTRY": mint_server.url, "MOORAGE_PROVIDER_CREDENTIAL_FILE": str(cfg),
        "MOORAGE_PROVIDER_CACHE_KEY_TYPE": "Registry"})
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["cacheKeyType"] == "Registry"
    assert list(response["auth"]) == [mint_server.host]


def test_wrong_node_credential_fails_quietly_on_stdout(mint_server: MintServer, tmp_path: Path) -> None:
    bad = credential_file(tmp_path, Credentials(mint_server.node.username, "wrong-secret-value"))
    done = run_plugin(request(f"{mint_server.host}/{mint_server.project}/app:1"), "--registry", mint_server.url,
                      "--credential-file", str(bad))
    assert done.returncode != 0
    assert done.stdout == ""
    assert "refused the node credential" in done.stderr and "401" in done.stderr
    assert "wrong-secret-value" not in done.stderr


def test_only_robots_mint(mint_server: MintServer, tmp_path: Path) -> None:
    """A user's password is not a node credential, and a minted credential cannot mint more."""
    image = f"{mint_server.host}/{mint_server.project}/app:1"
    admin = credential_file(tmp_path, Credentials("admin", ADMIN_PASSWORD))
    done = run_plugin(request(image), "--registry", mint_server.url, "--credential-file", str(admin))
    assert done.returncode != 0 and done.stdout == ""
    assert "403" in done.stderr and "robot" in done.stderr

    minted = mint_credentials(mint_server.url, mint_server.node, image, 120)
    with pytest.raises(ProviderError, match="403"):
        mint_credentials(mint_server.url, Credentials(minted.username, minted.password), image, 120)


def test_registry_reason_reaches_stderr(mint_server: MintServer, node_file: Path) -> None:
    done = run_plugin(request(f"{mint_server.host}/{mint_server.project}/app:1"), "--registry", mint_server.url,
                      "--credential-file", str(node_file), "--ttl", "30")
    assert done.returncode != 0 and done.stdout == ""
    assert "400" in done.stderr and "at least 60" in done.stderr


@pytest.mark.parametrize("stdin", [
    "", "{", "[]", json.dumps({"apiVersion": "v0", "kind": "CredentialProviderRequest", "image": "x"}),
    json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderRequest"}),
    "[" * 100_000,  # once a RecursionError traceback
])
def test_bad_requests_exit_non_zero(stdin: str, offline_node_file: Path) -> None:
    done = run_plugin(stdin, "--registry", "http://127.0.0.1:9", "--credential-file", str(offline_node_file))
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.startswith("moorage-credential-provider: ")


def test_bad_configuration(offline_node_file: Path) -> None:
    for args in ([], ["--registry", "no-scheme:5000", "--credential-file", str(offline_node_file)],
                 ["--registry", "http://127.0.0.1:9"],
                 ["--registry", "http://127.0.0.1:9", "--credential-file", "/nonexistent/file"]):
        done = run_plugin(request("127.0.0.1:9/p/a:1"), *args, env={"MOORAGE_PROVIDER_REGISTRY": ""})
        assert done.returncode != 0 and done.stdout == "", args
        assert done.stderr.strip()


def test_other_registry_gets_no_credentials(mint_server: MintServer, node_file: Path) -> None:
    done = run_plugin(request("quay.io/coreos/etcd:3"), "--registry", mint_server.url,
                      "--credential-file", str(node_file))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["auth"] == {}


def test_unreachable_registry_named(offline_node_file: Path) -> None:
    port = free_port()
    done = run_plugin(request(f"127.0.0.1:{port}/p/a:1"), "--registry", f"http://127.0.0.1:{port}",
                      "--credential-file", str(offline_node_file))
    assert done.returncode != 0 and done.stdout == ""
    assert f"127.0.0.1:{port}" in done.stderr


def test_mint_credentials_client(mint_server: MintServer) -> None:
    image = f"{mint_server.host}/{mint_server.project}/app:1"
    minted = mint_credentials(mint_server.url, mint_server.node, image, 120)
    assert minted.username == mint_server.node.username
    assert minted.expires_at.tzinfo is not None
    assert 100 <= minted.expires_at.timestamp() - time.time() <= 121
    with pytest.raises(ProviderError, match="401"):
        mint_credentials(mint_server.url, Credentials(mint_server.node.username, "nope"), image, 120)
