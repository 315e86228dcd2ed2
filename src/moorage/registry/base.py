"""``/v2/``: the API version check every client starts with (and where logins are verified)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from moorage.registry.authorizer import Principal


async def get(request: Request, principal: Principal) -> Response:
    return JSONResponse({})


HANDLERS = {"GET": get, "HEAD": get}
