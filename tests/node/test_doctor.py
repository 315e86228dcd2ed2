"""``moorage doctor`` against real registry processes over real TLS, one node root per test.

The registry is ``moorage serve`` with HTTPS and its own CA on 127.0.0.1, holding a private project with
a Developer member and one pushed image. Each test builds the node it diagnoses as files under a
temporary ``--root`` (trust written by the real ``moorage node-config --apply``, pull secrets by the
real ``moorage secret create``). Where a Go client is at hand (skopeo), the doctor's x509 text is
compared with what Go itself prints for the same server.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from moorage.core.reference import InvalidReference, parse_image_reference
from moorage.node.checks.tlscheck import go_hostname_error
from moorage.node.doctor import STEPS, DoctorOptions, DoctorReport, run_doctor
from moorage.node.explain import explain
from moorage.tls.ca import create_ca, key_pem, load_ca, new_key
from moorage.tls.certs import build_server_certificate
from tests.api.harbor import PASSWORD, add_member, make_project, make_user, push_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import ManagedProcess, free_port, port_open, require_tool, wait_until

SRC = Path(__file__).resolve().parents[2] / "src"
DEVELOPER = 2


@dataclass
class Registry:
    server: MoorageServer
    project: str
    developer: str
    outsider: str

    @property
    def host(self) -> str:
        return self.server.host

    def image(self, tag: str = "v1") -> str:
        return f"{self.host}/{self.project}/app:{tag}"


def moorage_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = MoorageServer(tmp_path_factory.mktemp("doctor-registry"), workers=1, tls=True)
    server.start()
    try:
        with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                          verify=server.verify) as admin:
            project = make_project(admin, public=False)
            _, developer = make_user(admin)
            add_member(admin, project, developer, DEVELOPER)
            _, outsider = make_user(admin)
        with server.client() as client:
            push_image(client, f"{project}/app", "v1")
        yield Registry(server, project, developer, outsider)
    finally:
        server.stop()


def trusted_root(root: Path, registry: str, ca_file: Path, runtime: str = "containerd") -> Path:
    done = moorage_cli("node-config", "--runtime", runtime, "--registry", registry, "--ca-file", str(ca_file),
                       "--apply", "--root", str(root))
    assert done.returncode == 0, done.stderr
    return root


def secret_file(path: Path, server: str, username: str, password: str) -> Path:
    done = moorage_cli("secret", "create", "pull", "--server", server, "--username", username,
                       "--password-stdin", "-o", "yaml", stdin=password)
    assert done.returncode == 0, done.stderr
    path.write_text(done.stdout)
    return path


def doctor(image: str, root: Path, **options: object) -> DoctorReport:
    return run_doctor(DoctorOptions(image=image, root=root, timeout=5.0, **options))  # type: ignore[arg-type]


def statuses(report: DoctorReport) -> dict[str, str]:
    return {step.id: step.status for step in report.steps}


def failed_step(report: DoctorReport) -> str:
    failed = [s.id for s in report.steps if s.status == "fail"]
    assert len(failed) == 1, report.to_dict()
    return failed[0]


# ---- the happy path ---------------------------------------------------------------------------

def test_node_configured_by_node_config_with_a_moorage_secret_passes_every_check(
        registry: Registry, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file)
    secret = secret_file(tmp_path / "secret.yaml", registry.host, registry.developer, PASSWORD)

    report = doctor(registry.image(), root, secret=secret)

    assert report.ok, json.dumps(report.to_dict(), indent=2)
    assert report.runtime == "containerd" and "config.toml" in report.runtime_reason
    assert report.trust is not None and report.trust.config_problem == ""
    assert [s.id for s in report.steps] == [step_id for step_id, _ in STEPS]
    assert set(statuses(report).values()) == {"pass"}
    credentials = next(s for s in report.steps if s.id == "credentials")
    assert credentials.facts["candidates"] == [{"key": registry.host, "username": registry.developer,
                                                "source": "secret default/pull"}]
    assert PASSWORD not in json.dumps(report.to_dict())
    manifest = next(s for s in report.steps if s.id == "manifest")
    assert manifest.facts["digest"].startswith("sha256:")


# ---- TLS: the seed's failure and its neighbours -------------------------------------------------

@pytest.fixture
def cert_without_ip_san(registry: Registry, tmp_path: Path) -> Iterator[str]:
    """A real TLS server whose certificate, signed by the registry's CA, names only ``localhost``."""
    ca = load_ca(registry.server.data_dir)
    assert ca is not None
    key = new_key()
    cert = build_server_certificate(ca, key, dns=["localhost"], ips=[])
    chain, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca.pem)
    key_file.write_bytes(key_pem(key))
    script = tmp_path / "tls_server.py"
    script.write_text(textwrap.dedent("""
        import http.server, ssl, sys

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[3])), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[1], sys.argv[2])
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
    """))
    port = free_port()
    process = ManagedProcess([sys.executable, str(script), str(chain), str(key_file), str(port)],
                             log_path=tmp_path / "tls_server.log")
    with process:
        wait_until(lambda: port_open("127.0.0.1", port), timeout=15, what="the TLS test server", process=process)
        yield f"127.0.0.1:{port}"


def test_certificate_without_the_ip_san_is_named_like_go_names_it_with_the_renew_fix(
        registry: Registry, cert_without_ip_san: str, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", cert_without_ip_san, registry.server.ca_file)
    image = f"{cert_without_ip_san}/{registry.project}/app:v1"

    report = doctor(image, root)

    assert failed_step(report) == "tls"
    finding = report.finding
    assert finding is not None and finding.cause == "tls-missing-ip-san"
    expected = "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"
    assert finding.evidence == expected
    assert any("`moorage tls renew --ip 127.0.0.1`" in step for step in finding.fix)
    assert "imagePullSecret" in finding.why  # says why credentials are not the fix
    # explain reads the same text to the same cause: one catalogue for both commands.
    assert explain(expected)[0].cause == finding.cause
    # And Go itself (skopeo), trusting the same CA, prints exactly this text.
    skopeo = require_tool("skopeo", "skopeo")
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(registry.server.ca_file.read_bytes())
    go = subprocess.run([skopeo, "inspect", "--cert-dir", str(cert_dir), f"docker://{image}"],
                        capture_output=True, text=True, timeout=60, check=False)
    assert go.returncode != 0 and expected in go.stderr, go.stderr


def test_untrusted_ca_is_unknown_authority_with_the_node_config_fix(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "bare-node"
    root.mkdir()

    report = doctor(registry.image(), root, runtime="containerd")

    assert statuses(report) == {"reference": "pass", "resolve": "pass", "connect": "pass", "tls": "fail"}
    finding = report.finding
    assert finding is not None and finding.cause == "tls-unknown-authority"
    assert finding.evidence == "x509: certificate signed by unknown authority"
    assert any("`moorage node-config --runtime containerd" in step for step in finding.fix)
    assert any("config_path" in step for step in finding.fix), "a bare 1.x node needs config_path too"
    assert any(f"--registry {registry.host}" in step for step in finding.fix)
    skopeo = require_tool("skopeo", "skopeo")
    go = subprocess.run([skopeo, "inspect", "--cert-dir", str(root), f"docker://{registry.image()}"],
                        capture_output=True, text=True, timeout=60, check=False)
    assert "x509: certificate signed by unknown authority" in go.stderr, go.stderr


def test_trust_containerd_1x_would_not_read_fails_naming_config_path(registry: Registry, tmp_path: Path) -> None:
    """The issue's node: hosts.toml and the CA are in certs.d, config.toml sets no config_path. A 1.6
    containerd never reads them, so the doctor must fail, not pass with a note."""
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file)
    config = root / "etc/containerd/config.toml"
    config.write_text("version = 2\n# the operator's settings, no config_path\n")

    report = doctor(registry.image(), root, runtime="containerd")

    assert failed_step(report) == "tls" and not report.ok
    finding = report.finding
    assert finding is not None and finding.cause == "containerd-config-path"
    assert "config_path" in finding.summary and "sets no config_path" in finding.why
    assert "cannot tell, assuming 1.x" in finding.why
    assert any("--apply --restart" in step and f"--root {root}" in step for step in finding.fix)

    config.write_text("version = 3\n")  # containerd 2.x's format: it reads certs.d by default
    assert doctor(registry.image(), root, runtime="containerd").steps[3].status == "pass"


def test_trust_installed_for_another_runtime_does_not_count(registry: Registry, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file, runtime="crio")

    assert statuses(doctor(registry.image(), root, runtime="crio"))["tls"] == "pass"
    report = doctor(registry.image(), root, runtime="containerd")

    assert report.finding is not None and report.finding.cause == "tls-unknown-authority"


def test_plain_http_registry_when_the_runtime_expects_https(tmp_path: Path) -> None:
    plain = MoorageServer(tmp_path / "plain-registry", workers=1)
    plain.start()
    try:
        root = tmp_path / "node"
        root.mkdir()
        report = doctor(f"{plain.host}/library/app:v1", root, runtime="containerd")
    finally:
        plain.stop()

    assert statuses(report)["tls"] == "skip"
    assert failed_step(report) == "scheme"
    assert report.finding is not None and report.finding.cause == "http-response-to-https-client"


def test_runtime_configured_for_plain_http_against_a_tls_registry(registry: Registry, tmp_path: Path) -> None:
    hosts = tmp_path / "node/etc/containerd/certs.d" / registry.host / "hosts.toml"
    hosts.parent.mkdir(parents=True)
    (tmp_path / "node/etc/containerd/config.toml").write_text(
        f'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
        f'  config_path = "{tmp_path / "node/etc/containerd/certs.d"}"\n')
    hosts.write_text(f'server = "http://{registry.host}"\n\n[host."http://{registry.host}"]\n'
                     '  capabilities = ["pull", "resolve"]\n')

    report = doctor(registry.image(), tmp_path / "node")

    assert failed_step(report) == "scheme"
    assert report.finding is not None and report.finding.cause == "plain-http-client-to-https-server"


# ---- network ------------------------------------------------------------------------------------

def test_closed_port_is_connection_refused(tmp_path: Path) -> None:
    port = free_port()

    report = doctor(f"127.0.0.1:{port}/p/app:v1", tmp_path)

    assert failed_step(report) == "connect"
    assert report.finding is not None and report.finding.cause == "connection-refused"
    assert report.finding.evidence == f"dial tcp 127.0.0.1:{port}: connect: connection refused"


# ---- credentials, permission, tag ---------------------------------------------------------------

def test_wrong_password_is_unauthorized(registry: Registry, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file)
    secret = secret_file(tmp_path / "secret.yaml", registry.host, registry.developer, "not-the-password")

    report = doctor(registry.image(), root, secret=secret)

    assert failed_step(report) == "token"
    assert statuses(report)["credentials"] == "pass"
    assert report.finding is not None and report.finding.cause == "unauthorized"
    assert registry.developer in " ".join(report.finding.fix)
    assert "not-the-password" not in json.dumps(report.to_dict())


def test_user_without_a_role_on_the_project_is_denied(registry: Registry, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file)
    secret = secret_file(tmp_path / "secret.yaml", registry.host, registry.outsider, PASSWORD)

    report = doctor(registry.image(), root, secret=secret)

    assert failed_step(report) == "token"
    assert report.finding is not None and report.finding.cause == "denied"
    assert registry.project in report.finding.summary + " ".join(report.finding.fix)


def test_missing_tag_is_not_found_and_lists_the_tags_there_are(registry: Registry, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file)
    secret = secret_file(tmp_path / "secret.yaml", registry.host, registry.developer, PASSWORD)

    report = doctor(registry.image("v9"), root, secret=secret)

    assert failed_step(report) == "manifest"
    assert report.finding is not None and report.finding.cause == "not-found"
    manifest = report.steps[-1]
    assert manifest.facts["tags"] == ["v1"]


def test_secret_keyed_without_the_port_means_the_kubelet_sends_no_credentials(
        registry: Registry, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file)
    secret = secret_file(tmp_path / "secret.yaml", "127.0.0.1", registry.developer, PASSWORD)

    report = doctor(registry.image(), root, secret=secret)

    assert failed_step(report) == "credentials"
    finding = report.finding
    assert finding is not None and finding.cause == "no-credentials"
    assert "the kubelet would send no credentials" in report.steps[-1].detail
    assert f"≠ {registry.server.port}" in report.steps[-1].detail  # the port is the mismatch
    assert any(f"--server {registry.host}" in step for step in finding.fix)


def test_node_config_json_is_what_the_kubelet_falls_back_to(registry: Registry, tmp_path: Path) -> None:
    root = trusted_root(tmp_path / "node", registry.host, registry.server.ca_file)
    config = root / "var/lib/kubelet/config.json"
    config.parent.mkdir(parents=True)
    auth = base64.b64encode(f"{registry.developer}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))

    report = doctor(registry.image(), root)

    assert report.ok, report.to_dict()
    assert report.steps[6].facts["candidates"][0]["source"] == f"file {config}"


# ---- pure parts: reference grammar and Go's host name messages ------------------------------------

@pytest.mark.parametrize(("text", "registry", "repository", "reference"), [
    ("nginx", "docker.io", "library/nginx", "latest"),
    ("docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7"),
    ("192.168.2.250:443/test-1/traefik:2.6.2", "192.168.2.250:443", "test-1/traefik", "2.6.2"),
    ("localhost/a/b@sha256:" + "a" * 64, "localhost", "a/b", "sha256:" + "a" * 64),
])
def test_reference_parsing_follows_docker(text: str, registry: str, repository: str, reference: str) -> None:
    ref = parse_image_reference(text)
    assert (ref.registry, ref.repository, ref.reference) == (registry, repository, reference)


@pytest.mark.parametrize("text", ["https://10.0.0.5/p/a:1", "10.0.0.5:443/Test/app:1", "host:99999/a:1",
                                  "a/b:-bad", ""])
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_image_reference(text)


def test_go_hostname_messages() -> None:
    ca = create_ca()
    only_dns = build_server_certificate(ca, new_key(), ["registry.example"], [])
    with_ips = build_server_certificate(ca, new_key(), ["registry.example"], ["10.0.0.1", "127.0.0.1"])
    assert go_hostname_error(only_dns, "192.168.2.250") == (
        "x509: cannot validate certificate for 192.168.2.250 because it doesn't contain any IP SANs")
    assert go_hostname_error(with_ips, "192.168.2.250") == (
        "x509: certificate is valid for 10.0.0.1, 127.0.0.1, not 192.168.2.250")
    assert go_hostname_error(with_ips, "other.example") == (
        "x509: certificate is valid for registry.example, not other.example")
    assert go_hostname_error(with_ips, "REGISTRY.example") is None
    assert go_hostname_error(with_ips, "127.0.0.1") is None
