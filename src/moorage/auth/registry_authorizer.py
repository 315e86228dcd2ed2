"""The registry's authorizer: bearer tokens (checked without the database), Basic credentials, anonymous.

No valid credentials -> 401 UNAUTHORIZED with the token challenge (carrying the scope the request
needed); authenticated but not allowed -> 403 DENIED. An anonymous caller lacking access gets the 401,
so clients know to log in.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from moorage.auth import rbac
from moorage.auth.authenticate import LoginRefused, LoginThrottled
from moorage.auth.context import AuthContext
from moorage.auth.grants import Scope
from moorage.auth.tokens import InvalidToken, granted_scopes
from moorage.core.errors import Denied, Throttled
from moorage.core.reference import project_of
from moorage.registry.access import Access
from moorage.registry.authorizer import Principal
from moorage.registry.errors import Challenge


def decode_basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def base_url(auth: AuthContext, request: Request) -> str:
    if auth.settings.public_url:
        return auth.settings.public_url.rstrip("/")
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def challenge(auth: AuthContext, request: Request, needed: list[Access], error: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{base_url(auth, request)}/service/token",service="{auth.settings.token_service}"'
    scopes = " ".join(a.scope() for a in needed if not a.optional)
    if scopes:
        value += f',scope="{scopes}"'
    if error:
        value += f',error="{error}"'
    return {"WWW-Authenticate": value}


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


class TokenAuthorizer:
    def __init__(self, auth: AuthContext) -> None:
        self.auth = auth

    async def authorize(self, request: Request, needed: list[Access]) -> Principal:
        auth = self.auth
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            try:
                claims = auth.codec.verify(value.strip())
            except InvalidToken as exc:
                raise Challenge(f"{exc}; request a new token", headers=challenge(
                    auth, request, needed, error="invalid_token")) from None
            if not await auth.standing.holds(claims):
                raise Challenge("the token's account was disabled or deleted, or its password or secret changed "
                                   "since the token was issued; log in again",
                                   headers=challenge(auth, request, needed, error="invalid_token"))
            name, granted = str(claims.get("sub") or ""), granted_scopes(claims)
        elif scheme == "basic":
            credentials = decode_basic(value)
            if credentials is None:
                raise Challenge("malformed Basic credentials", headers=challenge(auth, request, needed))
            try:
                subject = await auth.authenticator.login(*credentials, client_address(request))
            except LoginRefused:
                raise Challenge("invalid username or password", headers=challenge(auth, request, needed)) \
                    from None
            except LoginThrottled:
                raise Throttled("too many failed logins; wait a few minutes and try again") from None
            name, granted = subject.name, await self._grant(subject, needed)
        else:
            if not needed:
                raise Challenge(headers=challenge(auth, request, needed))
            name, granted = "", await self._grant(rbac.ANONYMOUS, needed)
        missing = [a for a in needed if not a.optional and
                   not all(f"{a.type}:{a.name}:{x}" in granted for x in a.actions)]
        if missing:
            message = await auth.store.query(self._explain, missing[0], granted)
            if not name:
                raise Challenge(message, headers=challenge(auth, request, needed))
            raise Denied(message)
        return Principal(name=name, granted=granted)

    async def _grant(self, subject: rbac.Subject, needed: list[Access]) -> frozenset[str]:
        scopes = [Scope(a.type, a.name, a.actions) for a in needed]
        access = await self.auth.store.query(self.auth.granter.grant, subject, scopes)
        return frozenset(f"{e['type']}:{e['name']}:{x}" for e in access for x in e["actions"])  # type: ignore[attr-defined]

    def _explain(self, access: Access, granted: frozenset[str]) -> str:
        """A message that says what to fix (the failure path may read the store; the success path never does)."""
        action = next(x for x in access.actions if f"{access.type}:{access.name}:{x}" not in granted)
        if access.type == "repository":
            project = project_of(access.name)
            if project is None:
                return (f"repository {access.name} is not in a project: every repository lives in a project, "
                        f"as <project>/{access.name}")
            if self.auth.projects.by_name(project) is None:
                return (f"project {project} does not exist: an administrator must create it before "
                        f"{access.name} can be used")
        return f"unauthorized to access {access.type}: {access.name}, action: {action}"
