"""11. Pushes with quotas on and off: what keeping a project's usage exact costs a push.

Rounds of concurrent pushes of small images (so each push is mostly requests and database work, where the
accounting lives, not bytes) go, alternately, to repositories in no project (nothing counted: quotas off), to a
project without a limit (usage counted) and to a project with a limit (usage counted and every push checked
against it: quotas on). Each figure is the median of its rounds. The target is on the server's CPU time per
push, on against off: on this 2-core machine the server is CPU-bound, so that is what its push throughput
follows, and it swings less than wall time with whatever else runs on the machine. distribution has no quotas.
"""

from __future__ import annotations

import json
import statistics

from bench.harness import Context
from bench.loadgen.http import Connection
from bench.registry import basic_header
from bench.servers import Server, ServerUnavailable
from bench.workloads.base import Metric, Sample, Target

NUMBER = 11
TITLE = "pushes with quotas on vs off"
LIMITED, UNLIMITED = "bench-quota-on", "bench-quota-unlimited"
METRICS = [
    Metric("quota_off", "pushes, no project (nothing counted)", "pushes/s"),
    Metric("quota_unlimited", "pushes, project without a limit (usage counted)", "pushes/s"),
    Metric("quota_on", "pushes, project with a limit (counted and checked)", "pushes/s"),
    Metric("quota_cpu_off", "server CPU per push, off", "ms", higher_is_better=False),
    Metric("quota_cpu_on", "server CPU per push, on", "ms", higher_is_better=False),
    Metric("quota_overhead", "quotas on: server CPU per push above off by", "%", higher_is_better=False,
           target=Target("<", 5.0, absolute=True)),
    Metric("quota_wall_overhead", "quotas on: push rate below off by (wall time; noisy)", "%",
           higher_is_better=False),
]


def _create_project(server: Server, name: str, storage_limit: int) -> None:
    assert server.credentials is not None
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = Connection(host, int(port), buffer_size=65536)
    body = json.dumps({"project_name": name, "storage_limit": storage_limit}).encode()
    try:
        response = conn.request("POST", "/api/v2.0/projects", {
            "Authorization": basic_header(*server.credentials), "Content-Type": "application/json"}, body)
    finally:
        conn.close()
    if response.status not in (201, 409):
        raise ServerUnavailable(f"POST /api/v2.0/projects answered {response.status}: {response.body[:200]!r}")


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    if server.name != "moorage":
        raise ServerUnavailable("distribution has no quotas")
    sizes = ctx.sizes
    _create_project(server, LIMITED, 2**50)
    _create_project(server, UNLIMITED, -1)
    path = ctx.random_file("quota-layers", sizes.quota_layer_bytes)
    prefixes = {"quota_off": "bench-quota-off-{round}/push-", "quota_unlimited": UNLIMITED + "/r{round}-push-",
                "quota_on": LIMITED + "/r{round}-push-"}
    # One unmeasured round first: the workers' first pushes pay for imports and warm caches.
    ctx.load(server, "pushes", {"clients": sizes.quota_pushes, "layers": sizes.push_layers,
                                "layer_size": sizes.quota_layer_bytes, "file": str(path), "run": "qwarm",
                                "repo_prefix": "bench-quota-warmup/push-"})
    rates: dict[str, list[float]] = {key: [] for key in prefixes}
    cpu: dict[str, list[float]] = {key: [] for key in prefixes}
    usages: dict[str, dict[str, object]] = {}
    for round_ in range(sizes.quota_rounds):
        # Alternating, so a drift of the machine's speed during the run falls on every variant alike.
        for key, prefix in prefixes.items():
            result, usage = ctx.load(server, "pushes", {
                "clients": sizes.quota_pushes, "layers": sizes.push_layers, "layer_size": sizes.quota_layer_bytes,
                "file": str(path), "run": f"q{round_}{key}", "repo_prefix": prefix.format(round=round_)})
            rates[key].append(sizes.quota_pushes / result["wall_seconds"])
            cpu[key].append(usage["server_cores"] * usage["seconds"] / sizes.quota_pushes * 1000)
            usages[key] = usage
    details = {"pushes_per_round": sizes.quota_pushes, "rounds": sizes.quota_rounds, "layers": sizes.push_layers,
               "layer_kib": sizes.quota_layer_bytes / 1024}
    medians = {key: statistics.median(values) for key, values in rates.items()}
    samples = {key: Sample(medians[key], {**details, "rounds_pushes_per_s": [round(r, 1) for r in rates[key]]},
                           usages[key]) for key in prefixes}
    cpu_medians = {key: statistics.median(values) for key, values in cpu.items()}
    samples["quota_cpu_off"] = Sample(cpu_medians["quota_off"], {**details, "rounds_ms": _rounded(cpu["quota_off"])})
    samples["quota_cpu_on"] = Sample(cpu_medians["quota_on"], {**details, "rounds_ms": _rounded(cpu["quota_on"])})
    samples["quota_overhead"] = Sample((cpu_medians["quota_on"] / cpu_medians["quota_off"] - 1) * 100, details)
    samples["quota_wall_overhead"] = Sample((1 - medians["quota_on"] / medians["quota_off"]) * 100, details)
    return samples


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]
