"""``/v2/<name>/manifests/<reference>``: push, fetch (with Accept negotiation) and delete manifests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.core.errors import DigestInvalid, ManifestTooLarge, ManifestUnknown, TagInvalid
from moorage.core.reference import Digest, is_tag, parse_decimal, parse_reference
from moorage.meta.registry import StoredManifest
from moorage.registry.authorizer import Principal
from moorage.registry.context import emit, services


def _reference(request: Request) -> tuple[str | None, Digest | None]:
    """The tag or digest a fetch or delete names; one that cannot be valid names nothing in the repository."""
    reference = request.path_params["reference"]
    try:
        return parse_reference(reference)
    except (TagInvalid, DigestInvalid):
        raise ManifestUnknown(f"{reference[:200]!r} is neither a tag nor a digest, so no manifest has it",
                              detail={"name": request.path_params["name"], "reference": reference[:200]}) from None


def _acceptable(request: Request, media_type: str) -> bool:
    accepted = [part.split(";")[0].strip().lower() for value in request.headers.getlist("accept")
                for part in value.split(",")]
    accepted = [a for a in accepted if a]
    return not accepted or media_type in accepted or "*/*" in accepted \
        or f"{media_type.split('/')[0]}/*" in accepted


def _manifest_headers(manifest: StoredManifest) -> dict[str, str]:
    return {"Docker-Content-Digest": manifest.digest, "Content-Type": manifest.media_type,
            "ETag": f'"{manifest.digest}"'}


async def get(request: Request, principal: Principal) -> Response:
    manifest = await services(request).manifests.get(request.path_params["name"], *_reference(request))
    if not _acceptable(request, manifest.media_type):
        raise ManifestUnknown(f"the manifest is a {manifest.media_type}, which the request's Accept header "
                              "does not include", detail={"mediaType": manifest.media_type})
    headers = _manifest_headers(manifest)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(manifest.content))
        return Response(status_code=200, headers=headers)
    await emit(request, principal.name, "pull", "manifest", request.path_params["reference"], manifest.digest)
    return Response(manifest.content, status_code=200, headers=headers, media_type=manifest.media_type)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = parse_decimal(request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise ManifestTooLarge(f"the manifest is {declared} bytes; this registry accepts manifests up to "
                               f"{limit} bytes", detail={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ManifestTooLarge(f"the manifest is over {limit} bytes, the largest this registry accepts",
                                   detail={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


async def put(request: Request, principal: Principal) -> Response:
    ctx = services(request)
    repo = request.path_params["name"]
    tag, expected = parse_reference(request.path_params["reference"])
    body = await _read_body(request, ctx.settings.max_manifest_bytes)
    tags = [tag] if tag is not None else [t for t in request.query_params.getlist("tag") if is_tag(t)]
    pushed = await ctx.manifests.put(repo, body, request.headers.get("content-type"), tags, expected,
                                     operator=principal.name)
    await emit(request, principal.name, "push", "manifest", tag or pushed.digest, pushed.digest)
    headers = {"Location": f"/v2/{repo}/manifests/{pushed.digest}", "Docker-Content-Digest": pushed.digest}
    if pushed.subject:
        headers["OCI-Subject"] = pushed.subject
    return Response(status_code=201, headers=headers)


async def delete(request: Request, principal: Principal) -> Response:
    tag, digest = _reference(request)
    await services(request).manifests.delete(request.path_params["name"], tag, digest, operator=principal.name)
    await emit(request, principal.name, "delete", "tag" if tag is not None else "manifest",
               request.path_params["reference"], None if tag is not None else str(digest))
    return Response(status_code=202)


HANDLERS = {"GET": get, "HEAD": get, "PUT": put, "DELETE": delete}
