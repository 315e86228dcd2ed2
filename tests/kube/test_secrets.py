"""Pull Secrets compared with what kubectl itself produces (offline, --dry-run=client)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from moorage.client.auth import Credentials
from moorage.kube.dockerconfig import encode_auth
from moorage.kube.keyring import resolve
from moorage.kube.secrets import (
    RegistryAuth,
    SecretError,
    auths_from_docker_config,
    dockerconfigjson,
    go_json,
    key_notes,
    key_warnings,
    pull_secret,
    render,
)

KUBECTL = shutil.which("kubectl")

CASES = [
    ("harbor-pull-secret", "192.168.2.250:443", "robot$test-1+ci", "s3cret", None, None),
    ("with-email", "reg.example:5000", "lidabai", 'p@ss"w<>&é\u2028\\', "ops@example.com", "apps"),
    ("hub", "https://index.docker.io/v1/", "me", "x", None, "default"),
]


def kubectl(*args: str, tmp_path: Path) -> str:
    if KUBECTL is None:
        pytest.fail("kubectl is required (preinstalled, or Debian package kubernetes-client)")
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    return subprocess.run([KUBECTL, *args], env=env, check=True, capture_output=True, text=True,
                          timeout=60).stdout


def kubectl_secret(tmp_path: Path, name: str, server: str, user: str, password: str,
                   email: str | None, namespace: str | None, output: str) -> str:
    args = ["create", "secret", "docker-registry", name, f"--docker-server={server}",
            f"--docker-username={user}", f"--docker-password={password}", "--dry-run=client", "-o", output]
    if email:
        args.append(f"--docker-email={email}")
    if namespace:
        args += ["-n", namespace]
    return kubectl(*args, tmp_path=tmp_path)


@pytest.mark.parametrize(("name", "server", "user", "password", "email", "namespace"), CASES)
def test_same_secret_as_kubectl(tmp_path: Path, name: str, server: str, user: str, password: str,
                                email: str | None, namespace: str | None) -> None:
    payload = dockerconfigjson([RegistryAuth(server, Credentials(user, password), email or "")])
    ours = pull_secret(name, payload, namespace)
    theirs_json = kubectl_secret(tmp_path, name, server, user, password, email, namespace, "json")
    theirs: dict[str, Any] = json.loads(theirs_json)
    assert base64.b64decode(ours["data"][".dockerconfigjson"]) == \
        base64.b64decode(theirs["data"][".dockerconfigjson"])
    assert ours == theirs
    assert render(ours, "json") == theirs_json
    theirs_yaml = kubectl_secret(tmp_path, name, server, user, password, email, namespace, "yaml")
    assert yaml.safe_load(render(ours, "yaml")) == yaml.safe_load(theirs_yaml)


def test_go_json_escapes_like_go() -> None:
    assert go_json({"a": "<&>\u2028\u2029é$"}) == '{"a":"\\u003c\\u0026\\u003e\\u2028\\u2029é$"}'


def test_secret_resolves_through_kubelet_keyring() -> None:
    payload = dockerconfigjson([RegistryAuth("192.168.2.250:443", Credentials("robot$test-1+ci", "pw"))])
    secret = pull_secret("harbor-pull-secret", payload, "apps")
    [match] = resolve("192.168.2.250:443/test-1/traefik:2.6.2", [secret]).matches
    assert (match.username, match.password, str(match.source)) == \
        ("robot$test-1+ci", "pw", "secret apps/harbor-pull-secret")


def test_from_docker_config_keeps_inline_auths_only() -> None:
    doc = {"auths": {"reg:5000": {"auth": encode_auth(Credentials("u", "p")), "email": "e@x"},
                     "token-only:1": {"identitytoken": "abc"}},
           "psFormat": "x"}
    auths = auths_from_docker_config(json.dumps(doc), "config.json")
    assert auths == [RegistryAuth("reg:5000", Credentials("u", "p"), "e@x")]
    decoded = json.loads(dockerconfigjson(auths))
    assert decoded == {"auths": {"reg:5000": {"username": "u", "password": "p", "email": "e@x",
                                              "auth": encode_auth(Credentials("u", "p"))}}}


@pytest.mark.parametrize(("doc", "message"), [
    ({"auths": {"reg:5000": {}}, "credsStore": "desktop"}, "credsStore 'desktop'"),
    ({"auths": {"ok:1": {"auth": encode_auth(Credentials("u", "p"))}}, "credHelpers": {"reg:5000": "pass"}},
     "credHelpers"),
    ({"auths": {}}, "no 'auths' entry with an 'auth'"),
    ({"auths": {"reg:5000": {"auth": base64.b64encode(b"nocolon").decode()}}}, "would reject"),
])
def test_from_docker_config_refuses_useless_files(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(SecretError, match=message):
        auths_from_docker_config(json.dumps(doc), "config.json")


def test_key_pitfall_warnings() -> None:
    assert key_warnings("192.168.2.250:443", ["192.168.2.250:443/test-1/traefik:2.6.2"]) == []
    [scheme, mismatch] = key_warnings("https://192.168.2.250/", ["192.168.2.250:443/test-1/traefik:2.6.2"])
    assert "'192.168.2.250'" in scheme
    assert "ports must be equal" in mismatch and "--server 192.168.2.250:443" in mismatch
    assert any("no port" in w for w in key_warnings("https://reg.example/"))
    [path] = key_warnings("reg.example/team-a", ["reg.example/team-b/app"])
    assert "not a prefix" in path
    assert "ports" in key_notes("192.168.2.250:443")[0]
    assert key_notes("reg.example") == []
    assert key_warnings("https://index.docker.io/v1/", ["nginx:1.25"]) == []
