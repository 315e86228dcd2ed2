"""2. Blob push: a 1 GiB blob, monolithic (POST + PUT) and in chunks (PATCH each, then PUT) in GB/s.

Measured twice. With server data on the machine's disk, which is what users run, and with
server data in memory (a tmpfs), where the figure is the registry's own speed whatever the disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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


def push_once(ctx: Context, server: Server, key: str, run: int, chunk: int) -> tuple[float, dict[str, Any]]:
    sizes = ctx.sizes
    path = ctx.random_file("blob", sizes.blob_bytes)
    # Fresh content for every push, so no server can answer "already have it".
    prefix = unique_prefix(f"{key}-{run}").hex()
    result, usage = ctx.load(server, "push", {"repo": REPO, "file": str(path), "size": sizes.blob_bytes,
                                              "chunk": chunk, "prefixes": [prefix]})
    return result["gbps"][0], usage


def memory_dir(ctx: Context) -> Path:
    """The memory-backed filesystem, or why the in-memory rows cannot be measured."""
    if ctx.memory_dir is None:
        raise ServerUnavailable("no memory-backed directory (--memory-dir)")
    # One push's blob, plus its upload in flight.
    needed = ctx.sizes.blob_bytes * 2 * 1.2
    free = shutil.disk_usage(ctx.memory_dir).free
    if free < needed:
        raise ServerUnavailable(f"{ctx.memory_dir} has {free / 2**30:.1f} GiB free; {needed / 2**30:.1f} GiB needed")
    return ctx.memory_dir


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    """Every push gets a server of its own whose data is removed right after. Gigabytes left behind
    would crowd the page cache of the next measurement; in memory, a tmpfs grown past a few GiB also
    slows every write on this VM (fresh guest memory): with three pushes to one server, the third ran
    at a third of the speed of the first, on both servers alike."""
    samples: dict[str, Sample] = {}
    for suffix in ("", "_disk"):
        for key, chunked in MODES:
            try:
                root = ctx.workdir if suffix else memory_dir(ctx)
            except ServerUnavailable as exc:
                samples[key + suffix] = Sample(None, note=str(exc))
                continue
            runs: list[tuple[float, dict[str, Any]]] = []
            for run in range(ctx.sizes.push_repeats):
                workdir = root / f"{ctx.workdir.name}-{server.name}-{key}{suffix}-{run}"
                twin = start_server(server.name, workdir, ctx.password, workers=ctx.moorage_workers)
                try:
                    runs.append(push_once(ctx, twin, key + suffix, run, ctx.sizes.chunk_bytes if chunked else 0))
                finally:
                    twin.stop()
                    shutil.rmtree(workdir, ignore_errors=True)
            gbps, usage = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
            details: dict[str, Any] = {"runs_gbps": [r[0] for r in runs],
                                       "blob": f"{ctx.sizes.blob_bytes / 2**30:g} GiB"}
            if chunked:
                details["chunk_mib"] = ctx.sizes.chunk_bytes / 2**20
            samples[key + suffix] = Sample(gbps, details, usage)
    return samples
