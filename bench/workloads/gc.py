"""9. Garbage collection of a registry holding 100,000 blobs, half of them referenced by no manifest.

Each server gets a registry of its own, filled through the registry API: tiny blobs (monolithic uploads),
then manifests of 100 layers each referencing half of them; the other half is what an abandoned push
leaves behind. moorage collects online, beside the serving registry (``moorage gc --json``, no grace
period, links made with a lease of 0.6 s), and reports its mark and sweep times. distribution's
``garbage-collect`` must run with the registry stopped (its documentation: a push during the run can lose
data); its mark time is taken when it prints its mark summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import Context
from bench.registry import Registry, image_config, image_manifest, sha256_digest
from bench.servers import Server, moorage_command, start_server
from bench.workloads.base import Metric, Sample, Target

NUMBER = 9
TITLE = "garbage collection"
REPO = "bench/gc"
LAYERS_PER_MANIFEST = 100
METRICS = [
    Metric("gc_mark", "GC mark (plan) of 100k blobs", "s", higher_is_better=False,
           target=Target("<", 5.0, absolute=True)),
    Metric("gc_sweep", "GC sweep", "blobs/s", target=Target(">=", 1000.0, absolute=True)),
    Metric("gc_wall", "GC whole run (process start to exit)", "s", higher_is_better=False),
    Metric("gc_setup", "setup: blob uploads", "blobs/s"),
]


def _populate(ctx: Context, server: Server) -> tuple[int, float]:
    """Push ``gc_blobs`` blobs and reference half of them; returns (unreferenced count, upload rate)."""
    registry = Registry(server.url, server.credentials)
    count = ctx.sizes.gc_blobs
    seed = os.urandom(8).hex()
    blobs = [f"{seed}-{i}".encode() for i in range(count)]
    digests = [sha256_digest(b) for b in blobs]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=ctx.sizes.populate_threads) as pool:
        list(pool.map(lambda i: registry.push_blob(REPO, digests[i], blobs[i]), range(count)))
    rate = count / (time.perf_counter() - started)
    referenced = count // 2
    groups = [range(start, min(start + LAYERS_PER_MANIFEST, referenced))
              for start in range(0, referenced, LAYERS_PER_MANIFEST)]

    def manifest(n: int) -> None:
        layers = [(digests[i], len(blobs[i])) for i in groups[n]]
        config = image_config([d for d, _ in layers])
        config_ref = (sha256_digest(config), len(config))
        registry.push_blob(REPO, config_ref[0], config)
        registry.put_manifest(REPO, f"m{n:05d}", image_manifest(config_ref, layers))

    with ThreadPoolExecutor(max_workers=ctx.sizes.populate_threads) as pool:
        list(pool.map(manifest, range(len(groups))))
    return count - referenced, rate


def _moorage_gc(server: Server) -> tuple[dict[str, object], float]:
    command, env = moorage_command()
    started = time.perf_counter()
    result = subprocess.run([*command, "gc", "--data-dir", str(server.workdir / "data"), "--json"],
                            capture_output=True, text=True, env={**os.environ, **env, "MOORAGE_GC_GRACE_MINUTES": "0"},
                            timeout=1800, check=True)
    return json.loads(result.stdout), time.perf_counter() - started


def _distribution_gc(server: Server) -> tuple[int, float, float]:
    """(blobs deleted, mark seconds, whole run seconds) of ``docker-registry garbage-collect``."""
    binary = shutil.which("docker-registry")
    assert binary is not None
    started = time.perf_counter()
    marked = None
    deleted = 0
    with subprocess.Popen([binary, "garbage-collect", str(server.workdir / "config.yml")], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if marked is None and "eligible for deletion" in line:
                marked = time.perf_counter() - started
            if "Deleting blob" in line:
                deleted += 1
    if process.returncode != 0:
        raise RuntimeError(f"docker-registry garbage-collect exited {process.returncode}")
    whole = time.perf_counter() - started
    return deleted, marked if marked is not None else whole, whole


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    workdir: Path = ctx.workdir / f"gc-{server.name}"
    # A lease of 0.6 s: the uploads' links have expired when GC starts, so only references keep a blob (what
    # distribution's GC does).
    twin = start_server(server.name, workdir, ctx.password, workers=ctx.moorage_workers,
                        env={"MOORAGE_GC_LEASE_MINUTES": "0.01"})
    try:
        with ctx.watch(twin) as monitor:
            garbage, rate = _populate(ctx, twin)
        ctx.record_monitor(twin, monitor)
        time.sleep(1)
        if server.name == "moorage":
            outcome, whole = _moorage_gc(twin)
            deleted, mark, sweep = int(str(outcome["blobs"])), float(str(outcome["mark_seconds"])), \
                float(str(outcome["sweep_seconds"]))
        else:
            twin.stop()  # offline only
            deleted, mark, whole = _distribution_gc(twin)
            sweep = whole - mark
    finally:
        twin.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    details = {"blobs": ctx.sizes.gc_blobs, "garbage": garbage, "deleted": deleted}
    note = "" if deleted == garbage else f"deleted {deleted} blobs, {garbage} were garbage"
    return {"gc_mark": Sample(mark, details, note=note),
            "gc_sweep": Sample(deleted / sweep if sweep > 0 else None, details, note=note),
            "gc_wall": Sample(whole, details, note=note),
            "gc_setup": Sample(rate, details)}
