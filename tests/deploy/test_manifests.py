"""An operator deploys moorage from ``deploy/``: the Kubernetes manifests (``kubectl apply -k deploy/kubernetes``) and
the compose file must be valid as written, start what the docs promise, and configure moorage only with settings
it has (a misspelt ``MOORAGE_*`` variable is silently ignored by the server, so it is caught here), with values it
accepts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer.main
import yaml

from moorage.cli.main import app
from moorage.settings import ENV_PREFIX, Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose"
#: The oldest Kubernetes release the manifests promise to work on (PodDisruptionBudget policy/v1, seccompProfile).
KUBERNETES_VERSION = "1.29.0"
#: Variables moorage's containers may name besides its settings: the AWS SDK's credentials.
AWS_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
HEALTH = "/api/v2.0/health"


def kubernetes_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    on_disk = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk, "kustomization.yaml must list every manifest in deploy/kubernetes"
    return [doc for name in listed for doc in yaml.safe_load_all((KUBERNETES / name).read_text()) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def setting_names() -> set[str]:
    return {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}


def assert_real_settings(variables: dict[str, str], where: str, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    """Every variable is a moorage setting (or an AWS credential), and moorage accepts the values together."""
    unknown = set(variables) - setting_names() - AWS_VARIABLES
    assert not unknown, f"{where} names variables moorage has no setting for: {sorted(unknown)}"
    with monkeypatch.context() as env:
        for name in [n for n in os.environ if n.upper().startswith(ENV_PREFIX)]:
            env.delenv(name)
        for name, value in variables.items():
            env.setenv(name, value)
        load_settings(data_dir=tmp_path)


@pytest.mark.fast
def test_every_kubernetes_manifest_is_valid_for_its_api() -> None:
    problems = []
    for doc in kubernetes_documents():
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except jsonschema.ValidationError as error:
            problems.append(f"{doc['kind']} {doc['metadata']['name']}: {error.message} at {list(error.path)}")
    assert not problems, "\n".join(problems)


@pytest.mark.fast
def test_the_deployment_runs_replicas_that_survive_a_drain_and_are_probed_on_health() -> None:
    docs = kubernetes_documents()
    deployment = find(docs, "Deployment", "moorage")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    budget = find(docs, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] >= 1

    service = find(docs, "Service", "moorage")
    assert service["spec"]["selector"].items() <= labels.items()
    server = next(c for c in pod["spec"]["containers"] if c["name"] == "moorage")
    port_names = {p["name"] for p in server["ports"]}
    assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"]["path"] == HEALTH
        assert server[probe]["httpGet"]["port"] in port_names


@pytest.mark.fast
def test_the_registry_pods_run_as_nobody_in_particular() -> None:
    pod = find(kubernetes_documents(), "Deployment", "moorage")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in containers(pod):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"]
        assert context.get("runAsUser", pod["securityContext"]["runAsUser"]) != 0


@pytest.mark.fast
def test_settings_and_credentials_come_from_secrets_and_are_real_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    docs = kubernetes_documents()
    pod = find(docs, "Deployment", "moorage")["spec"]["template"]["spec"]
    variables: dict[str, str] = {}
    for container in containers(pod):
        for source in container.get("envFrom", []):
            assert "secretRef" in source, "settings and credentials come from Secrets"
            variables.update(find(docs, "Secret", source["secretRef"]["name"])["stringData"])
        for entry in container.get("env", []):
            assert "value" not in entry, f"{entry['name']}: a value belongs in a Secret, not in the pod spec"
            variables[entry["name"]] = "x"
    assert {"MOORAGE_DATABASE_URL", "MOORAGE_STORAGE_BACKEND", "MOORAGE_S3_BUCKET", "MOORAGE_SECRET_KEY",
            *AWS_VARIABLES} <= set(variables)
    assert_real_settings(variables, "deploy/kubernetes", monkeypatch, tmp_path)
    # No container anywhere names a MOORAGE_ variable moorage does not have.
    for doc in docs:
        pods = doc.get("spec", {}).get("template", {}).get("spec")
        for container in containers(pods) if pods else []:
            names = {e["name"] for e in container.get("env", [])}
            assert not {n for n in names if n.startswith(ENV_PREFIX)} - setting_names()


def node_config_options() -> set[str]:
    command = typer.main.get_command(app)
    node_config = command.commands["node-config"]  # type: ignore[attr-defined]
    return {option for param in node_config.params for option in param.opts}


@pytest.mark.fast
def test_every_node_runs_node_config_on_the_runtime_config_directory() -> None:
    docs = kubernetes_documents()
    daemonset = find(docs, "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    assert {"operator": "Exists"} in pod["tolerations"], "every node, tainted ones too"
    hostpaths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert hostpaths == {"containerd-config": "/etc/containerd"}
    runner = next(c for c in containers(pod) if "node-config" in " ".join(c.get("command", []) + c.get("args", [])))
    words = shlex.split(" ".join(runner.get("args", [])))
    words = words[words.index("node-config") + 1:]
    flags = [w for w in words if w.startswith("--")]
    assert set(flags) <= node_config_options(), f"node-config has no option {set(flags) - node_config_options()}"
    assert {"--apply", "--registry", "--ca-fingerprint", "--runtime"} <= set(flags)
    root = words[words.index("--root") + 1]
    mounts = {m["mountPath"]: m["name"] for m in runner["volumeMounts"]}
    assert mounts[f"{root}/etc/containerd"] == "containerd-config"
    # What it reads from the ConfigMap exists there.
    config_map = find(docs, "ConfigMap", "moorage-node")
    mounted = next(m["mountPath"] for m in runner["volumeMounts"] if m["name"] == "settings")
    for path in re.findall(rf"{re.escape(mounted)}/([\w-]+)", " ".join(runner["args"])):
        assert path in config_map["data"]


def test_kubectl_renders_the_kustomization() -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: apt-get install -y kubernetes-client (scripts/install-test-deps)"
    rendered = subprocess.run([kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered.stdout) if d)
    assert kinds == sorted((d["kind"], d["metadata"]["name"]) for d in kubernetes_documents())


def compose_schema() -> dict[str, Any]:
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return dict(json.loads(path.read_text()))


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


@pytest.mark.fast
def test_the_compose_file_is_valid_and_runs_two_replicas_behind_a_load_balancer(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    schema = compose_schema()
    errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)

    services = compose["services"]
    replicas = [name for name, s in services.items() if "moorage serve" in " ".join(s.get("command", []))]
    assert len(replicas) >= 2
    images = {name: s["image"].split(":")[0] for name, s in services.items()}
    assert "postgres" in images.values() and "minio/minio" in images.values()
    haproxy = (COMPOSE / "haproxy.cfg").read_text()
    assert sorted(re.findall(r"^\s*server \w+ ([\w-]+):5000", haproxy, re.M)) == sorted(replicas)
    assert "mode tcp" in haproxy, "TLS pass-through: the replicas terminate TLS"
    for name in replicas:
        assert services[name]["env_file"] == "moorage.env"
    assert_real_settings(env_file(COMPOSE / "moorage.env.example"), "deploy/compose/moorage.env.example",
                         monkeypatch, tmp_path)
