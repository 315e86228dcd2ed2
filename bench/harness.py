"""Runs load-generator processes against a server while watching the server's process tree.

Every measured figure comes back as a Sample: the value, details (latency percentiles and the like) and
what the window cost (server cores, load-generator cores, machine busy fraction, server peak RSS), so
the table can say whether a figure was CPU-bound and which side used the CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import Sizes
from bench.loadgen.common import BEGIN, RESULT_PREFIX
from bench.procmon import Monitor, Usage
from bench.servers import REPO_ROOT, Server

LOAD_TIMEOUT_SECONDS = 900.0
CPU_BOUND_FRACTION = 0.9
WRK_LUA = Path(__file__).resolve().parent / "loadgen" / "report.lua"


class LoadError(RuntimeError):
    """The load generator failed: the figure would be meaningless, so the workload reports the error."""


@dataclass
class Sample:
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "details": self.details, "usage": self.usage, "note": self.note}


def usage_dict(usage: Usage, loadgen_cores: float) -> dict[str, Any]:
    """``other_cores``: CPU used by neither side nor this harness (other work on the machine disturbing the figure)."""
    other = usage.machine_busy * (os.cpu_count() or 1) - usage.server_cores - loadgen_cores - usage.harness_cores
    return {"seconds": round(usage.seconds, 3), "server_cores": round(usage.server_cores, 2),
            "loadgen_cores": round(loadgen_cores, 2), "harness_cores": round(usage.harness_cores, 2),
            "other_cores": round(max(other, 0.0), 2),
            "machine_busy": round(usage.machine_busy, 3), "server_peak_rss_mb": round(usage.peak_rss / 1e6, 1),
            "server_peak_pss_mb": round(usage.peak_pss / 1e6, 1), "cpu_bound": usage.machine_busy >= CPU_BOUND_FRACTION}


@dataclass
class Context:
    """Shared by all workloads of one run: sizes, scratch files, and the per-workload peak RSS record."""

    sizes: Sizes
    workdir: Path
    password: str
    log: Callable[[str], None]
    moorage_workers: int = 0
    # Where servers keep data when a workload measures the registries rather than this machine's disk.
    memory_dir: Path | None = None
    workload: str = ""
    peak_rss: dict[str, dict[str, int]] = field(default_factory=dict)
    peak_pss: dict[str, dict[str, int]] = field(default_factory=dict)
    _files: dict[str, Path] = field(default_factory=dict)

    def random_file(self, name: str, size: int) -> Path:
        """A file of ``size`` random bytes, written once per run and shared by both servers."""
        path = self._files.get(name)
        if path is None or path.stat().st_size < size:
            path = self.workdir / "files" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                remaining = size
                while remaining:
                    step = min(remaining, 64 * 1024 * 1024)
                    fh.write(os.urandom(step))
                    remaining -= step
            self._files[name] = path
        return path

    def _record(self, server: Server, usage: Usage) -> None:
        for record, value in ((self.peak_rss, usage.peak_rss), (self.peak_pss, usage.peak_pss)):
            per_server = record.setdefault(self.workload, {})
            per_server[server.name] = max(per_server.get(server.name, 0), value)

    def watch(self, server: Server) -> Monitor:
        """A monitor for setup phases too, so peak RSS covers everything the workload made the server do."""
        return Monitor(server.pid)

    def record_monitor(self, server: Server, monitor: Monitor) -> None:
        self._record(server, monitor.usage())

    def load(self, server: Server, mode: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run ``python -m bench.loadgen MODE SPEC`` against ``server``; returns (its result, usage)."""
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        spec = {"host": host, "port": int(port), **spec}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get(
            "PYTHONPATH", "")) if p)}
        with tempfile.TemporaryFile() as errors, Monitor(server.pid) as monitor:
            process = subprocess.Popen([sys.executable, "-m", "bench.loadgen", mode, json.dumps(spec)],
                                       stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL,
                                       cwd=REPO_ROOT, env=env, text=True)
            watchdog = threading.Timer(LOAD_TIMEOUT_SECONDS, process.kill)
            watchdog.start()
            result: dict[str, Any] | None = None
            usage: Usage | None = None
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    if line.strip() == BEGIN:
                        monitor.mark()
                    elif line.startswith(RESULT_PREFIX):
                        usage = monitor.usage()
                        result = json.loads(line.removeprefix(RESULT_PREFIX))
                process.wait()
            finally:
                watchdog.cancel()
                if process.poll() is None:
                    process.kill()
                    process.wait()
            if process.returncode != 0 or result is None or usage is None:
                errors.seek(0)
                message = errors.read().decode(errors="replace")[-2000:]
                raise LoadError(f"loadgen {mode} exited {process.returncode}: {message.strip()}")
        self._record(server, usage)
        loadgen_cores = result["loadgen_cpu_seconds"] / max(result["loadgen_wall_seconds"], 1e-9)
        return result, usage_dict(usage, loadgen_cores)

    def small_requests(self, server: Server, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                       seconds: float | None = None, warmup: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """``wrk_connections`` keep-alive connections on one load thread (the server needs the other core).

        wrk with report.lua for GET; hammer (bench/loadgen/hammer.c) for HEAD, which wrk 4.1 cannot parse.
        """
        if warmup and self.sizes.wrk_warmup_seconds > 0:
            self.small_requests(server, path, method, headers, self.sizes.wrk_warmup_seconds, warmup=False)
        seconds = seconds or self.sizes.wrk_seconds
        headers = headers or {}
        env = dict(os.environ)
        if method == "HEAD":
            host, port = server.url.removeprefix("http://").rsplit(":", 1)
            argv = [str(hammer_binary()), host, port, str(self.sizes.wrk_connections), f"{seconds:g}", method, path,
                    *(f"{k}: {v}" for k, v in headers.items())]
        else:
            binary = shutil.which("wrk")
            if binary is None:
                raise LoadError("`wrk` is not installed: apt-get install -y wrk")
            env.update({"BENCH_METHOD": method, "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())})
            argv = [binary, "-t1", f"-c{self.sizes.wrk_connections}", f"-d{seconds:g}s", "--timeout", "10s",
                    "-s", str(WRK_LUA), server.url + path]
        with tempfile.TemporaryFile() as out, Monitor(server.pid) as monitor:
            monitor.mark()
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            _, status, rusage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            usage = monitor.usage()
            out.seek(0)
            text = out.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if line.startswith("BENCH_JSON ")]
        if process.returncode != 0 or not lines:
            raise LoadError(f"{Path(argv[0]).name} exited {process.returncode}: {text[-1500:]}")
        result = json.loads(lines[-1].removeprefix("BENCH_JSON "))
        result["requests_per_second"] = result["requests"] / max(result["duration_us"] / 1e6, 1e-9)
        result["tool"] = Path(argv[0]).name.split("-")[0]
        self._record(server, usage)
        loadgen_cores = (rusage.ru_utime + rusage.ru_stime) / usage.seconds
        return result, usage_dict(usage, loadgen_cores)


def hammer_binary() -> Path:
    """Compile hammer.c once per source version (gcc is on every machine of this kind)."""
    source = Path(__file__).resolve().parent / "loadgen" / "hammer.c"
    tag = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    binary = Path(tempfile.gettempdir()) / f"hammer-{tag}" / "hammer"
    if not binary.exists():
        compiler = shutil.which("gcc") or shutil.which("cc")
        if compiler is None:
            raise LoadError("no C compiler for bench/loadgen/hammer.c: apt-get install -y gcc")
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(f".{os.getpid()}")
        build = subprocess.run([compiler, "-O2", "-o", str(partial), str(source)], capture_output=True, text=True)
        if build.returncode != 0:
            raise LoadError(f"compiling hammer.c failed: {build.stderr[-1500:]}")
        partial.replace(binary)
    return binary


def wrk_sample(result: dict[str, Any], usage: dict[str, Any]) -> Sample:
    """Requests/s with p50/p99 in ms; more than 1% failed or >= 400 responses void the figure."""
    errors = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    details = {"p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
               "requests": result["requests"], "errors": errors, "tool": result.get("tool", "wrk")}
    if result["requests"] == 0 or errors > 0.01 * result["requests"]:
        return Sample(None, details, usage, f"{errors} errors (e.g. status >= 400) in {result['requests']} requests")
    return Sample(result["requests_per_second"], details, usage, f"{errors} errors" if errors else "")
