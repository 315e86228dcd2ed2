"""``/v2/<name>/blobs/<digest>``: fetch (streamed from the page cache, with ranges), check and delete blobs."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from moorage.blobs.stream import file_chunks
from moorage.meta.registry import StoredManifest
from moorage.registry.authorizer import Principal
from moorage.registry.context import registry
from moorage.registry.errors import BlobUnknown
from moorage.registry.reference import parse_digest


async def _locate(request: Request) -> tuple[str, str, int, StoredManifest | None]:
    """(repo, digest, size, manifest): a blob linked into the repository, or one of its manifests,
    which clients may also read through the blob endpoint."""
    ctx = registry(request)
    repo = request.path_params["name"]
    digest = str(parse_digest(request.path_params["digest"]))
    size = await ctx.store.query(ctx.model.blob_size, repo, digest)
    if size is not None:
        return repo, digest, size, None
    manifest = await ctx.store.query(ctx.model.manifest_by_digest, repo, digest)
    if manifest is not None:
        return repo, digest, len(manifest.content), manifest
    raise BlobUnknown(f"blob {digest} is not in repository {repo}", detail={"digest": digest})


async def get(request: Request, principal: Principal) -> Response:
    repo, digest, _, manifest = await _locate(request)
    headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes", "ETag": f'"{digest}"',
               "Cache-Control": "max-age=31536000"}
    if manifest is not None:
        return Response(manifest.content, media_type=manifest.media_type, headers=headers)
    driver = registry(request).driver
    path = driver.local_path(digest)
    streamed = driver.reads_say_when_they_would_block and "range" not in request.headers
    try:
        if streamed:
            # Opened here, not in the stream, so a missing file is still a clean 404.
            file = open(path, "rb", buffering=0)  # noqa: SIM115 - file_chunks closes it
            size = os.fstat(file.fileno()).st_size
        else:
            # Ranges, and stores whose reads could stall the loop: Granian reads the file on its own
            # threads. A stat is a microsecond syscall; doing it here spares FileResponse a thread hop.
            stat = os.stat(path)
    except FileNotFoundError:
        raise BlobUnknown(f"blob {digest} is linked to {repo} but its content is missing from the store",
                          detail={"digest": digest}) from None
    if streamed:
        return StreamingResponse(file_chunks(file, size, str(path)), media_type="application/octet-stream",
                                 headers={**headers, "Content-Length": str(size)})
    return FileResponse(path, media_type="application/octet-stream", headers=headers, stat_result=stat)


async def head(request: Request, principal: Principal) -> Response:
    _, digest, size, _ = await _locate(request)
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
