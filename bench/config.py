"""Workload sizes: the full benchmark the issue asks for, and a tiny one for the harness's smoke test."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Sizes:
    blob_bytes: int = 1 * GiB
    pull_repeats: int = 5
    parallel_streams: int = 8
    parallel_repeats: int = 2
    push_repeats: int = 3
    chunk_bytes: int = 16 * MiB
    wrk_connections: int = 64
    wrk_seconds: float = 10.0
    wrk_warmup_seconds: float = 2.0
    storm_clients: int = 200
    storm_layers: int = 5
    storm_image_bytes: int = 64 * MiB
    pushes: int = 20
    push_layers: int = 3
    push_layer_bytes: int = 16 * MiB
    tags: int = 10_000
    repos: int = 10_000
    listing_connections: int = 4
    listing_seconds: float = 10.0
    populate_threads: int = 32
    gc_blobs: int = 100_000
    #: Projects in the registry whose portal pages workload 10 renders (beside ``tags`` tags in one repository).
    portal_projects: int = 1_000
    #: Workload 11: concurrent pushes of small images per round, rounds per variant, and each layer's size.
    quota_pushes: int = 40
    quota_rounds: int = 5
    quota_layer_bytes: int = 256 * KiB

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes()
QUICK = replace(
    FULL, blob_bytes=8 * MiB, pull_repeats=1, parallel_streams=2, parallel_repeats=1, push_repeats=1,
    chunk_bytes=1 * MiB, wrk_connections=8, wrk_seconds=1.0, wrk_warmup_seconds=0.0, storm_clients=8,
    storm_image_bytes=2 * MiB, pushes=3, push_layers=2, push_layer_bytes=256 * KiB, tags=40, repos=40,
    listing_connections=2, listing_seconds=1.0, populate_threads=8, gc_blobs=2_000,
    portal_projects=20, quota_pushes=4, quota_rounds=1, quota_layer_bytes=64 * KiB)
