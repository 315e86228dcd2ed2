"""The Grafana dashboard and the example alerts shipped in docs/monitoring query only metrics moorage
exports, under the names it exports them (a renamed metric would leave a panel silently empty)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import Metric

from moorage.metrics import instruments
from moorage.metrics.usage import ProjectUsage, Snapshot, UsageCollector

pytestmark = pytest.mark.fast

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def exported() -> set[str]:
    names = {_base(m._name) for m in vars(instruments).values() if hasattr(m, "_name") and hasattr(m, "collect")}
    snapshot = Snapshot(taken_at=0.0, projects={"library": ProjectUsage(1, 2, 3, 4, 5)}, gc={"Success": (1, 2, 3.0)})
    families: list[Metric] = list(UsageCollector(snapshot).collect())
    return names | {_base(f.name) for f in families}


def expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    found = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    found += [line.split("expr:", 1)[1] for line in (MONITORING / "alerts.yml").read_text().splitlines()
              if "expr:" in line]
    return found


def test_every_metric_a_panel_or_alert_queries_is_exported() -> None:
    names = exported()
    assert {"moorage_http_requests", "harbor_project_quota_usage_byte", "moorage_gc_runs"} <= names
    queried = expressions()
    assert len(queried) > 20
    for expression in queried:
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression):
            if word.startswith(("moorage_", "harbor_")):
                assert _base(word) in names, f"{word} (in {expression.strip()}) is not exported"


def test_a_renamed_metric_would_be_caught() -> None:
    assert _base("moorage_http_requests_totl") not in exported()
