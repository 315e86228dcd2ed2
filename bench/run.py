"""``python -m bench.run``: moorage and CNCF distribution side by side, same workloads, one run.

Starts both registries on loopback, runs every workload against each in turn with the load coming from
separate processes (wrk, ``python -m bench.loadgen``), prints the table and writes
``bench/results/latest.json`` and ``latest.md``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import report
from bench.config import FULL, QUICK, Sizes
from bench.harness import Context, LoadError, Sample
from bench.procmon import machine_ticks
from bench.registry import RegistryError
from bench.servers import Server, ServerUnavailable, start_server
from bench.workloads import auth, blob_pull, blob_push, gc, listing, manifests, portal, pushes, quotas, storm

WORKLOADS: list[ModuleType] = [blob_pull, blob_push, manifests, auth, storm, pushes, listing, gc, portal, quotas]
RESULTS = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "cpu_model": model, "memory_gib": memory, "kernel": platform.release(),
            "python": platform.python_version()}


def busy_now(seconds: float = 2.0) -> float:
    """The machine's busy share over a short idle moment: anything else running disturbs the figures."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1)


def versions() -> dict[str, str]:
    found = {}
    if binary := shutil.which("docker-registry"):
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split()
        found["distribution"] = out[-1] if out else "?"
    try:
        found["moorage"] = importlib.metadata.version("moorage")
    except importlib.metadata.PackageNotFoundError:
        found["moorage"] = "source checkout"
    return found


def start(name: str, ctx: Context) -> Server | str:
    """The server with authentication off (workload 4 starts its own authenticated twin), or why not."""
    try:
        return start_server(name, ctx.workdir / name, ctx.password, workers=ctx.moorage_workers)
    except (ServerUnavailable, OSError, RegistryError) as exc:
        log(f"{name} unavailable: {exc}")
        return f"not available: {str(exc).splitlines()[0]}"


def run_workload(ctx: Context, workload: ModuleType, servers: dict[str, Server | str]) -> dict[str, dict[str, Sample]]:
    """metric key -> server name -> Sample; a failure on one server is recorded, not fatal."""
    ctx.workload = workload.TITLE
    by_metric: dict[str, dict[str, Sample]] = {m.key: {} for m in workload.METRICS}
    for name, server in servers.items():
        started = time.perf_counter()
        log(f"{workload.NUMBER}. {workload.TITLE}: {name} ...")
        try:
            if isinstance(server, str):
                raise ServerUnavailable(server)
            # Start every server's window with clean page cache writeback: otherwise the gigabytes one
            # server left dirty (distribution never fsyncs) are flushed during the next one's measurement.
            os.sync()
            samples = workload.measure(ctx, server)
        except ServerUnavailable as exc:
            samples = {m.key: Sample(None, note=str(exc).splitlines()[0]) for m in workload.METRICS}
        except (LoadError, RegistryError, OSError) as exc:
            log(traceback.format_exc())
            samples = {m.key: Sample(None, note=f"error: {str(exc).splitlines()[0][:200]}") for m in workload.METRICS}
        for key, sample in samples.items():
            by_metric.setdefault(key, {})[name] = sample
        shown = ", ".join(f"{k}={s.value:.4g}" if s.value is not None else f"{k}=— {s.note}"
                          for k, s in samples.items())
        log(f"{workload.NUMBER}. {workload.TITLE}: {name} done in {time.perf_counter() - started:.0f} s: {shown}")
    return by_metric


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 s durations (smoke run)")
    parser.add_argument("--servers", default="distribution,moorage",
                        help="comma-separated: distribution, moorage (default both)")
    parser.add_argument("--only", default="", help="comma-separated workload numbers 1-7 (8, RSS, is always on)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for latest.json and latest.md")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (server data, logs)")
    parser.add_argument("--memory-dir", type=Path, default=Path("/dev/shm"),
                        help="a memory-backed directory (tmpfs) for workload 2's in-memory servers")
    parser.add_argument("--moorage-workers", type=int, default=0, help="moorage --workers (0 = one per core)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes: Sizes = QUICK if args.quick else FULL
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = set(names) - set(report.SERVERS)
    if unknown:
        raise SystemExit(f"unknown server(s): {', '.join(sorted(unknown))}")
    only = {int(n) for n in args.only.split(",") if n.strip()}
    workloads = [w for w in WORKLOADS if not only or w.NUMBER in only]
    info = machine()
    log(f"machine: {info['cores']} cores ({info['cpu_model']}), {info['memory_gib']:.0f} GiB; "
        f"load generators: wrk (1 thread) and python -m bench.loadgen, separate processes")
    busy_before = busy_now()
    if busy_before >= report.BUSY_WARNING:
        log(f"warning: the machine is already {busy_before:.0%} busy; figures will be disturbed")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="moorage-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(sizes=sizes, workdir=workdir, password=secrets.token_urlsafe(16), log=log,
                  moorage_workers=args.moorage_workers,
                  memory_dir=args.memory_dir if args.memory_dir.is_dir() else None)
    started_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    servers: dict[str, Server | str] = {}
    results: list[tuple[ModuleType, dict[str, dict[str, Sample]]]] = []
    try:
        for name in names:
            servers[name] = start(name, ctx)
        for workload in workloads:
            results.append((workload, run_workload(ctx, workload, servers)))
    finally:
        for server in servers.values():
            if isinstance(server, Server):
                server.stop()
    rows = [report.build_row(w.NUMBER, w.TITLE, metric, samples.get(metric.key, {}))
            for w, samples in results for metric in w.METRICS]
    rows += report.rss_rows({w.NUMBER: w.TITLE for w in workloads}, ctx.peak_rss, ctx.peak_pss)
    document = {
        "schema": 1, "started": started_at.isoformat(), "duration_seconds": time.perf_counter() - t0,
        "quick": args.quick, "machine": info, "machine_busy_before": round(busy_before, 3),
        "versions": versions(), "sizes": sizes.as_dict(),
        "servers": {name: {"available": isinstance(s, Server),
                           "notes": (s.notes if isinstance(s, Server) else [s])} for name, s in servers.items()},
        "rows": rows, "targets": report.verdicts(rows),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    table = report.markdown(document)
    (args.out / "latest.md").write_text(table)
    print(table)
    log(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    if not args.keep and args.workdir is None:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
