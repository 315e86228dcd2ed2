"""5. Pull storm: many clients released together, each pulling the same multi-layer image."""

from __future__ import annotations

from bench.harness import Context
from bench.registry import Registry
from bench.servers import Server
from bench.workloads.base import Metric, Sample, Target
from bench.workloads.images import file_blob, push_image

NUMBER = 5
TITLE = "pull storm"
REPO = "bench/storm"
METRICS = [
    Metric("storm_wall", "wall time, all clients", "s", higher_is_better=False, target=Target("<=", 0.8)),
    Metric("storm_p99", "p99 per client", "s", higher_is_better=False),
]


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    sizes = ctx.sizes
    layer_bytes = sizes.storm_image_bytes // sizes.storm_layers
    path = str(ctx.random_file("layers", max(layer_bytes, sizes.push_layer_bytes)))
    layers = [file_blob(path, layer_bytes, f"storm-{i}") for i in range(sizes.storm_layers)]
    with ctx.watch(server) as monitor:
        push_image(Registry(server.url, server.credentials), REPO, "latest", list(layers))
    ctx.record_monitor(server, monitor)
    result, usage = ctx.load(server, "storm", {"repo": REPO, "tag": "latest", "clients": sizes.storm_clients})
    details = {"clients": sizes.storm_clients, "layers": sizes.storm_layers,
               "image_mib": sizes.storm_image_bytes / 2**20, "aggregate_gbps": result["gbps"],
               "client_p50_s": result["client_p50_seconds"]}
    return {"storm_wall": Sample(result["wall_seconds"], details, usage),
            "storm_p99": Sample(result["client_p99_seconds"], details, usage)}
