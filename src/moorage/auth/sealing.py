"""The server's secret key, kept outside the metadata database, and the secrets it seals inside it.

The token signing key lives in the database so that every worker and replica signs with the same key;
sealed (AES-256-GCM) with a key that does not, a copied database alone signs nothing. The secret key
is given as a setting (``secret_key``, base64 of 32 bytes: for replicas, from a secret manager), or
read from a file beside the data (``<data_dir>/secret.key``, 0600), made on the first start.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

from moorage.settings import Settings, SettingsError

SEALED_PREFIX = "sealed:v1:"
KEY_BYTES = 32
_NONCE_BYTES = 12


class SealBroken(SettingsError):
    """A sealed value cannot be opened with this secret key: another key sealed it, or it was altered."""


def key_file(settings: Settings) -> Path:
    return settings.secret_key_file or settings.data_dir / "secret.key"


def _decode(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SettingsError(f"the secret key from {source} must be {KEY_BYTES} random bytes in base64 "
                            "(e.g. the output of `openssl rand -base64 32`)")
    return key


def ensure_secret_key(settings: Settings) -> bool:
    """Make the key file on the first start (unless the key is given as a setting); True when made."""
    if settings.secret_key:
        return False
    path = key_file(settings)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True


def load_secret_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return _decode(settings.secret_key, "secret_key (MOORAGE_SECRET_KEY)")
    path = key_file(settings)
    try:
        return _decode(path.read_text(), str(path))
    except FileNotFoundError:
        raise SettingsError(f"the secret key file {path} is missing: restore it from the backup of the "
                            "data directory, or set secret_key_file (MOORAGE_SECRET_KEY_FILE) to it") from None


class Sealer:
    """Seals and opens secrets kept in the database; ``context`` (e.g. a key id) is bound in, so a sealed
    value cannot be moved to another row. The key is read on first use: the first start makes it only
    after the server's context exists, and a registry without authentication never needs it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key: bytes | None = None
        self.source = "secret_key (MOORAGE_SECRET_KEY)" if settings.secret_key else str(key_file(settings))

    def _cipher(self) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if self._key is None:
            self._key = load_secret_key(self._settings)
        return AESGCM(self._key)

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, plaintext, context.encode())
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, value: str, context: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        if not self.is_sealed(value):
            raise SealBroken("a secret in the database is not sealed")
        raw = base64.b64decode(value[len(SEALED_PREFIX):])
        try:
            return self._cipher().decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())  # type: ignore[no-any-return]
        except InvalidTag:
            raise SealBroken(
                f"the token signing key in the database was sealed with another secret key than {self.source}: "
                "restore the original key file (it is part of the data directory's backup), or give every "
                "replica the same secret_key (MOORAGE_SECRET_KEY)") from None

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(SEALED_PREFIX)
