"""The distribution API's routes, most specific first (repository names contain slashes)."""

from __future__ import annotations

from starlette.routing import Route

from moorage.registry import base, blobs, listing, manifests, referrers, uploads
from moorage.registry.dispatch import route


def routes() -> list[Route]:
    return [
        route("/v2/", "base", base.HANDLERS),
        route("/v2", "base", base.HANDLERS),
        route("/v2/_catalog", "catalog", listing.CATALOG_HANDLERS),
        route("/v2/{name:path}/tags/list", "tags", listing.TAGS_HANDLERS),
        route("/v2/{name:path}/manifests/{reference}", "manifest", manifests.HANDLERS),
        route("/v2/{name:path}/blobs/uploads/", "upload_start", uploads.START_HANDLERS),
        route("/v2/{name:path}/blobs/uploads", "upload_start", uploads.START_HANDLERS),
        route("/v2/{name:path}/blobs/uploads/{upload_id}", "upload", uploads.SESSION_HANDLERS),
        route("/v2/{name:path}/blobs/{digest}", "blob", blobs.HANDLERS),
        route("/v2/{name:path}/referrers/{digest}", "referrers", referrers.HANDLERS),
    ]
