"""``explain`` names the real cause of a pull failure, checked against the real binaries' own words.

Two kinds of evidence:

* ``tests/node/messages/*.txt`` — one message per file, with a header saying the expected cause and
  whether it was captured live from a real binary or written by hand (kubelet/docker/Harbor texts
  that need a cluster or the internet to reproduce). Every fixture must be diagnosed as its header says.
* ``test_live_capture`` — starts CNCF distribution (``docker-registry``) on 127.0.0.1 in each broken
  set-up (plain HTTP, certificates without the IP SAN, from an unknown CA, expired, CN-only, htpasswd
  auth, missing tag, closed port), pulls with skopeo, podman and containerd's ``ctr``, and asserts
  that ``explain`` names the right cause of what they print *today*, and that the stored fixture still
  matches it. So the catalogue cannot drift from the real programs.

``python tests/node/test_explain.py --record`` rewrites the captured fixtures from a live run.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.node.causes import BY_ID, CAUSES
from moorage.node.explain import NOT_RECOGNISED, explain

MESSAGES = Path(__file__).parent / "messages"


# ---------------------------------------------------------------- fixture files


@dataclass(frozen=True)
class Fixture:
    path: Path
    cause: str
    origin: str  # "captured" or "hand-written"
    source: str
    message: str


def load_fixture(path: Path) -> Fixture:
    header: dict[str, str] = {}
    lines = path.read_text().splitlines()
    while lines and lines[0].startswith("# "):
        key, _, value = lines.pop(0)[2:].partition(":")
        header[key.strip()] = value.strip()
    return Fixture(path, header["cause"], header["origin"], header.get("source", ""),
                   "\n".join(lines).strip())


def all_fixtures() -> list[Fixture]:
    return [load_fixture(p) for p in sorted(MESSAGES.glob("*.txt"))]


@pytest.mark.parametrize("fixture", all_fixtures(), ids=lambda f: f.path.stem)
def test_fixture_is_diagnosed(fixture: Fixture) -> None:
    diagnoses = explain(fixture.message)
    assert diagnoses[0].cause == fixture.cause, [d.cause for d in diagnoses]
    assert fixture.origin in {"captured", "hand-written"}


def test_fixtures_cover_the_catalogue() -> None:
    covered = {f.cause for f in all_fixtures()}
    assert covered >= {c.id for c in CAUSES} - {"tls-other", "connection-dropped"}
    captured = {f.cause for f in all_fixtures() if f.origin == "captured"}
    assert captured >= {"http-response-to-https-client", "plain-http-client-to-https-server",
                        "tls-missing-ip-san", "tls-unknown-authority", "connection-refused",
                        "unauthorized", "not-found"}


# ---------------------------------------------------------------- the seed scenario and its relatives

SEED_EVENT = (
    'Failed to pull image "192.168.2.250:443/test-1/traefik:2.6.2": rpc error: code = Unknown desc = '
    'failed to pull and unpack image "192.168.2.250:443/test-1/traefik:2.6.2": failed to resolve reference '
    '"192.168.2.250:443/test-1/traefik:2.6.2": failed to do request: Head '
    '"https://192.168.2.250:443/v2/test-1/traefik/manifests/2.6.2": x509: cannot validate certificate for '
    "192.168.2.250 because it doesn't contain any IP SANs"
)


def test_seed_event_names_the_missing_ip_san_not_docker_login() -> None:
    first = explain(SEED_EVENT)[0]
    assert first.cause == "tls-missing-ip-san"
    assert "192.168.2.250" in first.summary
    assert any("moorage tls renew --ip 192.168.2.250" in step for step in first.fix)
    assert any("moorage node-config --runtime containerd --apply" in step for step in first.fix)
    assert "192.168.2.250:443" in " ".join(first.fix)
    assert "imagePullSecret" in first.why and "docker login" in first.why
    assert first.facts["image"] == "192.168.2.250:443/test-1/traefik:2.6.2"
    assert first.facts["registry"] == "192.168.2.250:443"
    assert first.facts["runtime"] == "containerd"
    assert "/etc/containerd/certs.d/192.168.2.250:443/hosts.toml" in first.why


def test_seed_docker_login_output_picks_docker_trust_store() -> None:
    message = ("Error response from daemon: Get x509: cannot validate certificate for 192.168.2.250 "
               "because it doesn't contain any IP SANs")
    first = explain(message)[0]
    assert first.cause == "tls-missing-ip-san"
    assert first.facts["runtime"] == "docker"
    assert "/etc/docker/certs.d/" in first.why
    assert "--runtime docker" in " ".join(first.fix)


def test_backoff_alone_points_at_the_earlier_event() -> None:
    diagnoses = explain('Back-off pulling image "192.168.2.250:443/test-1/traefik:2.6.2"')
    assert [d.cause for d in diagnoses] == ["image-pull-backoff"]
    assert "Failed to pull image" in diagnoses[0].why
    assert "moorage doctor 192.168.2.250:443/test-1/traefik:2.6.2" in " ".join(diagnoses[0].fix)


def test_wrapper_dropped_when_the_runtime_error_is_there() -> None:
    causes = [d.cause for d in explain(SEED_EVENT + "\nBack-off pulling image \"x\"\nErrImagePull")]
    assert causes == ["tls-missing-ip-san"]


def test_docker_pull_access_denied_lists_denied_then_not_found() -> None:
    message = ('Error response from daemon: pull access denied for 192.168.2.250:443/test-1/traefik, '
               "repository does not exist or may require 'docker login': denied: requested access to the "
               "resource is denied")
    diagnoses = explain(message)
    assert [d.cause for d in diagnoses] == ["denied", "not-found"]
    assert "moorage pull-secret test-1 --apply" in " ".join(diagnoses[0].fix)


def test_unknown_text_is_not_recognised_with_next_steps() -> None:
    diagnoses = explain("the quick brown fox")
    assert len(diagnoses) == 1 and diagnoses[0].cause == NOT_RECOGNISED
    assert not diagnoses[0].recognised
    assert "moorage doctor" in " ".join(diagnoses[0].fix)


def test_logrus_escaped_quotes_are_read() -> None:
    message = ('time="2026-11-25T09:07:28Z" level=fatal msg="Error parsing image name '
               '\\"docker://10.1.2.3:5000/p/r:1\\": pinging container registry 10.1.2.3:5000: '
               'Get \\"https://10.1.2.3:5000/v2/\\": x509: certificate signed by unknown authority"')
    first = explain(message)[0]
    assert first.cause == "tls-unknown-authority"
    assert first.facts["registry"] == "10.1.2.3:5000"
    assert first.facts["runtime"] == "crio"
    assert "moorage doctor 10.1.2.3:5000/p/r:1" in " ".join(first.fix)


def test_facts_the_message_lacks_render_as_placeholders() -> None:
    first = explain("x509: certificate signed by unknown authority")[0]
    assert first.cause == "tls-unknown-authority"
    assert "<registry>" in " ".join(first.fix) and "<image>" in " ".join(first.fix)
    assert "{" not in first.why + first.summary + " ".join(first.fix)
    assert first.facts == {}


def test_catalogue_ids_are_unique() -> None:
    assert len(BY_ID) == len(CAUSES)


# ---------------------------------------------------------------- live capture against real binaries


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found: install the Debian package {package} (apt-get install -y {package})")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {deadline_s}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Certificates:
    """A private CA and server certificates with exactly the flaws the TLS causes are about."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.now = datetime.datetime.now(datetime.UTC)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moorage test CA")])
        ca = (x509.CertificateBuilder().subject_name(self.ca_name).issuer_name(self.ca_name)
              .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(self.now - datetime.timedelta(days=1))
              .not_valid_after(self.now + datetime.timedelta(days=10))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(self.ca_key, hashes.SHA256()))
        self.ca_dir = directory / "ca"
        self.ca_dir.mkdir(exist_ok=True)
        self.ca_file = self.ca_dir / "ca.crt"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, sans: list[x509.GeneralName] | None, common_name: str = "registry.example",
              expired: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        start = self.now - datetime.timedelta(days=5 if expired else 1)
        end = self.now - datetime.timedelta(days=1) if expired else self.now + datetime.timedelta(days=5)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(self.ca_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


LOOPBACK = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
CERTS: dict[str, dict[str, object]] = {
    "dns-only": {"sans": [x509.DNSName("registry.example")]},
    "good": {"sans": LOOPBACK},
    "other-ip": {"sans": [x509.IPAddress(ipaddress.ip_address("127.0.0.9"))]},
    "expired": {"sans": LOOPBACK, "expired": True},
    "cn-only": {"sans": None, "common_name": "127.0.0.1"},
}


class Lab:
    """Registries on 127.0.0.1, one per broken set-up, and a private containerd, all stopped by PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ports: dict[str, int] = {}
        self.certs = Certificates(root / "certs")
        # podman refuses a runroot longer than 50 characters; pytest's tmp paths are longer.
        self.podman_dir = Path(tempfile.mkdtemp(prefix="moorage-podman-"))

    def registry(self, name: str, cert: str | None = None, htpasswd: bool = False) -> int:
        _require("docker-registry", "docker-registry")
        port = free_port()
        directory = self.root / name
        (directory / "data").mkdir(parents=True)
        config = [
            "version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
            f"    rootdirectory: {directory / 'data'}", "http:", f"  addr: 127.0.0.1:{port}",
        ]
        if cert is not None:
            cert_path, key_path = self.certs.issue(cert, **CERTS[cert])  # type: ignore[arg-type]
            config += ["  tls:", f"    certificate: {cert_path}", f"    key: {key_path}"]
        if htpasswd:
            _require("htpasswd", "apache2-utils")
            subprocess.run(["htpasswd", "-Bbc", str(directory / "htpasswd"), "alice", "secret"],
                           check=True, capture_output=True)
            config += ["auth:", "  htpasswd:", "    realm: basic-realm", f"    path: {directory / 'htpasswd'}"]
        (directory / "config.yml").write_text("\n".join(config) + "\n")
        process = subprocess.Popen(["docker-registry", "serve", str(directory / "config.yml")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        wait_for_port(port, process)
        self.ports[name] = port
        return port

    def containerd(self) -> Path:
        _require("containerd", "containerd")
        socket_path = self.root / "ctd" / "ctd.sock"
        socket_path.parent.mkdir()
        process = subprocess.Popen(
            ["containerd", "--root", str(self.root / "ctd" / "root"), "--state",
             str(self.root / "ctd" / "state"), "--address", str(socket_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("private containerd did not start")
            time.sleep(0.05)
        return socket_path

    def hosts_dir(self, port: int, ca: bool) -> Path:
        """A containerd ``hosts.toml`` that makes ctr use HTTPS for 127.0.0.1:PORT (default is HTTP)."""
        directory = self.root / f"hosts-{port}-{'ca' if ca else 'noca'}"
        host_dir = directory / f"127.0.0.1:{port}"
        host_dir.mkdir(parents=True)
        lines = [f'server = "https://127.0.0.1:{port}"', "", f'[host."https://127.0.0.1:{port}"]',
                 '  capabilities = ["pull", "resolve"]']
        if ca:
            lines.append(f'  ca = "{self.certs.ca_file}"')
        (host_dir / "hosts.toml").write_text("\n".join(lines) + "\n")
        return directory

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        shutil.rmtree(self.podman_dir, ignore_errors=True)


@dataclass(frozen=True)
class Case:
    name: str  # fixture file stem
    cause: str
    tool: str  # skopeo | podman | ctr
    registry: str | None  # a key of REGISTRIES, or None for a closed port
    args: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    ctr_https: bool = False
    ctr_ca: bool = False


REGISTRIES: dict[str, dict[str, object]] = {
    "plain": {}, "auth": {"htpasswd": True},
    **{f"tls-{name}": {"cert": name} for name in CERTS},
}

CASES = (
    Case("skopeo-http-response-to-https-client", "http-response-to-https-client", "skopeo", "plain"),
    Case("skopeo-tls-missing-ip-san", "tls-missing-ip-san", "skopeo", "tls-dns-only", ("--cert-dir", "CA")),
    Case("skopeo-tls-ip-san-other-ip", "tls-missing-ip-san", "skopeo", "tls-other-ip", ("--cert-dir", "CA")),
    Case("skopeo-tls-missing-dns-san", "tls-missing-dns-san", "skopeo", "tls-dns-only", ("--cert-dir", "CA"),
         host="localhost"),
    Case("skopeo-tls-no-dns-names", "tls-missing-dns-san", "skopeo", "tls-good", ("--cert-dir", "CA"),
         host="localhost"),
    Case("skopeo-tls-unknown-authority", "tls-unknown-authority", "skopeo", "tls-good"),
    Case("skopeo-tls-expired", "tls-expired", "skopeo", "tls-expired", ("--cert-dir", "CA")),
    Case("skopeo-tls-legacy-common-name", "tls-legacy-common-name", "skopeo", "tls-cn-only", ("--cert-dir", "CA")),
    Case("skopeo-connection-refused", "connection-refused", "skopeo", None),
    Case("skopeo-unauthorized-no-creds", "unauthorized", "skopeo", "auth", ("--tls-verify=false",)),
    Case("skopeo-unauthorized-wrong-creds", "unauthorized", "skopeo", "auth",
         ("--tls-verify=false", "--creds", "alice:wrong")),
    Case("skopeo-manifest-unknown", "not-found", "skopeo", "auth",
         ("--tls-verify=false", "--creds", "alice:secret")),
    Case("podman-tls-missing-ip-san", "tls-missing-ip-san", "podman", "tls-dns-only"),
    Case("podman-unauthorized", "unauthorized", "podman", "auth", ("--tls-verify=false", "--creds", "alice:x")),
    Case("ctr-http-response-to-https-client", "http-response-to-https-client", "ctr", "plain", ctr_https=True),
    Case("ctr-tls-missing-ip-san", "tls-missing-ip-san", "ctr", "tls-dns-only", ctr_https=True, ctr_ca=True),
    Case("ctr-tls-unknown-authority", "tls-unknown-authority", "ctr", "tls-good", ctr_https=True),
    Case("ctr-tls-expired", "tls-expired", "ctr", "tls-expired", ctr_https=True, ctr_ca=True),
    Case("ctr-tls-legacy-common-name", "tls-legacy-common-name", "ctr", "tls-cn-only", ctr_https=True,
         ctr_ca=True),
    Case("ctr-plain-http-to-https-server", "plain-http-client-to-https-server", "ctr", "tls-good",
         ("--plain-http",)),
    Case("ctr-connection-refused", "connection-refused", "ctr", None),
    Case("ctr-unauthorized", "unauthorized", "ctr", "auth", ("--plain-http", "--user", "alice:wrong")),
    Case("ctr-not-found", "not-found", "ctr", "auth", ("--plain-http", "--user", "alice:secret")),
)

TOOL_VERSIONS = {"skopeo": ["skopeo", "--version"], "podman": ["podman", "--version"],
                 "ctr": ["ctr", "--version"]}
PACKAGES = {"skopeo": "skopeo", "podman": "podman", "ctr": "containerd"}


def capture(lab: Lab, case: Case, ctd_socket: Path) -> str:
    """Run the real client and return its final error line, as an operator would copy it."""
    _require(case.tool, PACKAGES[case.tool])
    port = lab.ports[case.registry] if case.registry else free_port()  # a port nobody listens on
    image = f"{case.host}:{port}/lib/img:1"
    args = [str(lab.certs.ca_dir) if a == "CA" else a for a in case.args]
    if case.tool == "skopeo":
        command = ["skopeo", "inspect", *args, f"docker://{image}"]
    elif case.tool == "podman":
        store = lab.podman_dir
        command = ["podman", "--root", str(store / "root"), "--runroot", str(store / "run"),
                   "--storage-driver", "vfs", "pull", *args, image]
    else:
        command = ["ctr", "--address", str(ctd_socket), "images", "pull", *args]
        if case.ctr_https:
            command += ["--hosts-dir", str(lab.hosts_dir(port, case.ctr_ca))]
        command.append(image)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HOME": str(lab.root / "home")})
    assert result.returncode != 0, f"{command} unexpectedly succeeded"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, f"{command} printed nothing on stderr"
    return lines[-1]


def normalise(message: str) -> str:
    """Drop what differs between runs: ports, timestamps and temporary paths."""
    message = re.sub(r"(127\.0\.0\.1|localhost):\d+", r"\1:PORT", message)
    message = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z", "TIME", message)
    return re.sub(r"/tmp/\S+?(?=[\s\"])", "TMP", message)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("explain-lab"))
    try:
        for name, options in REGISTRIES.items():
            lab.registry(name, **options)  # type: ignore[arg-type]
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def ctd_socket(lab: Lab) -> Path:
    return lab.containerd()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_live_capture(case: Case, lab: Lab, ctd_socket: Path) -> None:
    message = capture(lab, case, ctd_socket)
    diagnoses = explain(message)
    assert diagnoses[0].cause == case.cause, (message, [d.cause for d in diagnoses])
    stored = load_fixture(MESSAGES / f"{case.name}.txt")
    assert stored.origin == "captured" and stored.cause == case.cause
    assert normalise(stored.message) == normalise(message), "fixture drifted: re-run with --record"


def record() -> None:
    """Capture every case live and write it as a fixture (``python tests/node/test_explain.py --record``)."""
    MESSAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp))
        try:
            for name, options in REGISTRIES.items():
                lab.registry(name, **options)  # type: ignore[arg-type]
            socket_path = lab.containerd()
            for case in CASES:
                message = capture(lab, case, socket_path)
                version = subprocess.run(TOOL_VERSIONS[case.tool], capture_output=True,
                                         text=True).stdout.strip()
                (MESSAGES / f"{case.name}.txt").write_text(
                    f"# cause: {case.cause}\n# origin: captured\n"
                    f"# source: {version}, against CNCF distribution 2.8.2 on 127.0.0.1 "
                    f"(registry set-up: {case.registry or 'closed port'})\n{message}\n")
                print(case.name, "->", explain(message)[0].cause)
        finally:
            lab.close()


if __name__ == "__main__" and "--record" in sys.argv:
    record()
