"""``/v2/<name>/blobs/<digest>``: fetch (zero-copy, with ranges), check and delete blobs."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from moorage.registry.authorizer import Principal
from moorage.registry.context import registry
from moorage.registry.errors import BlobUnknown
from moorage.registry.reference import parse_digest


async def _size_or_404(request: Request) -> tuple[str, str, int, bool]:
    """Return (repo, digest, size, is_manifest); manifests are readable as blobs too, as clients expect."""
    ctx = registry(request)
    repo = request.path_params["name"]
    digest = str(parse_digest(request.path_params["digest"]))
    size = await ctx.store.query(ctx.model.blob_size, repo, digest)
    if size is not None:
        return repo, digest, size, False
    manifest = await ctx.store.query(ctx.model.manifest_by_digest, repo, digest)
    if manifest is not None:
        return repo, digest, len(manifest.content), True
    raise BlobUnknown(f"blob {digest} is not in repository {repo}", detail={"digest": digest})


async def get(request: Request, principal: Principal) -> Response:
    ctx = registry(request)
    repo, digest, _, is_manifest = await _size_or_404(request)
    headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes", "ETag": f'"{digest}"',
               "Cache-Control": "max-age=31536000"}
    if is_manifest:
        manifest = await ctx.store.query(ctx.model.manifest_by_digest, repo, digest)
        assert manifest is not None
        return Response(manifest.content, media_type=manifest.media_type, headers=headers)
    path = ctx.driver.local_path(digest)
    try:
        # A stat is a microsecond syscall; doing it here spares FileResponse a thread hop to do it.
        stat = os.stat(path)
    except FileNotFoundError:
        raise BlobUnknown(f"blob {digest} is linked to {repo} but its content is missing from the store",
                          detail={"digest": digest}) from None
    return FileResponse(path, media_type="application/octet-stream", headers=headers, stat_result=stat)


async def head(request: Request, principal: Principal) -> Response:
    _, digest, size, _ = await _size_or_404(request)
    return Response(status_code=200, headers={
        "Docker-Content-Digest": digest, "Content-Length": str(size), "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream", "ETag": f'"{digest}"'})


async def delete(request: Request, principal: Principal) -> Response:
    ctx = registry(request)
    repo = request.path_params["name"]
    digest = str(parse_digest(request.path_params["digest"]))
    if not await ctx.store.run(ctx.model.unlink_blob, repo, digest):
        raise BlobUnknown(f"blob {digest} is not in repository {repo}", detail={"digest": digest})
    return Response(status_code=202)


HANDLERS = {"GET": get, "HEAD": head, "DELETE": delete}
