"""2. Blob push: a 1 GiB blob, monolithic (POST + PUT) and in chunks (PATCH each, then PUT) in GB/s.

Measured twice. With server data on the machine's disk, which is what users run, and with
server data in memory (a tmpfs), where the figure is the registry's own speed whatever the disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.harness import Context
from bench.servers import Server, ServerUnavailable, start_server
from bench.workloads.base import Metric, Sample, Target
from bench.workloads.images import unique_prefix

NUMBER = 2
TITLE = "blob push"
REPO = "bench/push-blob"
METRICS = [
    Metric("push_mono", "1 blob, monolithic, data in memory", "GB/s", target=Target(">=", 2.0)),
    Metric("push_chunked", "1 blob, chunked, data in memory", "GB/s", target=Target(">=", 2.0)),
    Metric("push_mono_disk", "1 blob, monolithic, data on disk", "GB/s", target=Target(">=", 2.0)),
    Metric("push_chunked_disk", "1 blob, chunked, data on disk", "GB/s", target=Target(">=", 2.0)),
]
MODES = (("push_mono", False), ("push_chunked", True))


def push_runs(ctx: Context, server: Server, key: str, chunk: int) -> Sample:
    sizes = ctx.sizes
    path = ctx.random_file("blob", sizes.blob_bytes)
    # Fresh content for every push, so no server can answer "already have it".
    prefixes = [unique_prefix(f"{key}-{i}").hex() for i in range(sizes.push_repeats)]
    result, usage = ctx.load(server, "push", {"repo": REPO, "file": str(path), "size": sizes.blob_bytes,
                                              "chunk": chunk, "prefixes": prefixes})
    details = {"runs_gbps": result["gbps"], "blob": f"{sizes.blob_bytes / 2**30:g} GiB"}
    if chunk:
        details["chunk_mib"] = chunk / 2**20
    return Sample(result["gbps_median"], details, usage)


def memory_dir(ctx: Context) -> Path:
    """The memory-backed filesystem, or why the in-memory rows cannot be measured."""
    if ctx.memory_dir is None:
        raise ServerUnavailable("no memory-backed directory (--memory-dir)")
    # The blobs of one mode's runs, plus one upload in flight.
    needed = ctx.sizes.blob_bytes * (ctx.sizes.push_repeats + 1) * 1.2
    free = shutil.disk_usage(ctx.memory_dir).free
    if free < needed:
        raise ServerUnavailable(f"{ctx.memory_dir} has {free / 2**30:.1f} GiB free; {needed / 2**30:.1f} GiB needed")
    return ctx.memory_dir


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    """Every place and mode gets a server of its own whose data is removed afterwards. Gigabytes left
    behind would crowd the page cache of the next measurement; in memory, a tmpfs grown past a few
    GiB also slows every write on this VM (fresh guest memory), whichever server is measured."""
    samples: dict[str, Sample] = {}
    for suffix in ("", "_disk"):
        for key, chunked in MODES:
            try:
                root = ctx.workdir if suffix else memory_dir(ctx)
            except ServerUnavailable as exc:
                samples[key + suffix] = Sample(None, note=str(exc))
                continue
            workdir = root / f"{ctx.workdir.name}-{server.name}-{key}{suffix}"
            twin = start_server(server.name, workdir, ctx.password, workers=ctx.moorage_workers)
            try:
                samples[key + suffix] = push_runs(ctx, twin, key + suffix, ctx.sizes.chunk_bytes if chunked else 0)
            finally:
                twin.stop()
                shutil.rmtree(workdir, ignore_errors=True)
    return samples
