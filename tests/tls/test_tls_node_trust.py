"""``moorage node-config --apply`` files, proven by real runtimes against a real TLS registry.

The registry is CNCF distribution (``docker-registry``) serving moorage's certificate; the image is
pushed with skopeo trusting the docker-style ``certs.d`` file; a private containerd whose CRI config
has ``config_path`` pointing at the generated ``certs.d`` pulls it with ``ctr --hosts-dir``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.node.runtimes.containerd import containerd_config_snippet
from moorage.tls.certs import ServerCertPaths, ensure_server_certificate
from tests.tls.tls_support import (
    build_oci_layout,
    free_port,
    moorage_cli,
    require_tool,
    run,
    running,
    tls_ready,
)


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerCertPaths, Path]]:
    """distribution 2.8 on 127.0.0.1 with moorage's certificate; yields (host:port, paths, data_dir)."""
    exe = require_tool("docker-registry")
    base = tmp_path_factory.mktemp("tls-registry")
    data_dir = base / "data"
    paths = ensure_server_certificate(data_dir, ["registry.example"], [])
    port = free_port()
    config = base / "registry.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(base / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}",
                 "tls": {"certificate": str(paths.chain), "key": str(paths.key)}},
    }))
    with running([exe, "serve", str(config)], base / "registry.log", tls_ready(port, paths.ca),
                 "docker-registry"):
        yield f"127.0.0.1:{port}", paths, data_dir


def node_config(*args: str) -> dict:  # type: ignore[type-arg]
    result = moorage_cli("node-config", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def pushed(tls_registry, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    """Push a tiny image, trusting the registry only through node-config's docker certs.d file."""
    registry, _, data_dir = tls_registry
    skopeo = require_tool("skopeo")
    base = tmp_path_factory.mktemp("push")
    node_config("--runtime", "docker", "--registry", registry, "--data-dir", str(data_dir), "--apply",
                "--root", str(base / "node"))
    cert_dir = base / "node" / "etc" / "docker" / "certs.d" / registry
    assert sorted(p.name for p in cert_dir.iterdir()) == ["ca.crt"]
    layout = build_oci_layout(base / "layout", "v1")
    image = f"{registry}/moorage/hello:v1"
    result = run([skopeo, "copy", "--dest-cert-dir", str(cert_dir), f"oci:{layout}:v1",
                  f"docker://{image}"])
    assert result.returncode == 0, result.stderr
    return image


def test_crio_files_let_a_containers_client_verify(tls_registry, pushed: str,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    registry, _, data_dir = tls_registry
    skopeo = require_tool("skopeo")
    plan = node_config("--runtime", "crio", "--registry", registry, "--data-dir", str(data_dir), "--apply",
                       "--root", str(tmp_path))
    assert plan["applied"] is True and plan["warnings"] == []
    dropin = tmp_path / "etc" / "containers" / "registries.conf.d" / "moorage-127.0.0.1.conf"
    assert dropin.read_text() == f'[[registry]]\nlocation = "{registry}"\ninsecure = false\n'
    cert_dir = tmp_path / "etc" / "containers" / "certs.d" / registry
    result = run([skopeo, "--registries-conf", str(dropin), "inspect", "--cert-dir", str(cert_dir),
                  f"docker://{pushed}"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Name"] == pushed.rsplit(":", 1)[0]


@pytest.fixture()
def private_containerd(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A containerd whose CRI config reads ``<node>/etc/containerd/certs.d``; yields (socket, node)."""
    exe = require_tool("containerd")
    ctr = require_tool("ctr")
    node = tmp_path / "node"
    certs_dir = node / "etc" / "containerd" / "certs.d"
    sock = tmp_path / "ctd.sock"
    config = node / "etc" / "containerd" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'version = 2\nroot = "{tmp_path / "root"}"\nstate = "{tmp_path / "state"}"\n\n'
                      f'[grpc]\n  address = "{sock}"\n\n' + containerd_config_snippet(str(certs_dir)))
    command = [exe, "--config", str(config), "--root", str(tmp_path / "root"),
               "--state", str(tmp_path / "state"), "--address", str(sock)]

    def ready() -> bool:
        return sock.exists() and run([ctr, "--address", str(sock), "version"], timeout=10).returncode == 0

    with running(command, tmp_path / "containerd.log", ready, "containerd"):
        yield sock, node


def test_containerd_pulls_through_generated_hosts_toml(tls_registry, pushed: str,  # type: ignore[no-untyped-def]
                                                       private_containerd) -> None:
    registry, paths, data_dir = tls_registry
    sock, node = private_containerd
    ctr = require_tool("ctr")
    certs_dir = node / "etc" / "containerd" / "certs.d"
    base = ["--runtime", "containerd", "--registry", registry, "--data-dir", str(data_dir),
            "--root", str(node)]

    # The config written above sets config_path to this certs.d: nothing to restart.
    plan = node_config(*base, "--apply")
    assert plan["restart_needed"] is False, plan["notes"]
    hosts_toml = certs_dir / registry / "hosts.toml"
    ca_line = 'ca = "ca.crt"'  # relative to the hosts.toml's directory, as containerd resolves it
    assert hosts_toml.read_text() == (
        f'server = "https://{registry}"\n{ca_line}\n\n[host."https://{registry}"]\n'
        f'  capabilities = ["pull", "resolve"]\n  {ca_line}\n')
    assert (certs_dir / registry / "ca.crt").read_bytes() == paths.ca.read_bytes()

    pull = [ctr, "--address", str(sock), "--namespace", "moorage-test", "images", "pull"]
    # Same host config without the CA: the failure a node without trust sees. (With no hosts.toml
    # at all containerd would try plain HTTP, as it does for any loopback registry.)
    untrusting = node / "untrusting" / registry
    untrusting.mkdir(parents=True)
    (untrusting / "hosts.toml").write_text("\n".join(
        line for line in hosts_toml.read_text().splitlines() if not line.strip().startswith("ca =")))
    untrusted = run([*pull, "--hosts-dir", str(untrusting.parent), pushed])
    assert untrusted.returncode != 0
    assert "x509: certificate signed by unknown authority" in untrusted.stderr, untrusted.stderr

    trusted = run([*pull, "--hosts-dir", str(certs_dir), pushed])
    assert trusted.returncode == 0, trusted.stderr + trusted.stdout
    listed = run([ctr, "--address", str(sock), "--namespace", "moorage-test", "images", "ls", "-q"])
    assert pushed in listed.stdout.split()


def test_containerd_without_config_path_is_told_to_restart(tls_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, _, data_dir = tls_registry
    (tmp_path / "etc" / "containerd").mkdir(parents=True)
    (tmp_path / "etc" / "containerd" / "config.toml").write_text("version = 2\n")
    plan = node_config("--runtime", "containerd", "--registry", registry, "--data-dir", str(data_dir),
                       "--root", str(tmp_path))
    assert plan["applied"] is False and not (tmp_path / "etc" / "containerd" / "certs.d").exists()
    assert plan["restart_needed"] is True and plan["activate_command"] == "systemctl restart containerd"
    assert any('config_path = "' in note and 'io.containerd.grpc.v1.cri".registry]' in note
               for note in plan["notes"])
    assert os.path.basename(plan["files"][1]["path"]) == "hosts.toml"
