"""The seed's node story with the real docker engine over real, verified TLS.

dockerd 20.10 treats every registry on 127.0.0.0/8 as insecure, so on loopback it never shows a TLS
failure. Here moorage runs on a test host of the run's own: a network namespace reached through a veth
pair at ``10.233.X.2`` (``tests.support.netns``), which dockerd verifies like any remote registry.

1. Before the node trusts anything, ``docker login`` fails with the seed's x509 unknown-authority error,
   and ``moorage explain`` names it and the ``moorage node-config --runtime docker`` fix.
2. ``moorage node-config --runtime docker --apply --root /`` writes /etc/docker/certs.d/HOST:PORT/ca.crt;
   lidabai (Developer on private test-1) logs in with the credential from a ``moorage secret create``
   Secret and pushes and pulls over verified TLS.
3. A registry whose certificate names only a DNS name fails in docker with exactly the seed's "doesn't
   contain any IP SANs"; ``moorage explain`` and ``moorage doctor`` name the missing IP SAN.
4. A wrong password is "unauthorized"; a Guest's push is "denied".
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from moorage.tls.certs import server_paths
from tests.support.clients import DockerCli, Dockerd, Result, Skopeo
from tests.support.images import build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.netns import NetnsHost, netns_host

LIDABAI_PASSWORD = "Lidabai-Passw0rd"
VISITOR_PASSWORD = "Visitor-Passw0rd"
DEVELOPER, GUEST = 2, 3
CERTS_D = Path("/etc/docker/certs.d")


@dataclass(frozen=True)
class Story:
    server: MoorageServer
    host: NetnsHost

    @property
    def registry(self) -> str:
        return self.server.host


def moorage_cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], input=input, capture_output=True,
                          text=True, timeout=120, check=False)


def explain(message: str) -> dict[str, Any]:
    done = moorage_cli("explain", "--json", message)
    assert done.returncode in (0, 1), done.stderr
    return dict(json.loads(done.stdout))


def docker_error(result: Result) -> str:
    """The line docker prints for a failure (``Error response from daemon: …`` or ``denied: …``)."""
    assert not result.ok, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines, result.output
    return lines[-1]


@contextmanager
def docker_trusts(registry: str, data_dir: Path) -> Iterator[Path]:
    """``moorage node-config --runtime docker --apply --root /`` for ``registry``; the certs.d directory it
    wrote (the real one dockerd reads at each connection) is removed afterwards."""
    directory = CERTS_D / registry
    assert not directory.exists(), f"{directory} exists before the test wrote it"
    planned = moorage_cli("node-config", "--runtime", "docker", "--registry", registry, "--data-dir",
                          str(data_dir), "--json")
    assert planned.returncode == 0, planned.stderr
    # Only the CA file: the host's daemon.json must not be touched.
    assert [f["path"] for f in json.loads(planned.stdout)["files"]] == [str(directory / "ca.crt")]
    try:
        applied = moorage_cli("node-config", "--runtime", "docker", "--registry", registry, "--data-dir",
                              str(data_dir), "--apply", "--root", "/")
        assert applied.returncode == 0, applied.stderr
        assert (directory / "ca.crt").read_bytes() == server_paths(data_dir).ca.read_bytes()
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def load_into_docker(skopeo: Skopeo, dockerd: Dockerd, workdir: Path, reference: str) -> None:
    """A fresh image, built here (no internet), copied into the daemon's image store as ``reference``."""
    image = build_image(workdir, tag="v1", layers=2, layer_size=[2048, 4096])
    skopeo.run("copy", image.oci_ref, f"docker-daemon:{reference}", "--dest-daemon-host", dockerd.host)


@pytest.fixture(scope="module")
def test_host() -> Iterator[NetnsHost]:
    with netns_host() as host:
        yield host


@pytest.fixture(scope="module")
def story(test_host: NetnsHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """moorage (HTTPS, its own CA) inside the test host; the admin sets up test-1, lidabai and a guest."""
    server = MoorageServer(tmp_path_factory.mktemp("docker-tls-moorage"), workers=1, tls=True,
                           bind_host=test_host.address, port=test_host.free_port(),
                           launcher=test_host.exec_argv([]), extra_args=["--ip", test_host.address])
    server.start()
    try:
        with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                          verify=server.verify) as admin:
            created = admin.post("/projects", json={"project_name": "test-1", "metadata": {"public": "false"}})
            assert created.status_code == 201, created.text
            for name, password, role in (("lidabai", LIDABAI_PASSWORD, DEVELOPER),
                                         ("visitor", VISITOR_PASSWORD, GUEST)):
                user = admin.post("/users", json={"username": name, "password": password,
                                                  "email": f"{name}@example.com", "realname": name})
                assert user.status_code == 201, user.text
                member = admin.post("/projects/test-1/members", headers={"X-Is-Resource-Name": "true"},
                                    json={"role_id": role, "member_user": {"username": name}})
                assert member.status_code == 201, member.text
        yield Story(server, test_host)
    finally:
        server.stop()


@pytest.fixture
def trusted(story: Story) -> Iterator[Path]:
    with docker_trusts(story.registry, story.server.data_dir) as directory:
        yield directory


def secret_credential(registry: str, username: str, password: str) -> tuple[str, str]:
    """The credential a ``moorage secret create`` Secret carries for ``registry``, decoded the way the
    kubelet decodes it before handing it to the runtime."""
    done = moorage_cli("secret", "create", "regcred", "--server", registry, "--username", username,
                       "--password-stdin", "-n", "default", "-o", "json", input=password)
    assert done.returncode == 0, done.stderr
    secret = json.loads(done.stdout)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    assert list(auths) == [registry]
    user, _, secret_password = base64.b64decode(auths[registry]["auth"]).decode().partition(":")
    return user, secret_password


def test_untrusted_registry_fails_like_the_seed(story: Story, docker: DockerCli) -> None:
    assert not (CERTS_D / story.registry).exists()
    refused = docker.login(story.registry, "lidabai", LIDABAI_PASSWORD, check=False)
    message = docker_error(refused)
    assert "x509: certificate signed by unknown authority" in message, refused.output
    diagnosis = explain(message)
    assert diagnosis["recognised"] is True
    first = diagnosis["diagnoses"][0]
    assert first["cause"] == "tls-unknown-authority", diagnosis
    assert any("moorage node-config --runtime docker" in step for step in first["fix"]), first["fix"]


def test_node_config_then_push_and_pull_over_verified_tls(story: Story, trusted: Path, docker: DockerCli,
                                                          dockerd: Dockerd, skopeo: Skopeo,
                                                          tmp_path: Path) -> None:
    reference = f"{story.registry}/test-1/app:v1"
    user, password = secret_credential(story.registry, "lidabai", LIDABAI_PASSWORD)
    assert user == "lidabai"
    login = docker.login(story.registry, user, password)
    assert "Login Succeeded" in login.output

    load_into_docker(skopeo, dockerd, tmp_path / "image", reference)
    pushed = docker.push(reference)
    digest = next(word for word in pushed.output.split() if word.startswith("sha256:"))
    docker.rmi(reference)
    docker.pull(reference)
    assert f"{story.registry}/test-1/app@{digest}" in docker.repo_digests(reference)
    # The registry really has it (checked over verified TLS with the CA node-config installed).
    with httpx.Client(base_url=story.server.url, auth=("lidabai", LIDABAI_PASSWORD), timeout=30,
                      verify=ssl.create_default_context(cafile=str(trusted / "ca.crt"))) as client:
        head = client.head("/v2/test-1/app/manifests/v1", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest


def test_wrong_password_is_unauthorized(story: Story, trusted: Path, docker: DockerCli) -> None:
    user, password = secret_credential(story.registry, "lidabai", "not-the-password")
    refused = docker.login(story.registry, user, password, check=False)
    message = docker_error(refused)
    assert "unauthorized" in message.lower(), refused.output
    assert "x509" not in message
    assert explain(message)["diagnoses"][0]["cause"] == "unauthorized"


def test_guest_push_is_denied(story: Story, trusted: Path, docker: DockerCli, dockerd: Dockerd,
                              skopeo: Skopeo, tmp_path: Path) -> None:
    reference = f"{story.registry}/test-1/by-guest:v1"
    docker.login(story.registry, "visitor", VISITOR_PASSWORD)
    load_into_docker(skopeo, dockerd, tmp_path / "image", reference)
    try:
        refused = docker.push(reference, check=False)
    finally:
        docker.rmi(reference, check=False)
    message = docker_error(refused)
    # Login succeeded, so the Guest's credentials are fine; the role lacks push on test-1.
    assert message.startswith("denied:") and "action: push" in message, refused.output
    assert explain(message)["diagnoses"][0]["cause"] == "denied"


@pytest.fixture(scope="module")
def registry_without_ip_san(test_host: NetnsHost, tmp_path_factory: pytest.TempPathFactory
                            ) -> Iterator[MoorageServer]:
    """A second moorage in the test host whose certificate names only a DNS name, like the seed's.

    ``moorage serve`` would re-issue such a certificate to cover its listen address (that is the fix), so
    moorage's app is served by Granian directly with exactly that certificate. One ordinary start first
    creates the data dir, schema and CA.
    """
    server = MoorageServer(tmp_path_factory.mktemp("docker-no-ip-san"), workers=1, tls=True,
                           bind_host=test_host.address, port=test_host.free_port(),
                           launcher=test_host.exec_argv([]))
    server.start_with_certificate(["only-a-name"], [])
    try:
        yield server
    finally:
        server.stop()


def test_certificate_without_ip_san_reproduces_the_seed(registry_without_ip_san: MoorageServer,
                                                        test_host: NetnsHost, docker: DockerCli,
                                                        tmp_path: Path) -> None:
    server = registry_without_ip_san
    ip = test_host.address
    seed_error = f"x509: cannot validate certificate for {ip} because it doesn't contain any IP SANs"
    # The node trusts the CA (node-config did its part): what fails is the name check alone.
    with docker_trusts(server.host, server.data_dir):
        login = docker.login(server.host, "admin", ADMIN_PASSWORD, check=False)
        assert seed_error in docker_error(login), login.output
        pull = docker.pull(f"{server.host}/test-1/app:v1", check=False)
        assert seed_error in docker_error(pull), pull.output

    diagnosis = explain(docker_error(login))
    assert diagnosis["recognised"] is True
    first = diagnosis["diagnoses"][0]
    assert first["cause"] == "tls-missing-ip-san", diagnosis
    assert any(f"moorage tls renew --ip {ip}" in step for step in first["fix"]), first["fix"]
    # The handshake failed before any credential was sent: not an auth problem, whatever the seed thought.
    assert "unauthorized" not in [d["cause"] for d in diagnosis["diagnoses"]]

    # The doctor, on a node root whose docker trusts the CA, finds the same cause by probing.
    node_root = tmp_path / "node-root"
    configured = moorage_cli("node-config", "--runtime", "docker", "--registry", server.host, "--data-dir",
                             str(server.data_dir), "--apply", "--root", str(node_root))
    assert configured.returncode == 0, configured.stderr
    assert (node_root / "etc/docker/certs.d" / server.host / "ca.crt").is_file()
    doctor = moorage_cli("doctor", f"{server.host}/test-1/app:v1", "--runtime", "docker", "--root",
                         str(node_root), "--json")
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    report = json.loads(doctor.stdout)
    finding = report["finding"]
    assert finding["cause"] == "tls-missing-ip-san", finding
    assert ip in finding["summary"]
    assert any(f"moorage tls renew --ip {ip}" in step for step in finding["fix"]), finding["fix"]
    steps = {step["id"]: step["status"] for step in report["steps"]}
    assert steps["connect"] == "pass" and steps["tls"] == "fail"
