"""The OCI error-code table, one exception per code, and the one renderer of ``{"errors": [...]}``.

Handlers raise; they never build error bodies themselves, so every error leaves the registry in
the spec's shape with the spec's status.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from starlette.responses import Response


class RegistryError(Exception):
    """An error of the distribution API: a spec code, its HTTP status and a message saying what to fix."""

    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return error

    def response(self, head: bool = False) -> Response:
        content = b"" if head else json.dumps({"errors": [self.body()]}).encode()
        headers = {"Docker-Distribution-API-Version": "registry/2.0", **self.headers}
        response = Response(content, status_code=self.status, headers=headers,
                            media_type="application/json")
        if head:
            response.headers["content-length"] = "0"
        return response



class BlobUnknown(RegistryError):
    code, status, default_message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class BlobUploadUnknown(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"

    @classmethod
    def session(cls, upload_id: str) -> BlobUploadUnknown:
        return cls(f"upload {upload_id} is unknown (finished, cancelled or expired); start a new one with POST",
                   detail={"uuid": upload_id})


class RangeNotSatisfiable(BlobUploadInvalid):
    """An out-of-order chunk: 416 with the range the registry holds, so the client can resume."""

    status = 416


class DigestInvalid(RegistryError):
    code, status, default_message = "DIGEST_INVALID", 400, "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, status = "MANIFEST_BLOB_UNKNOWN", 400
    default_message = "manifest references a manifest or blob unknown to registry"


class ManifestInvalid(RegistryError):
    code, status, default_message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestTooLarge(ManifestInvalid):
    status = 413


class ManifestUnknown(RegistryError):
    code, status, default_message = "MANIFEST_UNKNOWN", 404, "manifest unknown to registry"


class ManifestChildUnknown(ManifestUnknown):
    """An index names a manifest the repository lacks: a bad request, not a missing resource."""

    status = 400


class NameInvalid(RegistryError):
    code, status, default_message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, default_message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, default_message = "SIZE_INVALID", 400, "provided length did not match content length"


class Unauthorized(RegistryError):
    code, status, default_message = "UNAUTHORIZED", 401, "authentication required"


class Denied(RegistryError):
    code, status, default_message = "DENIED", 403, "requested access to the resource is denied"


class Unsupported(RegistryError):
    code, status, default_message = "UNSUPPORTED", 405, "the operation is unsupported"


class NotFound(Unsupported):
    """A path outside the distribution API."""

    status = 404


class PaginationInvalid(RegistryError):
    code, status, default_message = "PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"


class TooManyRequests(RegistryError):
    code, status, default_message = "TOOMANYREQUESTS", 429, "too many requests"


class StorageFull(RegistryError):
    code, status, default_message = "UNKNOWN", 507, ("the registry's storage is full (no space left on device); "
                                                     "free space or grow its volume, then push again")


class MetadataUnavailable(RegistryError):
    code, status, default_message = "UNAVAILABLE", 503, ("the registry cannot reach its metadata database right "
                                                         "now; retry shortly (the registry's log names the cause)")


class InternalError(RegistryError):
    code, status, default_message = "UNKNOWN", 500, "internal error; the registry logged the details"
