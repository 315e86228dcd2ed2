"""3. Manifest GET by tag and HEAD by digest under wrk (requests/s, p50/p99 latency)."""

from __future__ import annotations

import os

from bench.harness import Context, wrk_sample
from bench.registry import MANIFEST_ACCEPT, Registry, RegistryError, sha256_digest
from bench.servers import Server
from bench.workloads.base import Metric, Sample, Target
from bench.workloads.images import push_image

NUMBER = 3
TITLE = "manifest GET/HEAD"
REPO = "bench/manifest"
METRICS = [
    Metric("get_tag", "GET manifest by tag", "req/s", target=Target(">=", 5.0)),
    Metric("head_digest", "HEAD manifest by digest", "req/s", target=Target(">=", 5.0)),
]


def manifest_samples(ctx: Context, server: Server, registry: Registry) -> dict[str, Sample]:
    """Push a one-layer image, check both requests answer correctly once, then load them with wrk."""
    layer = os.urandom(4096)
    with ctx.watch(server) as monitor:
        image = push_image(registry, REPO, "latest", [(layer, sha256_digest(layer))])
        scope = f"repository:{REPO}:pull"
        check = registry.request("GET", f"/v2/{REPO}/manifests/latest", scope, {"Accept": MANIFEST_ACCEPT})
        if check.status != 200 or check.body != image.manifest:
            raise RegistryError(f"GET {REPO}:latest answered {check.status} with a different manifest")
        check = registry.request("HEAD", f"/v2/{REPO}/manifests/{image.digest}", scope, {"Accept": MANIFEST_ACCEPT})
        if check.status != 200 or check.header("docker-content-digest") != image.digest:
            raise RegistryError(f"HEAD {REPO}@{image.digest} answered {check.status}")
        headers = {**registry.auth_headers(scope), "Accept": MANIFEST_ACCEPT}
    ctx.record_monitor(server, monitor)
    get = wrk_sample(*ctx.small_requests(server, f"/v2/{REPO}/manifests/latest", "GET", headers))
    head = wrk_sample(*ctx.small_requests(server, f"/v2/{REPO}/manifests/{image.digest}", "HEAD", headers))
    return {"get_tag": get, "head_digest": head}


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    return manifest_samples(ctx, server, Registry(server.url, server.credentials))
