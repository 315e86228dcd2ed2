"""``moorage login``/``logout`` and the shared auth flow, against real registries on loopback.

Basic: CNCF distribution with htpasswd (plain HTTP, and HTTPS with our own CA).
Bearer: CNCF distribution with ``auth.token`` trusting a tiny token server written here (JWT signed
with a key whose certificate is distribution's ``rootcertbundle``). When moorage's token service
exists, add it to ``REGISTRIES`` and the same tests run against it.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from moorage.client.auth import (
    Credentials,
    InvalidCredentials,
    RegistryUnreachable,
    authorize,
    parse_challenges,
    verify_login,
)
from moorage.kube.dockerconfig import encode_auth, get_credentials

SRC = Path(__file__).resolve().parents[2] / "src"
USER = "robot$test-1+ci"
PASSWORD = "Pa$$w0rd-`not`-a-shell 'x'"
SERVICE = "moorage-test-registry"
ISSUER = "moorage-test-token-issuer"


# ---- helpers ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes] | None = None,
               timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready within {timeout} s")
        time.sleep(0.05)


def key_and_cert(common_name: str, *, issuer: tuple[rsa.RSAPrivateKey, x509.Certificate] | None = None,
                 ca: bool = False, ips: tuple[str, ...] = ()) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer[1].subject if issuer else name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ips:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName("localhost")]),
            critical=False)
    cert = builder.sign(issuer[0] if issuer else key, hashes.SHA256())
    return key, cert


def write_pem(path: Path, key: rsa.RSAPrivateKey | None = None, cert: x509.Certificate | None = None) -> Path:
    data = b""
    if key is not None:
        data += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())
    if cert is not None:
        data += cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(data)
    return path


@dataclass
class Registry:
    host: str
    scheme: str
    username: str
    password: str
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


def start_distribution(tmp: Path, auth_yaml: str, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("docker-registry is required (Debian package docker-registry)")
    port = free_port()
    tls_yaml = f"\n  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}" if tls else ""
    config = tmp / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {tmp / 'data'}
http:
  addr: 127.0.0.1:{port}{tls_yaml}
{auth_yaml}
""")
    log = (tmp / "registry.log").open("wb")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=log)
    scheme = "https" if tls else "http"

    def ready() -> bool:
        try:
            return httpx.get(f"{scheme}://127.0.0.1:{port}/v2/", verify=False, timeout=1).status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, "docker-registry", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def htpasswd_file(tmp: Path) -> Path:
    exe = shutil.which("htpasswd")
    if exe is None:
        pytest.fail("htpasswd is required (Debian package apache2-utils)")
    line = subprocess.run([exe, "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True).stdout
    path = tmp / "htpasswd"
    path.write_text(line.strip() + "\n")
    return path


class TokenServer:
    """A minimal Docker token service: Basic credentials in, signed JWT out."""

    def __init__(self, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
        self.key, self.cert = key, cert
        self.requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                outer.requests.append(query)
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if url.path != "/token" or self.headers.get("Authorization") != expected:
                    self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                    return
                self._reply(200, {"token": outer.token(query.get("service", [""])[0]), "expires_in": 300})

            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def token(self, service: str) -> str:
        now = int(time.time())
        x5c = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]
        claims = {"iss": ISSUER, "sub": USER, "aud": service, "iat": now, "nbf": now - 5, "exp": now + 300,
                  "jti": uuid.uuid4().hex, "access": []}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": x5c})

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- registries under test ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp("basic")
    auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd_file(tmp)}"
    for host in start_distribution(tmp, auth):
        yield Registry(host, "http", USER, PASSWORD)


@pytest.fixture(scope="module")
def bearer_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp("bearer")
    key, cert = key_and_cert("token-signer")
    bundle = write_pem(tmp / "token-ca.pem", cert=cert)
    with TokenServer(key, cert) as tokens:
        auth = (f"auth:\n  token:\n    realm: {tokens.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
                f"    rootcertbundle: {bundle}")
        for host in start_distribution(tmp, auth):
            yield Registry(host, "http", USER, PASSWORD)


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp("tls")
    ca = key_and_cert("moorage test CA", ca=True)
    server_key, server_cert = key_and_cert("registry", issuer=ca, ips=("127.0.0.1",))
    tls = (write_pem(tmp / "server.crt", cert=server_cert), write_pem(tmp / "server.key", key=server_key))
    ca_file = write_pem(tmp / "ca.crt", cert=ca[1])
    auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd_file(tmp)}"
    for host in start_distribution(tmp, auth, tls):
        yield Registry(host, "https", USER, PASSWORD, ca_file)


@pytest.fixture(scope="module")
def no_ip_san_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The scenario's certificate: signed by a trusted CA but naming no IP address."""
    tmp = tmp_path_factory.mktemp("nosan")
    ca = key_and_cert("moorage test CA", ca=True)
    server_key, server_cert = key_and_cert("registry", issuer=ca)
    tls = (write_pem(tmp / "server.crt", cert=server_cert), write_pem(tmp / "server.key", key=server_key))
    ca_file = write_pem(tmp / "ca.crt", cert=ca[1])
    auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd_file(tmp)}"
    for host in start_distribution(tmp, auth, tls):
        yield Registry(host, "https", USER, PASSWORD, ca_file)


REGISTRIES = ["basic_registry", "bearer_registry"]


@pytest.fixture(params=REGISTRIES)
def registry(request: pytest.FixtureRequest) -> Registry:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def moorage(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": f"{SRC}:{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], input=stdin, capture_output=True,
                          text=True, env=full_env, timeout=120, check=False)


# ---- the auth flow ------------------------------------------------------------------------------

def test_challenge_parser() -> None:
    [bearer] = parse_challenges('Bearer realm="https://r/service/token",service="harbor-registry",'
                                'scope="repository:test-1/traefik:pull,push"')
    assert bearer.scheme == "bearer" and bearer.realm == "https://r/service/token"
    assert bearer.service == "harbor-registry" and bearer.scope == "repository:test-1/traefik:pull,push"
    basic, other, neg = parse_challenges(['BASIC Realm="a \\"quoted\\" realm", charset=UTF-8, '
                                          'bEaReR realm=tok , service = "s"', "Negotiate YWJj=="])
    assert (basic.scheme, basic.params) == ("basic", {"realm": 'a "quoted" realm', "charset": "UTF-8"})
    assert (other.scheme, other.params) == ("bearer", {"realm": "tok", "service": "s"})
    assert (neg.scheme, neg.token68) == ("negotiate", "YWJj==")
    assert parse_challenges("") == []
    assert parse_challenges('Bearer realm="unterminated') == []


def test_authorize_returns_header(registry: Registry) -> None:
    with httpx.Client(timeout=30) as client:
        header = authorize(client, registry.url, Credentials(USER, PASSWORD))
        assert header is not None
        assert client.get(f"{registry.url}/v2/", headers={"Authorization": header}).status_code == 200
        with pytest.raises(InvalidCredentials):
            authorize(client, registry.url, Credentials(USER, "wrong"))
        with pytest.raises(InvalidCredentials):
            authorize(client, registry.url, None)


def test_bearer_flow_uses_token(bearer_registry: Registry) -> None:
    header = verify_login(bearer_registry.host, Credentials(USER, PASSWORD), plain_http=True)
    assert header is not None and header.startswith("Bearer ")


def test_basic_flow_uses_basic(basic_registry: Registry) -> None:
    header = verify_login(basic_registry.host, Credentials(USER, PASSWORD), plain_http=True)
    assert header == Credentials(USER, PASSWORD).basic()


# ---- the CLI ------------------------------------------------------------------------------------

def test_login_saves_verified_credentials(registry: Registry, tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"psFormat": "table", "auths": {}}))
    done = moorage("login", registry.host, "-u", USER, "--password-stdin", "--plain-http",
                   stdin=PASSWORD + "\n", env=env)
    assert done.returncode == 0, done.stderr
    assert "Login Succeeded" in done.stdout
    path = tmp_path / "docker" / "config.json"
    data = json.loads(path.read_text())
    assert data == {"psFormat": "table", "auths": {registry.host: {"auth": encode_auth(Credentials(USER, PASSWORD))}}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    done = moorage("logout", registry.host, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(path.read_text()) == {"psFormat": "table", "auths": {}}


def test_wrong_password_saves_nothing(registry: Registry, tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    done = moorage("login", registry.host, "-u", USER, "-p", "wrong", "--plain-http", "--authfile", str(authfile))
    assert done.returncode == 1
    assert "rejected the credentials" in done.stderr and "Nothing was saved" in done.stderr
    assert not authfile.exists()


def test_login_to_podman_authfile(basic_registry: Registry, tmp_path: Path) -> None:
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "containers" / "auth.json")}
    done = moorage("login", basic_registry.host, "-u", USER, "--password-stdin", "--plain-http", "--podman",
                   stdin=PASSWORD, env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "containers" / "auth.json").read_text())
    assert base64.b64decode(data["auths"][basic_registry.host]["auth"]).decode() == f"{USER}:{PASSWORD}"


def test_tls_login_with_ca_file(tls_registry: Registry, tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    done = moorage("login", tls_registry.host, "-u", USER, "--password-stdin", "--authfile", str(authfile),
                   stdin=PASSWORD)
    assert done.returncode == 1 and "--ca-file" in done.stderr and not authfile.exists()
    done = moorage("login", tls_registry.host, "-u", USER, "--password-stdin", "--authfile", str(authfile),
                   "--ca-file", str(tls_registry.ca_file), stdin=PASSWORD)
    assert done.returncode == 0, done.stderr
    assert tls_registry.host in json.loads(authfile.read_text())["auths"]


def test_missing_ip_san_is_named(no_ip_san_registry: Registry) -> None:
    with pytest.raises(RegistryUnreachable, match="subjectAltName"):
        verify_login(no_ip_san_registry.host, Credentials(USER, PASSWORD),
                     ca_file=str(no_ip_san_registry.ca_file))


def test_plain_http_hint(basic_registry: Registry) -> None:
    with pytest.raises(RegistryUnreachable, match="--plain-http"):
        verify_login(basic_registry.host, Credentials(USER, PASSWORD))


def test_unreachable_registry(tmp_path: Path) -> None:
    done = moorage("login", f"127.0.0.1:{free_port()}", "-u", "u", "-p", "p", "--plain-http",
                   "--authfile", str(tmp_path / "a.json"))
    assert done.returncode == 1 and "cannot reach" in done.stderr


def test_login_through_credential_helper(basic_registry: Registry, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-jsonfile"
    helper.write_text(f"""#!{sys.executable}
import json, os, sys
p = os.environ["HELPER_STORE"]
store = json.load(open(p)) if os.path.exists(p) else {{}}
data = sys.stdin.read()
if sys.argv[1] == "store":
    req = json.loads(data); store[req["ServerURL"]] = [req["Username"], req["Secret"]]
elif sys.argv[1] == "get":
    if data not in store:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps({{"ServerURL": data, "Username": store[data][0], "Secret": store[data][1]}}))
elif sys.argv[1] == "erase":
    store.pop(data, None)
json.dump(store, open(p, "w"))
""")
    helper.chmod(0o755)
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credsStore": "jsonfile"}))
    env = {"DOCKER_CONFIG": str(config.parent), "PATH": f"{bindir}:{os.environ['PATH']}",
           "HELPER_STORE": str(tmp_path / "store.json")}
    done = moorage("login", basic_registry.host, "-u", USER, "--password-stdin", "--plain-http",
                   stdin=PASSWORD, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(config.read_text()) == {"credsStore": "jsonfile", "auths": {basic_registry.host: {}}}
    assert json.loads((tmp_path / "store.json").read_text()) == {basic_registry.host: [USER, PASSWORD]}
    done = moorage("logout", basic_registry.host, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "store.json").read_text()) == {}


def test_files_interoperate_with_skopeo(basic_registry: Registry, tmp_path: Path) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.fail("skopeo is required (Debian package skopeo)")
    ours = tmp_path / "ours.json"
    done = moorage("login", basic_registry.host, "-u", USER, "--password-stdin", "--plain-http",
                   "--authfile", str(ours), stdin=PASSWORD)
    assert done.returncode == 0, done.stderr
    got = subprocess.run([skopeo, "login", "--get-login", "--authfile", str(ours), basic_registry.host],
                         capture_output=True, text=True, timeout=60, check=False)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == USER

    theirs = tmp_path / "theirs.json"
    done_s = subprocess.run([skopeo, "login", "--tls-verify=false", "--authfile", str(theirs), "-u", USER,
                             "--password-stdin", basic_registry.host], input=PASSWORD, capture_output=True,
                            text=True, timeout=60, check=False)
    assert done_s.returncode == 0, done_s.stderr
    assert get_credentials(theirs, basic_registry.host) == Credentials(USER, PASSWORD)
    done = moorage("logout", basic_registry.host, "--authfile", str(theirs))
    assert done.returncode == 0, done.stderr
    assert basic_registry.host not in json.loads(theirs.read_text()).get("auths", {})
