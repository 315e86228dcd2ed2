"""The result table: one row per metric with both figures, moorage ÷ distribution and the target verdict."""

from __future__ import annotations

from typing import Any

from bench.harness import Sample
from bench.workloads.base import Metric, Target

SERVERS = ("distribution", "moorage")
RSS_TARGET = Target("<", 200.0, absolute=True)
RSS_TARGET_WORKLOADS = (1, 2)
BUSY_WARNING = 0.25


def build_row(number: int, title: str, metric: Metric, samples: dict[str, Sample]) -> dict[str, Any]:
    values = {name: samples[name].value if name in samples else None for name in SERVERS}
    dist, moor = values["distribution"], values["moorage"]
    ratio = moor / dist if dist and moor is not None else None
    met: bool | None = None
    if metric.target is not None:
        judged = moor if metric.target.absolute else ratio
        met = metric.target.met(judged) if judged is not None else None
    return {
        "workload": number, "title": title, "key": metric.key, "metric": metric.label, "unit": metric.unit,
        "higher_is_better": metric.higher_is_better,
        **{name: samples[name].as_dict() if name in samples else None for name in SERVERS},
        "ratio": ratio, "target": metric.target.describe(metric.unit) if metric.target else None, "met": met,
    }


def rss_rows(titles: dict[int, str], peak_rss: dict[str, dict[str, int]],
             peak_pss: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Workload 8: each workload's peak RSS of each server's whole process tree, in MB (10^6 bytes).

    RSS counts pages that forked workers share once per process; PSS (shared pages split between their
    sharers) is given alongside as the figure closer to what the machine actually spends.
    """
    rows = []
    for number, title in titles.items():
        rss, pss = peak_rss.get(title, {}), peak_pss.get(title, {})
        samples = {name: Sample(rss[name] / 1e6, {"peak_pss_mb": round(pss.get(name, 0) / 1e6, 1)})
                   for name in SERVERS if name in rss}
        target = RSS_TARGET if number in RSS_TARGET_WORKLOADS else None
        metric = Metric(f"rss_{number}", f"peak RSS during {number}. {title}", "MB", False, target)
        rows.append(build_row(8, "server peak RSS (process tree)", metric, samples))
    return rows


def _figure(value: float | None) -> str:
    """Three significant figures, thousands separated, never scientific notation."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.2e}"


def verdicts(rows: list[dict[str, Any]]) -> dict[str, int]:
    targeted = [row["met"] for row in rows if row["target"]]
    return {"met": targeted.count(True), "missed": targeted.count(False), "unmeasured": targeted.count(None)}


def _cell(sample: dict[str, Any] | None) -> str:
    if sample is None:
        return "—"
    text = _figure(sample["value"])
    details = sample.get("details", {})
    if sample["value"] is not None and "p99_ms" in details:
        text += f" (p50 {_figure(details['p50_ms'])} / p99 {_figure(details['p99_ms'])} ms)"
    if sample["value"] is not None and "peak_pss_mb" in details:
        text += f" (PSS {details['peak_pss_mb']:.0f})"
    if sample["value"] is None and sample.get("note"):
        text += f" ({sample['note']})"
    return text


def _cpu(sample: dict[str, Any] | None) -> str:
    usage = (sample or {}).get("usage") or {}
    if not usage:
        return ""
    flag = " **bound**" if usage["cpu_bound"] else ""
    other = f" (+{usage['other_cores']:.1f} other)" if usage.get("other_cores", 0) >= 0.2 else ""
    return f"{usage['server_cores']:.1f}+{usage['loadgen_cores']:.1f}{other}, {usage['machine_busy']:.0%}{flag}"


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"# moorage vs distribution — {report['started']}",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu_model']}), {machine['memory_gib']:.0f} GiB; "
        f"{'QUICK smoke sizes' if report['quick'] else 'full sizes'}; run took {report['duration_seconds']:.0f} s.",
        f"distribution {report['versions'].get('distribution', '?')}; "
        f"moorage {report['versions'].get('moorage', '?')}.",
        "",
        "CPU columns: server cores + load-generator cores in use (and cores used by other work on the machine, "
        "which disturbs the figure), and the machine's busy share over the measured window; **bound** = machine "
        "≥ 90% busy, i.e. the figure is CPU-bound on this machine. RSS is summed over the server's process tree; "
        "PSS splits pages shared by forked workers.",
        "GB = 10^9 bytes; ratio = moorage ÷ distribution (for times and latencies lower is better).",
        "",
        "| # | workload | metric | unit | distribution | moorage | moorage ÷ dist | target | met | "
        "CPU dist | CPU moorage |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        verdict = {True: "met", False: "**missed**", None: "—" if row["target"] else ""}[row["met"]]
        ratio = f"{_figure(row['ratio'])}×" if row["ratio"] is not None else "—"  # noqa: RUF001
        lines.append(
            f"| {row['workload']} | {row['title']} | {row['metric']} | {row['unit']} | {_cell(row['distribution'])} | "
            f"{_cell(row['moorage'])} | {ratio} | {row['target'] or ''} | {verdict} | "
            f"{_cpu(row['distribution'])} | {_cpu(row['moorage'])} |")
    counts = verdicts(report["rows"])
    lines += ["", f"Targets: {counts['met']} met, {counts['missed']} missed, {counts['unmeasured']} not measured."]
    notes = [f"- {name}: {note}" for name, info in report["servers"].items() for note in info.get("notes", [])]
    if report.get("machine_busy_before", 0) >= BUSY_WARNING:
        notes.append(f"- the machine was already {report['machine_busy_before']:.0%} busy before the run started: "
                     "other work competed for the CPU, so the figures are disturbed")
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"
