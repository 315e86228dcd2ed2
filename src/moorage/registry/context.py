"""The adapters' view of a request: the process's services, and registry events told as they happen."""

from __future__ import annotations

from starlette.requests import Request

from moorage.core.events import Event
from moorage.services import Services


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def emit(request: Request, principal_name: str, action: str, resource_type: str, reference: str,
               digest: str | None) -> None:
    client = request.client.host if request.client else None
    await services(request).events.emit(Event(action, resource_type, request.path_params["name"], reference,
                                               digest, principal_name, client))
