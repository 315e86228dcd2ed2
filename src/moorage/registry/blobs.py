"""``/v2/<name>/blobs/<digest>``: fetch (as the blob driver says: a local file, a stream with ranges, or a
redirect to the object store), check and delete blobs."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from moorage.blobs.driver import LocalFile, Redirect
from moorage.core.blobs import Located
from moorage.core.errors import BlobUnknown, RangeNotSatisfiable
from moorage.core.reference import parse_decimal, parse_digest
from moorage.registry.authorizer import Principal
from moorage.registry.context import services


async def _locate(request: Request) -> Located:
    return await services(request).blobs.locate(request.path_params["name"],
                                                parse_digest(request.path_params["digest"]))


_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range to serve for ``header``: one range within the blob; None to ignore the
    header and serve the whole blob, as RFC 9110 allows for what is not a single byte range (several
    ranges, other units, malformed text). A single range that starts past the end, or ends before it
    starts, is refused with 416 (the distribution conformance suite asks for that for both)."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(0) == "bytes=-":
        return None
    first, last = parse_decimal(match.group(1)), parse_decimal(match.group(2))
    if first is None:  # a suffix: the last ``last`` bytes
        if not last or size == 0:
            raise _unsatisfiable(header, size)
        return max(size - last, 0), size - 1
    if first >= size or (last is not None and last < first):
        raise _unsatisfiable(header, size)
    return first, size - 1 if last is None else min(last, size - 1)


def _unsatisfiable(header: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"the range {header.strip()[:100]!r} lies outside the blob's {size} bytes",
                               detail={"size": size})


async def get(request: Request, principal: Principal) -> Response:
    blob = await _locate(request)
    headers = {"Docker-Content-Digest": blob.digest, "Accept-Ranges": "bytes", "ETag": f'"{blob.digest}"',
               "Cache-Control": "max-age=31536000"}
    ranged = _byte_range(request.headers.get("range"), blob.size)
    if "range" in request.headers:
        # FileResponse parses Range again, answering what it cannot serve with a plain-text 400 (and numbers
        # of thousands of digits are among those): it sees the range decided here, spelled plainly, or none.
        kept = [(k, v) for k, v in request.scope["headers"] if k != b"range"]
        if ranged is not None:
            kept.append((b"range", f"bytes={ranged[0]}-{ranged[1]}".encode()))
        request.scope["headers"] = kept
    if blob.manifest is not None:
        return Response(blob.manifest.content, media_type=blob.manifest.media_type, headers=headers)
    try:
        body = await services(request).driver.body(blob.digest, ranged, redirect=True)
    except FileNotFoundError:
        raise BlobUnknown(f"blob {blob.digest} is linked to {request.path_params['name']} but its content is "
                          "missing from the store", detail={"digest": blob.digest}) from None
    if isinstance(body, LocalFile):
        return FileResponse(body.path, media_type="application/octet-stream", headers=headers, stat_result=body.stat)
    if isinstance(body, Redirect):
        # As distribution's storage redirect: the client fetches the object from the store itself.
        return Response(status_code=307, headers={"Location": body.url, "Docker-Content-Digest": blob.digest})
    if ranged is None:
        return StreamingResponse(body.chunks, media_type="application/octet-stream",
                                 headers={**headers, "Content-Length": str(body.size)})
    first, last = ranged
    return StreamingResponse(body.chunks, status_code=206, media_type="application/octet-stream", headers={
        **headers, "Content-Length": str(body.size), "Content-Range": f"bytes {first}-{last}/{blob.size}"})


async def head(request: Request, principal: Principal) -> Response:
    blob = await services(request).blobs.check(request.path_params["name"], parse_digest(request.path_params["digest"]))
    return Response(status_code=200, headers={
        "Docker-Content-Digest": blob.digest, "Content-Length": str(blob.size), "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream", "ETag": f'"{blob.digest}"'})


async def delete(request: Request, principal: Principal) -> Response:
    await services(request).blobs.unlink(request.path_params["name"], parse_digest(request.path_params["digest"]))
    return Response(status_code=202)


HANDLERS = {"GET": get, "HEAD": head, "DELETE": delete}
