"""The distribution API's routes, most specific first (repository names contain slashes)."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route

from moorage.registry import base, blobs, listing, manifests, referrers, uploads
from moorage.registry.dispatch import route


class RepositoryText(Convertor[str]):
    """Whatever stands where a repository name goes, so the name grammar judges it (NAME_INVALID). Starlette's
    ``path`` is ``.*``, which stops at a newline: such a name matched no route and was "not an endpoint"."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("repository", RepositoryText())


def routes() -> list[Route]:
    return [
        route("/v2/", "base", base.HANDLERS),
        route("/v2", "base", base.HANDLERS),
        route("/v2/_catalog", "catalog", listing.CATALOG_HANDLERS),
        route("/v2/{name:repository}/tags/list", "tags", listing.TAGS_HANDLERS),
        route("/v2/{name:repository}/manifests/{reference}", "manifest", manifests.HANDLERS),
        route("/v2/{name:repository}/blobs/uploads/", "upload_start", uploads.START_HANDLERS),
        route("/v2/{name:repository}/blobs/uploads", "upload_start", uploads.START_HANDLERS),
        route("/v2/{name:repository}/blobs/uploads/{upload_id}", "upload", uploads.SESSION_HANDLERS),
        route("/v2/{name:repository}/blobs/{digest}", "blob", blobs.HANDLERS),
        route("/v2/{name:repository}/referrers/{digest}", "referrers", referrers.HANDLERS),
    ]
