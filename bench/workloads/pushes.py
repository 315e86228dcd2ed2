"""6. Concurrent pushes: each client pushes a different image (its own layers) to its own repository."""

from __future__ import annotations

from bench.harness import Context
from bench.servers import Server
from bench.workloads.base import Metric, Sample

NUMBER = 6
TITLE = "concurrent pushes"
METRICS = [
    Metric("pushes_wall", "wall time, all pushes", "s", higher_is_better=False),
    Metric("pushes_p99", "p99 per push", "s", higher_is_better=False),
    Metric("pushes_gbps", "aggregate", "GB/s"),
]


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    sizes = ctx.sizes
    path = ctx.random_file("layers", max(sizes.push_layer_bytes, sizes.storm_image_bytes // sizes.storm_layers))
    result, usage = ctx.load(server, "pushes", {
        "clients": sizes.pushes, "layers": sizes.push_layers, "layer_size": sizes.push_layer_bytes,
        "file": str(path), "run": "p", "repo_prefix": "bench/push-"})
    details = {"pushes": sizes.pushes, "layers": sizes.push_layers, "layer_mib": sizes.push_layer_bytes / 2**20}
    return {"pushes_wall": Sample(result["wall_seconds"], details, usage),
            "pushes_p99": Sample(result["client_p99_seconds"], details, usage),
            "pushes_gbps": Sample(result["gbps"], details, usage)}
