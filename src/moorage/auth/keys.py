"""Token signing keys: one ES256 key kept in the metadata store, public keys cached per process.

The key is created once (before workers fork, and again atomically if a store somehow lacks one), so
every worker and replica signs and verifies with the same key. Verification finds the public key by
the token's ``kid`` in a per-process cache: a pull never touches the database to check its token.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any

from moorage.meta.identity import IdentityModel, SigningKey

ALGORITHM = "ES256"

# cryptography (and PyJWT on top of it, in moorage.auth.tokens) is imported where a key is first used:
# a worker of a registry without authentication never loads it, ~12 MB less resident per worker.


def key_id(public_key: Any) -> str:
    """libtrust-style key id (as Docker's token spec shows): SHA-256 of the DER key, 240 bits, base32,
    in groups of four."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i:i + 4] for i in range(0, 48, 4))


def new_signing_key() -> SigningKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    return SigningKey(
        kid=key_id(public), algorithm=ALGORITHM,
        private_pem=private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode(),
        public_pem=public.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode())


class KeyRing:
    def __init__(self, identity: IdentityModel) -> None:
        self.identity = identity
        self._lock = threading.Lock()
        self._signing: tuple[str, Any] | None = None
        self._public: dict[str, Any] = {}

    def ensure(self) -> str:
        """Make sure the store holds a signing key; returns its kid."""
        return self.signing_key()[0]

    def signing_key(self) -> tuple[str, Any]:
        if self._signing is None:
            with self._lock:
                if self._signing is None:
                    from cryptography.hazmat.primitives import serialization

                    stored = self.identity.current_signing_key() or \
                        self.identity.add_signing_key_if_none(new_signing_key())
                    private = serialization.load_pem_private_key(stored.private_pem.encode(), password=None)
                    self._signing = (stored.kid, private)
        return self._signing

    def public_key(self, kid: str) -> Any | None:
        """The public key for ``kid`` (cached; a miss reads the store once), or None for an unknown kid."""
        key = self._public.get(kid)
        if key is None:
            found = self.identity.public_key(kid)
            if found is None or found[0] != ALGORITHM:
                return None
            from cryptography.hazmat.primitives import serialization

            key = serialization.load_pem_public_key(found[1].encode())
            with self._lock:
                self._public[kid] = key
        return key
