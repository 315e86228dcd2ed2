"""What ``node-config`` tells each runtime, written to a scratch root and parsed back."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from moorage.node.runtime_config import (
    RUNTIMES,
    RegistryAddress,
    apply_plan,
    plan_runtime_config,
)
from moorage.tls.ca import create_ca
from moorage.tls.certs import ensure_server_certificate

pytestmark = pytest.mark.fast

CA_PEM = create_ca().pem.decode()
REGISTRY = "192.168.2.250:443"


def files_of(plan) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.path: f.content for f in plan.files}


def test_docker_gets_ca_in_certs_d_for_both_spellings_of_port_443(tmp_path: Path) -> None:
    plan = plan_runtime_config("docker", REGISTRY, CA_PEM, root=tmp_path)
    assert files_of(plan) == {"etc/docker/certs.d/192.168.2.250:443/ca.crt": CA_PEM,
                              "etc/docker/certs.d/192.168.2.250/ca.crt": CA_PEM}
    written = apply_plan(plan)
    assert all(p.read_text() == CA_PEM for p in written)
    assert not plan.restart_needed and plan.warnings == []


def test_containerd_hosts_toml_names_server_capabilities_and_ca(tmp_path: Path) -> None:
    plan = plan_runtime_config("containerd", "registry.example:5000", CA_PEM, root=tmp_path)
    files = files_of(plan)
    assert set(files) == {"etc/containerd/certs.d/registry.example:5000/hosts.toml",
                          "etc/containerd/certs.d/registry.example:5000/ca.crt", "etc/containerd/config.toml"}
    apply_plan(plan)
    directory = tmp_path / "etc/containerd/certs.d/registry.example:5000"
    hosts = tomllib.loads((directory / "hosts.toml").read_text())
    # `ca` relative to the hosts.toml's directory (containerd resolves it there): right under any --root.
    assert hosts == {"server": "https://registry.example:5000", "ca": "ca.crt",
                     "host": {"https://registry.example:5000": {"capabilities": ["pull", "resolve"], "ca": "ca.crt"}}}
    assert (directory / "ca.crt").read_text() == CA_PEM
    # No config.toml under this root: the CRI plugin of a 1.x containerd would ignore certs.d, so the
    # plan creates one that sets config_path, and says a restart is needed.
    assert plan.restart_needed and plan.activate_command == "systemctl restart containerd"
    config = tomllib.loads(files["etc/containerd/config.toml"])
    assert config == {"version": 2, "plugins": {"io.containerd.grpc.v1.cri": {"registry": {
        "config_path": "/etc/containerd/certs.d"}}}}
    assert any("cannot tell, assuming 1.x" in n for n in plan.notes)


@pytest.mark.parametrize(("config", "restart"), [
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "{d}"\n', False),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/x:{d}"\n', False),
    ('[plugins.cri.registry]\nconfig_path = "{d}"\n', False),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = ""\n', True),
    ("version = 2\n", True),
])
def test_containerd_restart_advice_follows_config_path(tmp_path: Path, config: str, restart: bool) -> None:
    config_file = tmp_path / "etc/containerd/config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text(config.format(d=tmp_path / "etc/containerd/certs.d"))
    plan = plan_runtime_config("containerd", REGISTRY, CA_PEM, root=tmp_path)
    assert plan.restart_needed is restart


def test_containerd_warns_about_legacy_mirrors(tmp_path: Path) -> None:
    config_file = tmp_path / "etc/containerd/config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."x.io"]\n'
                           'endpoint = ["https://x.io"]\n')
    with pytest.raises(ValueError, match="refuses to start with config_path beside it"):
        plan_runtime_config("containerd", REGISTRY, CA_PEM, root=tmp_path)


def test_crio_gets_certs_d_and_a_secure_registries_dropin(tmp_path: Path) -> None:
    plan = plan_runtime_config("crio", "registry.example:5000", CA_PEM, root=tmp_path)
    apply_plan(plan)
    dropin = tmp_path / "etc/containers/registries.conf.d/moorage-registry.example.conf"
    assert tomllib.loads(dropin.read_text()) == {"registry": [{"location": "registry.example:5000",
                                                               "insecure": False}]}
    assert (tmp_path / "etc/containers/certs.d/registry.example:5000/ca.crt").read_text() == CA_PEM
    assert not plan.restart_needed and plan.activate_command == "systemctl reload crio"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_never_insecure_unless_asked(tmp_path: Path, runtime: str) -> None:
    plan = plan_runtime_config(runtime, REGISTRY, CA_PEM, root=tmp_path)  # type: ignore[arg-type]
    text = json.dumps(plan.to_dict())
    for marker in ("insecure-registries", "skip_verify", "insecure = true"):
        assert marker not in text


@pytest.mark.parametrize(("runtime", "path", "marker"), [
    ("docker", "etc/docker/daemon.json", '"insecure-registries"'),
    ("containerd", "etc/containerd/certs.d/192.168.2.250:443/hosts.toml", "skip_verify = true"),
    ("crio", "etc/containers/registries.conf.d/moorage-192.168.2.250.conf", "insecure = true"),
])
def test_insecure_only_on_request_and_with_a_warning(tmp_path: Path, runtime: str, path: str,
                                                     marker: str) -> None:
    plan = plan_runtime_config(runtime, REGISTRY, None, insecure=True, root=tmp_path)  # type: ignore[arg-type]
    assert marker in files_of(plan)[path]
    assert len(plan.warnings) == 1 and "impersonate" in plan.warnings[0]
    assert not any(p.endswith("ca.crt") for p in files_of(plan))


def test_insecure_docker_keeps_existing_daemon_json_keys(tmp_path: Path) -> None:
    daemon = tmp_path / "etc/docker/daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text(json.dumps({"log-driver": "json-file", "insecure-registries": ["other:5000"]}))
    plan = plan_runtime_config("docker", REGISTRY, None, insecure=True, root=tmp_path)
    apply_plan(plan)
    assert json.loads(daemon.read_text()) == {"log-driver": "json-file",
                                              "insecure-registries": ["192.168.2.250:443", "other:5000"]}


def test_stale_insecure_registry_entry_is_pointed_out(tmp_path: Path) -> None:
    daemon = tmp_path / "etc/docker/daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text(json.dumps({"insecure-registries": [REGISTRY]}))  # what the seed's operator did
    plan = plan_runtime_config("docker", REGISTRY, CA_PEM, root=tmp_path)
    assert any("insecure-registries" in w and "remove it" in w for w in plan.warnings)


def test_a_server_certificate_is_refused_as_ca(tmp_path: Path) -> None:
    paths = ensure_server_certificate(tmp_path, [], [], include_local=False)
    with pytest.raises(ValueError, match="not a CA"):
        plan_runtime_config("docker", REGISTRY, paths.cert.read_text())
    with pytest.raises(ValueError, match="not a PEM"):
        plan_runtime_config("docker", REGISTRY, "hello")
    with pytest.raises(ValueError, match="CA certificate is needed"):
        plan_runtime_config("docker", REGISTRY, None)


@pytest.mark.parametrize(("text", "hostport", "dirs"), [
    ("192.168.2.250:443", "192.168.2.250:443", ["192.168.2.250:443", "192.168.2.250"]),
    ("https://Registry.Example:5000/", "registry.example:5000", ["registry.example:5000"]),
    ("registry.example", "registry.example", ["registry.example"]),
    ("[fd00::5]:5000", "[fd00::5]:5000", ["[fd00::5]:5000"]),
])
def test_registry_address_parsing(text: str, hostport: str, dirs: list[str]) -> None:
    reg = RegistryAddress.parse(text)
    assert reg.hostport == hostport and reg.directory_names() == dirs


@pytest.mark.parametrize("bad", ["", "host:port", "fd00::5", "a/b:5000", "host:70000", "bad_host:5000"])
def test_bad_registry_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        RegistryAddress.parse(bad)
