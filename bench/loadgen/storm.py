"""Pull storm: many clients released at once, each pulling the same image (manifest, config, layers)."""

from __future__ import annotations

import json
import time
from typing import Any

from bench.loadgen.blobs import get_blob
from bench.loadgen.common import Phase, emit, fail, percentile, run_threads
from bench.loadgen.http import Connection

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def pull_image(spec: dict[str, Any], headers: dict[str, str]) -> tuple[float, int]:
    """One client pulling one image the way a runtime does, on one connection; returns (seconds, bytes)."""
    started = time.perf_counter()
    conn = Connection(spec["host"], spec["port"], buffer_size=spec.get("buffer", 1024 * 1024))
    try:
        response = conn.request("GET", f"/v2/{spec['repo']}/manifests/{spec['tag']}", {**headers, "Accept": ACCEPT})
        if response.status != 200:
            fail(f"manifest GET: HTTP {response.status} {response.body[:200]!r}")
        manifest = json.loads(response.body)
        total = len(response.body)
        for descriptor in [manifest["config"], *manifest["layers"]]:
            blob = get_blob(conn, spec["repo"], descriptor["digest"], headers)
            if blob.status != 200 or blob.body_length != descriptor["size"]:
                fail(f"blob {descriptor['digest']}: HTTP {blob.status}, {blob.body_length} bytes")
            total += blob.body_length
    finally:
        conn.close()
    return time.perf_counter() - started, total


def storm(spec: dict[str, Any]) -> None:
    headers = spec.get("headers", {})
    phase = Phase()
    results = run_threads(spec["clients"], lambda _i: pull_image(spec, headers), phase)
    per_client = [seconds for seconds, _ in results]
    total = sum(size for _, size in results)
    emit({"wall_seconds": phase.wall, "client_p50_seconds": percentile(per_client, 0.5),
          "client_p99_seconds": percentile(per_client, 0.99), "client_max_seconds": max(per_client),
          "bytes": total, "gbps": total / phase.wall / 1e9}, phase)
