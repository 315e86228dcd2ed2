"""7. Tags list of a repository with many tags, and the catalog of many repositories.

Setup goes through the API like everything else: one tiny blob, then one manifest PUT per tag (each made
distinct by an annotation) and, per repository, a cross-repository mount plus a manifest PUT, run
concurrently. Their rates are reported too, as information. A listing follows ``Link`` pages to the end.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Context
from bench.registry import Registry, image_config, image_manifest, sha256_digest
from bench.servers import Server
from bench.workloads.base import Metric, Sample

NUMBER = 7
TITLE = "tags list and catalog"
TAGS_REPO = "bench/tags"
METRICS = [
    Metric("tags_list", "tags list (full)", "lists/s"),
    Metric("tags_list_p99", "tags list p99", "ms", higher_is_better=False),
    Metric("catalog", "catalog (full)", "lists/s"),
    Metric("catalog_p99", "catalog p99", "ms", higher_is_better=False),
    Metric("tag_puts", "setup: tag manifest PUTs", "PUT/s"),
    Metric("repo_creates", "setup: repository mount + PUT", "repos/s"),
]


def _populate(ctx: Context, registry: Registry) -> tuple[float, float]:
    sizes = ctx.sizes
    layer = os.urandom(256)
    layer_digest = sha256_digest(layer)
    config = image_config([layer_digest])
    config_ref = (sha256_digest(config), len(config))
    registry.push_blob(TAGS_REPO, layer_digest, layer)
    registry.push_blob(TAGS_REPO, config_ref[0], config)

    def tag(i: int) -> None:
        manifest = image_manifest(config_ref, [(layer_digest, len(layer))], {"bench.tag": str(i)})
        registry.put_manifest(TAGS_REPO, f"t{i:05d}", manifest)

    def repo(i: int) -> None:
        name = f"bench/r{i:05d}"
        registry.mount_blob(name, layer_digest, TAGS_REPO, layer)
        registry.mount_blob(name, config_ref[0], TAGS_REPO, config)
        registry.put_manifest(name, "v1", image_manifest(config_ref, [(layer_digest, len(layer))]))

    rates = []
    for job, count in ((tag, sizes.tags), (repo, sizes.repos)):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=sizes.populate_threads) as pool:
            list(pool.map(job, range(count)))
        rates.append(count / (time.perf_counter() - started))
    return rates[0], rates[1]


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    sizes = ctx.sizes
    registry = Registry(server.url, server.credentials)
    with ctx.watch(server) as monitor:
        tag_rate, repo_rate = _populate(ctx, registry)
    ctx.record_monitor(server, monitor)
    samples = {"tag_puts": Sample(tag_rate, {"tags": sizes.tags}),
               "repo_creates": Sample(repo_rate, {"repos": sizes.repos})}
    for key, path, field, minimum in (("tags_list", f"/v2/{TAGS_REPO}/tags/list", "tags", sizes.tags),
                                      ("catalog", "/v2/_catalog", "repositories", sizes.repos)):
        result, usage = ctx.load(server, "listing", {"path": path, "key": field, "duration": sizes.listing_seconds,
                                                     "connections": sizes.listing_connections})
        details = {"entries": result["entries"], "requests_per_listing": result["requests"] / result["listings"],
                   "p50_ms": result["p50_seconds"] * 1000}
        note = "" if result["entries"] >= minimum else f"only {result['entries']} of {minimum} entries listed"
        value = result["listings_per_second"] if not note else None
        samples[key] = Sample(value, details, usage, note)
        samples[f"{key}_p99"] = Sample(result["p99_seconds"] * 1000 if not note else None, details, usage, note)
    return samples
