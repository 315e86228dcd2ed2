"""The kubelet credential-provider plugin end to end: the real console script, the real registry over
TLS, and the real containerd pulling with what the plugin answered.

A system robot is the node's long-lived credential (a 0600 file on the node). The plugin exchanges it
at ``POST /api/v2.0/node-credentials`` for a short-lived, pull-only credential; these tests prove that
credential pulls with ``ctr``, cannot push, stops working when it expires or its robot is disabled,
and that a project the robot may not pull yields no credential at all.

Expiry is tested without waiting an hour: a second server runs with ``node_credential_max_ttl_seconds``
(``MOORAGE_NODE_CREDENTIAL_MAX_TTL_SECONDS``) set to a few seconds, the operator's cap on lifetimes, so
a credential asked for 60 s is issued for that cap; the test then polls until the registry refuses it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from moorage.kube.keyring import provider_entries, resolve
from moorage.kube.provider_protocol import API_VERSION, RESPONSE_KIND, image_repository, parse_go_duration
from tests.support.clients import Containerd, Result, Skopeo
from tests.support.images import ImageInfo, build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import wait_until

SRC = Path(__file__).resolve().parents[2] / "src"
ADMIN = f"admin:{ADMIN_PASSWORD}"
PROVIDER_TTL = 600
# The CLI of the interpreter running the tests: a bare ``moorage`` needs the venv's bin on PATH.
MOORAGE = [sys.executable, "-m", "moorage.cli.main"]


@dataclass(frozen=True)
class Node:
    """What a node holds: the CA trust written by ``moorage node-config`` and the robot's credential file."""

    server: MoorageServer
    hosts_dir: Path
    cert_dir: Path
    credential_file: Path
    robot_id: int
    robot_name: str

    def provider(self, image: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return run_provider(request(image), "--registry", self.server.url, "--credential-file",
                            str(self.credential_file), "--ca-file", str(self.server.ca_file), *extra)


def provider_command() -> list[str]:
    """The installed console script, as the kubelet would find it in its bin dir; else the module."""
    installed = shutil.which("moorage-credential-provider")
    return [installed] if installed else [sys.executable, "-m", "moorage.kube.credential_provider"]


def run_provider(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}:{os.environ.get('PYTHONPATH', '')}"}
    for name in list(env):
        if name.startswith("MOORAGE_PROVIDER_"):
            del env[name]
    return subprocess.run([*provider_command(), *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def request(image: str) -> str:
    return json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderRequest", "image": image})


def admin_api(server: MoorageServer) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                        verify=server.verify)


def create_node_robot(server: MoorageServer, projects: list[str]) -> dict[str, Any]:
    """A system robot that may pull from ``projects``: the node's long-lived credential."""
    body = {"name": f"node-{secrets.token_hex(4)}", "level": "system", "duration": -1,
            "permissions": [{"kind": "project", "namespace": p,
                             "access": [{"resource": "repository", "action": "pull"}]} for p in projects]}
    with admin_api(server) as api:
        created = api.post("/robots", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def set_robot_disabled(server: MoorageServer, robot_id: int, disabled: bool) -> None:
    with admin_api(server) as api:
        response = api.put(f"/robots/{robot_id}", json={"disable": disabled})
    assert response.status_code == 200, response.text


def make_node(server: MoorageServer, root: Path, projects: list[str]) -> Node:
    """Configure a node's trust with the real ``moorage node-config`` and write its robot credential."""
    subprocess.run([*MOORAGE, "node-config", "--runtime", "containerd", "--registry", server.host,
                    "--ca-file", str(server.ca_file), "--apply", "--root", str(root)],
                   check=True, capture_output=True, text=True, timeout=60)
    hosts_dir = root / "etc" / "containerd" / "certs.d"
    assert 'server = "https://' in (hosts_dir / server.host / "hosts.toml").read_text()
    # skopeo reads every *.crt in --cert-dir as a CA; keep only the CA there (not the CA's key).
    cert_dir = root / "skopeo-certs"
    cert_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.ca_file, cert_dir / "ca.crt")
    robot = create_node_robot(server, projects)
    credential_file = root / "etc" / "moorage" / "node-credential.json"
    credential_file.parent.mkdir(parents=True, exist_ok=True)
    credential_file.write_text(json.dumps({"username": robot["name"], "password": robot["secret"]}))
    credential_file.chmod(0o600)
    return Node(server, hosts_dir, cert_dir, credential_file, int(robot["id"]), str(robot["name"]))


def push(skopeo: Skopeo, node: Node, image: ImageInfo, reference: str) -> None:
    skopeo.push(image, reference, creds=ADMIN, tls_verify=True, cert_dir=node.cert_dir)


def answered(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def the_credential(response: dict[str, Any], image: str) -> str:
    """The ``user:password`` the kubelet would hand the runtime for ``image``, found the kubelet's way."""
    resolution = resolve(image, node_entries=provider_entries("moorage", response))
    assert resolution.matches, (image, list(response["auth"]))
    match = resolution.matches[0]
    return f"{match.username}:{match.password}"


def ctr_pull(containerd: Containerd, node: Node, reference: str, user: str) -> Result:
    """A fresh pull: whatever an earlier test left in the content store must not hide a refusal."""
    containerd.rm(reference, check=False)
    return containerd.pull(reference, plain_http=False, user=user, hosts_dir=node.hosts_dir, check=False)


def ctr_error(result: Result) -> str:
    """The error ctr reports (its last ``ctr: …`` line), as the kubelet's event would carry it; the
    ``level=info msg="trying next host"`` lines before it are containerd's log of each attempt."""
    lines = [line for line in result.output.splitlines() if line.startswith("ctr: ")]
    assert lines, result.output
    return lines[-1]


def explain_cause(message: str) -> str:
    explained = subprocess.run([*MOORAGE, "explain", "--json", message], capture_output=True, text=True,
                               timeout=60, check=False)
    return str(json.loads(explained.stdout)["diagnoses"][0]["cause"])


def token_service_accepts(server: MoorageServer, user: str, repository: str) -> bool:
    username, password = user.split(":", 1)
    response = httpx.get(f"{server.url}/service/token", auth=(username, password), timeout=10,
                         verify=server.verify,
                         params={"service": "moorage-registry", "scope": f"repository:{repository}:pull"})
    return response.status_code == 200


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    server = MoorageServer(tmp_path_factory.mktemp("provider-moorage"), workers=2, tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def node(registry: MoorageServer, tmp_path_factory: pytest.TempPathFactory) -> Node:
    registry.project("apps")
    registry.project("vault")
    return make_node(registry, tmp_path_factory.mktemp("node-root"), ["apps"])


@pytest.fixture(scope="module")
def app_image(node: Node, skopeo: Skopeo, tmp_path_factory: pytest.TempPathFactory) -> ImageInfo:
    image = build_image(tmp_path_factory.mktemp("app-image"), tag="v1", layers=2, layer_size=[2048, 4096])
    push(skopeo, node, image, f"{node.server.host}/apps/app:v1")
    push(skopeo, node, image, f"{node.server.host}/vault/app:v1")
    return image


def test_provider_response_lets_ctr_pull_over_tls(node: Node, app_image: ImageInfo,
                                                  containerd: Containerd) -> None:
    image = f"{node.server.host}/apps/app:v1"
    response = answered(node.provider(image, "--ttl", str(PROVIDER_TTL)))
    assert response["apiVersion"] == API_VERSION
    assert response["kind"] == RESPONSE_KIND
    assert response["cacheKeyType"] == "Image"
    cached = parse_go_duration(response["cacheDuration"])
    assert timedelta(0) < cached <= timedelta(seconds=PROVIDER_TTL)
    assert list(response["auth"]) == [image_repository(image)] == [f"{node.server.host}/apps/app"]
    minted = response["auth"][f"{node.server.host}/apps/app"]
    # The short-lived credential acts as the robot, but it is not the robot's long-lived secret.
    assert minted["username"] == node.robot_name
    assert minted["password"] != json.loads(node.credential_file.read_text())["password"]

    user = the_credential(response, image)
    pulled = ctr_pull(containerd, node, image, user)
    assert pulled.ok, pulled.output
    assert containerd.images()[image] == app_image.digest
    assert containerd.is_unpacked(app_image)


def test_provider_credential_cannot_push(node: Node, app_image: ImageInfo, skopeo: Skopeo) -> None:
    image = f"{node.server.host}/apps/app:v1"
    user = the_credential(answered(node.provider(image)), image)
    # It can read (the same client, the same TLS trust) ...
    inspected = skopeo.inspect(image, creds=user, tls_verify=True, cert_dir=node.cert_dir)
    assert inspected["Digest"] == app_image.digest
    # ... but not write, neither a new repository nor over the tag it was minted for.
    for target in (f"{node.server.host}/apps/pushed:v1", image):
        refused = skopeo.copy(app_image.ref, f"docker://{target}", creds=user, tls_verify=True,
                              cert_dir=node.cert_dir, check=False)
        assert not refused.ok, refused.output
        lowered = refused.output.lower()
        assert "denied" in lowered or "unauthorized" in lowered, refused.output
    with admin_api(node.server) as api:
        assert api.get("/projects/apps/repositories/pushed").status_code == 404


def test_project_the_robot_cannot_pull_gets_no_credential(node: Node, app_image: ImageInfo,
                                                          containerd: Containerd) -> None:
    foreign = f"{node.server.host}/vault/app:v1"
    refused = node.provider(foreign)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert refused.stderr.startswith("moorage-credential-provider: ")
    assert "403" in refused.stderr, refused.stderr
    assert json.loads(node.credential_file.read_text())["password"] not in refused.stderr

    # A credential minted for apps does not open vault either: it carries the robot's pull projects only.
    own = f"{node.server.host}/apps/app:v1"
    user = the_credential(answered(node.provider(own)), own)
    denied = ctr_pull(containerd, node, foreign, user)
    assert not denied.ok
    assert foreign not in containerd.images()


def test_minted_lifetime_is_what_was_asked(node: Node, app_image: ImageInfo) -> None:
    image = f"{node.server.host}/apps/app:v1"
    before = int(time.time())
    response = answered(node.provider(image, "--ttl", "60"))
    password = response["auth"][image_repository(image)]["password"]
    claims = jwt.decode(password, options={"verify_signature": False})
    assert before + 60 - 1 <= claims["exp"] <= int(time.time()) + 60
    # A credential that will be dead within the plugin's safety margin must not be cached at all.
    assert response["cacheDuration"] == "0s"


def test_disabled_robot_credentials_are_refused(registry: MoorageServer, node: Node, app_image: ImageInfo,
                                                containerd: Containerd, tmp_path: Path) -> None:
    other = make_node(registry, tmp_path / "root", ["apps"])
    image = f"{registry.host}/apps/app:v1"
    user = the_credential(answered(other.provider(image)), image)
    assert ctr_pull(containerd, other, image, user).ok
    set_robot_disabled(registry, other.robot_id, True)
    try:
        refused = ctr_pull(containerd, other, image, user)
        assert not refused.ok
        assert "401" in refused.output or "unauthorized" in refused.output.lower(), refused.output
        assert explain_cause(ctr_error(refused)) == "unauthorized"
        # And the disabled robot can mint nothing new.
        again = other.provider(image)
        assert again.returncode != 0 and again.stdout == ""
        assert "refused the node credential" in again.stderr
    finally:
        set_robot_disabled(registry, other.robot_id, False)


def test_expired_provider_credentials_are_refused(tmp_path_factory: pytest.TempPathFactory, skopeo: Skopeo,
                                                  containerd: Containerd) -> None:
    lifetime = 3
    server = MoorageServer(tmp_path_factory.mktemp("short-ttl-moorage"), workers=2, tls=True,
                           env={"MOORAGE_NODE_CREDENTIAL_MAX_TTL_SECONDS": str(lifetime)})
    server.start()
    try:
        server.project("apps")
        node = make_node(server, tmp_path_factory.mktemp("short-ttl-node"), ["apps"])
        image_info = build_image(tmp_path_factory.mktemp("short-ttl-image"), tag="v1")
        image = f"{server.host}/apps/app:v1"
        push(skopeo, node, image_info, image)

        issued_at = time.time()
        response = answered(node.provider(image, "--ttl", "60"))
        user = the_credential(response, image)
        claims = jwt.decode(user.split(":", 1)[1], options={"verify_signature": False})
        assert claims["exp"] <= int(issued_at) + lifetime + 1, "the server's cap did not apply"
        assert response["cacheDuration"] == "0s"
        assert token_service_accepts(server, user, "apps/app")

        # Poll (no fixed sleep) until the registry's clock passes exp plus its leeway.
        wait_until(lambda: not token_service_accepts(server, user, "apps/app"), timeout=60,
                   what="the registry to refuse the expired node credential")
        refused = ctr_pull(containerd, node, image, user)
        assert not refused.ok
        assert "401" in refused.output or "unauthorized" in refused.output.lower(), refused.output
        assert explain_cause(ctr_error(refused)) == "unauthorized"

        # The plugin, asked again, mints a fresh one that works: expiry is routine, not an outage.
        fresh = the_credential(answered(node.provider(image, "--ttl", "60")), image)
        assert token_service_accepts(server, fresh, "apps/app")
    finally:
        server.stop()


@pytest.mark.parametrize("stdin", [
    "", "not json", "[]",
    json.dumps({"apiVersion": "credentialprovider.kubelet.k8s.io/v9", "kind": "CredentialProviderRequest",
                "image": "x"}),
    json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderResponse", "image": "x"}),
    json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderRequest"}),
])
def test_bad_stdin_exits_non_zero(node: Node, stdin: str) -> None:
    done = run_provider(stdin, "--registry", node.server.url, "--credential-file", str(node.credential_file),
                        "--ca-file", str(node.server.ca_file))
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.startswith("moorage-credential-provider: ") and done.stderr.strip()
