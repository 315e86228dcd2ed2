"""What a workload declares: its number and title, the metrics it reports, and the targets they carry."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from bench.harness import Sample

__all__ = ["Metric", "Sample", "Target"]


@dataclass(frozen=True)
class Target:
    """A bound on moorage ÷ distribution measured in the same run (or, ``absolute``, on moorage's figure)."""

    op: str
    bound: float
    absolute: bool = False

    def met(self, value: float) -> bool:
        return {"<": operator.lt, "<=": operator.le, ">=": operator.ge, ">": operator.gt}[self.op](value, self.bound)

    def describe(self, unit: str = "") -> str:
        symbol = {"<=": "≤", ">=": "≥"}.get(self.op, self.op)
        return f"moorage {symbol} {self.bound:g} {unit}".rstrip() if self.absolute else f"{symbol} {self.bound:g}×"  # noqa: RUF001


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = True
    target: Target | None = None
