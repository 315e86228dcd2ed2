"""docker config.json / podman auth.json: paths, atomic 0600 writes, kept keys, real credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from moorage.client.auth import Credentials
from moorage.kube.dockerconfig import (
    DOCKER_HUB_KEY,
    AuthFile,
    CredentialHelper,
    DockerConfigError,
    decode_auth,
    docker_config_path,
    encode_auth,
    get_credentials,
    podman_auth_path,
    remove_credentials,
    server_key,
    store_credentials,
)

ROBOT = Credentials("robot$test-1+ci", "S3cr3t$HOME`id`'\"\\ pass")

# A docker-credential-<name> helper speaking the real protocol, keeping its store in a JSON file.
HELPER = """#!{python}
import json, os, sys
store_path = os.environ["FAKE_HELPER_STORE"]
try:
    store = json.load(open(store_path))
except FileNotFoundError:
    store = {{}}
action = sys.argv[1]
data = sys.stdin.read()
if action == "store":
    req = json.loads(data)
    store[req["ServerURL"]] = {{"Username": req["Username"], "Secret": req["Secret"]}}
elif action == "get":
    if data not in store:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": data, **store[data]}}))
elif action == "erase":
    if data not in store:
        print("credentials not found in native keychain")
        sys.exit(1)
    del store[data]
elif action == "list":
    print(json.dumps({{k: v["Username"] for k, v in store.items()}}))
json.dump(store, open(store_path, "w"))
"""


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "docker-credential-fake"
    exe.write_text(HELPER.format(python=sys.executable))
    exe.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ.get('PATH', '')}", "FAKE_HELPER_STORE": str(tmp_path / "store.json")}


def test_paths_follow_env(tmp_path: Path) -> None:
    assert docker_config_path({"DOCKER_CONFIG": "/x"}) == Path("/x/config.json")
    assert docker_config_path({"HOME": "/home/u"}) == Path("/home/u/.docker/config.json")
    assert podman_auth_path({"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/u"}, "/f") == Path("/f")
    assert podman_auth_path({"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/u"}) == Path("/a.json")
    assert podman_auth_path({"XDG_RUNTIME_DIR": "/run/u"}) == Path("/run/u/containers/auth.json")
    assert podman_auth_path({}) == Path(f"/run/containers/{os.getuid()}/auth.json")


@pytest.mark.parametrize(("registry", "docker", "podman"), [
    ("192.168.2.250:443", "192.168.2.250:443", "192.168.2.250:443"),
    ("https://192.168.2.250:443/", "192.168.2.250:443", "192.168.2.250:443"),
    ("reg.example", "reg.example", "reg.example"),
    ("docker.io", DOCKER_HUB_KEY, "docker.io"),
    ("https://index.docker.io/v1/", DOCKER_HUB_KEY, "docker.io"),
])
def test_server_key(registry: str, docker: str, podman: str) -> None:
    assert server_key(registry, "docker") == docker
    assert server_key(registry, "podman") == podman


def test_auth_is_single_line_and_round_trips() -> None:
    long = Credentials("robot$" + "x" * 200, "y" * 300)
    encoded = encode_auth(long)
    assert "\n" not in encoded and base64.b64decode(encoded) == f"{long.username}:{long.password}".encode()
    assert decode_auth(encoded) == long
    assert decode_auth(encode_auth(ROBOT)) == ROBOT
    with pytest.raises(DockerConfigError):
        decode_auth(base64.b64encode(b"no-colon").decode())


def test_store_keeps_other_keys_and_writes_0600(tmp_path: Path) -> None:
    path = tmp_path / ".docker" / "config.json"
    path.parent.mkdir()
    original = {"auths": {"other:5000": {"auth": encode_auth(Credentials("o", "p"))}},
                "HttpHeaders": {"User-Agent": "x"}, "psFormat": "table {{.ID}}", "experimental": "enabled",
                "proxies": {"default": {"noProxy": "*.local"}}}
    path.write_text(json.dumps(original))
    path.chmod(0o644)
    assert store_credentials(path, "192.168.2.250:443", ROBOT) == "file"
    data = json.loads(path.read_text())
    assert data["auths"]["192.168.2.250:443"] == {"auth": encode_auth(ROBOT)}
    for key in ("HttpHeaders", "psFormat", "experimental", "proxies"):
        assert data[key] == original[key]
    assert data["auths"]["other:5000"] == original["auths"]["other:5000"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name != "config.json"], "temp file left behind"
    assert get_credentials(path, "192.168.2.250:443") == ROBOT


def test_new_file_and_remove_all_spellings(tmp_path: Path) -> None:
    path = tmp_path / "new" / "auth.json"
    store_credentials(path, "reg:5000", ROBOT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = AuthFile.load(path).data
    data["auths"]["https://reg:5000"] = {"auth": "eDp5"}
    AuthFile(path, data).save()
    assert remove_credentials(path, "reg:5000")
    assert json.loads(path.read_text())["auths"] == {}
    assert not remove_credentials(path, "reg:5000")


def test_invalid_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(DockerConfigError, match="not valid JSON"):
        store_credentials(path, "reg:5000", ROBOT)
    assert path.read_text() == "{not json"


def test_creds_store_helper_round_trip(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "fake", "auths": {}}))
    assert store_credentials(path, "192.168.2.250:443", ROBOT, helper_env) == "fake"
    data = json.loads(path.read_text())
    assert data["auths"]["192.168.2.250:443"] == {}  # docker keeps an empty marker entry
    assert data["credsStore"] == "fake"
    store = json.loads(Path(helper_env["FAKE_HELPER_STORE"]).read_text())
    assert store == {"192.168.2.250:443": {"Username": ROBOT.username, "Secret": ROBOT.password}}
    assert get_credentials(path, "192.168.2.250:443", helper_env) == ROBOT
    assert remove_credentials(path, "192.168.2.250:443", helper_env)
    assert json.loads(Path(helper_env["FAKE_HELPER_STORE"]).read_text()) == {}
    assert "192.168.2.250:443" not in json.loads(path.read_text())["auths"]


def test_cred_helpers_win_per_server(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credHelpers": {"reg:5000": "fake"}}))
    assert store_credentials(path, "reg:5000", ROBOT, helper_env) == "fake"
    assert store_credentials(path, "plain:5000", ROBOT, helper_env) == "file"
    data = json.loads(path.read_text())
    assert "auth" not in data["auths"]["reg:5000"]
    assert data["auths"]["plain:5000"]["auth"] == encode_auth(ROBOT)
    assert CredentialHelper("fake", helper_env).get("reg:5000") == ROBOT
    assert CredentialHelper("fake", helper_env).get("nope:1") is None


def test_missing_helper_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "doesnotexist"}))
    with pytest.raises(DockerConfigError, match="docker-credential-doesnotexist"):
        store_credentials(path, "reg:5000", ROBOT, {"PATH": str(tmp_path)})
