"""Resource use read from /proc: a server's process tree (RSS, CPU) and the whole machine's busy time.

moorage runs a supervisor and several worker processes, so every figure is a sum over the tree rooted at
the PID we started; workers that fork later are found on each sample.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.05
# Walking all of /proc costs the harness real CPU on a 2-core machine; the worker set rarely changes.
TREE_REFRESH_SECONDS = 1.0


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields resume after the last ")".
    return text[text.rindex(")") + 2:].split()


def tree(root: int) -> list[int]:
    """``root`` and all its descendants alive right now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def pss_bytes(pids: list[int]) -> int:
    """Proportional set size: shared pages split between the processes sharing them (forked workers)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError):
            continue
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system time of the processes, including children they have already reaped."""
    total = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            total += sum(int(x) for x in fields[11:15])
    return total / TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot, from the first line of /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


@dataclass
class Usage:
    """What one measured window cost: cores in use on average, and the server's peak resident memory."""

    seconds: float
    server_cores: float
    harness_cores: float
    machine_busy: float
    peak_rss: int
    peak_pss: int


class Monitor:
    """Samples a server tree's RSS in a thread; ``mark`` starts the CPU window and ``stop`` closes it."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._marked: tuple[float, float, float, tuple[int, int]] | None = None
        self._pids: list[int] = []
        self._pids_at = 0.0

    def __enter__(self) -> Monitor:
        self._sample_once()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[int]:
        now = time.monotonic()
        if not self._pids or now - self._pids_at >= TREE_REFRESH_SECONDS:
            self._pids, self._pids_at = tree(self.root), now
        return self._pids

    def _sample_once(self) -> None:
        pids = self._tree()
        self.peak_rss = max(self.peak_rss, rss_bytes(pids))
        self.peak_pss = max(self.peak_pss, pss_bytes(pids))

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample_once()

    def mark(self) -> None:
        self._marked = (time.perf_counter(), cpu_seconds(tree(self.root)), time.process_time(), machine_ticks())

    def usage(self) -> Usage:
        if self._marked is None:
            self.mark()
        assert self._marked is not None
        t0, cpu0, own0, (busy0, total0) = self._marked
        busy1, total1 = machine_ticks()
        seconds = max(time.perf_counter() - t0, 1e-9)
        server = cpu_seconds(tree(self.root)) - cpu0
        own = time.process_time() - own0
        machine = (busy1 - busy0) / max(total1 - total0, 1)
        self._sample_once()
        return Usage(seconds, server / seconds, own / seconds, machine, self.peak_rss, self.peak_pss)
