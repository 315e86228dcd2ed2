"""The OCI error table: every domain error rendered as the distribution spec's ``{"errors": [...]}``.

Handlers and services raise ``moorage.core.errors``; this is the one place that decides the spec's code
and HTTP status of each, and the headers the spec asks for beside some (the offset an upload stands at,
the size an unsatisfiable range missed). The few errors only HTTP has (a method an endpoint lacks, an
authentication challenge) are subclasses of domain errors defined here, so one table serves all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from moorage.core import errors as e

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


class HttpError(e.DomainError):
    """A domain error raised by the HTTP edge with headers of its own (a challenge, an ``Allow``)."""

    def __init__(self, message: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, detail)
        self.headers = headers or {}


class Challenge(HttpError, e.Unauthenticated):
    """401 with the ``WWW-Authenticate`` challenge that tells the client where to get a token."""


class Unsupported(HttpError):
    default_message = "the operation is unsupported"


class EndpointUnknown(e.Missing):
    """A path outside the distribution API."""


class InternalError(e.DomainError):
    default_message = "internal error; the registry logged the details"


def _upload_headers(detail: Any) -> dict[str, str]:
    if not isinstance(detail, dict) or "uuid" not in detail or "name" not in detail:
        return {}
    headers = {"Location": f"/v2/{detail['name']}/blobs/uploads/{detail['uuid']}",
               "Docker-Upload-UUID": detail["uuid"]}
    if "offset" in detail:
        headers["Range"] = upload_range(int(detail["offset"]))
    return headers


def upload_range(offset: int) -> str:
    """The inclusive byte range an upload holds; an empty upload reports 0-0, as clients expect."""
    return f"0-{max(offset - 1, 0)}"


def _content_range(detail: Any) -> dict[str, str]:
    return {"Content-Range": f"bytes */{detail['size']}"} if isinstance(detail, dict) and "size" in detail else {}


_Headers = Callable[[Any], dict[str, str]]
# Most specific first: the first class in an error's MRO found here decides.
_TABLE: dict[type[e.DomainError], tuple[str, int, _Headers | None]] = {
    e.NameInvalid: ("NAME_INVALID", 400, None),
    e.TagInvalid: ("MANIFEST_INVALID", 400, None),
    e.DigestInvalid: ("DIGEST_INVALID", 400, None),
    e.ManifestTooLarge: ("MANIFEST_INVALID", 413, None),
    e.ManifestInvalid: ("MANIFEST_INVALID", 400, None),
    e.SizeInvalid: ("SIZE_INVALID", 400, None),
    e.UploadOutOfOrder: ("BLOB_UPLOAD_INVALID", 416, _upload_headers),
    e.UploadInvalid: ("BLOB_UPLOAD_INVALID", 400, None),
    e.RangeNotSatisfiable: ("BLOB_UNKNOWN", 416, _content_range),
    e.PaginationInvalid: ("PAGINATION_NUMBER_INVALID", 400, None),
    e.ReferencesUnknown: ("MANIFEST_BLOB_UNKNOWN", 400, None),
    e.InvalidInput: ("UNSUPPORTED", 400, None),
    e.BlobUnknown: ("BLOB_UNKNOWN", 404, None),
    e.ManifestUnknown: ("MANIFEST_UNKNOWN", 404, None),
    e.NameUnknown: ("NAME_UNKNOWN", 404, None),
    e.UploadUnknown: ("BLOB_UPLOAD_UNKNOWN", 404, None),
    e.Missing: ("UNSUPPORTED", 404, None),
    e.Unauthenticated: ("UNAUTHORIZED", 401, None),
    e.QuotaExceeded: ("DENIED", 403, None),
    e.Denied: ("DENIED", 403, None),
    Unsupported: ("UNSUPPORTED", 405, None),
    e.Throttled: ("TOOMANYREQUESTS", 429, None),
    e.Conflict: ("DENIED", 409, None),
    e.StorageFull: ("UNKNOWN", 507, None),
    e.Unavailable: ("UNAVAILABLE", 503, None),
    e.DomainError: ("UNKNOWN", 500, None),
}


def code_and_status(error: e.DomainError) -> tuple[str, int]:
    code, status, _ = _entry(error)
    return code, status


def _entry(error: e.DomainError) -> tuple[str, int, _Headers | None]:
    for cls in type(error).__mro__:
        entry = _TABLE.get(cls)  # type: ignore[call-overload]
        if entry is not None:
            return entry
    return _TABLE[e.DomainError]


def body(error: e.DomainError) -> dict[str, Any]:
    code, _ = code_and_status(error)
    item: dict[str, Any] = {"code": code, "message": error.message}
    if error.detail is not None:
        item["detail"] = error.detail
    return {"errors": [item]}


def render(error: e.DomainError, head: bool = False) -> Response:
    _, status, derived = _entry(error)
    headers = {API_VERSION_HEADER[0]: API_VERSION_HEADER[1], **(derived(error.detail) if derived else {}),
               **getattr(error, "headers", {})}
    content = b"" if head else json.dumps(body(error)).encode()
    response = Response(content, status_code=status, headers=headers, media_type="application/json")
    if head:
        response.headers["content-length"] = "0"
    return response
