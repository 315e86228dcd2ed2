"""What every load-generator mode shares: the line protocol with the harness, timing and statistics.

A mode prints ``BEGIN`` when its timed phase starts (so the harness measures server CPU over exactly
that window) and, last, one JSON line with its result, including the CPU the generator itself used.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

BEGIN = "BEGIN"
RESULT_PREFIX = "RESULT "


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Phase:
    """The timed window of a mode: wall time and the generator's own CPU time between begin and end."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._t0 = 0.0
        self._c0 = 0.0

    def begin(self) -> None:
        print(BEGIN, flush=True)
        self._t0, self._c0 = time.perf_counter(), cpu_seconds()

    def end(self) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = cpu_seconds() - self._c0


def emit(result: dict[str, Any], phase: Phase) -> None:
    result = {**result, "loadgen_cpu_seconds": phase.cpu, "loadgen_wall_seconds": phase.wall}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; enough for a few hundred samples and exact for the median of odd counts."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def run_threads(count: int, target: Callable[[int], Any], phase: Phase | None = None) -> list[Any]:
    """Run ``target(i)`` in ``count`` threads released together; re-raise the first failure."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count + 1)

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    if phase is not None:
        phase.begin()
    barrier.wait()
    for thread in threads:
        thread.join()
    if phase is not None:
        phase.end()
    if errors:
        raise errors[0]
    return results


def prefixed_digest(prefix: bytes, data: bytes) -> str:
    digest = hashlib.sha256(prefix)
    digest.update(data)
    return "sha256:" + digest.hexdigest()


def file_digest(prefix: bytes, path: str, count: int) -> str:
    """sha256 of ``prefix`` + the first ``count`` bytes of ``path``, streamed so 1 GiB needs no 1 GiB buffer."""
    digest = hashlib.sha256(prefix)
    remaining = count
    with open(path, "rb") as fh:
        while remaining:
            chunk = fh.read(min(remaining, 8 * 1024 * 1024))
            if not chunk:
                raise ValueError(f"{path} is shorter than {count} bytes")
            digest.update(chunk)
            remaining -= len(chunk)
    return "sha256:" + digest.hexdigest()


def fail(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(2)
