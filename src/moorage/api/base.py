"""What every management API operation shares: errors in Harbor's shape, the call (who asks, with what
store), Basic authentication, and Harbor's way of writing times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, ParamSpec, TypeVar

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from moorage.api.params import ParamError, text_problem
from moorage.auth import rbac
from moorage.auth.authenticate import LoginRefused, LoginThrottled
from moorage.auth.context import AuthContext
from moorage.auth.registry_authorizer import client_address, decode_basic
from moorage.core import errors as domain

if TYPE_CHECKING:
    from moorage.services import Services

P = ParamSpec("P")
T = TypeVar("T")


# -- errors ------------------------------------------------------------------------------------------
class ApiError(Exception):
    """An error of the management API, rendered as Harbor's ``{"errors":[{"code","message"}]}``."""

    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def headers(self) -> dict[str, str]:
        return {}

    def response(self) -> Response:
        return JSONResponse({"errors": [{"code": self.code, "message": self.message}]}, status_code=self.status,
                            headers=self.headers())


class BadRequest(ApiError):
    code, status = "BAD_REQUEST", 400


class Unauthorized(ApiError):
    code, status = "UNAUTHORIZED", 401


class Forbidden(ApiError):
    code, status = "FORBIDDEN", 403


class NotFound(ApiError):
    code, status = "NOT_FOUND", 404


class MethodNotAllowed(ApiError):
    code, status = "METHOD_NOT_ALLOWED", 405

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class Conflict(ApiError):
    code, status = "CONFLICT", 409


class PreconditionFailed(ApiError):
    code, status = "PRECONDITION", 412


class TooManyRequests(ApiError):
    code, status = "TOO_MANY_REQUEST", 429


class Unavailable(ApiError):
    code, status = "UNAVAILABLE", 503


class InternalError(ApiError):
    code, status = "UNKNOWN", 500


class InsufficientStorage(ApiError):
    code, status = "INSUFFICIENT_STORAGE", 507


#: Each kind of domain error as the management API answers it (the first class it is an instance of).
_DOMAIN: list[tuple[type[domain.DomainError], type[ApiError]]] = [
    # Harbor answers 412 PRECONDITION when an immutable tag stops a delete or a move.
    (domain.TagImmutable, PreconditionFailed),
    (domain.InvalidInput, BadRequest), (domain.Missing, NotFound), (domain.Unauthenticated, Unauthorized),
    (domain.Denied, Forbidden), (domain.Throttled, TooManyRequests), (domain.Conflict, Conflict),
    (domain.StorageFull, InsufficientStorage), (domain.Unavailable, Unavailable),
]


def from_domain(exc: domain.DomainError) -> ApiError:
    kind = next((api for kind, api in _DOMAIN if isinstance(exc, kind)), InternalError)
    return kind(exc.message)


def explain(exc: ValidationError, where: str) -> str:
    """A pydantic refusal as one sentence naming each field and what is wrong with it."""
    problems = []
    for error in exc.errors():
        context = error.get("ctx") or {}
        if error["type"] == "value_error" and isinstance(context.get("error"), ParamError):
            problems.append(str(context["error"]))  # it names its field and says what to send
        else:
            field = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where} {field}: {error['msg']}" if field else f"{where}: {error['msg']}")
    return "; ".join(problems)


# -- the call ----------------------------------------------------------------------------------------
@dataclass
class Call:
    """One request as the handlers see it: who asks (``subject``) and the services to answer with."""

    request: Request
    auth: AuthContext
    subject: rbac.Subject

    @property
    def services(self) -> Services:
        services: Services = self.request.app.state.services
        return services

    def require(self, permitted: bool, what: str) -> None:
        """Refuse unless ``permitted``: 401 for anonymous callers (log in first), 403 otherwise."""
        if permitted:
            return
        if self.subject.anonymous:
            raise Unauthorized(f"authentication is required to {what}")
        raise Forbidden(f"{self.subject.name} is not allowed to {what}")

    def require_login(self) -> None:
        if self.subject.anonymous:
            raise Unauthorized("authentication is required")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking store work (writes, or reads that may wait on a lock), off the event loop."""
        return await self.auth.store.run(fn, *args, **kwargs)

    async def query(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A short read of the store."""
        return await self.auth.store.query(fn, *args, **kwargs)

    def client(self) -> str | None:
        return self.request.client.host if self.request.client else None


async def resolve_subject(request: Request, auth: AuthContext) -> rbac.Subject:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return rbac.ANONYMOUS
    credentials = decode_basic(value)
    # A name no database can look up (a NUL in it) is no account: refused like any unknown name.
    if credentials is None or text_problem(credentials[0]):
        raise Unauthorized("malformed Basic credentials")
    try:
        return await auth.authenticator.login(*credentials, client_address(request))
    except LoginRefused:
        raise Unauthorized("invalid username or password") from None
    except LoginThrottled:
        raise TooManyRequests("too many failed logins; wait a few minutes and try again") from None


# -- representation ----------------------------------------------------------------------------------
#: Harbor's zero time, for what never happened (an artifact never pulled).
NEVER = "0001-01-01T00:00:00.000Z"


def iso(ts: float | None) -> str:
    if ts is None:
        return NEVER
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts % 1 * 1000):03d}Z"
