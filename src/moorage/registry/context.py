"""What every registry handler needs, built once per worker process and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from moorage.blobs.driver import BlobDriver
from moorage.core.events import Event, EventSink
from moorage.core.uploads import UploadService
from moorage.meta.registry import RegistryModel
from moorage.meta.store import MetaStore
from moorage.registry.authorizer import Authorizer
from moorage.settings import Settings


@dataclass
class RegistryContext:
    settings: Settings
    store: MetaStore
    model: RegistryModel
    driver: BlobDriver
    uploads: UploadService
    authorizer: Authorizer
    events: EventSink

    async def emit(self, request: Request, principal_name: str, action: str, resource_type: str,
                   reference: str, digest: str | None) -> None:
        client = request.client.host if request.client else None
        await self.events.emit(Event(action, resource_type, request.path_params["name"], reference, digest,
                                     principal_name, client))


def registry(request: Request) -> RegistryContext:
    return request.app.state.registry  # type: ignore[no-any-return]
