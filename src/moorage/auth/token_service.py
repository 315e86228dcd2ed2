"""``/service/token``: the Docker registry token service (GET) and its OAuth2 form (POST).

GET authenticates with Basic credentials (or none: anonymous), POST with ``grant_type=password`` or
``grant_type=refresh_token``. Either way the token grants the requested scopes filtered by what the
caller may do; asking too much is never an error.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from moorage.auth import rbac
from moorage.auth.authenticate import LoginRefused, LoginThrottled, account_of
from moorage.auth.context import AuthContext
from moorage.auth.grants import parse_scopes
from moorage.auth.registry_authorizer import client_address, decode_basic
from moorage.auth.secrets import fingerprint
from moorage.auth.standing import account_claim
from moorage.core.errors import InvalidInput, Throttled, Unauthenticated
from moorage.registry import errors


class TokenRequestInvalid(InvalidInput):
    default_message = "invalid token request"


class OAuthRefused(Unauthenticated):
    """401 carrying both the registry error body and RFC 6749's ``error`` field, for either kind of client
    (rendered by ``oauth_refused``)."""

    oauth_error = "invalid_grant"


async def oauth_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthRefused)
    return JSONResponse({**errors.body(exc), "error": exc.oauth_error, "error_description": exc.message},
                        status_code=401)


def auth_context(request: Request) -> AuthContext:
    return request.app.state.services.auth  # type: ignore[no-any-return]


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _login(auth: AuthContext, request: Request, username: str, password: str,
                 refused: type[Unauthenticated]) -> rbac.Subject:
    try:
        return await auth.authenticator.login(username, password, client_address(request))
    except LoginRefused:
        raise refused("invalid username or password") from None
    except LoginThrottled:
        raise Throttled("too many failed logins; wait a few minutes and try again") from None


def _check_service(auth: AuthContext, service: str | None) -> None:
    if service and service != auth.settings.token_service:
        raise TokenRequestInvalid(f"this token service issues tokens for service {auth.settings.token_service!r}, "
                                  f"not {service!r}")


async def _token_body(auth: AuthContext, subject: rbac.Subject, scopes: list[str]) -> dict[str, Any]:
    access = await auth.store.query(auth.granter.grant, subject, parse_scopes(scopes))
    lifetime = auth.settings.token_lifetime_minutes * 60
    account = account_of(subject)
    issued = auth.codec.issue(subject.name, access, lifetime, **(account_claim(account) if account else {}))
    return {"token": issued.token, "access_token": issued.token, "expires_in": issued.expires_in,
            "issued_at": _rfc3339(issued.issued_at)}


async def _refresh_token(auth: AuthContext, subject: rbac.Subject) -> str:
    account = account_of(subject)
    assert account is not None, "refresh tokens are issued to accounts only"
    token = secrets.token_urlsafe(32)
    expires = time.time() + auth.settings.refresh_token_days * 86400
    await auth.store.run(auth.identity.add_refresh_token, fingerprint(token), account,
                         auth.settings.token_service, expires)
    return token


async def get_token(request: Request) -> Response:
    auth = auth_context(request)
    params = request.query_params
    _check_service(auth, params.get("service"))
    subject = rbac.ANONYMOUS
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        credentials = decode_basic(value)
        if credentials is None:
            raise Unauthenticated("malformed Basic credentials")
        subject = await _login(auth, request, *credentials, refused=Unauthenticated)
    body = await _token_body(auth, subject, params.getlist("scope"))
    if params.get("offline_token", "").lower() == "true" and not subject.anonymous:
        body["refresh_token"] = await _refresh_token(auth, subject)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def post_token(request: Request) -> Response:
    auth = auth_context(request)
    # The OAuth2 form is urlencoded; parsed here rather than through Starlette's form support, which
    # would pull in python-multipart for one small body.
    body = await request.body()
    if len(body) > 64 * 1024:
        raise TokenRequestInvalid("the token request is too large")
    try:
        items = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise TokenRequestInvalid("the token request is not valid UTF-8") from None
    fields = dict(items)
    _check_service(auth, fields.get("service"))
    grant_type = fields.get("grant_type", "")
    scopes = [v for k, v in items if k == "scope"]
    refresh: str | None = None
    if grant_type == "password":
        username, password = fields.get("username", ""), fields.get("password", "")
        if not username:
            raise TokenRequestInvalid("grant_type=password needs username and password")
        subject = await _login(auth, request, username, password, refused=OAuthRefused)
        if fields.get("access_type") == "offline":
            refresh = await _refresh_token(auth, subject)
    elif grant_type == "refresh_token":
        refresh = fields.get("refresh_token", "")
        account = await auth.store.query(auth.identity.refresh_token_account, fingerprint(refresh),
                                         auth.settings.token_service) if refresh else None
        found = await auth.store.query(auth.authenticator.subject_for_account, account) if account else None
        if found is None:
            raise OAuthRefused("the refresh token is unknown or expired, or its account was disabled or deleted or "
                               "its password or secret changed since; log in again")
        subject = found
    else:
        raise TokenRequestInvalid("grant_type must be password or refresh_token")
    answer = await _token_body(auth, subject, scopes)
    answer["scope"] = " ".join(scopes)
    if refresh is not None:
        answer["refresh_token"] = refresh
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [Route("/service/token", get_token, methods=["GET"]),
            Route("/service/token", post_token, methods=["POST"])]
