"""The kubelet exec plugin, run as the kubelet runs it: a process with the request on stdin.

The registry's ``POST /api/v2.0/node-credentials`` endpoint is not built yet; until it is, these tests
run against a TEMPORARY stand-in: a small Starlette app implementing that endpoint's contract,
served by a real Granian process on a loopback port. Point ``mint_server`` at moorage once it exists.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from moorage.client.auth import Credentials
from moorage.kube.credential_provider import ProviderError, mint_credentials
from moorage.kube.dockerconfig import encode_auth
from moorage.kube.provider_protocol import API_VERSION, parse_go_duration

SRC = Path(__file__).resolve().parents[2] / "src"
NODE = Credentials("robot$node+worker-1", "long-lived-node-secret")

STAND_IN = '''
import base64, json
from datetime import datetime, timedelta, timezone
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

NODE = "Basic " + base64.b64encode(b"robot$node+worker-1:long-lived-node-secret").decode()

async def mint(request):
    if request.headers.get("authorization") != NODE:
        return JSONResponse({"errors": [{"code": "UNAUTHORIZED", "message": "unknown node credential"}]}, 401)
    body = await request.json()
    if not isinstance(body.get("image"), str) or not isinstance(body.get("ttl_seconds"), int):
        return JSONResponse({"errors": [{"code": "BAD_REQUEST", "message": "image and ttl_seconds"}]}, 400)
    project = body["image"].split("/")[1]
    expires = datetime.now(timezone.utc) + timedelta(seconds=body["ttl_seconds"])
    return JSONResponse({"username": f"robot${project}+node-pull", "password": "short-" + project,
                         "expires_at": expires.isoformat().replace("+00:00", "Z")}, 201)

app = Starlette(routes=[Route("/api/v2.0/node-credentials", mint, methods=["POST"])])
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mint_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    granian = shutil.which("granian")
    if granian is None:
        pytest.fail("granian is required (pip install granian)")
    workdir = tmp_path_factory.mktemp("mint")
    (workdir / "mint_stand_in.py").write_text(STAND_IN)
    port = free_port()
    log = (workdir / "granian.log").open("wb")
    proc = subprocess.Popen([granian, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                             "--working-dir", str(workdir), "mint_stand_in:app"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"granian exited: {(workdir / 'granian.log').read_text()}")
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("stand-in mint server did not start within 30 s")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_plugin(stdin: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": f"{SRC}:{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    return subprocess.run([sys.executable, "-m", "moorage.kube.credential_provider", *args], input=stdin,
                          capture_output=True, text=True, env=full_env, timeout=60, check=False)


def request(image: str) -> str:
    return json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderRequest", "image": image})


@pytest.fixture
def node_file(tmp_path: Path) -> Path:
    path = tmp_path / "node-credential.json"
    path.write_text(json.dumps({"username": NODE.username, "password": NODE.password}))
    path.chmod(0o600)
    return path


def test_plugin_answers_with_minted_credentials(mint_server: str, node_file: Path) -> None:
    host = mint_server.removeprefix("http://")
    done = run_plugin(request(f"{host}/test-1/traefik:2.6.2"), "--registry", mint_server,
                      "--credential-file", str(node_file), "--ttl", "600")
    assert done.returncode == 0, done.stderr
    response: dict[str, Any] = json.loads(done.stdout)
    assert response["apiVersion"] == API_VERSION
    assert response["kind"] == "CredentialProviderResponse"
    assert response["cacheKeyType"] == "Image"
    assert response["auth"] == {f"{host}/test-1/traefik": {"username": "robot$test-1+node-pull",
                                                           "password": "short-test-1"}}
    # Cached no longer than the credential lives, minus the safety margin.
    assert parse_go_duration(response["cacheDuration"]).total_seconds() in range(500, 541)


def test_plugin_config_from_env_and_docker_config_file(mint_server: str, tmp_path: Path) -> None:
    host = mint_server.removeprefix("http://")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {host: {"auth": encode_auth(NODE)}}}))
    done = run_plugin(request(f"{host}/team/app@sha256:{'a' * 64}"), env={
        "MOORAGE_PROVIDER_REGISTRY": mint_server, "MOORAGE_PROVIDER_CREDENTIAL_FILE": str(cfg),
        "MOORAGE_PROVIDER_CACHE_KEY_TYPE": "Registry"})
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["cacheKeyType"] == "Registry"
    assert list(response["auth"]) == [host]


def test_wrong_node_credential_fails_quietly_on_stdout(mint_server: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"username": NODE.username, "password": "wrong"}))
    host = mint_server.removeprefix("http://")
    done = run_plugin(request(f"{host}/test-1/app:1"), "--registry", mint_server, "--credential-file", str(bad))
    assert done.returncode != 0
    assert done.stdout == ""
    assert "refused the node credential" in done.stderr and "unknown node credential" in done.stderr
    assert "wrong" not in done.stderr


@pytest.mark.parametrize("stdin", [
    "", "{", "[]", json.dumps({"apiVersion": "v0", "kind": "CredentialProviderRequest", "image": "x"}),
    json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderRequest"}),
])
def test_bad_requests_exit_non_zero(stdin: str, node_file: Path) -> None:
    done = run_plugin(stdin, "--registry", "http://127.0.0.1:9", "--credential-file", str(node_file))
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.startswith("moorage-credential-provider: ")


def test_bad_configuration(node_file: Path) -> None:
    for args in ([], ["--registry", "no-scheme:5000", "--credential-file", str(node_file)],
                 ["--registry", "http://127.0.0.1:9"],
                 ["--registry", "http://127.0.0.1:9", "--credential-file", "/nonexistent/file"]):
        done = run_plugin(request("127.0.0.1:9/p/a:1"), *args, env={"MOORAGE_PROVIDER_REGISTRY": ""})
        assert done.returncode != 0 and done.stdout == "", args
        assert done.stderr.strip()


def test_other_registry_gets_no_credentials(mint_server: str, node_file: Path) -> None:
    done = run_plugin(request("quay.io/coreos/etcd:3"), "--registry", mint_server,
                      "--credential-file", str(node_file))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["auth"] == {}


def test_unreachable_registry_named(node_file: Path) -> None:
    port = free_port()
    done = run_plugin(request(f"127.0.0.1:{port}/p/a:1"), "--registry", f"http://127.0.0.1:{port}",
                      "--credential-file", str(node_file))
    assert done.returncode != 0 and done.stdout == ""
    assert f"127.0.0.1:{port}" in done.stderr


def test_mint_credentials_client(mint_server: str) -> None:
    host = mint_server.removeprefix("http://")
    minted = mint_credentials(mint_server, NODE, f"{host}/proj/app:1", 120)
    assert (minted.username, minted.password) == ("robot$proj+node-pull", "short-proj")
    assert minted.expires_at.tzinfo is not None
    with pytest.raises(ProviderError, match="401"):
        mint_credentials(mint_server, Credentials(NODE.username, "nope"), f"{host}/proj/app:1", 120)
