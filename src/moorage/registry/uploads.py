"""``/v2/<name>/blobs/uploads/``: start, stream, check, finish and cancel blob uploads; mounts."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from moorage.meta.registry import Upload
from moorage.registry.access import Access
from moorage.registry.authorizer import Principal
from moorage.registry.context import registry
from moorage.registry.errors import BlobUploadInvalid, BlobUploadUnknown, RangeNotSatisfiable, SizeInvalid
from moorage.registry.reference import Digest, parse_digest

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


def _session_headers(repo: str, upload_id: str, offset: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{repo}/blobs/uploads/{upload_id}",
        "Docker-Upload-UUID": upload_id,
        # Inclusive byte range held so far; an empty upload reports 0-0, as clients expect.
        "Range": f"0-{max(offset - 1, 0)}",
    }


def _blob_created(repo: str, digest: str) -> Response:
    return Response(status_code=201, headers={"Location": f"/v2/{repo}/blobs/{digest}",
                                              "Docker-Content-Digest": digest})


def _chunk_start(request: Request) -> int | None:
    """The first byte of the chunk per ``Content-Range``; None when the client streams without one."""
    value = request.headers.get("content-range")
    if not value:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if not match:
        raise BlobUploadInvalid(f"malformed Content-Range {value!r}: expected <start>-<end>, inclusive")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise BlobUploadInvalid(f"Content-Range {value!r} ends before it starts")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) != end - start + 1:
        raise SizeInvalid(f"Content-Range {value!r} names {end - start + 1} bytes but Content-Length "
                          f"is {length}")
    return start


def _owner(request: Request, principal: Principal) -> str:
    """Whose open sessions a new one counts against: the account, or the client address when anonymous."""
    if principal.name:
        return principal.name
    return f"address:{request.client.host if request.client else 'unknown'}"


async def _session(request: Request) -> Upload:
    ctx = registry(request)
    upload_id = request.path_params["upload_id"]
    upload = await ctx.store.query(ctx.model.get_upload, upload_id)
    if upload is None or upload.repository != request.path_params["name"]:
        raise BlobUploadUnknown.session(upload_id)
    return upload


async def _receive(request: Request, digest: Digest | None = None) -> Upload:
    upload = await _session(request)
    try:
        return await registry(request).uploads.receive(upload, request.stream(), _chunk_start(request), digest)
    except RangeNotSatisfiable as exc:
        offset = exc.detail.get("offset", upload.offset) if isinstance(exc.detail, dict) else upload.offset
        exc.headers.update(_session_headers(upload.repository, upload.id, offset))
        raise


async def start(request: Request, principal: Principal) -> Response:
    ctx = registry(request)
    repo = request.path_params["name"]
    query = request.query_params
    mount, source = query.get("mount"), query.get("from")
    if mount and source:
        digest = str(parse_digest(mount))
        if principal.may(Access("repository", source, ("pull",)), "pull") \
                and await ctx.store.run(ctx.model.mount_blob, repo, source, digest) is not None:
            return _blob_created(repo, digest)
        # Not mountable (or not readable by the caller): fall back to an ordinary upload session.
    digest_param = query.get("digest")
    if digest_param:
        expected = parse_digest(digest_param)
        await ctx.uploads.monolithic(repo, request.stream(), expected)
        return _blob_created(repo, str(expected))
    upload_id = await ctx.uploads.start(repo, _owner(request, principal))
    return Response(status_code=202, headers=_session_headers(repo, upload_id, 0))


async def patch(request: Request, principal: Principal) -> Response:
    advanced = await _receive(request)
    return Response(status_code=202, headers=_session_headers(advanced.repository, advanced.id, advanced.offset))


async def put(request: Request, principal: Principal) -> Response:
    digest_param = request.query_params.get("digest")
    if not digest_param:
        raise BlobUploadInvalid("closing an upload needs ?digest=<digest of the whole blob>")
    expected = parse_digest(digest_param)
    advanced = await _receive(request, expected)
    return _blob_created(advanced.repository, str(expected))


async def status(request: Request, principal: Principal) -> Response:
    upload = await _session(request)
    return Response(status_code=204, headers=_session_headers(upload.repository, upload.id, upload.offset))


async def cancel(request: Request, principal: Principal) -> Response:
    ctx = registry(request)
    upload = await _session(request)
    await ctx.uploads.cancel(upload.id)
    return Response(status_code=204)


START_HANDLERS = {"POST": start}
SESSION_HANDLERS = {"PATCH": patch, "PUT": put, "GET": status, "HEAD": status, "DELETE": cancel}
