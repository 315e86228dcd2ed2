"""Garbage collection: a run's history entry and the schedule it runs by."""

from __future__ import annotations

from typing import Any

from moorage.api.models.common import DateTime, Int64, Model


class ScheduleObj(Model):
    #: Hourly, Daily, Weekly, Custom or Schedule (with ``cron``), Manual (run now), None (no schedule).
    type: str | None = None
    #: Six fields, seconds first: ``0 0 3 * * *`` is every day at 03:00 UTC.
    cron: str | None = None
    next_scheduled_time: DateTime | None = None


class Schedule(Model):
    id: Int64 | None = None
    status: str | None = None
    creation_time: DateTime | None = None
    update_time: DateTime | None = None
    schedule: ScheduleObj | None = None
    #: ``delete_untagged`` and ``dry_run`` (booleans); ``workers`` is accepted and ignored.
    parameters: dict[str, Any] | None = None


class GCHistory(Model):
    id: Int64 | None = None
    job_name: str | None = None
    job_kind: str | None = None
    #: The run's parameters as a JSON string, as Harbor sends them.
    job_parameters: str | None = None
    schedule: ScheduleObj | None = None
    #: Pending, Running, Stopped, Error or Success.
    job_status: str | None = None
    deleted: bool | None = None
    creation_time: DateTime | None = None
    update_time: DateTime | None = None
