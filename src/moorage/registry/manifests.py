"""``/v2/<name>/manifests/<reference>``: push, fetch (with Accept negotiation) and delete manifests."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from moorage.core.manifests import parse_manifest
from moorage.meta.registry import NewManifest, StoredManifest
from moorage.registry.authorizer import Principal
from moorage.registry.context import registry
from moorage.registry.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestChildUnknown,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
)
from moorage.registry.reference import Digest, is_tag, parse_reference


async def _lookup(request: Request) -> StoredManifest:
    ctx = registry(request)
    repo = request.path_params["name"]
    tag, digest = parse_reference(request.path_params["reference"])
    if tag is not None:
        manifest = await ctx.store.query(ctx.model.manifest_by_tag, repo, tag)
    else:
        manifest = await ctx.store.query(ctx.model.manifest_by_digest, repo, str(digest))
    if manifest is None:
        what = f"tag {tag!r}" if tag is not None else f"manifest {digest}"
        raise ManifestUnknown(f"{what} is not in repository {repo}",
                              detail={"name": repo, "reference": request.path_params["reference"]})
    return manifest


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
    manifest = await _lookup(request)
    if not _acceptable(request, manifest.media_type):
        raise ManifestUnknown(f"the manifest is a {manifest.media_type}, which the request's Accept header "
                              "does not include", detail={"mediaType": manifest.media_type})
    headers = _manifest_headers(manifest)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(manifest.content))
        return Response(status_code=200, headers=headers)
    await registry(request).emit(request, principal.name, "pull", "manifest", request.path_params["reference"],
                                 manifest.digest)
    return Response(manifest.content, status_code=200, headers=headers, media_type=manifest.media_type)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
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
    ctx = registry(request)
    repo = request.path_params["name"]
    tag, reference_digest = parse_reference(request.path_params["reference"])
    body = await _read_body(request, ctx.settings.max_manifest_bytes)
    algorithm = reference_digest.algorithm if reference_digest else "sha256"
    digest = Digest(algorithm, hashlib.new(algorithm, body).hexdigest())
    if reference_digest is not None and digest != reference_digest:
        raise DigestInvalid(f"the manifest's content has digest {digest}, not {reference_digest} as the "
                            "URL says", detail={"expected": str(reference_digest), "actual": str(digest)})
    parsed = parse_manifest(body, request.headers.get("content-type"))
    missing_blobs, missing_manifests = await ctx.store.query(
        ctx.model.missing_references, repo, parsed.blob_refs, parsed.manifest_refs)
    if missing_blobs:
        raise ManifestBlobUnknown(f"the manifest references blob(s) not in repository {repo}: "
                                  + ", ".join(sorted(missing_blobs)) + "; push them first",
                                  detail={"digests": sorted(missing_blobs)})
    if missing_manifests:
        raise ManifestChildUnknown(f"the index references manifest(s) not in repository {repo}: "
                              + ", ".join(sorted(missing_manifests)) + "; push them first",
                                   detail={"digests": sorted(missing_manifests)})
    tags = [tag] if tag is not None else [t for t in request.query_params.getlist("tag") if is_tag(t)]
    await ctx.store.run(ctx.model.put_manifest, repo, NewManifest(
        digest=str(digest), media_type=parsed.media_type, artifact_type=parsed.artifact_type,
        subject=parsed.subject, annotations=parsed.annotations, content=body,
        blob_refs=parsed.blob_refs, manifest_refs=parsed.manifest_refs), tags)
    await ctx.emit(request, principal.name, "push", "manifest", tag or str(digest), str(digest))
    headers = {"Location": f"/v2/{repo}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
    if parsed.subject:
        headers["OCI-Subject"] = parsed.subject
    return Response(status_code=201, headers=headers)


async def delete(request: Request, principal: Principal) -> Response:
    ctx = registry(request)
    repo = request.path_params["name"]
    tag, digest = parse_reference(request.path_params["reference"])
    if not await ctx.store.query(ctx.model.repository_exists, repo):
        raise NameUnknown(f"repository {repo} does not exist", detail={"name": repo})
    if tag is not None:
        deleted = await ctx.store.run(ctx.model.delete_tag, repo, tag)
    else:
        deleted = await ctx.store.run(ctx.model.delete_manifest, repo, str(digest))
    if not deleted:
        raise ManifestUnknown(f"{request.path_params['reference']} is not in repository {repo}",
                              detail={"name": repo, "reference": request.path_params["reference"]})
    await ctx.emit(request, principal.name, "delete", "tag" if tag is not None else "manifest",
                   request.path_params["reference"], None if tag is not None else str(digest))
    return Response(status_code=202)


HANDLERS = {"GET": get, "HEAD": get, "PUT": put, "DELETE": delete}
