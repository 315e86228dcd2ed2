"""``moorage node-config`` flags as a DaemonSet uses them: one CA source, ``--restart`` only with
``--apply`` and only where this machine's systemd can do it, and fingerprints in every usual spelling."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from moorage.cli.main import app
from moorage.node.ca_pin import PinError, parse_fingerprint, pem_fingerprint
from moorage.node.runtimes.activate import activate
from tests.node.test_runtime_config import CA_PEM

pytestmark = pytest.mark.fast
REGISTRY = "192.168.2.250:443"


def node_config(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["node-config", "--runtime", "containerd", "--registry", REGISTRY, *args])
    return result.exit_code, " ".join(result.output.split())


def test_restart_is_refused_for_a_node_under_another_root_after_writing(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text(CA_PEM)
    code, out = node_config("--ca-file", str(ca), "--apply", "--restart", "--root", str(tmp_path / "node"))
    assert code == 1 and "the runtime was not restarted" in out and "systemctl restart containerd" in out
    assert (tmp_path / "node/etc/containerd/config.toml").is_file(), "the files are written first"

    code, out = node_config("--ca-file", str(ca), "--apply", "--restart", "--root", str(tmp_path / "node"))
    assert code == 0 and "nothing changed, nothing to restart" in out, "a second run has nothing to restart"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, out = node_config("--ca-file", "x.crt", "--restart", "--root", str(tmp_path))
    assert code == 2 and "--restart needs --apply" in out
    code, out = node_config("--ca-file", "x.crt", "--ca-fingerprint", "sha256:" + "a" * 64, "--root", str(tmp_path))
    assert code == 2 and "give one CA source" in out
    code, out = node_config("--ca-fingerprint", "sha256:abc", "--root", str(tmp_path))
    assert code == 2 and "is not a SHA-256 fingerprint" in out


def test_fingerprints_in_every_usual_spelling() -> None:
    pinned = pem_fingerprint(CA_PEM)
    hex_digits = pinned.removeprefix("sha256:")
    colons = ":".join(hex_digits[i:i + 2] for i in range(0, 64, 2)).upper()
    for spelling in (pinned, hex_digits, f"SHA256:{colons}", colons, f"  {pinned.upper()}  "):
        assert parse_fingerprint(spelling) == pinned
    with pytest.raises(PinError):
        parse_fingerprint("md5:" + hex_digits)


def test_activation_only_through_this_machines_systemd(tmp_path: Path) -> None:
    assert activate("", Path("/")).ok
    elsewhere = activate("systemctl restart containerd", tmp_path)
    assert not elsewhere.ran and "run `systemctl restart containerd` on the node itself" in elsewhere.message
