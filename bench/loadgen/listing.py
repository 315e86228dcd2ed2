"""Full listings (tags list, catalog): each request follows ``Link: <...>; rel="next"`` pages to the end."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from bench.loadgen.common import Phase, emit, fail, percentile, run_threads
from bench.loadgen.http import Connection

_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def full_listing(conn: Connection, path: str, key: str, headers: dict[str, str]) -> tuple[int, int]:
    """Every entry of a paginated listing; returns (entries, requests made)."""
    entries = requests = 0
    while path:
        response = conn.request("GET", path, headers)
        requests += 1
        if response.status != 200:
            fail(f"GET {path}: HTTP {response.status} {response.body[:200]!r}")
        entries += len(json.loads(response.body).get(key) or [])
        match = _NEXT.search(response.header("link"))
        path = match.group(1) if match else ""
        if path.startswith("http"):
            path = "/" + path.split("/", 3)[3]
    return entries, requests


def listing(spec: dict[str, Any]) -> None:
    headers, duration = spec.get("headers", {}), spec["duration"]

    def client(_i: int) -> tuple[list[float], int, int]:
        conn = Connection(spec["host"], spec["port"], buffer_size=1024 * 1024)
        latencies: list[float] = []
        entries = requests = 0
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline or not latencies:
            started = time.perf_counter()
            entries, made = full_listing(conn, spec["path"], spec["key"], headers)
            latencies.append(time.perf_counter() - started)
            requests += made
        conn.close()
        return latencies, entries, requests

    phase = Phase()
    results = run_threads(spec["connections"], client, phase)
    latencies = [x for lat, _, _ in results for x in lat]
    emit({"listings_per_second": len(latencies) / phase.wall, "p50_seconds": percentile(latencies, 0.5),
          "p99_seconds": percentile(latencies, 0.99), "entries": min(e for _, e, _ in results),
          "requests": sum(r for _, _, r in results), "listings": len(latencies)}, phase)
