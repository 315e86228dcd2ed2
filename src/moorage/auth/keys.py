"""Token signing keys: one ES256 key kept in the metadata store, public keys cached per process.

The key is created once (before workers fork, and again atomically if a store somehow lacks one), so
every worker and replica signs and verifies with the same key. Its private half is sealed with the
server's secret key (``moorage.auth.sealing``), which the database never holds. Verification finds the
public key by the token's ``kid`` in a per-process cache: a pull never touches the database to check
its token. Adding or burning a key is announced (``moorage.meta.changes``): every process forgets the keys
it holds, so a burned key verifies nothing anywhere once its deletion commits.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any

from moorage.auth.sealing import Sealer
from moorage.meta.changes import SIGNING_KEYS
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


def new_signing_key(sealer: Sealer) -> SigningKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    kid = key_id(public)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SigningKey(
        kid=kid, algorithm=ALGORITHM, private_pem=sealer.seal(pem, kid),
        public_pem=public.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode())


class KeyRing:
    def __init__(self, identity: IdentityModel, sealer: Sealer) -> None:
        self.identity = identity
        self.sealer = sealer
        self._lock = threading.Lock()
        self._signing: tuple[str, Any] | None = None
        self._public: dict[str, Any] = {}
        self._version: int | None = None

    def version(self) -> int:
        """The signing keys' version (``moorage.meta.changes``); keys held under an older one are forgotten.
        Caches built on the keys (verified tokens) check it too."""
        version = self.identity.store.changes.version(SIGNING_KEYS)
        if version != self._version:
            with self._lock:
                self._signing, self._public, self._version = None, {}, version
        return version

    def ensure(self) -> tuple[str, int]:
        """Make sure the store holds a sealed signing key that opens with this secret key; returns its kid and
        how many keys an older version had stored in the clear. Those are burned, not sealed: whoever copied
        the database before could sign with them, so they are deleted and a new key made in their place."""
        burned = [key.kid for key in self.identity.signing_keys() if not Sealer.is_sealed(key.private_pem)]
        if burned:
            self.identity.delete_signing_keys(burned)
        return self.signing_key()[0], len(burned)

    def signing_key(self) -> tuple[str, Any]:
        self.version()
        if self._signing is None:
            with self._lock:
                if self._signing is None:
                    from cryptography.hazmat.primitives import serialization

                    stored = self.identity.current_signing_key() or \
                        self.identity.add_signing_key_if_none(new_signing_key(self.sealer))
                    pem = self.sealer.open(stored.private_pem, stored.kid)
                    private = serialization.load_pem_private_key(pem, password=None)
                    self._signing = (stored.kid, private)
        return self._signing

    def public_key(self, kid: str) -> Any | None:
        """The public key for ``kid`` (cached; a miss reads the store once), or None for an unknown kid."""
        self.version()
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
