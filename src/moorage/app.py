"""The moorage ASGI application: one app serving the distribution API (and, later, the rest)."""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy.exc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Router

from moorage import logs
from moorage.api.app import create_api
from moorage.auth.audit_sink import AuditSink
from moorage.auth.context import AuthContext
from moorage.auth.registry_authorizer import TokenAuthorizer
from moorage.auth.token_service import routes as token_routes
from moorage.blobs.filesystem import FilesystemDriver
from moorage.core.events import BatchingSink
from moorage.core.schedule import Job, Scheduler
from moorage.core.uploads import UploadLimits, UploadService
from moorage.meta.registry import RegistryModel
from moorage.meta.store import MetaStore
from moorage.registry.authorizer import OpenAuthorizer
from moorage.registry.context import RegistryContext
from moorage.registry.errors import (
    InternalError,
    MetadataUnavailable,
    NotFound,
    RegistryError,
    StorageFull,
    Unsupported,
)
from moorage.registry.routes import routes
from moorage.settings import Settings, load_settings

log = logging.getLogger("moorage.app")


def build_context(settings: Settings) -> RegistryContext:
    store = MetaStore(settings.database)
    model = RegistryModel(store)
    driver = FilesystemDriver(settings.data_dir)
    auth = AuthContext.build(settings, store, model)
    authorizer = TokenAuthorizer(auth) if settings.auth_enabled else OpenAuthorizer()
    context = RegistryContext(settings=settings, store=store, model=model, driver=driver,
                              uploads=UploadService(store, model, driver, _upload_limits(settings)),
                              authorizer=authorizer,
                              events=BatchingSink(AuditSink(store, auth.audit).write))
    context.auth = auth  # type: ignore[attr-defined]  # the token service and /api/v2.0 share it
    return context


def _upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(settings.max_uploads_per_repository, settings.max_uploads_per_account,
                        settings.upload_ttl_hours)


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return exc.response(head=request.method == "HEAD")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: RegistryError
    if exc.status_code == 404:
        error = NotFound(f"{request.url.path} is not an endpoint of this registry")
    elif exc.status_code == 405:
        error = Unsupported(f"{request.method} is not supported on {request.url.path}")
    else:
        error = InternalError(str(exc.detail))
    return error.response(head=request.method == "HEAD")


async def _client_gone(request: Request, exc: Exception) -> Response:
    # Nobody is left to read an answer; 499 (as nginx logs it) tells operators the client hung up.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=499)


def _storage_full(exc: Exception) -> bool:
    """The disk (or quota) ran out under a blob write or a database commit."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    cause = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    return isinstance(cause, sqlite3.Error) and getattr(cause, "sqlite_errorname", "") == "SQLITE_FULL"


async def _storage_error(request: Request, exc: Exception) -> Response:
    # Not bugs to trace but the operator's to fix: one line saying so, with the driver's own error
    # rather than SQLAlchemy's rendering of it, which carries the statement.
    cause = getattr(exc, "orig", exc)
    if _storage_full(exc):
        log.warning("storage full during %s %s: %s", request.method, request.url.path, cause)
        return StorageFull().response(head=request.method == "HEAD")
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        log.warning("metadata database unavailable during %s %s: %s", request.method, request.url.path, cause)
        return MetadataUnavailable().response(head=request.method == "HEAD")
    raise exc


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return InternalError().response(head=request.method == "HEAD")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    logs.configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.registry = build_context(settings)
        app.state.auth = app.state.registry.auth
        # Every worker runs the loops; a lease in the database picks the one process that does the work.
        scheduler = Scheduler(app.state.registry.store, [
            Job("upload-purge", settings.upload_purge_interval_minutes * 60, app.state.registry.uploads.purge_expired),
        ])
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()
            await app.state.registry.events.close()
            app.state.registry.store.dispose()

    api = create_api(settings)
    app = Starlette(
        routes=[*token_routes(), Mount("/api/v2.0", app=api), *routes()],
        lifespan=lifespan,
        exception_handlers={RegistryError: _registry_error, HTTPException: _http_error,
                            ClientDisconnect: _client_gone, OSError: _storage_error,
                            sqlalchemy.exc.OperationalError: _storage_error, Exception: _unexpected},
        middleware=[Middleware(logs.AccessLogMiddleware)] if settings.access_log else [],
    )
    api.state = app.state  # one state: the API reads the context the lifespan builds
    assert isinstance(app.router, Router)
    app.router.redirect_slashes = False
    return app
