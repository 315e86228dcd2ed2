"""The domain's errors: what went wrong, in the domain's words, with a message that says what to fix.

No HTTP here. Each adapter renders these through one table of its own: the OCI API as the distribution
spec's ``{"errors":[{code, message, detail}]}`` (``moorage.registry.errors``), the management API as
Harbor's (``moorage.api``). ``detail`` is data a client may act on (a digest, an offset); it never
carries a secret.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    default_message = "the request cannot be served"

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(self.message)


# -- the caller sent something that cannot be right -------------------------------------------------
class InvalidInput(DomainError):
    default_message = "invalid input"


class NameInvalid(InvalidInput):
    default_message = "invalid repository name"


class TagInvalid(InvalidInput):
    default_message = "invalid tag"


class DigestInvalid(InvalidInput):
    """A malformed digest, or content that does not match the digest it was sent under."""

    default_message = "provided digest did not match uploaded content"


class ManifestInvalid(InvalidInput):
    default_message = "manifest invalid"


class ManifestTooLarge(ManifestInvalid):
    default_message = "manifest too large"


class SizeInvalid(InvalidInput):
    default_message = "provided length did not match content length"


class UploadInvalid(InvalidInput):
    default_message = "blob upload invalid"


class UploadOutOfOrder(UploadInvalid):
    """A chunk that does not start where the upload stands; ``detail["offset"]`` says where it does."""

    default_message = "chunk out of order"


class RangeNotSatisfiable(InvalidInput):
    """A byte range that lies outside the content; ``detail["size"]`` is the content's size."""

    default_message = "requested range not satisfiable"


class PaginationInvalid(InvalidInput):
    default_message = "invalid number of results requested"


# -- what the caller names does not exist --------------------------------------------------------------
class Missing(DomainError):
    default_message = "not found"


class BlobUnknown(Missing):
    default_message = "blob unknown to registry"


class ManifestUnknown(Missing):
    default_message = "manifest unknown to registry"


class NameUnknown(Missing):
    default_message = "repository name not known to registry"


class UploadUnknown(Missing):
    default_message = "blob upload unknown to registry"

    @classmethod
    def session(cls, upload_id: str) -> UploadUnknown:
        return cls(f"upload {upload_id} is unknown (finished, cancelled or expired); start a new one with POST",
                   detail={"uuid": upload_id})


class ReferencesUnknown(InvalidInput):
    """A manifest names blobs the repository does not hold: the push is incomplete, not the resource missing."""

    default_message = "manifest references a manifest or blob unknown to registry"


class ChildManifestsUnknown(ReferencesUnknown):
    """An index names manifests the repository does not hold."""


# -- who may do what ------------------------------------------------------------------------------------
class Unauthenticated(DomainError):
    default_message = "authentication required"


class Denied(DomainError):
    default_message = "requested access to the resource is denied"


class TagImmutable(Denied):
    """A tag an enabled immutable rule of its project protects: it cannot be moved to other content or deleted.
    ``detail`` names the tag and the rule."""

    default_message = "the tag is immutable"


class QuotaExceeded(Denied):
    """The push would take its project past its storage limit; ``detail`` has the numbers in bytes (adding,
    used, limit) and the project."""

    default_message = "the project's storage quota would be exceeded"


class Throttled(DomainError):
    default_message = "too many requests"


class Conflict(DomainError):
    default_message = "the resource already exists"


# -- the registry, not the request -------------------------------------------------------------------------
class StorageFull(DomainError):
    default_message = ("the registry's storage is full (no space left on device); free space or grow its volume, "
                       "then push again")


class Unavailable(DomainError):
    default_message = ("the registry cannot reach its metadata database right now; retry shortly (the registry's "
                       "log names the cause)")


class BlobStoreUnavailable(Unavailable):
    default_message = ("the registry cannot reach its blob store (object storage) right now; retry shortly (the "
                       "registry's log names the cause)")
