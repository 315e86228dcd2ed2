"""``moorage pull-secret`` end to end: a real moorage server, real skopeo and containerd, and the
Kubernetes API stand-in (``tests/support/kubeapi.py``; kube-apiserver itself is not installable here).

The command runs as a subprocess with arguments passed as a list — no shell — so the ``$`` of
``robot$project+name`` is exercised exactly as a user's pipeline would see it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, config

from tests.support.clients import Containerd, Skopeo
from tests.support.images import ImageInfo
from tests.support.kubeapi import KubeAPIServer, running
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

SRC = Path(__file__).resolve().parents[2] / "src"
ADMIN = f"admin:{ADMIN_PASSWORD}"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeAPIServer]:
    yield from running(tmp_path / "kubeapi", ("default", "team-a", "team-b"))


@pytest.fixture
def core(kube: KubeAPIServer) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(kube.kubeconfig), context=kube.context))


@pytest.fixture
def project(moorage: MoorageServer) -> str:
    return moorage.project(f"ps-{secrets.token_hex(4)}")


@pytest.fixture
def image(moorage: MoorageServer, project: str, skopeo: Skopeo, oci_image: ImageInfo) -> str:
    """An image in the private project, pushed by the admin."""
    reference = f"{moorage.host}/{project}/app:v1"
    skopeo.push(oci_image, reference, creds=ADMIN)
    return reference


def run_cli(moorage: MoorageServer, tmp_path: Path, *args: str, kube: KubeAPIServer | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}:{os.environ.get('PYTHONPATH', '')}",
           "MOORAGE_SERVER": moorage.url, "MOORAGE_USERNAME": "admin", "MOORAGE_PASSWORD": ADMIN_PASSWORD,
           "MOORAGE_CLI_CONFIG": str(tmp_path / "no-profile.json"),
           "KUBECONFIG": str(kube.kubeconfig if kube else tmp_path / "no-kubeconfig")}
    done = subprocess.run([sys.executable, "-m", "moorage.cli.main", "pull-secret", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def decoded(secret: dict[str, Any] | client.V1Secret) -> dict[str, Any]:
    data = secret.data if isinstance(secret, client.V1Secret) else secret["data"]
    return dict(json.loads(base64.b64decode(data[".dockerconfigjson"])))


def robot_creds(secret: dict[str, Any] | client.V1Secret, registry: str) -> tuple[str, str]:
    entry = decoded(secret)["auths"][registry]
    return entry["username"], entry["password"]


def write_authfile(path: Path, secret: dict[str, Any] | client.V1Secret) -> Path:
    """The decoded ``.dockerconfigjson`` as is: exactly what the kubelet would hand the runtime."""
    data = secret.data if isinstance(secret, client.V1Secret) else secret["data"]
    path.write_bytes(base64.b64decode(data[".dockerconfigjson"]))
    return path


def api_robots(moorage: MoorageServer, project: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30) as api:
        project_id = api.get(f"/projects/{project}", headers={"X-Is-Resource-Name": "true"}).json()["project_id"]
        response = api.get("/robots", params={"q": f"Level=project,ProjectID={project_id}"})
        response.raise_for_status()
        return list(response.json())


def test_emits_a_working_pull_only_secret(moorage: MoorageServer, project: str, image: str, skopeo: Skopeo,
                                          containerd: Containerd, oci_image: ImageInfo, tmp_path: Path) -> None:
    done = run_cli(moorage, tmp_path, project, "-n", "apps", "-o", "json")
    secret = json.loads(done.stdout)
    assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["name"] == f"moorage-{project}" and secret["metadata"]["namespace"] == "apps"
    assert list(decoded(secret)["auths"]) == [moorage.host], "key must be host:port, as nodes name the registry"
    username, password = robot_creds(secret, moorage.host)
    assert username == f"robot${project}+pull-moorage-{project}"
    assert password not in done.stderr and "only in the Secret manifest on stdout" in done.stderr

    robots = api_robots(moorage, project)
    assert [r["name"] for r in robots] == [username]
    assert robots[0]["permissions"] == [{"kind": "project", "namespace": project,
                                         "access": [{"resource": "repository", "action": "pull", "effect": "allow"}]}]

    authfile = write_authfile(tmp_path / "auth.json", secret)
    assert skopeo.inspect(image, raw=True, authfile=authfile)["config"]["digest"] == oci_image.config.digest
    refused = skopeo.copy(oci_image.ref, f"docker://{moorage.host}/{project}/pushed:v1", authfile=authfile,
                          check=False)
    assert not refused.ok
    assert "denied" in refused.output.lower() or "unauthorized" in refused.output.lower()

    containerd.pull(image, user=f"{username}:{password}")
    assert containerd.images()[image] == oci_image.digest
    containerd.tag(image, f"{moorage.host}/{project}/pushed:ctr")
    pushed = containerd.push(f"{moorage.host}/{project}/pushed:ctr", user=f"{username}:{password}", check=False)
    assert not pushed.ok, pushed.output
    with moorage.client() as admin:
        assert admin.get(f"/v2/{project}/pushed/tags/list").status_code == 404


def test_rerun_without_cluster_never_breaks_the_first_secret(moorage: MoorageServer, project: str, image: str,
                                                             skopeo: Skopeo, tmp_path: Path) -> None:
    """The issue's outage: a second run cannot read the first robot's secret back (no cluster access), and
    refreshing it would break the Secret already serving pods. It makes a robot of its own instead."""
    first = yaml.safe_load(run_cli(moorage, tmp_path, project, "--robot", "nodes", "-n", "apps").stdout)
    assert first["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "moorage"
    assert first["metadata"]["annotations"]["moorage.io/robot-name"] == f"robot${project}+nodes"
    again = run_cli(moorage, tmp_path, project, "--robot", "nodes", "-n", "apps2")
    assert "refreshed" not in again.stderr and "refresh deliberately with --rotate" in again.stderr
    second = yaml.safe_load(again.stdout)
    assert robot_creds(second, moorage.host)[0] == f"robot${project}+nodes-apps2"
    assert sorted(r["name"] for r in api_robots(moorage, project)) == [f"robot${project}+nodes",
                                                                      f"robot${project}+nodes-apps2"]
    for number, secret in enumerate((first, second)):
        skopeo.inspect(image, raw=True, authfile=write_authfile(tmp_path / f"{number}.json", secret))

    # The same namespace again: its robot's secret cannot be read back either; refreshing is an explicit act.
    refused = run_cli(moorage, tmp_path, project, "--robot", "nodes", "-n", "apps2", check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "--rotate" in refused.stderr and "--robot NEW-NAME" in refused.stderr
    skopeo.inspect(image, raw=True, authfile=write_authfile(tmp_path / "still.json", second))


def test_apply_namespaces_and_service_accounts_idempotently(moorage: MoorageServer, project: str, image: str,
                                                            kube: KubeAPIServer, core: client.CoreV1Api,
                                                            skopeo: Skopeo, tmp_path: Path) -> None:
    core.patch_namespaced_service_account("default", "team-a", {"imagePullSecrets": [{"name": "existing-creds"}]})
    args = [project, "--apply", "-n", "team-a", "-n", "team-b", "--service-account", "default"]
    done = run_cli(moorage, tmp_path, *args, kube=kube)
    assert done.stdout == "", "with --apply nothing (and no secret) goes to stdout unless -o is given"
    name = f"moorage-{project}"
    written = {ns: core.read_namespaced_secret(name, ns) for ns in ("team-a", "team-b")}
    assert written["team-a"].data == written["team-b"].data
    assert written["team-a"].type == "kubernetes.io/dockerconfigjson"
    assert written["team-a"].metadata.labels["moorage.io/project"] == project
    assert [r.name for r in core.read_namespaced_service_account("default", "team-a").image_pull_secrets] == [
        "existing-creds", name]
    assert [r.name for r in core.read_namespaced_service_account("default", "team-b").image_pull_secrets] == [name]
    patches = [r for r in kube.requests() if r["method"] == "PATCH" and "serviceaccounts" in r["path"]]
    assert {p["content_type"] for p in patches} == {"application/strategic-merge-patch+json"}
    skopeo.inspect(image, raw=True, authfile=write_authfile(tmp_path / "auth.json", written["team-a"]))

    again = run_cli(moorage, tmp_path, *args, kube=kube)
    assert "reusing the working secret" in again.stderr
    assert again.stderr.count(": unchanged") == 2 and again.stderr.count("already lists") == 2
    for ns in ("team-a", "team-b"):
        now = core.read_namespaced_secret(name, ns)
        assert now.data == written[ns].data
        assert now.metadata.resource_version == written[ns].metadata.resource_version
    assert [r.name for r in core.read_namespaced_service_account("default", "team-a").image_pull_secrets] == [
        "existing-creds", name]
    assert len(api_robots(moorage, project)) == 1


def test_rotate_updates_every_written_secret(moorage: MoorageServer, project: str, image: str,
                                             kube: KubeAPIServer, core: client.CoreV1Api, skopeo: Skopeo,
                                             containerd: Containerd, tmp_path: Path) -> None:
    name = f"moorage-{project}"
    run_cli(moorage, tmp_path, project, "--apply", "-n", "team-a", "-n", "team-b", kube=kube)
    before = {ns: core.read_namespaced_secret(name, ns) for ns in ("team-a", "team-b")}
    old_user, old_password = robot_creds(before["team-a"], moorage.host)

    done = run_cli(moorage, tmp_path, project, "--rotate", kube=kube)
    assert done.stdout == "" and "secret refreshed (--rotate)" in done.stderr
    assert f"Secrets moorage wrote with it: team-a/{name}, team-b/{name}" in done.stderr.replace(
        f"team-b/{name}, team-a/{name}", f"team-a/{name}, team-b/{name}")
    assert done.stderr.count("(new robot secret)") == 2
    after = {ns: core.read_namespaced_secret(name, ns) for ns in ("team-a", "team-b")}
    user, password = robot_creds(after["team-a"], moorage.host)
    assert user == old_user and password != old_password
    assert robot_creds(after["team-b"], moorage.host) == (user, password)
    assert after["team-a"].metadata.labels == before["team-a"].metadata.labels

    old = skopeo.inspect(image, raw=True, authfile=write_authfile(tmp_path / "old.json", before["team-b"]),
                         check=False)
    assert not old.ok and "unauthorized" in old.output.lower()
    skopeo.inspect(image, raw=True, authfile=write_authfile(tmp_path / "new.json", after["team-b"]))
    refused = containerd.pull(image, user=f"{old_user}:{old_password}", check=False)
    assert not refused.ok
    containerd.pull(image, user=f"{user}:{password}")


def test_refuses_a_robot_that_can_push(moorage: MoorageServer, project: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30) as api:
        api.post("/robots", json={"name": "ci", "level": "project", "duration": -1, "permissions": [
            {"kind": "project", "namespace": project, "access": [{"resource": "repository", "action": "pull"},
                                                                 {"resource": "repository", "action": "push"}]}]},
                 ).raise_for_status()
    done = run_cli(moorage, tmp_path, project, "--robot", "ci", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert "can do more than pull" in done.stderr and "repository:push" in done.stderr


def test_rotate_without_robot_and_bad_usage(moorage: MoorageServer, project: str, kube: KubeAPIServer,
                                            tmp_path: Path) -> None:
    done = run_cli(moorage, tmp_path, project, "--rotate", kube=kube, check=False)
    assert done.returncode == 1 and "nothing to rotate" in done.stderr
    usage = run_cli(moorage, tmp_path, project, "--service-account", "default", check=False)
    assert usage.returncode == 2 and "needs --apply" in usage.stderr
    missing = run_cli(moorage, tmp_path, "no-such-project", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr.lower()
