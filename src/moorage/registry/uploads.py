"""``/v2/<name>/blobs/uploads/``: start, stream, check, finish and cancel blob uploads; mounts."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from moorage.core.errors import SizeInvalid, UploadInvalid
from moorage.core.reference import Digest, parse_decimal, parse_digest
from moorage.meta.registry import Upload
from moorage.registry.access import Access
from moorage.registry.authorizer import Principal
from moorage.registry.context import services
from moorage.registry.errors import upload_range

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")


def _session_headers(upload: Upload) -> dict[str, str]:
    return {"Location": f"/v2/{upload.repository}/blobs/uploads/{upload.id}", "Docker-Upload-UUID": upload.id,
            "Range": upload_range(upload.offset)}


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
        raise UploadInvalid(f"malformed Content-Range {value[:100]!r}: expected <start>-<end>, inclusive")
    start, end = parse_decimal(match.group(1)), parse_decimal(match.group(2))
    assert start is not None and end is not None  # the pattern matched digits
    if end < start:
        raise UploadInvalid(f"Content-Range {value[:100]!r} ends before it starts")
    length = parse_decimal(request.headers.get("content-length", ""))
    if length is not None and length != end - start + 1:
        raise SizeInvalid(f"Content-Range {value[:100]!r} names {end - start + 1} bytes but Content-Length "
                          f"is {length}")
    return start


def _owner(request: Request, principal: Principal) -> str:
    """Whose open sessions a new one counts against: the account, or the client address when anonymous."""
    if principal.name:
        return principal.name
    return f"address:{request.client.host if request.client else 'unknown'}"


async def _session(request: Request) -> Upload:
    return await services(request).uploads.session(request.path_params["name"], request.path_params["upload_id"])


async def _receive(request: Request, digest: Digest | None = None) -> Upload:
    upload = await _session(request)
    return await services(request).uploads.receive(upload, request.stream(), _chunk_start(request), digest)


async def start(request: Request, principal: Principal) -> Response:
    ctx = services(request)
    repo = request.path_params["name"]
    query = request.query_params
    mount, source = query.get("mount"), query.get("from")
    if mount and source:
        digest = parse_digest(mount)
        readable = principal.may(Access("repository", source, ("pull",)), "pull")
        if readable:
            await ctx.quotas.admit_mount(repo, source, str(digest))
        if readable and await ctx.blobs.mount(repo, source, digest):
            return _blob_created(repo, str(digest))
        # Not mountable (or not readable by the caller): fall back to an ordinary upload session.
    digest_param = query.get("digest")
    if digest_param:
        expected = parse_digest(digest_param)
        length = parse_decimal(request.headers.get("content-length", ""))
        if length is not None:
            # Refused before a byte is stored; without a length, when the blob is verified.
            await ctx.quotas.admit_blob(repo, str(expected), length)
        await ctx.uploads.monolithic(repo, request.stream(), expected)
        return _blob_created(repo, str(expected))
    upload_id = await ctx.uploads.start(repo, _owner(request, principal))
    return Response(status_code=202, headers=_session_headers(Upload(upload_id, repo, 0)))


async def patch(request: Request, principal: Principal) -> Response:
    return Response(status_code=202, headers=_session_headers(await _receive(request)))


async def put(request: Request, principal: Principal) -> Response:
    digest_param = request.query_params.get("digest")
    if not digest_param:
        raise UploadInvalid("closing an upload needs ?digest=<digest of the whole blob>")
    expected = parse_digest(digest_param)
    upload = await _session(request)
    length = parse_decimal(request.headers.get("content-length", ""))
    if length is not None:
        # The whole blob's size is known before the last chunk is stored: refuse what the quota will not take.
        await services(request).quotas.admit_blob(upload.repository, str(expected), upload.offset + length)
    advanced = await services(request).uploads.receive(upload, request.stream(), _chunk_start(request), expected)
    return _blob_created(advanced.repository, str(expected))


async def status(request: Request, principal: Principal) -> Response:
    return Response(status_code=204, headers=_session_headers(await _session(request)))


async def cancel(request: Request, principal: Principal) -> Response:
    upload = await _session(request)
    await services(request).uploads.cancel(upload.id)
    return Response(status_code=204)


START_HANDLERS = {"POST": start}
SESSION_HANDLERS = {"PATCH": patch, "PUT": put, "GET": status, "HEAD": status, "DELETE": cancel}
