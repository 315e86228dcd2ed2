"""Time to pod: the README's seed story in its six commands, ending in a pull by a real containerd 1.6
(Debian's) through its CRI plugin, the way the kubelet pulls — over TLS from moorage, with the Secret's
credential, on a node whose ``config.toml`` is the one ``moorage node-config --apply`` wrote or edited.

The node is a directory (``--root``), its containerd a private instance reading that node's config.toml
(tests/support/cri.py); the cluster is the Kubernetes API stand-in (tests/support/kubeapi.py). Nothing is
copied to the node by hand: the CA travels by ``--ca-fingerprint``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from moorage.kube.keyring import resolve
from tests.support import kubeapi
from tests.support.cri import CriContainerd
from tests.support.images import build_image
from tests.support.kubeapi import KubeAPIServer
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import require_tool, running

LIDABAI_PASSWORD = "Lidabai-Passw0rd"


@dataclass
class Shell:
    """Runs ``moorage ...`` as a user would, with one CLI profile and one kubeconfig for the whole story."""

    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], input=input, env=self.env,
                              capture_output=True, text=True, timeout=180, check=False)
        if check:
            assert done.returncode == 0, f"moorage {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeAPIServer]:
    yield from kubeapi.running(tmp_path / "kubeapi", ("default", "apps", "apps2", "apps3"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MoorageServer]:
    """Command 1: ``moorage serve`` over HTTPS with its own CA (tests.support.moorage starts exactly that)."""
    yield from running(lambda: MoorageServer(tmp_path / "registry", workers=1, tls=True))


@pytest.fixture
def moorage(tmp_path: Path, kube: KubeAPIServer) -> Shell:
    return Shell({**os.environ, "MOORAGE_CLI_CONFIG": str(tmp_path / "cli-profile.json"),
                  "KUBECONFIG": str(kube.kubeconfig), "MOORAGE_PASSWORD": ADMIN_PASSWORD})


def ca_fingerprint(server: MoorageServer) -> str:
    found = re.search(r"CA fingerprint (sha256:[0-9a-f]{64})", server.log())
    assert found, f"`moorage serve` must print the CA fingerprint:\n{server.log()}"
    return found.group(1)


def push_as_lidabai(server: MoorageServer, tmp_path: Path, tag: str) -> str:
    """The team pushes its image (with skopeo, verifying TLS against the CA): not one of the operator's commands."""
    image = build_image(tmp_path / f"image-{tag}", tag=tag, layers=1, layer_size=[4096])
    reference = f"{server.host}/test-1/traefik:{tag}"
    cert_dir = tmp_path / "skopeo-certs"
    cert_dir.mkdir(exist_ok=True)
    (cert_dir / "ca.crt").write_bytes(server.ca_file.read_bytes())
    done = subprocess.run([require_tool("skopeo", "skopeo"), "copy", "--dest-cert-dir", str(cert_dir),
                           "--dest-creds", f"lidabai:{LIDABAI_PASSWORD}", f"oci:{image.layout}:{tag}",
                           f"docker://{reference}"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return reference


def applied_secret(kube: KubeAPIServer, namespace: str, name: str = "moorage-test-1") -> dict[str, Any]:
    core = client.CoreV1Api(config.new_client_from_config(str(kube.kubeconfig), context=kube.context))
    secret = core.read_namespaced_secret(name, namespace)
    return {"type": secret.type, "data": secret.data, "metadata": {"name": name, "namespace": namespace}}


def kubelet_pull(node: CriContainerd, image: str, secret: dict[str, Any]) -> Any:
    """What the kubelet does: pick the credential for the image from the pod's Secret, hand it to PullImage."""
    matches = resolve(image, pull_secrets=[secret]).matches
    assert matches, f"the Secret has no credential the kubelet would use for {image}"
    first = matches[0]
    # The kubelet's keyring leaves AuthConfig.server_address empty for pull-Secret entries.
    return node.pull(image, first.username, first.password)


def test_readme_seed_story_six_commands_to_a_pod_pull(server: MoorageServer, moorage: Shell, kube: KubeAPIServer,
                                                      tmp_path: Path) -> None:
    host = server.host
    node_root = tmp_path / "node"
    node_root.mkdir()
    # 2-4: the admin logs in, makes the private project and the team's developer in one command.
    moorage("admin", "login", f"https://{host}", "--ca-file", str(server.ca_file))
    moorage("project", "create", "test-1", "--private")
    made = moorage("user", "create", "lidabai", "--password-stdin", "--project", "test-1", "--role", "developer",
                   input=LIDABAI_PASSWORD)
    assert "Added lidabai to project test-1 as developer" in made.stdout
    image = push_as_lidabai(server, tmp_path, "2.6.2")

    # 5: on the node, with nothing but the fingerprint serve printed (no CA file copied over).
    configured = moorage("node-config", "--runtime", "containerd", "--registry", host, "--ca-fingerprint",
                         ca_fingerprint(server), "--apply", "--root", str(node_root))
    assert "restart needed: systemctl restart containerd" in configured.stdout
    assert (node_root / "etc/containerd/config.toml").is_file(), "an empty node gets a config.toml with config_path"
    node = CriContainerd(tmp_path / "containerd", node_root).start()  # containerd starts with the written config
    try:
        # 6: the cluster: a pull-only robot and its Secret in namespace apps, on the default service account.
        moorage("pull-secret", "test-1", "--registry", host, "--apply", "-n", "apps", "--service-account", "default")
        apps = applied_secret(kube, "apps")
        pulled = kubelet_pull(node, image, apps)
        assert pulled.ok, pulled.error

        # A second namespace, later: the first Secret keeps working, and so does the new one.
        again = moorage("pull-secret", "test-1", "--registry", host, "--apply", "-n", "apps2")
        assert "reusing the working secret" in again.stderr and "refreshed" not in again.stderr
        second = push_as_lidabai(server, tmp_path, "2.6.3")
        for namespace in ("apps", "apps2"):
            outcome = kubelet_pull(node, second if namespace == "apps2" else image, applied_secret(kube, namespace))
            assert outcome.ok, f"{namespace}: {outcome.error}"

        # Without cluster access the command cannot read the robot's secret back: a robot of its own, not a refresh.
        emitted = moorage("pull-secret", "test-1", "--registry", host, "-n", "apps3", "--kubeconfig",
                          str(tmp_path / "none"))
        assert "robot$test-1+pull-moorage-test-1-apps3: created" in emitted.stderr
        third = yaml.safe_load(emitted.stdout)
        assert kubelet_pull(node, second, third).ok
        assert kubelet_pull(node, image, applied_secret(kube, "apps")).ok, "apps still pulls after apps3"

        refused = node.pull(image, "lidabai", "wrong-password")
        assert not refused.ok and ("401" in refused.error or "unauthorized" in refused.error.lower()), refused.error
    finally:
        node.stop()


def test_doctor_fails_until_node_config_sets_config_path_in_place(server: MoorageServer, moorage: Shell,
                                                                 tmp_path: Path) -> None:
    host = server.host
    node_root = tmp_path / "node"
    moorage("admin", "login", f"https://{host}", "--ca-file", str(server.ca_file))
    moorage("project", "create", "test-1", "--private")
    moorage("user", "create", "lidabai", "--password-stdin", "--project", "test-1", "--role", "developer",
            input=LIDABAI_PASSWORD)
    image = push_as_lidabai(server, tmp_path, "v1")
    secret_yaml = tmp_path / "secret.yaml"
    secret_yaml.write_text(moorage("secret", "create", "pull", "--server", host, "--username", "lidabai",
                                   "--password-stdin", "-o", "yaml", input=LIDABAI_PASSWORD).stdout)
    secret = yaml.safe_load(secret_yaml.read_text())

    # The node: an operator's config.toml without config_path, and trust that containerd 1.6 ignores.
    config_toml = node_root / "etc/containerd/config.toml"
    config_toml.parent.mkdir(parents=True)
    operators = "# node settings, kept by moorage\nversion = 2\noom_score = -999\n"
    config_toml.write_text(operators)
    certs = node_root / "etc/containerd/certs.d" / host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(server.ca_file.read_bytes())
    (certs / "hosts.toml").write_text(f'server = "https://{host}"\nca = "ca.crt"\n')
    node = CriContainerd(tmp_path / "containerd", node_root).start()
    try:
        before = kubelet_pull(node, image, secret)
        # Ignoring certs.d, containerd 1.6 talks to a loopback registry in plain HTTP (a remote one fails
        # with x509: certificate signed by unknown authority): either way, no pod pulls.
        assert not before.ok and "127.0.0.1" in before.error, before.error
        doctor = ["doctor", image, "--runtime", "containerd", "--secret", str(secret_yaml), "--root", str(node_root)]
        failing = moorage(*doctor, check=False)
        assert failing.returncode == 1, failing.stdout
        assert "containerd-config-path" in failing.stdout and "config_path" in failing.stdout
        assert "cannot tell, assuming 1.x" in failing.stdout and "All checks passed" not in failing.stdout

        wrong = "sha256:" + "0" * 64
        refused = moorage("node-config", "--runtime", "containerd", "--registry", host, "--ca-fingerprint", wrong,
                          "--apply", "--root", str(node_root), check=False)
        said = " ".join(refused.stderr.split())
        assert refused.returncode == 2 and "nothing was written" in said and wrong in said
        assert "Check the fingerprint" in said and config_toml.read_text() == operators

        moorage("node-config", "--runtime", "containerd", "--registry", host, "--ca-fingerprint",
                ca_fingerprint(server), "--apply", "--root", str(node_root))
        assert config_toml.read_text().startswith(operators), "the operator's settings and comments stay"
        assert [p.read_text() for p in config_toml.parent.glob("config.toml.moorage-backup-*")] == [operators]
        node.restart()  # what `systemctl restart containerd` (or --restart on a systemd node) does

        assert kubelet_pull(node, image, secret).ok
        passing = moorage(*doctor)
        assert "All checks passed: this node can pull the image" in passing.stdout

        rerun = moorage("node-config", "--runtime", "containerd", "--registry", host, "--ca-fingerprint",
                        ca_fingerprint(server), "--apply", "--root", str(node_root))
        assert "nothing changed, nothing to restart" in rerun.stdout
    finally:
        node.stop()
