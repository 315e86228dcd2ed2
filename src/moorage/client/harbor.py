"""A typed client for the Harbor API v2.0 (``/api/v2.0``), as served by moorage and by Harbor itself.

Written against Harbor's swagger, not against moorage's implementation: paths, field names, the
``X-Is-Resource-Name`` header, page/page_size pagination with ``X-Total-Count`` and ``Link``, and the
``{"errors":[{"code","message"}]}`` body. Results are the server's JSON objects (``dict``), because the
CLI prints them as-is with ``--json`` and Harbor adds fields between versions.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote, urljoin

import httpx

API_PREFIX = "/api/v2.0"
USER_AGENT = "moorage-cli"
MAX_PAGE_SIZE = 100

JSON = dict[str, Any]


class HarborAPIError(Exception):
    """The server refused a request (or could not be reached); ``message`` is what to show a person."""

    def __init__(self, status: int, code: str, message: str, *, method: str = "", path: str = "",
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" [{self.method} {self.path}]" if self.method else ""
        status = f"HTTP {self.status}, " if self.status else ""
        return f"{self.message} ({status}{self.code}){where}"


class HarborUnreachable(HarborAPIError):
    """No HTTP answer at all: connection refused, TLS failure, timeout."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(0, "UNREACHABLE", message, method=method, path=path)


def error_from_response(response: httpx.Response) -> HarborAPIError:
    """Harbor's error body is ``{"errors":[{"code","message"}]}``; anything else still yields a message."""
    code, message = _status_code_name(response.status_code), ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict):
            code = str(first.get("code") or code)
            message = str(first.get("message") or "")
            # Several errors happen (e.g. validation); join them so none is hidden.
            rest = [str(e.get("message")) for e in body["errors"][1:] if isinstance(e, dict) and e.get("message")]
            if rest:
                message = "; ".join([message, *rest])
    if not message:
        text = response.text.strip()
        message = text[:300] if text and not text.startswith("<") else response.reason_phrase or "request failed"
    return HarborAPIError(response.status_code, code, message, method=response.request.method,
                          path=response.request.url.path, request_id=response.headers.get("X-Request-Id"))


def _status_code_name(status: int) -> str:
    return {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 412: "PRECONDITION", 413: "REQUEST_ENTITY_TOO_LARGE",
            429: "TOO_MANY_REQUEST"}.get(status, "UNKNOWN")


_LINK_PART = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')
_REL = re.compile(r'rel\s*=\s*"?([^";,]+)"?')


def parse_link_header(value: str) -> dict[str, str]:
    """``<url>; rel="prev" , <url>; rel="next"`` (Harbor's separator is ``" , "``) -> {rel: url}."""
    links: dict[str, str] = {}
    for match in _LINK_PART.finditer(value):
        rel = _REL.search(match.group(2))
        if rel:
            for name in rel.group(1).split():
                links.setdefault(name, match.group(1))
    return links


def seg(value: str | int) -> str:
    """One path segment, with every reserved character escaped."""
    return quote(str(value), safe="")


def repo_seg(name: str) -> str:
    """Harbor wants a repository name with slashes URL-encoded twice (``a/b`` -> ``a%252Fb``)."""
    return quote(quote(name, safe=""), safe="")


def _id_from_location(response: httpx.Response) -> str | None:
    location = response.headers.get("Location")
    if not location:
        return None
    return location.rstrip("/").rsplit("/", 1)[-1] or None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing as the server sent it."""

    items: list[JSON]
    total: int | None
    next_url: str | None


def tls_verify(insecure: bool = False, ca_file: str | None = None) -> ssl.SSLContext | bool:
    if insecure:
        return False
    if ca_file:
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise HarborAPIError(0, "TLS_CONFIG", f"cannot use {ca_file} as a CA bundle: {exc}") from exc
    return True


class HarborClient:
    """Synchronous client; use as a context manager so the connection pool is closed."""

    def __init__(self, server: str, auth: tuple[str, str] | None = None, *, insecure: bool = False,
                 ca_file: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server, auth=auth, verify=tls_verify(insecure, ca_file), timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- transport ------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, headers: Mapping[str, str] | None = None,
                ok: tuple[int, ...] = ()) -> httpx.Response:
        """Send ``method`` to ``API_PREFIX + path`` (or to a server-absolute ``/api/...`` URL from a Link).

        Any status >= 400 not listed in ``ok`` raises :class:`HarborAPIError`.
        """
        url = path if path.startswith(API_PREFIX) or "://" in path else API_PREFIX + path
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, url, params=clean or None, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise HarborUnreachable(f"cannot reach {self.server}: {exc or type(exc).__name__}",
                                    method=method, path=url) from exc
        if response.status_code >= 400 and response.status_code not in ok:
            raise error_from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise HarborAPIError(response.status_code, "BAD_RESPONSE",
                                 f"the server answered {method} {path} with something that is not JSON",
                                 method=method, path=path) from exc

    def page(self, path: str, params: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None) -> Page:
        response = self.request("GET", path, params=params, headers=headers)
        body = response.json() if response.content else []
        if not isinstance(body, list):
            raise HarborAPIError(response.status_code, "BAD_RESPONSE", f"expected a JSON list from GET {path}",
                                 method="GET", path=path)
        total_header = response.headers.get("X-Total-Count")
        total = int(total_header) if total_header and total_header.strip().isdigit() else None
        next_url = parse_link_header(response.headers.get("Link", "")).get("next")
        if next_url:
            next_url = urljoin(str(response.request.url), next_url)
        return Page(items=body, total=total, next_url=next_url)

    def paginate(self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = MAX_PAGE_SIZE,
                 limit: int | None = None, headers: Mapping[str, str] | None = None) -> Iterator[JSON]:
        """Every item of a listing: follows ``Link: rel="next"``, or counts pages against ``X-Total-Count``.

        Stops at an empty or short page too, so a server that sends neither header still terminates.
        """
        query = {**(params or {}), "page": 1, "page_size": min(page_size, MAX_PAGE_SIZE)}
        seen = 0
        number = 1
        current = self.page(path, query, headers)
        while True:
            for item in current.items:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not current.items:
                return
            if current.next_url:
                current = self.page(current.next_url, headers=headers)
                continue
            if current.total is not None and seen >= current.total:
                return
            if current.total is None and len(current.items) < query["page_size"]:
                return
            number += 1
            current = self.page(path, {**query, "page": number}, headers)

    # ---- system ---------------------------------------------------------------------------------

    def ping(self) -> str:
        return self.request("GET", "/ping").text

    def health(self) -> JSON:
        # An unhealthy server answers 500 with the same body: still worth showing.
        response = self.request("GET", "/health", ok=(500, 503))
        try:
            return dict(response.json())
        except ValueError:
            raise error_from_response(response) from None

    def systeminfo(self) -> JSON:
        return dict(self._json("GET", "/systeminfo"))

    # ---- projects -------------------------------------------------------------------------------

    @staticmethod
    def _project_ref(project: str | int) -> tuple[str, dict[str, str]]:
        """A name is always sent with ``X-Is-Resource-Name`` so a numeric project name is not read as an id."""
        if isinstance(project, int):
            return seg(project), {}
        return seg(project), {"X-Is-Resource-Name": "true"}

    def list_projects(self, *, name: str | None = None, public: bool | None = None, owner: str | None = None,
                      q: str | None = None, sort: str | None = None, limit: int | None = None) -> list[JSON]:
        params = {"name": name, "public": public, "owner": owner, "q": q, "sort": sort}
        return list(self.paginate("/projects", params, limit=limit))

    def project_exists(self, name: str) -> bool:
        response = self.request("HEAD", "/projects", params={"project_name": name}, ok=(404,))
        return response.status_code == 200

    def create_project(self, name: str, *, public: bool = False, storage_limit: int | None = None,
                       metadata: Mapping[str, str] | None = None) -> JSON:
        body: JSON = {"project_name": name, "metadata": {**(metadata or {}), "public": _flag(public)}}
        if storage_limit is not None:
            body["storage_limit"] = storage_limit
        self.request("POST", "/projects", json=body, headers={"X-Resource-Name-In-Location": "true"})
        return self.get_project(name)

    def get_project(self, project: str | int) -> JSON:
        ref, headers = self._project_ref(project)
        return dict(self._json("GET", f"/projects/{ref}", headers=headers))

    def update_project(self, project: str | int, *, public: bool | None = None, storage_limit: int | None = None,
                       metadata: Mapping[str, str] | None = None) -> None:
        ref, headers = self._project_ref(project)
        meta = dict(metadata or {})
        if public is not None:
            meta["public"] = _flag(public)
        body: JSON = {"metadata": meta}
        if storage_limit is not None:
            body["storage_limit"] = storage_limit
        self.request("PUT", f"/projects/{ref}", json=body, headers=headers)

    def delete_project(self, project: str | int) -> None:
        ref, headers = self._project_ref(project)
        self.request("DELETE", f"/projects/{ref}", headers=headers)

    # ---- members --------------------------------------------------------------------------------

    def list_members(self, project: str | int, *, entityname: str | None = None) -> list[JSON]:
        ref, headers = self._project_ref(project)
        return list(self.paginate(f"/projects/{ref}/members", {"entityname": entityname}, headers=headers))

    def add_member(self, project: str | int, role_id: int, *, username: str | None = None,
                   user_id: int | None = None) -> int | None:
        """Returns the new member id (from ``Location``) when the server says it."""
        ref, headers = self._project_ref(project)
        user: JSON = {"user_id": user_id} if user_id is not None else {"username": username}
        response = self.request("POST", f"/projects/{ref}/members", headers=headers,
                                json={"role_id": role_id, "member_user": user})
        member = _id_from_location(response)
        return int(member) if member and member.isdigit() else None

    def update_member(self, project: str | int, member_id: int, role_id: int) -> None:
        ref, headers = self._project_ref(project)
        self.request("PUT", f"/projects/{ref}/members/{member_id}", headers=headers, json={"role_id": role_id})

    def delete_member(self, project: str | int, member_id: int) -> None:
        ref, headers = self._project_ref(project)
        self.request("DELETE", f"/projects/{ref}/members/{member_id}", headers=headers)

    # ---- users ----------------------------------------------------------------------------------

    def list_users(self, *, q: str | None = None, sort: str | None = None, limit: int | None = None) -> list[JSON]:
        return list(self.paginate("/users", {"q": q, "sort": sort}, limit=limit))

    def search_users(self, username: str) -> list[JSON]:
        return list(self.paginate("/users/search", {"username": username}))

    def current_user(self) -> JSON:
        return dict(self._json("GET", "/users/current"))

    def get_user(self, user_id: int) -> JSON:
        return dict(self._json("GET", f"/users/{user_id}"))

    def create_user(self, username: str, password: str, *, email: str | None = None, realname: str | None = None,
                    comment: str | None = None) -> int | None:
        body = {"username": username, "password": password, "email": email or "",
                "realname": realname or username, "comment": comment or ""}
        response = self.request("POST", "/users", json=body)
        user = _id_from_location(response)
        return int(user) if user and user.isdigit() else None

    def delete_user(self, user_id: int) -> None:
        self.request("DELETE", f"/users/{user_id}")

    def set_password(self, user_id: int, new_password: str, old_password: str | None = None) -> None:
        body = {"new_password": new_password}
        if old_password is not None:
            body["old_password"] = old_password
        self.request("PUT", f"/users/{user_id}/password", json=body)

    def set_sysadmin(self, user_id: int, flag: bool) -> None:
        self.request("PUT", f"/users/{user_id}/sysadmin", json={"sysadmin_flag": flag})

    def find_user(self, username: str) -> JSON:
        """A user by exact name: ``/users/search`` matches fuzzily, so the exact hit is picked here."""
        for item in self.search_users(username):
            if item.get("username") == username and item.get("user_id") is not None:
                return self.get_user(int(item["user_id"]))
        raise HarborAPIError(404, "NOT_FOUND", f"user {username!r} not found", method="GET", path="/users/search")

    # ---- robots ---------------------------------------------------------------------------------

    def list_robots(self, *, q: str | None = None, sort: str | None = None) -> list[JSON]:
        return list(self.paginate("/robots", {"q": q, "sort": sort}))

    def list_project_robots(self, project_id: int) -> list[JSON]:
        return self.list_robots(q=f"Level=project,ProjectID={project_id}")

    def get_robot(self, robot_id: int) -> JSON:
        return dict(self._json("GET", f"/robots/{robot_id}"))

    def create_robot(self, robot: Mapping[str, Any]) -> JSON:
        return dict(self._json("POST", "/robots", json=dict(robot)))

    def update_robot(self, robot_id: int, robot: Mapping[str, Any]) -> None:
        self.request("PUT", f"/robots/{robot_id}", json=dict(robot))

    def refresh_robot_secret(self, robot_id: int, secret: str | None = None) -> JSON:
        """An empty secret asks the server to generate one; the answer holds the new secret."""
        return dict(self._json("PATCH", f"/robots/{robot_id}", json={"secret": secret or ""}))

    def delete_robot(self, robot_id: int) -> None:
        self.request("DELETE", f"/robots/{robot_id}")

    # ---- repositories, artifacts, tags ----------------------------------------------------------

    def list_repositories(self, project: str, *, q: str | None = None, sort: str | None = None) -> list[JSON]:
        return list(self.paginate(f"/projects/{seg(project)}/repositories", {"q": q, "sort": sort}))

    def delete_repository(self, project: str, repository: str) -> None:
        self.request("DELETE", f"/projects/{seg(project)}/repositories/{repo_seg(repository)}")

    def _artifacts(self, project: str, repository: str) -> str:
        return f"/projects/{seg(project)}/repositories/{repo_seg(repository)}/artifacts"

    def list_artifacts(self, project: str, repository: str, *, q: str | None = None, with_tag: bool = True,
                       sort: str | None = None) -> list[JSON]:
        return list(self.paginate(self._artifacts(project, repository),
                                  {"q": q, "with_tag": with_tag, "sort": sort}))

    def get_artifact(self, project: str, repository: str, reference: str) -> JSON:
        return dict(self._json("GET", f"{self._artifacts(project, repository)}/{seg(reference)}",
                               params={"with_tag": True}))

    def delete_artifact(self, project: str, repository: str, reference: str) -> None:
        self.request("DELETE", f"{self._artifacts(project, repository)}/{seg(reference)}")

    def list_tags(self, project: str, repository: str, reference: str) -> list[JSON]:
        return list(self.paginate(f"{self._artifacts(project, repository)}/{seg(reference)}/tags"))

    def create_tag(self, project: str, repository: str, reference: str, tag: str) -> None:
        self.request("POST", f"{self._artifacts(project, repository)}/{seg(reference)}/tags", json={"name": tag})

    def delete_tag(self, project: str, repository: str, reference: str, tag: str) -> None:
        self.request("DELETE", f"{self._artifacts(project, repository)}/{seg(reference)}/tags/{seg(tag)}")

    # ---- audit logs -----------------------------------------------------------------------------

    def list_audit_logs(self, *, project: str | None = None, q: str | None = None, sort: str | None = "-op_time",
                        limit: int | None = None) -> list[JSON]:
        path = f"/projects/{seg(project)}/logs" if project else "/audit-logs"
        return list(self.paginate(path, {"q": q, "sort": sort}, limit=limit))


def _flag(value: bool) -> str:
    """Harbor's project metadata values are the strings ``"true"``/``"false"``."""
    return "true" if value else "false"


def _param(value: Any) -> Any:
    return _flag(value) if isinstance(value, bool) else value
