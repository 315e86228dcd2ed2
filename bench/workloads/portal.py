"""10. The web portal's first page of a big repository and of a big registry (moorage only).

A moorage with authentication on gets ``tags`` tags in one repository (each its own artifact, made distinct
by an annotation) and ``portal_projects`` projects, all through the registry and management APIs. Then the
admin signs in to the portal like a browser (login form, CSRF token, session cookie) and one client asks,
one request after another on a keep-alive connection, for the projects list and for the repository's page:
both render their first page, which the server cuts from the whole listing. p95 of each is the figure;
the target is under 300 ms. distribution has no portal.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import Context
from bench.registry import Registry, image_config, image_manifest, sha256_digest
from bench.servers import Server, ServerUnavailable, start_server
from bench.workloads.base import Metric, Sample, Target

NUMBER = 10
TITLE = "web portal first pages"
PROJECT = "bench"
REPO = "bench/tags"
REQUESTS = 200
WARMUP = 10
PROJECT_THREADS = 4
METRICS = [
    Metric("portal_projects_p95", "projects list, 1st page, p95", "ms", higher_is_better=False,
           target=Target("<", 300.0, absolute=True)),
    Metric("portal_repository_p95", "repository with 10k tags, 1st page, p95", "ms", higher_is_better=False,
           target=Target("<", 300.0, absolute=True)),
    Metric("portal_projects_p50", "projects list, 1st page, p50", "ms", higher_is_better=False),
    Metric("portal_repository_p50", "repository page, p50", "ms", higher_is_better=False),
]


def _populate(ctx: Context, server: Server) -> None:
    assert server.credentials is not None
    registry = Registry(server.url, server.credentials)
    layer = os.urandom(256)
    layer_digest = sha256_digest(layer)
    config = image_config([layer_digest])
    config_ref = (sha256_digest(config), len(config))
    registry.push_blob(REPO, layer_digest, layer)
    registry.push_blob(REPO, config_ref[0], config)

    def tag(i: int) -> None:
        manifest = image_manifest(config_ref, [(layer_digest, len(layer))], {"bench.tag": str(i)})
        registry.put_manifest(REPO, f"t{i:05d}", manifest)

    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=server.credentials, timeout=60) as api:
        def project(i: int) -> None:
            response = api.post("/projects", json={"project_name": f"p{i:05d}", "metadata": {"public": "false"}})
            if response.status_code not in (201, 409):
                raise ServerUnavailable(f"POST /api/v2.0/projects answered {response.status_code}")

        with ThreadPoolExecutor(max_workers=ctx.sizes.populate_threads) as pool:
            list(pool.map(tag, range(ctx.sizes.tags)))
        # Project creation is a handful of writes each: a few clients at once are plenty (32 made SQLite's
        # writers queue past its busy timeout on a loaded 2-core machine).
        with ThreadPoolExecutor(max_workers=PROJECT_THREADS) as pool:
            list(pool.map(project, range(ctx.sizes.portal_projects - 1)))  # "bench" is one already


def _sign_in(client: httpx.Client, credentials: tuple[str, str]) -> None:
    form = client.get("/portal/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise ServerUnavailable("the portal's login page has no form")
    response = client.post("/portal/login", data={"csrf_token": token.group(1), "username": credentials[0],
                                                  "password": credentials[1], "next": "/portal/projects"})
    if response.status_code != 303 or "moorage_session" not in client.cookies:
        raise ServerUnavailable(f"signing in to the portal answered {response.status_code}")


def _latencies(client: httpx.Client, path: str, expect: str) -> list[float]:
    taken = []
    for n in range(WARMUP + REQUESTS):
        started = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or expect not in response.text:
            raise ServerUnavailable(f"GET {path} answered {response.status_code} without {expect!r}")
        if n >= WARMUP:
            taken.append(elapsed * 1000)
    return taken


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def measure(ctx: Context, server: Server) -> dict[str, Sample]:
    if server.name != "moorage":
        return {m.key: Sample(None, note="no web portal") for m in METRICS}
    twin = start_server(server.name, ctx.workdir / "portal", ctx.password, auth=True, workers=ctx.moorage_workers)
    try:
        with ctx.watch(twin) as monitor:
            _populate(ctx, twin)
            assert twin.credentials is not None
            with httpx.Client(base_url=twin.url, timeout=60) as client:
                _sign_in(client, twin.credentials)
                projects = _latencies(client, "/portal/projects", "p00000")
                repository = _latencies(client, f"/portal/projects/{PROJECT}/repositories/tags", "docker pull ")
        ctx.record_monitor(twin, monitor)
    finally:
        twin.stop()
    details = {"tags": ctx.sizes.tags, "projects": ctx.sizes.portal_projects, "requests": REQUESTS}
    return {"portal_projects_p95": Sample(_p95(projects), details),
            "portal_repository_p95": Sample(_p95(repository), details),
            "portal_projects_p50": Sample(statistics.median(projects), details),
            "portal_repository_p50": Sample(statistics.median(repository), details)}
