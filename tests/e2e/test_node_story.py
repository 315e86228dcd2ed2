"""The seed's node story, done right, with the real containerd over real TLS.

moorage serves HTTPS with its own CA; a node is configured by ``moorage node-config --apply``; a pod's
pull Secret is made by ``moorage secret create``; the credential the kubelet would pick from it (found
with ``moorage.kube.keyring.resolve``) is handed to ``ctr``, which pulls from the private project.
Then the seed's failure: a registry whose certificate names no IP address, reached by IP, fails in the
real ctr with "doesn't contain any IP SANs", and ``moorage explain`` names that cause, as it names a
wrong password, a missing role and a missing tag from their real ctr messages.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from moorage.kube.keyring import resolve
from tests.support.clients import Containerd, Result, Skopeo
from tests.support.images import ImageInfo, build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

LIDABAI_PASSWORD = "Lidabai-Passw0rd"
DEVELOPER = 2


@dataclass(frozen=True)
class Story:
    server: MoorageServer
    hosts_dir: Path
    cert_dir: Path
    image: ImageInfo
    reference: str


def moorage_cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], input=input, capture_output=True,
                          text=True, timeout=120, check=False)


def node_config(registry: str, ca_file: Path, root: Path) -> Path:
    """``moorage node-config --runtime containerd --apply``; returns the certs.d ctr uses as --hosts-dir."""
    done = moorage_cli("node-config", "--runtime", "containerd", "--registry", registry, "--ca-file",
                       str(ca_file), "--apply", "--root", str(root))
    assert done.returncode == 0, done.stderr
    hosts_dir = root / "etc" / "containerd" / "certs.d"
    assert (hosts_dir / registry / "hosts.toml").is_file()
    return hosts_dir


def served_certificate(host: str, port: int) -> x509.Certificate:
    """The leaf the server presents, read without verifying it (we only look at its SANs)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def san_ips(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def ctr_error(result: Result) -> str:
    """What ctr reports as the error (its last ``ctr: …`` line): the text a kubelet event carries after
    ``rpc error: … desc =``. The ``level=info msg="trying next host"`` lines are containerd's log."""
    lines = [line for line in result.output.splitlines() if line.startswith("ctr: ")]
    assert lines, result.output
    return lines[-1]


def explain(message: str) -> dict[str, Any]:
    done = moorage_cli("explain", "--json", message)
    assert done.returncode in (0, 1), done.stderr
    return dict(json.loads(done.stdout))


def fresh_pull(containerd: Containerd, reference: str, user: str, hosts_dir: Path) -> Result:
    containerd.rm(reference, check=False)
    return containerd.pull(reference, plain_http=False, user=user, hosts_dir=hosts_dir, check=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    server = MoorageServer(tmp_path_factory.mktemp("node-story-moorage"), workers=2, tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def story(registry: MoorageServer, skopeo: Skopeo, tmp_path_factory: pytest.TempPathFactory) -> Story:
    # The certificate moorage made covers the IP the nodes use.
    assert "127.0.0.1" in san_ips(served_certificate("127.0.0.1", registry.port))

    # The admin creates private project test-1 and user lidabai with the Developer role.
    with httpx.Client(base_url=f"{registry.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                      verify=registry.verify) as admin:
        created = admin.post("/projects", json={"project_name": "test-1", "metadata": {"public": "false"}})
        assert created.status_code == 201, created.text
        user = admin.post("/users", json={"username": "lidabai", "password": LIDABAI_PASSWORD,
                                          "email": "lidabai@example.com", "realname": "lidabai"})
        assert user.status_code == 201, user.text
        member = admin.post("/projects/test-1/members", headers={"X-Is-Resource-Name": "true"},
                            json={"role_id": DEVELOPER, "member_user": {"username": "lidabai"}})
        assert member.status_code == 201, member.text

    # lidabai pushes with skopeo, verifying TLS against the registry's CA.
    cert_dir = tmp_path_factory.mktemp("skopeo-certs")
    shutil.copy(registry.ca_file, cert_dir / "ca.crt")
    image = build_image(tmp_path_factory.mktemp("node-story-image"), tag="v1", layers=2, layer_size=[2048, 4096])
    reference = f"{registry.host}/test-1/app:v1"
    skopeo.push(image, reference, creds=f"lidabai:{LIDABAI_PASSWORD}", tls_verify=True, cert_dir=cert_dir)

    hosts_dir = node_config(registry.host, registry.ca_file, tmp_path_factory.mktemp("node-root"))
    return Story(registry, hosts_dir, cert_dir, image, reference)


def pull_secret(server: str, username: str, password: str) -> dict[str, Any]:
    done = moorage_cli("secret", "create", "regcred", "--server", server, "--username", username,
                       "--password-stdin", "-n", "default", "-o", "json", input=password)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_node_pulls_with_the_secret_moorage_made(story: Story, containerd: Containerd) -> None:
    secret = pull_secret(story.server.host, "lidabai", LIDABAI_PASSWORD)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert list(config["auths"]) == [story.server.host]

    resolution = resolve(story.reference, pull_secrets=[secret])
    assert resolution.notes == []
    assert [m.username for m in resolution.matches] == ["lidabai"]
    picked = resolution.matches[0]

    pulled = fresh_pull(containerd, story.reference, f"{picked.username}:{picked.password}", story.hosts_dir)
    assert pulled.ok, pulled.output
    assert containerd.images()[story.reference] == story.image.digest
    assert containerd.is_unpacked(story.image)


def test_wrong_password_is_explained_as_unauthorized(story: Story, containerd: Containerd) -> None:
    secret = pull_secret(story.server.host, "lidabai", "not-the-password")
    picked = resolve(story.reference, pull_secrets=[secret]).matches[0]
    refused = fresh_pull(containerd, story.reference, f"{picked.username}:{picked.password}", story.hosts_dir)
    assert not refused.ok
    message = ctr_error(refused)
    assert "401" in message or "unauthorized" in message.lower(), refused.output
    assert explain(message)["diagnoses"][0]["cause"] == "unauthorized"


def test_missing_role_is_explained(story: Story, containerd: Containerd) -> None:
    """A valid account with no role in test-1: the credentials are right, the permission is missing."""
    with httpx.Client(base_url=f"{story.server.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                      verify=story.server.verify) as admin:
        created = admin.post("/users", json={"username": "outsider", "password": LIDABAI_PASSWORD,
                                             "email": "outsider@example.com", "realname": "outsider"})
        assert created.status_code == 201, created.text
    refused = fresh_pull(containerd, story.reference, f"outsider:{LIDABAI_PASSWORD}", story.hosts_dir)
    assert not refused.ok
    message = ctr_error(refused)
    assert "403 Forbidden" in message, refused.output
    assert explain(message)["diagnoses"][0]["cause"] == "denied"


def test_missing_tag_is_explained_as_not_found(story: Story, containerd: Containerd) -> None:
    missing = f"{story.server.host}/test-1/app:no-such-tag"
    refused = fresh_pull(containerd, missing, f"lidabai:{LIDABAI_PASSWORD}", story.hosts_dir)
    assert not refused.ok
    message = ctr_error(refused)
    assert "not found" in message, refused.output
    assert explain(message)["diagnoses"][0]["cause"] == "not-found"


@pytest.fixture(scope="module")
def registry_without_ip_san(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    """A second moorage data dir whose server certificate names only a DNS name, like the seed's.

    ``moorage serve`` would reissue such a certificate to cover its own addresses (that is the fix), so
    the broken one is served the way the seed's registry served it: moorage's app under Granian with
    exactly that certificate. One ordinary start first creates the data dir, schema and CA.
    """
    server = MoorageServer(tmp_path_factory.mktemp("no-ip-san-moorage"), workers=1, tls=True)
    server.start_with_certificate(["only-a-name"], [])
    try:
        yield server
    finally:
        server.stop()


def test_certificate_without_ip_san_reproduces_the_seed(registry_without_ip_san: MoorageServer,
                                                        containerd: Containerd,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    server = registry_without_ip_san
    served = served_certificate("127.0.0.1", server.port)
    assert san_ips(served) == []
    # The node trusts the CA (node-config did its part): what fails is the name check alone.
    hosts_dir = node_config(server.host, server.ca_file, tmp_path_factory.mktemp("node-root-no-san"))
    reference = f"{server.host}/test-1/app:v1"
    refused = fresh_pull(containerd, reference, f"admin:{ADMIN_PASSWORD}", hosts_dir)
    assert not refused.ok
    message = ctr_error(refused)
    assert "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs" in message, \
        refused.output
    diagnosis = explain(message)
    assert diagnosis["recognised"] is True
    assert diagnosis["diagnoses"][0]["cause"] == "tls-missing-ip-san", diagnosis
    # The handshake failed before any credential was sent: not an auth problem, whatever the seed thought.
    assert "unauthorized" not in [d["cause"] for d in diagnosis["diagnoses"]]
