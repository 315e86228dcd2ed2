"""Concurrent pushes: each client pushes its own image (layers, config, manifest) into its own repository."""

from __future__ import annotations

import time
from typing import Any

from bench.loadgen.blobs import upload
from bench.loadgen.common import Phase, emit, fail, percentile, prefixed_digest, run_threads
from bench.loadgen.http import Connection, FileBody
from bench.registry import OCI_MANIFEST, image_config, image_manifest, sha256_digest

PREFIX_BYTES = 16


def layer_prefix(run: str, image: int, layer: int) -> bytes:
    return f"{run}:{image}:{layer}".encode().ljust(PREFIX_BYTES, b".")[:PREFIX_BYTES]


def pushes(spec: dict[str, Any]) -> None:
    clients, layers, size, headers = spec["clients"], spec["layers"], spec["layer_size"], spec.get("headers", {})
    with open(spec["file"], "rb") as fh:
        base = fh.read(size - PREFIX_BYTES)
    # Digests are computed before the clock starts: the client's hashing is not what is measured.
    plan = []
    for i in range(clients):
        bodies = [FileBody(spec["file"], 0, size - PREFIX_BYTES, layer_prefix(spec["run"], i, j))
                  for j in range(layers)]
        digests = [prefixed_digest(b.prefix, base) for b in bodies]
        config = image_config(digests)
        manifest = image_manifest((sha256_digest(config), len(config)), [(d, size) for d in digests])
        plan.append((bodies, digests, config, manifest))

    def client(i: int) -> float:
        bodies, digests, config, manifest = plan[i]
        repo = f"{spec['repo_prefix']}{i:03d}"
        started = time.perf_counter()
        conn = Connection(spec["host"], spec["port"], buffer_size=256 * 1024)
        try:
            for body, digest in zip(bodies, digests, strict=True):
                upload(conn, repo, body, digest, 0, headers)
            upload(conn, repo, config, sha256_digest(config), 0, headers)
            response = conn.request("PUT", f"/v2/{repo}/manifests/v1", {**headers, "Content-Type": OCI_MANIFEST},
                                    manifest)
            if response.status != 201:
                fail(f"PUT manifest {repo}:v1: HTTP {response.status} {response.body[:200]!r}")
        finally:
            conn.close()
        return time.perf_counter() - started

    phase = Phase()
    per_client = run_threads(clients, client, phase)
    total = clients * layers * size
    emit({"wall_seconds": phase.wall, "client_p50_seconds": percentile(per_client, 0.5),
          "client_p99_seconds": percentile(per_client, 0.99), "bytes": total,
          "gbps": total / phase.wall / 1e9}, phase)
