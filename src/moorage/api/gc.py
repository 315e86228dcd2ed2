"""``/system/gc``: garbage collection runs (history, status, log, stop) and the schedule they run by."""

from __future__ import annotations

import json

from starlette.responses import PlainTextResponse

from moorage.api.base import Call, Conflict, NotFound, iso
from moorage.api.models.gc import GCHistory, Schedule, ScheduleObj
from moorage.api.operations import Created, Page, operation
from moorage.api.params import Id, PageQuery, Params, page_offset, storable_id
from moorage.auth import rbac
from moorage.core import gc
from moorage.meta.gc import Run
from moorage.meta.schedules import Schedule as StoredSchedule

#: Harbor's name for the job, in every history entry.
JOB_NAME = "GARBAGE_COLLECTION"


class GCPath(Params):
    gc_id: Id


def _require(call: Call, action: str) -> None:
    call.require_login()
    call.require(rbac.allowed_system(call.subject, "garbage-collection", action), f"{action} garbage collection")


def _history(run: Run) -> GCHistory:
    parameters = {"delete_untagged": run.delete_untagged, "dry_run": run.dry_run}
    # "Stopping" is moorage's own step between asking and having stopped; to Harbor the run still runs.
    status = "Running" if run.status == "Stopping" else run.status
    return GCHistory(id=run.id, job_name=JOB_NAME, job_kind=run.trigger.upper(), job_parameters=json.dumps(parameters),
                     schedule=ScheduleObj(type=run.trigger), job_status=status, deleted=False,
                     creation_time=iso(run.created_at), update_time=iso(run.updated_at))


async def _run(call: Call, gc_id: int) -> Run:
    found = await call.query(call.services.gc.model.run, gc_id) if storable_id(gc_id) else None
    if found is None:
        raise NotFound(f"garbage collection {gc_id} not found")
    return found


@operation("GET", "/system/gc", "Garbage collection runs, newest first", "gc")
async def getGCHistory(call: Call, query: PageQuery) -> Page[GCHistory]:
    _require(call, "list")
    total, runs = await call.query(call.services.gc.model.runs, page_offset(query.page, query.page_size),
                                   query.page_size)
    return Page([_history(r) for r in runs], total)


@operation("GET", "/system/gc/{gc_id}", "One garbage collection run", "gc", errors=(404,))
async def getGC(call: Call, path: GCPath) -> GCHistory:
    _require(call, "read")
    return _history(await _run(call, path.gc_id))


@operation("PUT", "/system/gc/{gc_id}", "Stop a garbage collection run (a finished one stays as it is)", "gc",
           errors=(404,))
async def stopGC(call: Call, path: GCPath) -> None:
    _require(call, "stop")
    await _run(call, path.gc_id)
    await call.run(call.services.gc.model.request_stop, path.gc_id)


@operation("GET", "/system/gc/{gc_id}/log", "What a garbage collection run did", "gc", errors=(400, 404))
async def getGCLog(call: Call, path: GCPath) -> PlainTextResponse:
    _require(call, "read")
    return PlainTextResponse((await _run(call, path.gc_id)).log)


def _schedule(stored: StoredSchedule | None) -> GCHistory:
    if stored is None:
        return GCHistory()  # Harbor answers an empty object when garbage collection has no schedule
    next_time = iso(stored.next_run) if stored.next_run is not None else None
    return GCHistory(job_name=JOB_NAME, job_kind=stored.type, job_parameters=json.dumps(stored.parameters),
                     schedule=ScheduleObj(type=stored.type, cron=stored.cron, next_scheduled_time=next_time),
                     deleted=False, creation_time=iso(stored.created_at), update_time=iso(stored.updated_at))


@operation("GET", "/system/gc/schedule", "The schedule garbage collection runs by", "gc")
async def getGCSchedule(call: Call) -> GCHistory:
    _require(call, "read")
    return _schedule(await call.query(call.services.schedules.get, gc.SCHEDULE))


def _type(body: Schedule) -> tuple[str, str | None]:
    given = body.schedule or ScheduleObj()
    return given.type or "None", given.cron


@operation("POST", "/system/gc/schedule", "Run garbage collection now (type Manual) or set its schedule", "gc",
           errors=(400, 409))
async def createGCSchedule(call: Call, body: Schedule) -> Created[None]:
    _require(call, "create")
    type_, cron = _type(body)
    chosen = gc.parameters(body.parameters)
    if type_ == "Manual":
        run_id = await call.run(call.services.gc.launch, **chosen)
        return Created(f"/api/v2.0/system/gc/{run_id}")
    if type_ != "None" and await call.query(call.services.schedules.get, gc.SCHEDULE) is not None:
        raise Conflict("garbage collection already has a schedule; change it with PUT /system/gc/schedule")
    await call.run(gc.set_schedule, call.services.schedules, type_, cron, chosen)
    return Created("/api/v2.0/system/gc/schedule")


@operation("PUT", "/system/gc/schedule", "Change garbage collection's schedule (type None: no schedule)", "gc",
           errors=(400,))
async def updateGCSchedule(call: Call, body: Schedule) -> None:
    _require(call, "update")
    type_, cron = _type(body)
    await call.run(gc.set_schedule, call.services.schedules, type_, cron, gc.parameters(body.parameters))
