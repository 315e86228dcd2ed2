"""The token signing key is sealed with a secret key the database does not hold: a copied database signs nothing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.moorage import MoorageServer
from tests.support.procs import free_port


def token(server: MoorageServer) -> str:
    r = httpx.get(f"{server.url}/service/token", params={"service": "moorage-registry"},
                  auth=("admin", "Admin-Passw0rd-for-tests"))
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def database_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("moorage.db*") if p.is_file())


def test_the_database_holds_no_usable_private_key(tmp_path: Path) -> None:
    server = MoorageServer(tmp_path / "data")
    server.start()
    try:
        token(server)
        with sqlite3.connect(server.data_dir / "moorage.db") as db:
            (sealed,) = db.execute("SELECT private_pem FROM signing_keys").fetchone()
        assert sealed.startswith("sealed:v1:")
        assert b"PRIVATE KEY" not in database_bytes(server.data_dir)
        key_file = server.data_dir / "secret.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    finally:
        server.stop()
    # The database copied elsewhere, without the secret key beside it: the server refuses to start
    # rather than signing with a key it cannot open, and says what to do.
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in server.data_dir.glob("moorage.db*"):
        shutil.copy(path, copy / path.name)
    result = subprocess.run([sys.executable, "-m", "moorage.cli.main", "serve", "--data-dir", str(copy),
                             "--listen", f"127.0.0.1:{free_port()}", "--plain-http"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sealed with another secret key" in result.stderr and "MOORAGE_SECRET_KEY" in result.stderr


def test_a_key_stored_in_the_clear_by_an_older_version_is_burned_at_start(tmp_path: Path) -> None:
    server = MoorageServer(tmp_path / "data")
    server.start()
    before = token(server)
    server.stop()
    kid, private = server.signing_key()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                                serialization.NoEncryption()).decode()
    with sqlite3.connect(server.data_dir / "moorage.db") as db:
        db.execute("UPDATE signing_keys SET private_pem = ? WHERE kid = ?", (pem, kid))
    assert b"PRIVATE KEY" in database_bytes(server.data_dir)
    server.start()
    try:
        assert "held 1 token signing key(s) in the clear" in server.log()
        assert b"PRIVATE KEY" not in database_bytes(server.data_dir), "no trace left in the database's files"
        assert server.signing_key()[0] != kid
        # Whoever copied the database before could sign with that key: what it signed is refused...
        r = httpx.get(f"{server.url}/v2/", headers={"Authorization": f"Bearer {before}"})
        assert r.status_code == 401
        # ...and clients simply log in again.
        assert httpx.get(f"{server.url}/v2/", headers={"Authorization": f"Bearer {token(server)}"}).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ="])
def test_a_bad_secret_key_setting_stops_the_start(tmp_path: Path, value: str) -> None:
    result = subprocess.run([sys.executable, "-m", "moorage.cli.main", "serve", "--data-dir", str(tmp_path),
                             "--listen", f"127.0.0.1:{free_port()}", "--plain-http"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "MOORAGE_SECRET_KEY": value})
    assert result.returncode == 2
    assert "must be 32 random bytes in base64" in result.stderr and value not in result.stderr

