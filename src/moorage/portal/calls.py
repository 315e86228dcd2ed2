"""The Harbor API's operations, called in-process on behalf of the signed-in user.

The portal never reads the store or decides a permission itself: it validates its inputs into the same
models the API's dispatcher builds (``moorage.api.dispatch``), runs the same handler with a ``Call`` for the
session's subject, and gets the same answer, or the same error, the API would give.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from moorage.api import app as _api_app  # noqa: F401  (imports every operation module, registering them)
from moorage.api.base import BadRequest, Call, explain, from_domain
from moorage.api.operations import OPERATIONS, Operation
from moorage.api.params import text_problem
from moorage.auth import rbac
from moorage.core.errors import DomainError

T = TypeVar("T")
_WHERE = {"path": "path parameter", "query": "query parameter", "headers": "header", "body": "body"}


def _operation(handler: Callable[..., Any]) -> Operation:
    found = next((op for op in OPERATIONS if op.handler is handler), None)
    assert found is not None, f"{getattr(handler, '__name__', handler)} is no API operation"
    return found


async def invoke(request: Request, subject: rbac.Subject, handler: Callable[..., Awaitable[T]],
                 **given: dict[str, Any] | BaseModel) -> T:
    """``handler`` (an ``@operation``) for ``subject``; ``given`` holds each input as the request would carry
    it (a dict of strings for path, query and headers) or as its model. Raises ``ApiError``."""
    op = _operation(handler)
    inputs: dict[str, BaseModel] = {}
    for where, model in op.inputs.items():
        value = given.get(where, {})
        if isinstance(value, BaseModel):
            inputs[where] = value
            continue
        for name, text in value.items():
            # As the dispatcher does: text no database can look up is refused before any handler sees it.
            problem = text_problem(text) if isinstance(text, str) and where != "body" else None
            if problem:
                raise BadRequest(f"the {name} parameter {problem}; send valid UTF-8 text without NUL")
        try:
            inputs[where] = model.model_validate(value)
        except ValidationError as exc:
            raise BadRequest(explain(exc, _WHERE[where])) from None
    auth = request.app.state.auth
    try:
        return await handler(Call(request, auth, subject), **inputs)
    except DomainError as exc:
        raise from_domain(exc) from None

