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
MODES = (("push_mono", 0), ("push_chunked", None))


def pushes(ctx: Context, server: Server, suffix: str = "") -> dict[str, Sample]:
    sizes = ctx.sizes
    path = ctx.random_file("blob", sizes.blob_bytes)
    samples = {}
    for key, chunk in MODES:
        chunk = sizes.chunk_bytes if chunk is None else chunk
        # Fresh content for every push, so no server can answer "already have it".
        prefixes = [unique_prefix(f"{key}{suffix}-{i}").hex() for i in range(sizes.push_repeats)]
        result, usage = ctx.load(server, "push", {"repo": REPO, "file": str(path), "size": sizes.blob_bytes,
                                                  "chunk": chunk, "prefixes": prefixes})
        details = {"runs_gbps": result["gbps"], "blob": f"{sizes.blob_bytes / 2**30:g} GiB"}
        if chunk:
            details["chunk_mib"] = chunk / 2**20
        samples[key + suffix] = Sample(result["gbps_median"], details, usage)
    return samples


def memory_workdir(ctx: Context, name: str) -> Path:
    """A fresh directory on the memory-backed filesystem, or why the in-memory rows cannot be measured."""
    if ctx.memory_dir is None:
        raise ServerUnavailable("no memory-backed directory (--memory-dir)")
    # Every pushed blob stays stored, plus one upload in flight.
    needed = ctx.sizes.blob_bytes * (len(MODES) * ctx.sizes.push_repeats + 1)
    free = shutil.disk_usage(ctx.memory_dir).free
    if free < needed * 1.2:
        raise ServerUnavailable(f"{ctx.memory_dir} has {free / 2**30:.1f} GiB free; "
                                f"{needed * 1.2 / 2**30:.1f} GiB needed")
    return ctx.memory_dir / f"{ctx.workdir.name}-{name}-push"


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    """Each place gets a server of its own whose data is removed afterwards: the gigabytes pushed would
    otherwise crowd memory (tmpfs, page cache) for the next measurement and the next workloads."""
    samples: dict[str, Sample] = {}
    for suffix in ("", "_disk"):
        try:
            workdir = memory_workdir(ctx, server.name) if not suffix else ctx.workdir / f"{server.name}-push"
        except ServerUnavailable as exc:
            samples.update({key + suffix: Sample(None, note=str(exc)) for key, _ in MODES})
            continue
        twin = start_server(server.name, workdir, ctx.password, workers=ctx.moorage_workers)
        try:
            samples.update(pushes(ctx, twin, suffix))
        finally:
            twin.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return samples
