"""The pull-secret building blocks: names, labels, robot checks, payload rotation, and the kubeconfig
writer (``moorage.kube.apply``) against the Kubernetes API stand-in (``tests/support/kubeapi.py``, a
real HTTPS process; kube-apiserver itself cannot be installed on this machine class).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from moorage.client.auth import Credentials
from moorage.kube.apply import KubeError, KubeWriter
from moorage.kube.pull_secret import (
    PullSecretError,
    bare_robot_name,
    credentials_in,
    default_robot_name,
    default_secret_name,
    label_value,
    managed_secret,
    matches_robot,
    payload_of,
    pull_only_problem,
    registry_host,
    robot_request,
    rotated_payload,
    tracking_selector,
)
from moorage.kube.secrets import RegistryAuth, dockerconfigjson
from tests.support.kubeapi import KubeAPIServer, label_matches, running

ROBOT = "robot$test-1+pull-k8s"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeAPIServer]:
    yield from running(tmp_path / "kubeapi", ("default", "a", "b"))


@pytest.fixture
def writer(kube: KubeAPIServer) -> Iterator[KubeWriter]:
    with KubeWriter(str(kube.kubeconfig), kube.context) as w:
        yield w


@pytest.fixture
def core(kube: KubeAPIServer) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(kube.kubeconfig), context=kube.context))


# ---- names and labels ----------------------------------------------------------------------------

def test_default_names_are_valid_kubernetes_and_harbor_names() -> None:
    assert default_secret_name("test-1") == "moorage-test-1"
    assert default_secret_name("My_Project") == "moorage-my-project"
    assert default_robot_name("moorage-test-1") == "pull-moorage-test-1"
    assert default_robot_name("a.b_c") == "pull-a-b-c"
    assert bare_robot_name(ROBOT) == "pull-k8s" and bare_robot_name("ci") == "ci"
    with pytest.raises(PullSecretError):
        bare_robot_name("Bad Name")


def test_label_values_stand_for_robot_names() -> None:
    assert label_value(ROBOT) == "robot.test-1.pull-k8s"
    long = "robot$" + "p" * 60 + "+" + "r" * 60
    value = label_value(long)
    assert len(value) <= 63 and value[-1].isalnum() and value != label_value(long + "x")
    assert tracking_selector("test-1", ROBOT) == (
        "app.kubernetes.io/managed-by=moorage,moorage.io/project=test-1,moorage.io/robot=robot.test-1.pull-k8s")


def test_registry_host_is_what_images_name() -> None:
    assert registry_host("https://192.168.2.250:443") == "192.168.2.250:443"
    assert registry_host("http://127.0.0.1:5000/") == "127.0.0.1:5000"
    assert registry_host("https://registry.example") == "registry.example"


def test_robot_matching_respects_project_boundaries() -> None:
    assert matches_robot("robot$test-1+ci", "test-1", "ci")
    assert matches_robot("bot_test-1+ci", "test-1", "ci")
    assert not matches_robot("robot$atest-1+ci", "test-1", "ci")
    assert not matches_robot("robot$test-1+xci", "test-1", "ci")


def test_pull_only_check() -> None:
    request = robot_request("test-1", "pull-k8s", -1)
    assert request["permissions"] == [{"kind": "project", "namespace": "test-1",
                                       "access": [{"resource": "repository", "action": "pull"}]}]
    assert pull_only_problem(request, "test-1") is None
    pushy = {"permissions": [{"kind": "project", "namespace": "test-1", "access": [
        {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}]}
    assert pull_only_problem(pushy, "test-1") == "project/test-1 repository:push"
    other = {"permissions": [{"kind": "project", "namespace": "other", "access": [
        {"resource": "repository", "action": "pull"}]}]}
    assert pull_only_problem(other, "test-1") == "project/other repository:pull"
    denied = {"permissions": [{"kind": "project", "namespace": "test-1", "access": [
        {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push",
                                                       "effect": "deny"}]}]}
    assert pull_only_problem(denied, "test-1") is None


def test_rotated_payload_keeps_keys_and_other_entries() -> None:
    old = dockerconfigjson([RegistryAuth("10.0.0.5:443", Credentials(ROBOT, "old$<secret>")),
                            RegistryAuth("other.example", Credentials("someone", "theirs"))])
    new = rotated_payload(old, ROBOT, "new&secret")
    auths = json.loads(new)["auths"]
    assert list(auths) == ["10.0.0.5:443", "other.example"]
    assert auths["10.0.0.5:443"]["password"] == "new&secret"
    assert base64.b64decode(auths["10.0.0.5:443"]["auth"]).decode() == f"{ROBOT}:new&secret"
    assert auths["other.example"] == json.loads(old)["auths"]["other.example"]
    assert b"\\u0026" in new, "re-encoded with kubectl's (Go's) escaping"
    assert credentials_in(new, ROBOT) == Credentials(ROBOT, "new&secret")
    assert credentials_in(new, "robot$x+y") is None


def test_managed_secret_is_kubectl_shaped_with_tracking() -> None:
    secret = managed_secret("moorage-test-1", "apps", "10.0.0.5:443", Credentials(ROBOT, "s"), "test-1")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert list(secret["metadata"]) == ["name", "namespace", "creationTimestamp", "labels", "annotations"]
    assert secret["metadata"]["annotations"]["moorage.io/robot-name"] == ROBOT
    assert credentials_in(payload_of(secret["data"]), ROBOT) == Credentials(ROBOT, "s")


# ---- the writer against the API stand-in -------------------------------------------------------------

def test_apply_secret_creates_then_is_unchanged_then_updates(writer: KubeWriter, core: client.CoreV1Api) -> None:
    assert writer.default_namespace == "default"
    secret = managed_secret("pull", "a", "10.0.0.5:443", Credentials(ROBOT, "one"), "test-1")
    assert writer.apply_secret(secret) == "created"
    first = core.read_namespaced_secret("pull", "a")
    assert first.metadata.labels["app.kubernetes.io/managed-by"] == "moorage"
    assert writer.apply_secret(secret) == "unchanged"
    assert core.read_namespaced_secret("pull", "a").metadata.resource_version == first.metadata.resource_version

    core.patch_namespaced_secret("pull", "a", {"metadata": {"labels": {"team": "payments"}}})
    changed = managed_secret("pull", "a", "10.0.0.5:443", Credentials(ROBOT, "two"), "test-1")
    assert writer.apply_secret(changed) == "updated"
    now = core.read_namespaced_secret("pull", "a")
    assert credentials_in(payload_of(now.data), ROBOT) == Credentials(ROBOT, "two")
    assert now.metadata.labels["team"] == "payments", "labels others added are kept"


def test_apply_secret_adopts_a_hand_made_secret_but_not_another_type(writer: KubeWriter,
                                                                     core: client.CoreV1Api) -> None:
    core.create_namespaced_secret("b", {"metadata": {"name": "harbor-pull-secret"},
                                        "type": "kubernetes.io/dockerconfigjson",
                                        "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()}})
    secret = managed_secret("harbor-pull-secret", "b", "10.0.0.5:443", Credentials(ROBOT, "s"), "test-1")
    assert writer.apply_secret(secret).startswith("replaced")
    core.create_namespaced_secret("b", {"metadata": {"name": "opaque"}, "data": {"x": "eA=="}})
    with pytest.raises(KubeError, match="type of a Secret cannot change"):
        writer.apply_secret(managed_secret("opaque", "b", "h:1", Credentials(ROBOT, "s"), "test-1"))


def test_apply_secret_into_missing_namespace_names_it(writer: KubeWriter) -> None:
    with pytest.raises(KubeError, match='namespaces "nope" not found'):
        writer.apply_secret(managed_secret("pull", "nope", "h:1", Credentials(ROBOT, "s"), "test-1"))


def test_service_account_keeps_existing_entries_and_is_idempotent(writer: KubeWriter, core: client.CoreV1Api,
                                                                  kube: KubeAPIServer) -> None:
    core.patch_namespaced_service_account("default", "a", {"imagePullSecrets": [{"name": "theirs"}]})
    assert writer.add_image_pull_secret("a", "default", "moorage-p") == "imagePullSecrets += moorage-p (kept theirs)"
    assert writer.add_image_pull_secret("a", "default", "moorage-p") == "already lists moorage-p"
    names = [r.name for r in core.read_namespaced_service_account("default", "a").image_pull_secrets]
    assert names == ["theirs", "moorage-p"]
    sent = [r for r in kube.requests() if r["method"] == "PATCH" and r["path"].endswith("/a/serviceaccounts/default")]
    assert sent[-1]["content_type"] == "application/strategic-merge-patch+json"
    with pytest.raises(KubeError, match="not found: create it first"):
        writer.add_image_pull_secret("a", "builder", "moorage-p")


def test_find_managed_across_namespaces_by_label(writer: KubeWriter, core: client.CoreV1Api) -> None:
    for ns in ("a", "b"):
        writer.apply_secret(managed_secret("pull", ns, "h:1", Credentials(ROBOT, "s"), "test-1"))
    writer.apply_secret(managed_secret("pull", "default", "h:1", Credentials("robot$test-1+other", "s"), "test-1"))
    found = writer.find_managed(tracking_selector("test-1", ROBOT), [])
    assert sorted((s.namespace, s.name) for s in found) == [("a", "pull"), ("b", "pull")]
    assert writer.update_secret_data("a", "pull", {".dockerconfigjson": base64.b64encode(
        dockerconfigjson([RegistryAuth("h:1", Credentials(ROBOT, "t"))])).decode()}) == "updated"
    assert credentials_in(payload_of(core.read_namespaced_secret("pull", "a").data), ROBOT).password == "t"


def test_unreachable_or_unauthorised_cluster_is_one_clear_error(kube: KubeAPIServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(kube.kubeconfig.read_text().replace(kube.token, "wrong-token"))
    with KubeWriter(str(bad)) as writer, pytest.raises(KubeError, match="credentials were refused"):
        writer.apply_secret(managed_secret("pull", "a", "h:1", Credentials(ROBOT, "s"), "test-1"))
    with pytest.raises(KubeError, match="cannot use the kubeconfig"):
        KubeWriter(str(tmp_path / "missing"))


# ---- the stand-in behaves like the API server where it matters -------------------------------------

def test_standin_status_objects_and_optimistic_concurrency(kube: KubeAPIServer) -> None:
    headers = {"Authorization": f"Bearer {kube.token}"}
    with httpx.Client(base_url=kube.url, verify=kube.tls_context(), headers=headers) as api:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}}
        created = api.post("/api/v1/namespaces/a/secrets", json=body)
        assert created.status_code == 201 and created.json()["type"] == "Opaque"
        again = api.post("/api/v1/namespaces/a/secrets", json=body).json()
        assert (again["kind"], again["reason"], again["code"]) == ("Status", "AlreadyExists", 409)
        stale = {**body, "metadata": {"name": "s", "resourceVersion": "1"}}
        assert api.put("/api/v1/namespaces/a/secrets/s", json=stale).json()["reason"] == "Conflict"
        missing = api.get("/api/v1/namespaces/a/secrets/nope").json()
        assert (missing["reason"], missing["message"]) == ("NotFound", 'secrets "nope" not found')
        broken = {"metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson", "data": {"x": "eA=="}}
        assert api.post("/api/v1/namespaces/a/secrets", json=broken).json()["reason"] == "Invalid"
        sa = "/api/v1/namespaces/a/serviceaccounts/default"
        api.patch(sa, json={"imagePullSecrets": [{"name": "one"}]},
                  headers={"Content-Type": "application/strategic-merge-patch+json"}).raise_for_status()
        replaced = api.patch(sa, json={"imagePullSecrets": [{"name": "two"}]},
                             headers={"Content-Type": "application/merge-patch+json"}).json()
        assert replaced["imagePullSecrets"] == [{"name": "two"}], "imagePullSecrets is an atomic list"
        added = api.patch(sa, json=[{"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "three"}}],
                          headers={"Content-Type": "application/json-patch+json"}).json()
        assert added["imagePullSecrets"] == [{"name": "two"}, {"name": "three"}]
    denied = httpx.get(f"{kube.url}/api/v1/secrets", verify=kube.tls_context())
    assert denied.status_code == 401 and denied.json()["reason"] == "Unauthorized"


def test_label_selector_grammar() -> None:
    labels = {"app": "x", "tier": "web"}
    assert label_matches("app=x,tier==web", labels)
    assert not label_matches("app!=x", labels)
    assert label_matches("tier in (web, db),!missing", labels)
    assert not label_matches("tier notin (web)", labels)
    assert label_matches("missing notin (a)", labels) and not label_matches("missing in (a)", labels)
