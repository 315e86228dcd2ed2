"""Hashing and comparing secrets: Argon2 for passwords and robot secrets, constant time everywhere."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106's second recommended option scaled to a server answering many logins: ~20 ms per hash.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_dummy_hash: str | None = None

_ALPHABET = string.ascii_letters + string.digits


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def burn_verification(secret: str) -> None:
    """Spend the time a real verification takes, so an unknown account answers as slowly as a known one."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(generate_secret())
    verify_secret(_dummy_hash, secret)


def generate_secret(length: int = 32) -> str:
    """Letters and digits only: robot secrets end up in shells, YAML and CI variables unquoted."""
    while True:
        value = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if password_problem(value) is None:
            return value


def fingerprint(secret: str) -> str:
    """A one-way digest for cache keys and stored refresh tokens (never the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def password_problem(password: str) -> str | None:
    """Harbor's rule: 8-128 characters with at least one upper-case letter, one lower-case letter and a digit."""
    if not 8 <= len(password) <= 128:
        return "the password must be 8 to 128 characters long"
    if not (re.search(r"[A-Z]", password) and re.search(r"[a-z]", password) and re.search(r"[0-9]", password)):
        return "the password must contain at least one upper-case letter, one lower-case letter and one digit"
    return None
