"""Harbor's schedule types and cron expressions (six fields, seconds first) -> the next time a job runs."""

from __future__ import annotations

from croniter import croniter

from moorage.core.errors import InvalidInput

#: Harbor's ScheduleObj types with a fixed cron; "Custom" and "Schedule" bring their own, "None" and "Manual"
#: run on demand only.
FIXED = {"Hourly": "0 0 * * * *", "Daily": "0 0 0 * * *", "Weekly": "0 0 0 * * 0"}
OWN_CRON = {"Custom", "Schedule"}
TYPES = {*FIXED, *OWN_CRON, "None", "Manual"}


def cron_of(type_: str, cron: str | None) -> str:
    """The cron a schedule of ``type_`` runs by ("" for none), or InvalidInput saying what is wrong."""
    if type_ not in TYPES:
        raise InvalidInput(f"schedule type must be one of {', '.join(sorted(TYPES))}, not {type_[:50]!r}")
    if type_ in FIXED:
        return FIXED[type_]
    if type_ not in OWN_CRON:
        return ""
    text = (cron or "").strip()
    if len(text.split()) != 6 or not croniter.is_valid(text, second_at_beginning=True):
        raise InvalidInput(f"cron {text[:100]!r} is not a cron expression of six fields, seconds first "
                           "(e.g. '0 0 3 * * *': every day at 03:00)")
    return text


def next_run(cron: str, after: float) -> float | None:
    """When a job on ``cron`` runs next after ``after`` (epoch seconds, UTC); None for no cron."""
    if not cron:
        return None
    return float(croniter(cron, after, second_at_beginning=True).get_next(float))
