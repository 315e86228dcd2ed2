"""moorage's ASGI app inside the test process: the server of the fast tier.

:class:`InProcessMoorage` prepares a data directory the way ``moorage serve`` does (``moorage.server.prepare``:
schema, the ``admin`` account with :data:`ADMIN_PASSWORD`, secret and signing keys), builds the app with
``moorage.app.create_app(settings)`` and runs its lifespan on an event loop of its own (an anyio blocking
portal, i.e. a thread), so the scheduler and the event sink live there as they do in a worker. Requests reach the
app through ``httpx.ASGITransport``: no socket, no process, no port.

Clients are synchronous ``httpx.Client`` objects whose requests are handed to that loop, so the helpers in
``tests.support.oci`` and ``tests.api.harbor`` serve both tiers alike. For concurrency inside one test, run a
coroutine on the app's loop with :meth:`InProcessMoorage.call` and use :meth:`InProcessMoorage.async_client` in it.

Like ``MoorageServer.stop()``, it holds the app to the rule that no request gets a 5xx and nothing logs a
traceback: :meth:`InProcessMoorage.problems` lists what broke it; the ``inprocess`` fixture checks it after
every test. An exception no handler turns into a response is raised into the test itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.from_thread
import httpx
import pytest

from tests.support.moorage import ADMIN_PASSWORD

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from moorage.services import Services
    from moorage.settings import Settings

T = TypeVar("T")

#: The authority requests are addressed to; ``.test`` is reserved, so nothing real could ever answer it.
BASE_URL = "http://moorage.test"
ADMIN = ("admin", ADMIN_PASSWORD)


class _TracebackWatch(logging.Handler):
    """Records every log record that carries a traceback, the in-process twin of the server log check."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__()
        self.problems = problems

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            self.problems.append(f"{record.name}: {record.getMessage()}\n{trace}")


class _CheckedASGITransport(httpx.ASGITransport):
    """ASGITransport that notes every 5xx the app answers (unless a test expects it)."""

    def __init__(self, owner: InProcessMoorage) -> None:
        super().__init__(app=owner.app)
        self.owner = owner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if response.status_code >= 500 and response.status_code not in self.owner.expected_5xx:
            self.owner.problem(f"{request.method} {request.url.path} answered {response.status_code}")
        return response


class _PortalTransport(httpx.BaseTransport):
    """A synchronous transport that sends each request through the ASGI transport on the app's loop."""

    def __init__(self, owner: InProcessMoorage) -> None:
        self.owner = owner
        self.asgi = _CheckedASGITransport(owner)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Buffered first: afterwards the body is a stream the async transport can read too.
        request.read()
        return self.owner.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.asgi.handle_async_request(request)
        # The raw bytes: the client decodes any Content-Encoding itself, as it would from a socket.
        body = b"".join([chunk async for chunk in response.aiter_raw()])
        return httpx.Response(response.status_code, headers=response.headers, content=body)


class InProcessMoorage:
    """One moorage app with its own data directory (SQLite), started and stopped like a server."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        # moorage is imported when used, not when pytest loads this plugin: a module of it that fails to
        # import then fails the tests that need it, not the whole session.
        from moorage.settings import Settings

        # Settings built directly, not from the environment: a MOORAGE_* variable of the developer's must
        # not change what the tests see.
        self.settings: Settings = Settings(data_dir=data_dir, plain_http=True, admin_password=ADMIN_PASSWORD,
                                           **settings)
        self.url = BASE_URL
        #: 5xx statuses a test provokes on purpose.
        self.expected_5xx: set[int] = set()
        self._problems: list[str] = []
        self._watch = _TracebackWatch(self._problems)
        self._stack = contextlib.ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._app: Starlette | None = None

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise

    def _start(self) -> None:
        from moorage.app import create_app
        from moorage.server import prepare

        # prepare() sets this process's umask to owner-only, as it should for a server; the test process
        # goes on creating files for other tests, so it gets its own umask back.
        umask = os.umask(0o077)
        try:
            prepare(self.settings)
        finally:
            os.umask(umask)
        with _logging_left_alone():
            self._app = create_app(self.settings)
        moorage_log = logging.getLogger("moorage")
        moorage_log.addHandler(self._watch)
        self._stack.callback(moorage_log.removeHandler, self._watch)
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal("asyncio"))
        self._stack.enter_context(self._portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app)))

    @property
    def app(self) -> Starlette:
        assert self._app is not None, "start() builds the app"
        return self._app

    def stop(self) -> None:
        """Run the lifespan's shutdown and end the loop; then the same check as after every test, on the shutdown."""
        self.problems()  # what other tests logged since this app's last test: not its own
        self._stack.close()
        self._portal = None
        problems = self.problems()
        assert not problems, "moorage answered 5xx or logged a traceback:\n" + "\n".join(problems[:20])

    def problem(self, what: str) -> None:
        self._problems.append(what)

    def problems(self) -> list[str]:
        """5xx answers and logged tracebacks since the last call (which clears them)."""
        found = list(self._problems)
        self._problems.clear()
        return found

    def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await function(*args)`` on the app's event loop and return its result (domain-level tests)."""
        assert self._portal is not None, "the app is not running"
        return self._portal.call(function, *args)

    @property
    def services(self) -> Services:
        """The app's services (``moorage.services``: store, uploads, blobs, manifests, auth...), built by the
        lifespan: for tests of the domain, through :meth:`call` when a service method is async."""
        services: Services = self.app.state.services
        return services

    def client(self, auth: tuple[str, str] | None = ADMIN, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the app, the admin's Basic auth by default (accepted on /v2/ as on the API)."""
        return httpx.Client(base_url=self.url, transport=_PortalTransport(self), auth=auth, **kwargs)

    def api(self, auth: tuple[str, str] | None = ADMIN) -> httpx.Client:
        """A client for the management API (``/api/v2.0``), as ``tests.api.harbor.api`` makes for a server."""
        return httpx.Client(base_url=f"{self.url}/api/v2.0", transport=_PortalTransport(self), auth=auth)

    def async_client(self, auth: tuple[str, str] | None = ADMIN) -> httpx.AsyncClient:
        """An async client; use it only in coroutines given to :meth:`call` (the app's loop)."""
        return httpx.AsyncClient(base_url=self.url, transport=_CheckedASGITransport(self), auth=auth)

    def project(self, name: str, public: bool = False) -> str:
        """Make sure project ``name`` exists (created by the admin through the API); returns its name."""
        with self.api() as api:
            response = api.post("/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
            assert response.status_code in (201, 409), response.text
        return name


@contextlib.contextmanager
def _logging_left_alone() -> Iterator[None]:
    """create_app() configures the ``moorage`` logger for a server: JSON lines on stderr, not propagated.
    In the test process that would hide moorage's records from pytest (``caplog``) in every later test, so
    the logger is put back as it was: records then reach pytest's capture, shown when a test fails."""
    logger = logging.getLogger("moorage")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(scope="session")
def inprocess_moorage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessMoorage]:
    """The fast tier's app for the whole session, on SQLite in a temporary data directory."""
    server = InProcessMoorage(tmp_path_factory.mktemp("moorage-inprocess"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def inprocess(inprocess_moorage: InProcessMoorage) -> Iterator[InProcessMoorage]:
    """The session's in-process app; after the test, no request may have got a 5xx nor logged a traceback."""
    # Tracebacks are watched process-wide: those logged by the tests since this app's last test are not its own.
    inprocess_moorage.problems()
    yield inprocess_moorage
    problems = inprocess_moorage.problems()
    inprocess_moorage.expected_5xx.clear()
    assert not problems, "moorage answered 5xx or logged a traceback:\n" + "\n".join(problems[:20])


@pytest.fixture
def inprocess_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., InProcessMoorage]]:
    """Starts apps with settings of the test's own, e.g. ``inprocess_factory(max_uploads_per_repository=1)``,
    each on a fresh data directory; they are stopped and checked after the test."""
    with contextlib.ExitStack() as stack:  # every app is stopped even when stopping another fails

        def start(**settings: Any) -> InProcessMoorage:
            server = InProcessMoorage(tmp_path_factory.mktemp("moorage-inprocess"), **settings)
            server.start()
            stack.callback(server.stop)
            return server

        yield start
