"""Schedules of in-server jobs, as Harbor's ScheduleObj keeps them (a type, a cron, the job's parameters)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from moorage.meta.schema import schedules
from moorage.meta.store import MetaStore


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    type: str
    cron: str
    parameters: dict[str, Any]
    next_run: float | None
    created_at: float
    updated_at: float


class ScheduleModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store

    def get(self, name: str) -> Schedule | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(schedules).where(schedules.c.name == name)).first()
        if row is None:
            return None
        return Schedule(row.name, row.type, row.cron, json.loads(row.parameters_json), row.next_run, row.created_at,
                        row.updated_at)

    def put(self, name: str, type_: str, cron: str, parameters: dict[str, Any], next_run: float | None) -> None:
        now = time.time()
        stmt = self.store.upsert(schedules, ["name"], ["type", "cron", "parameters_json", "next_run", "updated_at"])
        with self.store.write() as conn:
            conn.execute(stmt.values(name=name, type=type_, cron=cron, parameters_json=json.dumps(parameters),
                                     next_run=next_run, created_at=now, updated_at=now))

    def delete(self, name: str) -> None:
        with self.store.write() as conn:
            conn.execute(schedules.delete().where(schedules.c.name == name))

    def claim_due(self, name: str, now: float, following: float | None) -> Schedule | None:
        """The schedule, when its run is due, with its next run moved to ``following`` in the same transaction:
        a run is claimed once, whoever else looks."""
        with self.store.write() as conn:
            row = conn.execute(sa.select(schedules).where(schedules.c.name == name,
                                                          schedules.c.next_run <= now)).first()
            if row is None:
                return None
            conn.execute(schedules.update().where(schedules.c.name == name).values(next_run=following))
        return Schedule(row.name, row.type, row.cron, json.loads(row.parameters_json), row.next_run, row.created_at,
                        row.updated_at)
