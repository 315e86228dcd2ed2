"""First start: the ``admin`` account, the secret key and the token signing key exist before any worker serves."""

from __future__ import annotations

from collections.abc import Callable

from moorage.auth.keys import KeyRing
from moorage.auth.sealing import Sealer, ensure_secret_key, key_file
from moorage.auth.secrets import generate_secret, hash_secret
from moorage.meta.identity import IdentityModel
from moorage.meta.store import MetaStore
from moorage.settings import Settings

ADMIN = "admin"


def bootstrap(settings: Settings, store: MetaStore, announce: Callable[[str], None]) -> None:
    """Create ``admin`` (password from settings, else generated and announced once) and the signing key."""
    identity = IdentityModel(store)
    if identity.user_by_name(ADMIN) is None:
        password = settings.admin_password or generate_secret(20)
        created = identity.create_user(ADMIN, hash_secret(password), realname="system admin", sysadmin=True,
                                       comment="created on first start")
        if created is not None and not settings.admin_password:
            announce(f"moorage: created user 'admin' with password {password} (shown once; change it with "
                     "PUT /api/v2.0/users/1/password)")
    if ensure_secret_key(settings):
        announce(f"moorage: made the secret key {key_file(settings)}; it seals the token signing key in the "
                 "database: back it up with the data, and give replicas the same one")
    _, burned = KeyRing(identity, Sealer(settings)).ensure()
    if burned:
        # The deleted rows' bytes linger in the database's free space until it is rewritten.
        store.compact()
        announce(f"moorage: warning: the database held {burned} token signing key(s) in the clear (as versions "
                 "before 0.2 stored them); replaced them with a new key sealed by the secret key, and compacted "
                 "the database. Tokens and node credentials signed by the old key are no longer accepted: clients "
                 "log in again by themselves")
