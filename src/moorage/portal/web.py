"""What every portal page shares: the signed-in session, CSRF checks on every state change, forms, flash
messages, paging, and rendering the package's Jinja2 templates."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from moorage.api.base import ApiError, BadRequest
from moorage.api.params import MAX_PAGE_SIZE, text_problem, whole_number
from moorage.auth import rbac
from moorage.auth.context import AuthContext
from moorage.portal import sessions
from moorage.portal.calls import invoke
from moorage.portal.format import epoch, human_size, when

log = logging.getLogger("moorage.portal")

HERE = Path(__file__).resolve().parent
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                               trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                               auto_reload=False)  # the templates ship in the package: never re-read
TEMPLATES.filters["size"] = human_size
TEMPLATES.filters["when"] = when
TEMPLATES.filters["epoch"] = epoch
FLASH_COOKIE = "moorage_flash"
#: A portal form is a few fields; anything larger is no form of ours.
MAX_FORM_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 20
SEARCH_SYNTAX = re.compile(r"[,=~{}()\[\]\"']")
#: Pages are never stored: they show what only the signed-in user may see (and, once, robot secrets).
NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                       "form-action 'self'; base-uri 'none'"}


def auth_of(request: Request) -> AuthContext:
    auth: AuthContext = request.app.state.auth
    return auth


def render(request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
           **values: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(request=request, **values)
    return HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})


def same_origin(request: Request) -> bool:
    """A browser names the page a form came from (``Origin``, else ``Referer``): it must be this server."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    if parts.netloc == request.headers.get("host", "") and parts.scheme == request.url.scheme:
        return True
    # Behind a proxy that ends TLS, the browser's origin is the public URL the operator configured.
    public = urlsplit(auth_of(request).settings.public_url)
    return bool(public.netloc) and (parts.scheme, parts.netloc) == (public.scheme, public.netloc)


def search_text(request: Request, name: str) -> str:
    """What a search box holds, without the characters Harbor's ``q`` syntax gives a meaning (``,=~{}()[]``),
    so a search is always a plain "contains"."""
    return SEARCH_SYNTAX.sub("", request.query_params.get(name, "")).strip()[:128]


def local_path(target: str | None, default: str = "/portal/projects") -> str:
    """Where to go after a form, only ever a path on this server (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


async def read_form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadRequest("the form is too large")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8 text") from None
    form: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if text_problem(value) or text_problem(key):
            raise BadRequest(f"the form field {key!r} holds characters that cannot be stored")
        form.setdefault(key, value)
    return form


@dataclass
class Pager:
    """One page of a server-paged list, and the links to its neighbours."""

    page: int
    size: int
    total: int = 0
    base: str = ""
    others: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    def url(self, page: int) -> str:
        return f"{self.base}?{urlencode([*self.others, ('page', page)])}"

    @property
    def prev_url(self) -> str | None:
        return self.url(self.page - 1) if self.page > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.page + 1) if self.page < self.pages else None

    def query(self) -> dict[str, str]:
        return {"page": str(self.page), "page_size": str(self.size)}


@dataclass
class Ctx:
    """One request to a page of a signed-in user."""

    request: Request
    session: sessions.Session
    form: dict[str, str] = field(default_factory=dict)
    flashes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def subject(self) -> rbac.Subject:
        return self.session.subject

    @property
    def auth(self) -> AuthContext:
        return auth_of(self.request)

    async def call(self, handler: Callable[..., Awaitable[Any]], **given: Any) -> Any:
        return await invoke(self.request, self.subject, handler, **given)

    def pager(self, size: int = DEFAULT_PAGE_SIZE, keep: tuple[str, ...] = ()) -> Pager:
        raw = self.request.query_params.get("page") or "1"
        try:
            page = whole_number(raw, "page", 1, 2**31 - 1)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        others = [(k, v) for k in keep if (v := self.request.query_params.get(k))]
        return Pager(page, min(size, MAX_PAGE_SIZE), base=self.request.url.path, others=others)

    def flash(self, message: str, kind: str = "ok") -> None:
        self.flashes.append((kind, message))

    def redirect(self, target: str) -> Response:
        response = RedirectResponse(local_path(target), status_code=303)
        if self.flashes:
            # Only messages the pages themselves wrote go here: never a secret.
            value = quote("\n".join(f"{kind}:{text}" for kind, text in self.flashes)[:1500])
            response.set_cookie(FLASH_COOKIE, value, path="/", httponly=True, secure=sessions.secure(self.request),
                                samesite="strict")
        return response

    async def act(self, back: str, work: Awaitable[Any], done: str) -> Response:
        """A state change: its success or the API's refusal as a message on the page the user returns to."""
        try:
            await work
        except ApiError as exc:
            self.flash(exc.message, "error")
        else:
            self.flash(done)
        return self.redirect(back)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        shown = [*self._pending(), *self.flashes]
        response = render(self.request, template, status, session=self.session, subject=self.subject,
                          csrf=self.session.csrf, flashes=shown, csrf_field=sessions.CSRF_FIELD, **values)
        if FLASH_COOKIE in self.request.cookies:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def _pending(self) -> list[tuple[str, str]]:
        raw = self.request.cookies.get(FLASH_COOKIE)
        if not raw:
            return []
        found = []
        for line in unquote(raw).splitlines():
            kind, _, text = line.partition(":")
            if kind in ("ok", "error") and text:
                found.append((kind, text))
        return found


Page = Callable[[Ctx], Awaitable[Response]]


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in users: no session sends the browser to the login page; a POST must carry the
    session's CSRF token and come from this server; the API's refusals become an error page."""
    async def endpoint(request: Request) -> Response:
        session = await sessions.current(request, auth_of(request))
        if session is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/portal/login?{urlencode({'next': target})}", status_code=303)
            return render(request, "error.html", 401, title="Signed out",
                          message="Your session has ended. Sign in again, then repeat what you were doing.",
                          session=None)
        ctx = Ctx(request, session)
        try:
            if request.method == "POST":
                ctx.form = await read_form(request)
                if not same_origin(request) or not sessions.csrf_ok(
                        ctx.form.get(sessions.CSRF_FIELD) or request.headers.get("x-csrf-token"), session.csrf):
                    log.warning("portal: refused a %s to %s without a valid CSRF token or from another origin",
                                request.method, request.url.path)
                    return ctx.render("error.html", 403, title="Request refused",
                                      message="This form did not carry this session's security token (CSRF) "
                                              "or came from another site. Reload the page and try again.")
            return await handler(ctx)
        except ApiError as exc:
            if exc.status == 401:
                return RedirectResponse("/portal/login", status_code=303)
            titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
            return ctx.render("error.html", exc.status, title=titles.get(exc.status, "Error"), message=exc.message)
    endpoint.__name__ = handler.__name__
    return endpoint
