"""How the pages write sizes and times."""

from __future__ import annotations

from datetime import UTC, datetime


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def when(iso_time: str | None) -> str:
    """Harbor's times as people read them (UTC); its zero time is "never"."""
    if not iso_time or iso_time.startswith("0001-"):
        return "never"
    return iso_time[:16].replace("T", " ") + " UTC"


def epoch(seconds: int | None) -> str:
    """Epoch seconds (Harbor's robot ``expires_at``; -1 is never) as people read them."""
    if seconds is None or seconds < 0:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")
