"""``/v2/<name>/referrers/<digest>``: the manifests whose ``subject`` is this digest, as an index."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from moorage.core.mediatypes import OCI_INDEX
from moorage.core.reference import parse_digest
from moorage.registry.authorizer import Principal
from moorage.registry.context import services


async def get(request: Request, principal: Principal) -> Response:
    artifact_type = request.query_params.get("artifactType") or None
    referrers = await services(request).manifests.referrers(
        request.path_params["name"], parse_digest(request.path_params["digest"]), artifact_type)
    descriptors: list[dict[str, Any]] = []
    for ref in referrers:
        descriptor: dict[str, Any] = {"mediaType": ref.media_type, "digest": ref.digest, "size": ref.size}
        if ref.artifact_type:
            descriptor["artifactType"] = ref.artifact_type
        if ref.annotations:
            descriptor["annotations"] = json.loads(ref.annotations)
        descriptors.append(descriptor)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}).encode()
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(body, media_type=OCI_INDEX, headers=headers)


HANDLERS = {"GET": get, "HEAD": get}
