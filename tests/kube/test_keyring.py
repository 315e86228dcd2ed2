"""The kubelet keyring rules (REFERENCE section 5 "Keyring matching"), one test per rule."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from moorage.kube.keyring import (
    BasicKeyring,
    CredentialSource,
    KeyringError,
    default_node_config_paths,
    effective_pull_secrets,
    go_path_match,
    node_config_entries,
    normalise_image,
    normalise_key,
    parse_dockerconfigjson,
    provider_entries,
    resolve,
    urls_match,
)

pytestmark = pytest.mark.fast


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def config(**servers: tuple[str, str]) -> dict[str, Any]:
    return {"auths": {k: {"auth": auth(*v)} for k, v in servers.items()}}


def docker_secret(name: str, auths: dict[str, tuple[str, str]], namespace: str = "apps",
                  legacy: bool = False) -> dict[str, Any]:
    body = {k: {"auth": auth(*v)} for k, v in auths.items()}
    doc, stype, key = ((body, "kubernetes.io/dockercfg", ".dockercfg") if legacy else
                       ({"auths": body}, "kubernetes.io/dockerconfigjson", ".dockerconfigjson"))
    return {"metadata": {"name": name, "namespace": namespace}, "type": stype,
            "data": {key: base64.b64encode(json.dumps(doc).encode()).decode()}}


def ring(doc: dict[str, Any], name: str = "f") -> BasicKeyring:
    keyring = BasicKeyring()
    keyring.add(parse_dockerconfigjson(json.dumps(doc), CredentialSource("file", name)))
    return keyring


def users(matches: list[Any]) -> list[str]:
    return [m.username for m in matches]


# Rule 1-2: scheme stripping and /v1/, /v2/ trimming.
@pytest.mark.parametrize(("raw", "key"), [
    ("192.168.2.250:443", "192.168.2.250:443"),
    ("https://192.168.2.250:443", "192.168.2.250:443"),
    ("http://reg.local:5000/", "reg.local:5000"),
    ("https://index.docker.io/v1/", "index.docker.io"),
    ("https://reg.local/v2/", "reg.local"),
    ("https://reg.local/v2/team/app", "reg.local/team/app"),
    ("reg.local/team", "reg.local/team"),
    ("reg.local:notaport", None),
])
def test_key_normalisation(raw: str, key: str | None) -> None:
    assert normalise_key(raw) == key


def test_docker_hub_v1_key_serves_docker_hub_images() -> None:
    keyring = ring(config(**{"https://index.docker.io/v1/": ("hub", "pw")}))
    for image in ("nginx", "library/nginx:1.25", "docker.io/library/nginx", "index.docker.io/x/y"):
        matches = keyring.lookup(normalise_image(image))
        assert users(matches) == ["hub"], image
        assert matches[0].via_default_registry
    assert keyring.lookup(normalise_image("quay.io/x/y")) == []


# Rule 3: dedup + reverse sort → longest path first.
def test_reverse_sorted_quay_coreos_before_quay() -> None:
    keyring = ring(config(**{"quay.io": ("plain", "a"), "quay.io/coreos": ("coreos", "b"),
                             "https://quay.io": ("dup", "c")}))
    assert keyring.index == ["quay.io/coreos", "quay.io"]
    assert users(keyring.lookup("quay.io/coreos/etcd")) == ["coreos", "plain", "dup"]
    assert users(keyring.lookup("quay.io/other/etcd")) == ["plain", "dup"]


# Rule 4: ports must be equal.
def test_ports_must_be_equal() -> None:
    assert not urls_match("10.0.0.5:443", "10.0.0.5/app/x")
    assert not urls_match("10.0.0.5", "10.0.0.5:443/app/x")
    assert urls_match("10.0.0.5:443", "10.0.0.5:443/app/x")
    assert not urls_match("10.0.0.5:443", "10.0.0.5:5000/app/x")


# Rule 4: same number of labels, per-label glob.
def test_glob_needs_same_label_count() -> None:
    assert urls_match("*.example.com", "reg.example.com/a")
    assert not urls_match("*.example.com", "example.com/a")
    assert not urls_match("*.example.com", "a.b.example.com/a")
    assert urls_match("k8s.*.io", "k8s.gcr.io/pause")
    assert urls_match("app*.k8s.io", "app1.k8s.io/x")
    assert not urls_match("app*.k8s.io", "web.k8s.io/x")


def test_go_filepath_match_semantics() -> None:
    assert go_path_match("re?", "reg")
    assert go_path_match("[a-c]x", "bx")
    assert not go_path_match("[^a-c]x", "bx")
    assert go_path_match("\\*", "*")
    assert not go_path_match("\\*", "a")
    assert not go_path_match("[", "[")  # malformed pattern matches nothing, as ErrBadPattern does
    assert not go_path_match("[]a]", "a")


# Rule 4: key path is a plain string prefix of the image path.
def test_path_is_string_prefix() -> None:
    assert urls_match("host/foo", "host/foobar/app")
    assert urls_match("host/foo", "host/foo/app")
    assert not urls_match("host/foo", "host/bar/app")


# Rule 5: every match is returned, in index order.
def test_all_matches_returned_in_order() -> None:
    keyring = ring(config(**{"*.corp.io": ("wild", "1"), "reg.corp.io": ("exact", "2"),
                             "reg.corp.io/team": ("team", "3")}))
    assert users(keyring.lookup("reg.corp.io/team/app")) == ["team", "exact", "wild"]


# Rule 6: Docker Hub fallback only when nothing else matches.
def test_default_registry_fallback_only_without_match() -> None:
    keyring = ring(config(**{"index.docker.io": ("hub", "a"), "docker.io": ("short", "b")}))
    assert users(keyring.lookup(normalise_image("nginx"))) == ["short"]
    assert users(ring(config(**{"index.docker.io": ("hub", "a")})).lookup("myhost.io/x")) == []


# Rule 7: pull secrets before the node keyring; secrets merged and sorted together.
def test_secrets_before_node_keyring(tmp_path: Path) -> None:
    node = tmp_path / "config.json"
    node.write_text(json.dumps(config(**{"192.168.2.250:443": ("node-user", "n")})))
    secrets = [docker_secret("first", {"192.168.2.250:443": ("robot$test-1+ci", "s1")}),
               docker_secret("second", {"192.168.2.250:443/test-1": ("lidabai", "s2")})]
    result = resolve("192.168.2.250:443/test-1/traefik:2.6.2", secrets, node_config_entries([node]))
    assert [(m.username, str(m.source)) for m in result.matches] == [
        ("lidabai", "secret apps/second"), ("robot$test-1+ci", "secret apps/first"),
        ("node-user", f"file {node}")]
    assert "robot$test-1+ci" in result.matches[1].describe()


def test_legacy_dockercfg_secret_and_wrong_type_note() -> None:
    legacy = docker_secret("old", {"https://reg.io": ("legacy", "x")}, legacy=True)
    opaque = {"metadata": {"name": "opaque", "namespace": "apps"}, "type": "Opaque",
              "data": {".dockerconfigjson": docker_secret("x", {"reg.io": ("u", "p")})["data"][".dockerconfigjson"]}}
    result = resolve("reg.io/a/b", [legacy, opaque])
    assert users(result.matches) == ["legacy"]
    assert any("opaque" in n and "Opaque" in n for n in result.notes)


def test_broken_auth_fails_whole_secret() -> None:
    bad = {"metadata": {"name": "bad"}, "type": "kubernetes.io/dockerconfigjson",
           "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{"r.io":{"auth":"bm9jb2xvbg=="}}}').decode()}}
    with pytest.raises(KeyringError, match="default/bad"):
        resolve("r.io/a", [bad])


def test_auth_field_overrides_username_and_unpadded_base64() -> None:
    unpadded = base64.b64encode(b"u:pw").decode().rstrip("=")
    keyring = ring({"auths": {"r.io": {"username": "ignored", "password": "x", "auth": unpadded}}})
    [match] = keyring.lookup("r.io/a")
    assert (match.username, match.password) == ("u", "pw")


def test_node_config_search_order(tmp_path: Path) -> None:
    json_paths, cfg_paths = default_node_config_paths(str(tmp_path / "kubelet"), str(tmp_path / "cwd"),
                                                      str(tmp_path / "home"))
    assert json_paths[0] == tmp_path / "kubelet" / "config.json"
    assert json_paths[2] == tmp_path / "home" / ".docker" / "config.json"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".dockercfg").write_text(json.dumps({"r.io": {"auth": auth("cfg", "p")}}))
    assert [e.username for e in node_config_entries(json_paths[:3], cfg_paths[:3])] == ["cfg"]
    (tmp_path / "home" / ".docker").mkdir()
    (tmp_path / "home" / ".docker" / "config.json").write_text(json.dumps(config(**{"r.io": ("json", "p")})))
    assert [e.username for e in node_config_entries(json_paths[:3], cfg_paths[:3])] == ["json"]


def test_provider_entries_join_node_keyring() -> None:
    entries = provider_entries("moorage", {"auth": {"r.io:443": {"username": "short", "password": "t"}}})
    result = resolve("r.io:443/p/app:1", [], entries)
    assert [(m.username, str(m.source)) for m in result.matches] == [("short", "provider moorage")]


def test_service_account_secrets_only_when_pod_has_none() -> None:
    assert effective_pull_secrets([], ["sa-secret"]) == ["sa-secret"]
    assert effective_pull_secrets(["pod-secret"], ["sa-secret"]) == ["pod-secret"]


@pytest.mark.parametrize(("image", "repo"), [
    ("nginx", "docker.io/library/nginx"),
    ("nginx:1.25@sha256:" + "a" * 64, "docker.io/library/nginx"),
    ("192.168.2.250:443/test-1/traefik:2.6.2", "192.168.2.250:443/test-1/traefik"),
    ("localhost/app:1", "localhost/app"),
    ("index.docker.io/user/app", "docker.io/user/app"),
])
def test_normalise_image(image: str, repo: str) -> None:
    assert normalise_image(image) == repo
