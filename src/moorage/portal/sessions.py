"""Portal sessions: a random token in an HttpOnly cookie, its SHA-256 in the metadata store.

The store's ``refresh_tokens`` table already holds exactly what a session needs (the account by id and
credential generation, an expiry, only a hash of the token), under a service name of the portal's own,
which the token service never accepts as a refresh token for the registry. So every replica sees every
session, a logout ends it everywhere, and a password change or disable ends every session of the account
(its generation moves on). The CSRF token of a session is an HMAC of the session token: nothing more to
store, and it cannot be derived without the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from moorage.auth import rbac
from moorage.auth.authenticate import account_of
from moorage.auth.context import AuthContext
from moorage.auth.secrets import fingerprint
from moorage.meta.identity import AccountRef
from moorage.meta.schema import refresh_tokens

#: The ``service`` of a portal session's row; never the registry's token service.
SERVICE = "moorage-portal-session"
COOKIE = "moorage_session"
#: Login happens before any session: its form is protected by a double-submit cookie instead.
LOGIN_COOKIE = "moorage_login_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    token: str
    subject: rbac.Subject

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"moorage-portal-csrf", hashlib.sha256).hexdigest()


def _hash(token: str) -> str:
    return fingerprint(f"portal:{token}")


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, secure=secure(request),
                        samesite="strict" if name == COOKIE else "lax")


async def open_session(auth: AuthContext, subject: rbac.Subject, lifetime_seconds: float) -> str:
    account = account_of(subject)
    assert account is not None, "only signed-in accounts get a session"
    token = secrets.token_urlsafe(32)
    expires_at = time.time() + lifetime_seconds
    await auth.store.run(auth.identity.add_refresh_token, _hash(token), account, SERVICE, expires_at)
    return token


async def current(request: Request, auth: AuthContext) -> Session | None:
    """The session the request's cookie names, with its account re-loaded (None: no, expired or dead session)."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 100:
        return None
    account: AccountRef | None = await auth.store.query(auth.identity.refresh_token_account, _hash(token), SERVICE)
    if account is None:
        return None
    subject = await auth.store.query(auth.authenticator.subject_for_account, account)
    if subject is None or subject.kind != "user":
        return None
    return Session(token, subject)


def _delete(auth: AuthContext, token_hash: str) -> None:
    with auth.store.write() as conn:
        conn.execute(refresh_tokens.delete().where(sa.and_(refresh_tokens.c.token_hash == token_hash,
                                                           refresh_tokens.c.service == SERVICE)))


async def close_session(auth: AuthContext, token: str) -> None:
    await auth.store.run(_delete, auth, _hash(token))


def csrf_ok(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)
