"""The benchmark harness end to end at tiny sizes: both real servers, real load generators, real files.

This checks that ``python -m bench.run --quick`` works and writes a well-formed table; it asserts no
timing (targets are the benchmark's business, judged in a full run).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.run import WORKLOADS
from tests.support.procs import require_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("distribution", "moorage")
# Figures a server cannot have by design; everything else must be measured on both.
NOT_APPLICABLE = {("tokens", "distribution")}
# Workload 11: distribution has no quotas.
NOT_APPLICABLE |= {(key, "distribution") for key in ("quota_off", "quota_unlimited", "quota_on", "quota_cpu_off",
                                                   "quota_cpu_on", "quota_overhead", "quota_wall_overhead")}
# Workload 10: distribution has no web portal.
NOT_APPLICABLE |= {(key, "distribution") for key in ("portal_projects_p95", "portal_repository_p95",
                                                     "portal_projects_p50", "portal_repository_p50")}
# Differences between two figures (quotas on vs off, in %): noise on a quick run may make them negative.
DIFFERENCES = {"quota_overhead", "quota_wall_overhead"}
# Nor is distribution's memory measured where it has nothing to run (workloads 10 and 11).
NOT_APPLICABLE |= {("rss_10", "distribution"), ("rss_11", "distribution")}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    for binary, package in (("docker-registry", "docker-registry"), ("wrk", "wrk"),
                            ("htpasswd", "apache2-utils"), ("gcc", "gcc")):
        require_tool(binary, package)
    root = tmp_path_factory.mktemp("bench")
    out = root / "results"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out),
                          "--workdir", str(root / "work")],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=420)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads((out / "latest.json").read_text()), (out / "latest.md").read_text(), run.stdout + run.stderr


def test_run_describes_the_machine_and_both_servers(quick_run: tuple[dict[str, Any], str, str]) -> None:
    document, _, _ = quick_run
    assert document["schema"] == 1 and document["quick"] is True
    assert document["machine"]["cores"] == os.cpu_count()
    assert set(document["servers"]) == set(SERVERS)
    assert all(info["available"] for info in document["servers"].values()), document["servers"]


def test_every_workload_has_rows_with_figures_for_both_servers(quick_run: tuple[dict[str, Any], str, str]) -> None:
    document, _, log = quick_run
    rows = document["rows"]
    assert {row["workload"] for row in rows} == {w.NUMBER for w in WORKLOADS} | {8}
    for row in rows:
        for name in SERVERS:
            sample = row[name]
            if (row["key"], name) in NOT_APPLICABLE:
                assert sample is None or (sample["value"] is None and sample["note"])
                continue
            assert sample is not None and sample["value"] is not None, (row["metric"], name, sample, log[-3000:])
            assert math.isfinite(sample["value"]) and (sample["value"] > 0 or row["key"] in DIFFERENCES)
        if row["distribution"] and row["distribution"]["value"] and row["moorage"]["value"] is not None:
            assert row["ratio"] == pytest.approx(row["moorage"]["value"] / row["distribution"]["value"])


def test_targets_carry_a_verdict_and_usage_is_recorded(quick_run: tuple[dict[str, Any], str, str]) -> None:
    document, _, _ = quick_run
    targeted = {row["key"]: row for row in document["rows"] if row["target"]}
    assert {"pull_1", "pull_n", "push_mono", "push_chunked", "get_tag", "head_digest", "storm_wall",
            "rss_1", "rss_2"} <= set(targeted)
    assert all(isinstance(row["met"], bool) for row in targeted.values())
    measured = [row for row in document["rows"] if row["workload"] in (1, 2, 3, 5, 6)]
    for row in measured:
        usage = row["moorage"]["usage"]
        assert usage["server_cores"] >= 0 and usage["loadgen_cores"] >= 0 and 0 <= usage["machine_busy"] <= 1
        assert usage["server_peak_rss_mb"] > 0


def test_markdown_table_has_one_line_per_row(quick_run: tuple[dict[str, Any], str, str]) -> None:
    document, table, _ = quick_run
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert len(lines) == len(document["rows"])
    assert "moorage ÷ dist" in table and f"{document['machine']['cores']} cores" in table
