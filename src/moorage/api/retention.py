"""``/retentions``: a project's tag retention policy, its runs, and what each run kept and removed per repository.

A project has at most one policy; its id is the project's ``retention_id`` metadata. Permissions are Harbor's
``tag-retention`` resource of the policy's project.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse

from moorage.api.base import BadRequest, Call, NotFound, iso
from moorage.api.models.retention import (
    RetentionExecution,
    RetentionExecutionTask,
    RetentionMetadata,
    RetentionOperation,
    RetentionPolicy,
    RetentionRun,
)
from moorage.api.operations import Created, Page, operation
from moorage.api.params import Id, PageQuery, Params, page_offset, storable_id
from moorage.api.projects import ProjectNameHeaders, ProjectPath, project_by_name_or_id
from moorage.core import retention
from moorage.meta import projects as meta
from moorage.meta.tag_policies import Execution, StoredPolicy, Task

RESOURCE = "tag-retention"


class PolicyPath(Params):
    id: Id


class ExecutionPath(PolicyPath):
    eid: Id


class TaskPath(ExecutionPath):
    tid: Id


async def _project(call: Call, project_id: int, action: str, what: str) -> meta.Project:
    return await project_by_name_or_id(call, ProjectPath(project_name_or_id=str(project_id)), ProjectNameHeaders(),
                                       RESOURCE, action, what)


async def _policy(call: Call, policy_id: int, action: str, what: str) -> StoredPolicy:
    call.require_login()
    found = await call.query(call.services.tag_policies.policy, policy_id) if storable_id(policy_id) else None
    if found is None:
        raise NotFound(f"retention policy {policy_id} not found")
    await _project(call, found.project_id, action, what)
    return found


def _body(policy: RetentionPolicy) -> dict[str, Any]:
    return policy.model_dump(mode="json", exclude_none=True)


def _render(stored: StoredPolicy) -> RetentionPolicy:
    return RetentionPolicy.model_validate({**stored.body, "id": stored.id})


def _execution(run: Execution) -> RetentionExecution:
    # "Stopping" is moorage's step between asking and having stopped; to Harbor the run still runs.
    return RetentionExecution(id=run.id, policy_id=run.policy_id, start_time=iso(run.started_at),
                              end_time=iso(run.ended_at) if run.ended_at is not None else None,
                              status="Running" if run.status == "Stopping" else run.status, trigger=run.trigger,
                              dry_run=run.dry_run)


#: Harbor's task status codes: 0 pending, 2 running, 3 finished (whichever way).
_STATUS_CODES = {"Running": 2, "Stopped": 3, "Error": 3, "Success": 3}


def _task(task: Task) -> RetentionExecutionTask:
    return RetentionExecutionTask(id=task.id, execution_id=task.execution_id, repository=task.repository,
                                  job_id=f"retention-{task.execution_id}-{task.id}", status=task.status,
                                  status_code=_STATUS_CODES.get(task.status, 0), status_revision=0,
                                  start_time=iso(task.started_at),
                                  end_time=iso(task.ended_at) if task.ended_at is not None else None,
                                  total=task.total, retained=task.retained)


async def _execution_of(call: Call, path: ExecutionPath) -> Execution:
    run = await call.query(call.services.tag_policies.execution, path.eid) if storable_id(path.eid) else None
    if run is None or run.policy_id != path.id:
        raise NotFound(f"execution {path.eid} of retention policy {path.id} not found")
    return run


@operation("GET", "/retentions/metadatas", "The rule templates and selectors a retention policy may use",
           "Retention")
async def getRentenitionMetadata(call: Call) -> RetentionMetadata:
    call.require_login()
    return RetentionMetadata.model_validate(retention.metadata())


@operation("POST", "/retentions", "Create the retention policy of a project (one per project)", "Retention",
           errors=(400, 409))
async def createRetention(call: Call, body: RetentionPolicy) -> Created[None]:
    call.require_login()
    policy = retention.parse_policy(_body(body))
    project = await call.query(call.auth.projects.by_id, policy.project_id) \
        if storable_id(policy.project_id) else None
    if project is None:
        raise BadRequest(f"invalid project id {policy.project_id} in scope.ref")
    await _project(call, project.id, "create", "create a tag retention policy")
    policy_id = await call.run(call.services.tag_policies.create_policy, project.id, policy.harbor())
    if policy_id is None:
        raise BadRequest(f"project {project.name} already has retention policy {project.metadata.get('retention_id')}"
                         "; change it with PUT /retentions/{id}")
    await call.run(retention.set_schedule, call.services.schedules, policy_id, policy.cron)
    return Created(f"/api/v2.0/retentions/{policy_id}")


@operation("GET", "/retentions/{id}", "Get a retention policy", "Retention", errors=(404,))
async def getRetention(call: Call, path: PolicyPath) -> RetentionPolicy:
    return _render(await _policy(call, path.id, "read", "read the tag retention policy"))


@operation("PUT", "/retentions/{id}", "Change a retention policy (its rules and its schedule)", "Retention",
           errors=(400, 404, 409))
async def updateRetention(call: Call, path: PolicyPath, body: RetentionPolicy) -> None:
    stored = await _policy(call, path.id, "update", "change the tag retention policy")
    given = _body(body)
    scope = given.get("scope") or {}
    if scope.get("ref") not in (None, stored.project_id):
        raise BadRequest(f"retention policy {stored.id} belongs to project {stored.project_name} (id "
                         f"{stored.project_id}); scope.ref cannot move it")
    policy = retention.parse_policy({**given, "scope": {"level": retention.LEVEL, "ref": stored.project_id}})
    await call.run(call.services.tag_policies.update_policy, stored.id, policy.harbor())
    await call.run(retention.set_schedule, call.services.schedules, stored.id, policy.cron)


@operation("DELETE", "/retentions/{id}", "Delete a retention policy, its runs and its schedule", "Retention",
           errors=(404,))
async def deleteRetention(call: Call, path: PolicyPath) -> None:
    stored = await _policy(call, path.id, "delete", "delete the tag retention policy")
    if not await call.run(call.services.tag_policies.delete_policy, stored.id):
        raise NotFound(f"retention policy {stored.id} not found")


@operation("POST", "/retentions/{id}/executions", "Run a retention policy now (dry_run: only report)", "Retention",
           errors=(400, 404, 409))
async def triggerRetentionExecution(call: Call, path: PolicyPath, body: RetentionRun) -> Created[None]:
    stored = await _policy(call, path.id, "update", "run the tag retention policy")
    execution_id = await call.services.retention.launch(stored, retention.MANUAL, bool(body.dry_run))
    return Created(f"/api/v2.0/retentions/{stored.id}/executions/{execution_id}")


@operation("GET", "/retentions/{id}/executions", "Runs of a retention policy, newest first", "Retention",
           errors=(404,))
async def listRetentionExecutions(call: Call, path: PolicyPath, query: PageQuery) -> Page[RetentionExecution]:
    await _policy(call, path.id, "list", "list tag retention runs")
    total, runs = await call.query(call.services.tag_policies.executions, path.id,
                                   page_offset(query.page, query.page_size), query.page_size)
    return Page([_execution(r) for r in runs], total)


@operation("PATCH", "/retentions/{id}/executions/{eid}", "Stop a retention run (action: stop)", "Retention",
           errors=(400, 404))
async def operateRetentionExecution(call: Call, path: ExecutionPath, body: RetentionOperation) -> None:
    await _policy(call, path.id, "update", "stop a tag retention run")
    if body.action != "stop":
        raise BadRequest(f"action must be 'stop', not {str(body.action)[:50]!r}")
    await _execution_of(call, path)
    await call.services.retention.stop(path.eid)


@operation("GET", "/retentions/{id}/executions/{eid}/tasks", "A retention run's tasks, one per repository",
           "Retention", errors=(404,))
async def listRetentionTasks(call: Call, path: ExecutionPath, query: PageQuery) -> Page[RetentionExecutionTask]:
    await _policy(call, path.id, "list", "list tag retention runs")
    await _execution_of(call, path)
    total, tasks = await call.query(call.services.tag_policies.tasks, path.eid,
                                    page_offset(query.page, query.page_size), query.page_size)
    return Page([_task(t) for t in tasks], total)


@operation("GET", "/retentions/{id}/executions/{eid}/tasks/{tid}", "What a retention run kept and removed in one "
           "repository, and why", "Retention", errors=(404,))
async def getRetentionTaskLog(call: Call, path: TaskPath) -> PlainTextResponse:
    await _policy(call, path.id, "read", "read tag retention runs")
    await _execution_of(call, path)
    text = await call.query(call.services.tag_policies.task_log, path.eid, path.tid) if storable_id(path.tid) else None
    if text is None:
        raise NotFound(f"task {path.tid} of retention run {path.eid} not found")
    return PlainTextResponse(text)
