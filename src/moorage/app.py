"""The moorage ASGI application: one app serving the distribution API (and, later, the rest)."""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import sqlalchemy.exc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Router

from moorage import background, logs
from moorage.api.app import create_api
from moorage.auth.token_service import OAuthRefused, oauth_refused
from moorage.auth.token_service import routes as token_routes
from moorage.core import gc
from moorage.core.errors import DomainError, StorageFull, Unavailable
from moorage.core.schedule import Job, Scheduler
from moorage.metrics import endpoint as metrics_endpoint
from moorage.metrics.http import MetricsMiddleware
from moorage.portal.routes import routes as portal_routes
from moorage.registry import errors
from moorage.registry.errors import EndpointUnknown, InternalError, Unsupported
from moorage.registry.routes import routes
from moorage.services import build_services
from moorage.settings import Settings, load_settings

log = logging.getLogger("moorage.app")

#: How often the process holding the garbage collection job's lease looks whether a scheduled run is due.
GC_SCHEDULE_CHECK_SECONDS = 30.0
#: The same for tag retention's schedules.
RETENTION_SCHEDULE_CHECK_SECONDS = 30.0


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return errors.render(exc, head=request.method == "HEAD")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: DomainError
    if exc.status_code == 404:
        error = EndpointUnknown(f"{request.url.path} is not an endpoint of this registry")
    elif exc.status_code == 405:
        error = Unsupported(f"{request.method} is not supported on {request.url.path}")
    else:
        error = InternalError(str(exc.detail))
    return errors.render(error, head=request.method == "HEAD")


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
        return errors.render(StorageFull(), head=request.method == "HEAD")
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        log.warning("metadata database unavailable during %s %s: %s", request.method, request.url.path, cause)
        return errors.render(Unavailable(), head=request.method == "HEAD")
    raise exc


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return errors.render(InternalError(), head=request.method == "HEAD")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    logs.configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.services = services = build_services(settings)
        app.state.auth = services.auth  # the management API's handlers read it
        # Every worker runs the loops; a lease in the database picks the one process that does the work.
        scheduler = Scheduler(services.store, [
            Job("upload-purge", settings.upload_purge_interval_minutes * 60, services.uploads.purge_expired),
            Job(gc.SCHEDULE, GC_SCHEDULE_CHECK_SECONDS,
                lambda: anyio.to_thread.run_sync(gc.run_if_due, services.gc, services.schedules)),
            # Tag retention policies run by their schedules ("retention:<policy id>"), each due run claimed once.
            Job("retention", RETENTION_SCHEDULE_CHECK_SECONDS, services.retention.run_due),
        ])
        scheduler.start()
        # Webhook deliveries and the metrics' usage values: in every worker, shared through the database.
        app.state.background = running = background.start(services)
        app.state.usage = running.usage
        try:
            yield
        finally:
            await running.stop()
            await scheduler.stop()
            await services.events.close()
            services.store.dispose()

    api = create_api(settings)
    app = Starlette(
        routes=[*token_routes(), *metrics_endpoint.routes(settings), Mount("/api/v2.0", app=api), *routes(),
                *portal_routes()],
        lifespan=lifespan,
        exception_handlers={DomainError: _domain_error, OAuthRefused: oauth_refused, HTTPException: _http_error,
                            ClientDisconnect: _client_gone, OSError: _storage_error,
                            sqlalchemy.exc.OperationalError: _storage_error, Exception: _unexpected},
        middleware=[*([Middleware(logs.AccessLogMiddleware)] if settings.access_log else []),
                    *([Middleware(MetricsMiddleware)] if settings.metrics_enabled else [])],
    )
    api.state = app.state  # one state: the API reads the context the lifespan builds
    assert isinstance(app.router, Router)
    app.router.redirect_slashes = False
    return app
