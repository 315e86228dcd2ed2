"""The CA and server certificate: SANs, extensions, file modes, reissue rules, concurrent callers."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from moorage.tls.addresses import local_ip_addresses
from moorage.tls.ca import load_ca, new_key
from moorage.tls.certs import (
    RENEW_BEFORE,
    build_server_certificate,
    certificate_names,
    ensure_server_certificate,
    renew_server_certificate,
    server_paths,
)
from tests.tls.tls_support import SRC, require_tool, run

HOSTNAMES = ["registry.example", "Harbor.Corp.Example."]
IPS = ["192.168.2.250", "10.1.2.3", "fd00:1::5"]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture()
def issued(tmp_path: Path):  # type: ignore[no-untyped-def]
    return ensure_server_certificate(tmp_path, HOSTNAMES, IPS)


def test_sans_cover_every_name_and_address(issued) -> None:  # type: ignore[no-untyped-def]
    dns, ips = certificate_names(load(issued.cert))
    assert {"registry.example", "harbor.corp.example", "localhost"} <= set(dns)
    assert {"192.168.2.250", "10.1.2.3", "fd00:1::5", "127.0.0.1", "::1"} <= set(ips)
    # The host's own interface addresses too: a node may reach it by any of them.
    assert set(local_ip_addresses()) <= set(ips)


def test_extensions_are_what_go_and_openssl_expect(issued) -> None:  # type: ignore[no-untyped-def]
    leaf, ca = load(issued.cert), load(issued.ca)
    ext = leaf.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert ExtendedKeyUsageOID.SERVER_AUTH in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    ca_bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_bc.critical and ca_bc.value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    now = dt.datetime.now(dt.UTC)
    assert 3640 <= (ca.not_valid_after_utc - now).days <= 3650
    assert 360 <= (leaf.not_valid_after_utc - now).days <= 365
    leaf.verify_directly_issued_by(ca)


def test_key_files_are_private_and_chain_is_leaf_then_ca(issued, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert (issued.key.stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "tls" / "ca.key").stat().st_mode & 0o777) == 0o600
    chain = x509.load_pem_x509_certificates(issued.chain.read_bytes())
    assert [c.serial_number for c in chain] == [load(issued.cert).serial_number,
                                                load(issued.ca).serial_number]
    key = serialization.load_pem_private_key(issued.key.read_bytes(), password=None)
    assert key.public_key() == load(issued.cert).public_key()
    assert b"BEGIN PRIVATE KEY" in issued.key.read_bytes()  # PKCS#8, the only format Granian loads


def test_openssl_verifies_and_shows_the_sans(issued) -> None:  # type: ignore[no-untyped-def]
    openssl = require_tool("openssl")
    verify = run([openssl, "verify", "-CAfile", str(issued.ca), str(issued.cert)])
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.strip() == f"{issued.cert}: OK"
    for name in ("registry.example", "localhost"):
        assert run([openssl, "verify", "-CAfile", str(issued.ca), "-verify_hostname", name,
                    str(issued.cert)]).returncode == 0
    for ip in ("192.168.2.250", "127.0.0.1"):
        assert run([openssl, "verify", "-CAfile", str(issued.ca), "-verify_ip", ip,
                    str(issued.cert)]).returncode == 0
    wrong = run([openssl, "verify", "-CAfile", str(issued.ca), "-verify_ip", "192.168.2.251",
                 str(issued.cert)])
    assert wrong.returncode != 0 and "IP address mismatch" in wrong.stdout + wrong.stderr
    text = run([openssl, "x509", "-in", str(issued.cert), "-noout", "-text"]).stdout
    assert "X509v3 Subject Alternative Name" in text
    for needle in ("DNS:registry.example", "DNS:localhost", "IP Address:192.168.2.250",
                   "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "TLS Web Server Authentication"):
        assert needle in text, needle


def test_ensure_is_idempotent_and_adds_missing_names(tmp_path: Path) -> None:
    first = ensure_server_certificate(tmp_path, ["a.example"], [])
    serial, ca_pem = load(first.cert).serial_number, first.ca.read_bytes()
    ensure_server_certificate(tmp_path, ["a.example"], [])
    assert load(first.cert).serial_number == serial
    ensure_server_certificate(tmp_path, ["b.example"], ["192.168.2.250"])
    dns, ips = certificate_names(load(first.cert))
    assert load(first.cert).serial_number != serial
    assert {"a.example", "b.example"} <= set(dns) and "192.168.2.250" in ips
    assert first.ca.read_bytes() == ca_pem


def test_hostname_that_is_an_ip_becomes_an_ip_san(tmp_path: Path) -> None:
    paths = ensure_server_certificate(tmp_path, ["192.168.2.250"], [], include_local=False)
    dns, ips = certificate_names(load(paths.cert))
    assert "192.168.2.250" in ips and "192.168.2.250" not in dns
    assert dns == ["localhost"] and ips == ["192.168.2.250", "127.0.0.1", "::1"]


@pytest.mark.parametrize("bad", ["bad_name.example", "-x.example", "a..b", ""])
def test_malformed_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        ensure_server_certificate(tmp_path, [bad], [])
    with pytest.raises(ValueError, match="not an IP address"):
        ensure_server_certificate(tmp_path, [], ["300.1.1.1"])


def test_certificate_near_expiry_is_reissued(tmp_path: Path) -> None:
    paths = ensure_server_certificate(tmp_path, ["a.example"], [])
    ca = load_ca(tmp_path)
    assert ca is not None
    key = new_key()
    issued_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=365) + RENEW_BEFORE - dt.timedelta(days=1)
    old = build_server_certificate(ca, key, ["a.example", "old.example"], ["127.0.0.1"], now=issued_at)
    paths.cert.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    ensure_server_certificate(tmp_path, ["a.example"], [])
    fresh = load(paths.cert)
    assert fresh.serial_number != old.serial_number
    assert (fresh.not_valid_after_utc - dt.datetime.now(dt.UTC)).days >= 360
    assert "old.example" in certificate_names(fresh)[0]  # earlier SANs survive reissue


def test_renew_keeps_ca_changes_serial_and_key(tmp_path: Path) -> None:
    paths = ensure_server_certificate(tmp_path, ["a.example"], ["10.0.0.1"])
    before, ca_before, key_before = load(paths.cert), paths.ca.read_bytes(), paths.key.read_bytes()
    renew_server_certificate(tmp_path, ["new.example"], ["10.0.0.2"])
    after = load(paths.cert)
    assert paths.ca.read_bytes() == ca_before and paths.key.read_bytes() != key_before
    assert after.serial_number != before.serial_number
    dns, ips = certificate_names(after)
    assert {"a.example", "new.example"} <= set(dns) and {"10.0.0.1", "10.0.0.2"} <= set(ips)


def test_concurrent_processes_agree_on_one_ca_and_a_matching_key(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib\n"
        "from moorage.tls.certs import ensure_server_certificate\n"
        "p = ensure_server_certificate(pathlib.Path(sys.argv[1]), ['n%s.example' % sys.argv[2]], [])\n"
        "print(p.ca.read_text().strip().splitlines()[1])\n"
    )
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1  # one CA, whoever got there first
    paths = server_paths(tmp_path)
    leaf, ca = load(paths.cert), load(paths.ca)
    leaf.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    assert key.public_key() == leaf.public_key()
    # Every caller's name made it in: each reissue keeps the SANs already there.
    assert {f"n{i}.example" for i in range(8)} <= set(certificate_names(leaf)[0])
    assert not [p for p in (tmp_path / "tls").iterdir() if p.name.endswith(".tmp")]


def test_proc_fallback_finds_the_same_addresses_as_iproute2() -> None:
    from moorage.tls import addresses

    from_ip = addresses._from_iproute2()
    assert from_ip is not None, "iproute2 missing: apt-get install -y iproute2"
    usable = set(addresses.local_ip_addresses())
    # Without `ip`, /proc/net alone must still find every usable address.
    assert usable <= set(addresses._from_proc()) | set(addresses.LOOPBACK_IPS)
