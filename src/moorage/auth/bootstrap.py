"""First start: the ``admin`` account and the token signing key exist before any worker serves."""

from __future__ import annotations

from collections.abc import Callable

from moorage.auth.keys import KeyRing
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
    KeyRing(identity).ensure()
