"""containerd's config.toml as ``node-config --apply`` leaves it: config_path set where the node's release
needs it, every other setting and comment kept, a backup of the operator's file, and nothing done twice."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from moorage.node.runtime_config import apply_plan, plan_runtime_config
from moorage.node.runtimes.containerd import ConfigPathError, plan_config_path
from moorage.node.runtimes.versions import containerd_version, parse_version
from tests.node.test_runtime_config import CA_PEM

REGISTRY = "192.168.2.250:443"
OPERATORS_CONFIG = '''# kept: the operator's own words
version = 2
oom_score = -999  # kept too

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
'''


def write_config(root: Path, text: str) -> Path:
    config = root / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return config


@pytest.mark.fast
def test_an_operators_config_is_edited_in_place_keeping_everything_else(tmp_path: Path) -> None:
    config = write_config(tmp_path, OPERATORS_CONFIG)
    config.chmod(0o600)

    plan = plan_runtime_config("containerd", REGISTRY, CA_PEM, root=tmp_path)
    changed = apply_plan(plan)

    assert config in changed and plan.restart_needed
    text = config.read_text()
    assert text.startswith(OPERATORS_CONFIG.split("[plugins]")[0]), "comments and top-level keys kept verbatim"
    assert "# kept too" in text and 'sandbox_image = "registry.k8s.io/pause:3.6"' in text
    parsed = tomllib.loads(text)
    cri = parsed["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d", "the node's own path, whatever --root"
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni"} and parsed["oom_score"] == -999
    assert parsed["plugins"]["io.containerd.internal.v1.opt"] == {"path": "/var/lib/containerd/opt"}
    assert config.stat().st_mode & 0o777 == 0o600
    backups = list(config.parent.glob("config.toml.moorage-backup-*"))
    assert len(backups) == 1 and backups[0].read_text() == OPERATORS_CONFIG

    again = plan_runtime_config("containerd", REGISTRY, CA_PEM, root=tmp_path)
    assert apply_plan(again) == [] and not again.restart_needed, "a second run changes nothing"
    assert len(list(config.parent.glob("config.toml.moorage-backup-*"))) == 1


@pytest.mark.fast
@pytest.mark.parametrize(("text", "key"), [
    ("[plugins.cri]\n  stream_server_port = \"0\"\n", ("plugins", "cri", "registry")),  # version 1: short names
    ("# only a comment\n", ("plugins", "io.containerd.grpc.v1.cri", "registry")),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ""\n',
     ("plugins", "io.containerd.grpc.v1.cri", "registry")),
    ('version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = ""\n',
     ("plugins", "io.containerd.cri.v1.images", "registry")),  # 2.x, but told to read nothing
])
def test_config_path_goes_under_the_key_the_config_version_uses(tmp_path: Path, text: str,
                                                               key: tuple[str, ...]) -> None:
    write_config(tmp_path, text)
    plan = plan_config_path(tmp_path)
    assert plan.new_text is not None
    section = tomllib.loads(plan.new_text)
    for part in key:
        section = section[part]
    assert section["config_path"] == "/etc/containerd/certs.d"


@pytest.mark.fast
def test_nothing_to_change_when_containerd_already_reads_certs_d(tmp_path: Path) -> None:
    write_config(tmp_path, "version = 3\n")
    plan = plan_config_path(tmp_path)
    assert plan.new_text is None and plan.version.major == 2 and "by default" in plan.reason

    elsewhere = tmp_path / "etc/registry-trust"
    write_config(tmp_path, f'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                           f'  config_path = "{elsewhere}"\n')
    plan = plan_runtime_config("containerd", REGISTRY, CA_PEM, root=tmp_path)
    assert not plan.restart_needed
    assert {f.path for f in plan.files} == {f"etc/registry-trust/{REGISTRY}/hosts.toml",
                                            f"etc/registry-trust/{REGISTRY}/ca.crt",
                                            "etc/registry-trust/192.168.2.250/hosts.toml",
                                            "etc/registry-trust/192.168.2.250/ca.crt"}, "written where it reads"


@pytest.mark.fast
def test_a_broken_config_or_legacy_mirrors_are_refused_not_overwritten(tmp_path: Path) -> None:
    config = write_config(tmp_path, "version = 2\n[plugins\n")
    with pytest.raises(ConfigPathError, match="cannot read"):
        plan_config_path(tmp_path)
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
                      '  endpoint = ["https://mirror.example"]\n')
    with pytest.raises(ConfigPathError, match="Move each mirror into"):
        plan_config_path(tmp_path)


def test_containerd_versions_are_read_from_the_binary_or_not_guessed() -> None:
    """Runs this machine's containerd (not a fast test)."""
    assert parse_version("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3") == (
        1, 6, "1.6.20~ds1")
    assert parse_version("containerd github.com/containerd/containerd/v2 v2.0.4 1a43cb6") == (2, 0, "2.0.4")
    assert parse_version("containerd containerd.io 1.7.27 05044ec") == (1, 7, "1.7.27")
    here = containerd_version(Path("/"))  # this machine's Debian containerd, asked by running it
    assert here.major == 1 and here.text.startswith("1.6.") and "--version" in here.how
    unknown = containerd_version(Path("/some/node/root"))
    assert unknown.major is None and "cannot tell, assuming 1.x" in unknown.describe()
