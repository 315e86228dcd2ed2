"""``moorage init``, ``moorage tls show|renew|ca`` and ``moorage node-config`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tls.tls_support import moorage_cli, require_tool, run


def show(data_dir: Path) -> dict:  # type: ignore[type-arg]
    result = moorage_cli("tls", "show", "--data-dir", str(data_dir), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_init_creates_ca_and_certificate_and_says_what_they_cover(tmp_path: Path) -> None:
    result = moorage_cli("init", "--data-dir", str(tmp_path), "--hostname", "registry.example",
                         "--ip", "192.168.2.250", "--ip", "10.0.0.7")
    assert result.returncode == 0, result.stderr
    for needle in ("registry.example", "localhost", "192.168.2.250", "10.0.0.7", "127.0.0.1", "ca.crt"):
        assert needle in result.stdout, needle
    assert (tmp_path / "tls" / "ca.key").stat().st_mode & 0o777 == 0o600
    verify = run([require_tool("openssl"), "verify", "-CAfile", str(tmp_path / "tls" / "ca.crt"),
                  str(tmp_path / "tls" / "server.crt")])
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_show_json_lists_sans_issuer_expiry_and_fingerprint(tmp_path: Path) -> None:
    assert moorage_cli("init", "--data-dir", str(tmp_path), "--ip", "192.168.2.250").returncode == 0
    document = show(tmp_path)
    server = document["server"]
    assert "192.168.2.250" in server["ip_addresses"] and "127.0.0.1" in server["ip_addresses"]
    assert "localhost" in server["dns_names"]
    assert server["issuer"] == document["ca"]["subject"]
    assert 360 <= server["days_left"] <= 365 and document["ca"]["days_left"] >= 3640
    assert len(server["sha256_fingerprint"].split(":")) == 32
    assert document["files"]["chain"].endswith("server-chain.crt")
    human = moorage_cli("tls", "show", "--data-dir", str(tmp_path))
    assert human.returncode == 0 and "192.168.2.250" in human.stdout and "days left" in human.stdout


def test_renew_keeps_ca_changes_serial_adds_sans(tmp_path: Path) -> None:
    assert moorage_cli("init", "--data-dir", str(tmp_path), "--hostname", "old.example").returncode == 0
    before = show(tmp_path)
    result = moorage_cli("tls", "renew", "--data-dir", str(tmp_path), "--hostname", "new.example",
                         "--ip", "10.9.8.7")
    assert result.returncode == 0, result.stderr
    after = show(tmp_path)
    assert after["ca"]["sha256_fingerprint"] == before["ca"]["sha256_fingerprint"]
    assert after["server"]["serial"] != before["server"]["serial"]
    assert {"old.example", "new.example"} <= set(after["server"]["dns_names"])
    assert "10.9.8.7" in after["server"]["ip_addresses"]
    assert set(before["server"]["ip_addresses"]) <= set(after["server"]["ip_addresses"])


def test_tls_ca_prints_the_pem_for_nodes(tmp_path: Path) -> None:
    assert moorage_cli("init", "--data-dir", str(tmp_path)).returncode == 0
    result = moorage_cli("tls", "ca", "--data-dir", str(tmp_path))
    assert result.returncode == 0
    assert result.stdout == (tmp_path / "tls" / "ca.crt").read_text()
    assert result.stdout.startswith("-----BEGIN CERTIFICATE-----")


def test_missing_certificate_and_bad_input_fail_cleanly(tmp_path: Path) -> None:
    result = moorage_cli("tls", "show", "--data-dir", str(tmp_path / "empty"))
    assert result.returncode == 2 and "moorage init" in result.stderr and "Traceback" not in result.stderr
    bad = moorage_cli("init", "--data-dir", str(tmp_path), "--ip", "999.1.1.1")
    assert bad.returncode == 2 and "not an IP address" in bad.stderr and "Traceback" not in bad.stderr


def test_node_config_apply_writes_files_and_json_lists_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert moorage_cli("init", "--data-dir", str(data)).returncode == 0
    root = tmp_path / "node"
    result = moorage_cli("node-config", "--runtime", "containerd", "--registry", "192.168.2.250:5000",
                         "--data-dir", str(data), "--apply", "--root", str(root), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["applied"] is True and document["restart_needed"] is True
    for entry in document["files"]:
        assert Path(entry["path"]).read_text() == entry["content"]
    ca_file = root / "etc/containerd/certs.d/192.168.2.250:5000/ca.crt"
    assert ca_file.read_bytes() == (data / "tls" / "ca.crt").read_bytes()

    dry = moorage_cli("node-config", "--runtime", "docker", "--registry", "192.168.2.250:5000",
                      "--ca-file", str(data / "tls" / "ca.crt"), "--root", str(tmp_path / "dry"))
    assert dry.returncode == 0 and "dry run" in dry.stdout and not (tmp_path / "dry").exists()
    assert "certs.d/192.168.2.250:5000/ca.crt" in dry.stdout


def test_node_config_insecure_warns_why_not(tmp_path: Path) -> None:
    result = moorage_cli("node-config", "--runtime", "docker", "--registry", "192.168.2.250:443",
                         "--insecure", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "insecure-registries" in result.stdout
    assert "warning" in result.stderr and "impersonate" in result.stderr.replace("\n", " ")
    missing = moorage_cli("node-config", "--runtime", "docker", "--registry", "192.168.2.250:443",
                          "--ca-file", str(tmp_path / "nope.crt"))
    assert missing.returncode == 2 and "cannot read the CA" in missing.stderr
