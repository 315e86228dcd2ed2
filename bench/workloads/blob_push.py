"""2. Blob push: a 1 GiB blob, monolithic (POST + PUT) and in chunks (PATCH each, then PUT) in GB/s."""

from __future__ import annotations

from bench.harness import Context
from bench.servers import Server
from bench.workloads.base import Metric, Sample, Target
from bench.workloads.images import unique_prefix

NUMBER = 2
TITLE = "blob push"
REPO = "bench/push-blob"
METRICS = [
    Metric("push_mono", "1 blob, monolithic", "GB/s", target=Target(">=", 2.0)),
    Metric("push_chunked", "1 blob, chunked", "GB/s", target=Target(">=", 2.0)),
]


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    sizes = ctx.sizes
    path = ctx.random_file("blob", sizes.blob_bytes)
    samples = {}
    for key, chunk in (("push_mono", 0), ("push_chunked", sizes.chunk_bytes)):
        # Fresh content for every push, so no server can answer "already have it".
        prefixes = [unique_prefix(f"{key}-{i}").hex() for i in range(sizes.push_repeats)]
        result, usage = ctx.load(server, "push", {"repo": REPO, "file": str(path), "size": sizes.blob_bytes,
                                                  "chunk": chunk, "prefixes": prefixes})
        details = {"runs_gbps": result["gbps"], "blob": f"{sizes.blob_bytes / 2**30:g} GiB"}
        if chunk:
            details["chunk_mib"] = chunk / 2**20
        samples[key] = Sample(result["gbps_median"], details, usage)
    return samples
