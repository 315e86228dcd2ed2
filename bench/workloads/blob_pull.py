"""1. Blob pull: one 1 GiB blob, one stream and several parallel streams (GB/s, 1 GB = 10^9 bytes)."""

from __future__ import annotations

from bench.harness import Context
from bench.registry import Registry
from bench.servers import Server
from bench.workloads.base import Metric, Sample, Target
from bench.workloads.images import file_blob

NUMBER = 1
TITLE = "blob pull"
REPO = "bench/blob"
METRICS = [
    Metric("pull_1", "1 blob, 1 stream", "GB/s", target=Target(">=", 1.0)),
    Metric("pull_n", "1 blob, parallel streams", "GB/s", target=Target(">=", 1.0)),
]


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    sizes = ctx.sizes
    path = ctx.random_file("blob", sizes.blob_bytes)
    body, digest = file_blob(str(path), sizes.blob_bytes, "pull-blob")
    with ctx.watch(server) as monitor:
        Registry(server.url, server.credentials).push_blob(REPO, digest, body)
    ctx.record_monitor(server, monitor)
    spec = {"repo": REPO, "digest": digest, "size": sizes.blob_bytes}
    single, usage1 = ctx.load(server, "pull", {**spec, "streams": 1, "repeats": sizes.pull_repeats})
    parallel, usage_n = ctx.load(server, "pull", {**spec, "streams": sizes.parallel_streams,
                                                  "repeats": sizes.parallel_repeats})
    label = f"{sizes.blob_bytes / 2**30:g} GiB"
    return {
        "pull_1": Sample(single["gbps_median"], {"runs_gbps": single["gbps"], "blob": label}, usage1),
        "pull_n": Sample(parallel["gbps_median"], {"runs_gbps": parallel["gbps"], "blob": label,
                                                  "streams": sizes.parallel_streams}, usage_n),
    }
