"""``/projects/{project_name_or_id}/webhook``: policies (who is told of which events, how), their
executions (one per event), tasks (one per target, with the log of every attempt), what is supported, and
when each policy last fired. Deliveries themselves are made by the webhook worker
(``moorage.core.webhook_delivery``) from the event outbox."""

from __future__ import annotations

from starlette.responses import PlainTextResponse

from moorage.api.base import BadRequest, Call, Conflict, NotFound, iso
from moorage.api.listing import listing, page_of
from moorage.api.models.webhooks import (
    Execution,
    Metrics,
    PayloadFormat,
    SupportedWebhookEventTypes,
    Task,
    WebhookLastTrigger,
    WebhookPolicy,
    WebhookTargetObject,
)
from moorage.api.operations import Created, Page, operation
from moorage.api.params import MAX_PAGE_SIZE, Id, ListQuery, PageQuery, PageSize, page_offset, storable_id
from moorage.api.projects import ProjectNameHeaders, ProjectPath, project_by_name_or_id
from moorage.core import webhooks as domain
from moorage.meta import projects as meta
from moorage.meta import webhooks as stored
from moorage.meta.webhooks import PolicyNameTaken

RESOURCE = "notification-policy"


class LastTriggerQuery(PageQuery):
    # Harbor answers every entry at once: the page holds all of them unless a client asks for less.
    page_size: PageSize = MAX_PAGE_SIZE


class PolicyPath(ProjectPath):
    webhook_policy_id: Id


class ExecutionPath(PolicyPath):
    execution_id: Id


class TaskPath(ExecutionPath):
    task_id: Id


def _target(given: WebhookTargetObject, previous: list[domain.Target]) -> domain.Target:
    address = (given.address or "").strip()
    if not address:
        raise BadRequest("every target needs an address (an http:// or https:// URL)")
    kept = next((t.secret for t in previous if t.address == address), "")
    target = domain.Target(address=address, type=given.type or "http", auth_header=given.auth_header or "",
                           skip_cert_verify=bool(given.skip_cert_verify),
                           payload_format=given.payload_format or domain.DEFAULT_FORMAT,
                           secret=kept if given.secret is None else given.secret, timeout=given.timeout)
    try:
        domain.check_target(target)
    except domain.WebhookInvalid as exc:
        raise BadRequest(str(exc)) from None
    return target


def _checked(body: WebhookPolicy, previous: list[domain.Target]) -> tuple[str, list[domain.Target], list[str]]:
    name = (body.name or "").strip()
    if not name or len(name) > 255:
        raise BadRequest("name is required (1 to 255 characters)")
    if not body.targets:
        raise BadRequest("targets must hold at least one target")
    if len(body.targets) > 20:
        raise BadRequest("a policy may have at most 20 targets")
    targets = [_target(t, previous) for t in body.targets]
    if len({t.address for t in targets}) != len(targets):
        raise BadRequest("two targets have the same address; give each address once")
    event_types = list(dict.fromkeys(body.event_types or []))
    try:
        domain.check_event_types(event_types)
    except domain.WebhookInvalid as exc:
        raise BadRequest(str(exc)) from None
    return name, targets, event_types


def _render(policy: stored.Policy) -> WebhookPolicy:
    # Secrets are write-only: shown back, they would leak to everyone who may read the policy.
    return WebhookPolicy(
        id=policy.id, name=policy.name, description=policy.description, project_id=policy.project_id,
        targets=[WebhookTargetObject(type=t.type, address=t.address, auth_header=t.auth_header,
                                     skip_cert_verify=t.skip_cert_verify, payload_format=t.payload_format,
                                     timeout=t.timeout) for t in policy.targets],
        event_types=policy.event_types, creator=policy.creator, creation_time=iso(policy.created_at),
        update_time=iso(policy.updated_at), enabled=policy.enabled)


async def _project(call: Call, path: ProjectPath, headers: ProjectNameHeaders, action: str,
                   what: str) -> meta.Project:
    return await project_by_name_or_id(call, path, headers, RESOURCE, action, what)


async def _policy(call: Call, project: meta.Project, policy_id: int) -> stored.Policy:
    found = await call.query(call.services.webhooks.policy, project.id, policy_id) \
        if storable_id(policy_id) else None
    if found is None:
        raise NotFound(f"webhook policy {policy_id} not found in project {project.name}")
    return found


@operation("GET", "/projects/{project_name_or_id}/webhook/policies", "List the project's webhook policies", "webhook")
async def ListWebhookPoliciesOfProject(call: Call, path: ProjectPath, headers: ProjectNameHeaders,
                                       query: ListQuery) -> Page[WebhookPolicy]:
    project = await _project(call, path, headers, "list", "list webhook policies")
    items = [_render(p) for p in await call.query(call.services.webhooks.policies, project.id)]
    return listing(items, query, q=query.q, sort=query.sort)


@operation("POST", "/projects/{project_name_or_id}/webhook/policies", "Create a webhook policy", "webhook",
           errors=(409,))
async def CreateWebhookPolicyOfProject(call: Call, path: ProjectPath, headers: ProjectNameHeaders,
                                       body: WebhookPolicy) -> Created[None]:
    project = await _project(call, path, headers, "create", "create webhook policies")
    name, targets, event_types = _checked(body, [])
    try:
        policy_id = await call.run(call.services.webhooks.create, project.id, name, body.description or "", targets,
                                   event_types, call.subject.name, True if body.enabled is None else body.enabled)
    except PolicyNameTaken:
        raise Conflict(f"project {project.name} already has a webhook policy named {name!r}") from None
    return Created(f"/api/v2.0/projects/{project.id}/webhook/policies/{policy_id}")


@operation("GET", "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", "Get a webhook policy",
           "webhook", errors=(404,))
async def GetWebhookPolicyOfProject(call: Call, path: PolicyPath, headers: ProjectNameHeaders) -> WebhookPolicy:
    project = await _project(call, path, headers, "read", "read webhook policies")
    return _render(await _policy(call, project, path.webhook_policy_id))


@operation("PUT", "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", "Change a webhook policy",
           "webhook", errors=(404, 409))
async def UpdateWebhookPolicyOfProject(call: Call, path: PolicyPath, headers: ProjectNameHeaders,
                                       body: WebhookPolicy) -> None:
    project = await _project(call, path, headers, "update", "change webhook policies")
    policy = await _policy(call, project, path.webhook_policy_id)
    name, targets, event_types = _checked(body, policy.targets)
    try:
        await call.run(call.services.webhooks.update, policy.id, name,
                       policy.description if body.description is None else body.description, targets, event_types,
                       policy.enabled if body.enabled is None else body.enabled)
    except PolicyNameTaken:
        raise Conflict(f"project {project.name} already has a webhook policy named {name!r}") from None


@operation("DELETE", "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}",
           "Delete a webhook policy (and its history)", "webhook", errors=(404,))
async def DeleteWebhookPolicyOfProject(call: Call, path: PolicyPath, headers: ProjectNameHeaders) -> None:
    project = await _project(call, path, headers, "delete", "delete webhook policies")
    policy = await _policy(call, project, path.webhook_policy_id)
    await call.run(call.services.webhooks.delete, policy.id)


def _execution(execution: stored.Execution) -> Execution:
    counts = execution.counts
    total = sum(v for k, v in counts.items() if not k.startswith("_"))
    return Execution(
        id=execution.id, vendor_type="WEBHOOK", vendor_id=execution.policy_id, status=execution.status,
        metrics=Metrics(task_count=total, success_task_count=counts.get(stored.SUCCESS, 0),
                        error_task_count=counts.get(stored.ERROR, 0), pending_task_count=counts.get(stored.PENDING, 0),
                        running_task_count=counts.get(stored.RUNNING, 0), scheduled_task_count=0,
                        stopped_task_count=0),
        trigger="EVENT", extra_attrs={"event_type": execution.event_type, "event_id": execution.event_id},
        start_time=iso(execution.created_at),
        end_time=iso(execution.end_time) if execution.status in (stored.SUCCESS, stored.ERROR) else None)


@operation("GET", "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions",
           "A webhook policy's executions (one per event), newest first", "webhook", errors=(404,))
async def ListExecutionsOfWebhookPolicy(call: Call, path: PolicyPath, headers: ProjectNameHeaders,
                                        query: ListQuery) -> Page[Execution]:
    project = await _project(call, path, headers, "read", "read webhook executions")
    policy = await _policy(call, project, path.webhook_policy_id)
    total, executions = await call.query(call.services.webhooks.executions, policy.id,
                                         page_offset(query.page, query.page_size), query.page_size)
    return Page([_execution(e) for e in executions], total)


async def _execution_of(call: Call, path: ExecutionPath, headers: ProjectNameHeaders) -> stored.Execution:
    project = await _project(call, path, headers, "read", "read webhook executions")
    policy = await _policy(call, project, path.webhook_policy_id)
    found = await call.query(call.services.webhooks.execution, policy.id, path.execution_id) \
        if storable_id(path.execution_id) else None
    if found is None:
        raise NotFound(f"execution {path.execution_id} not found for webhook policy {policy.id}")
    return found


def _task(task: stored.Task) -> Task:
    return Task(id=task.id, execution_id=task.execution_id, status=task.status, run_count=task.run_count,
                extra_attrs={"address": task.address}, creation_time=iso(task.created_at),
                update_time=iso(task.updated_at),
                start_time=iso(task.start_time) if task.start_time is not None else None,
                end_time=iso(task.end_time) if task.end_time is not None else None)


@operation("GET", "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks",
           "An execution's tasks (one per target)", "webhook", errors=(404,))
async def ListTasksOfWebhookExecution(call: Call, path: ExecutionPath, headers: ProjectNameHeaders,
                                      query: ListQuery) -> Page[Task]:
    execution = await _execution_of(call, path, headers)
    tasks = [_task(t) for t in await call.query(call.services.webhooks.tasks, execution.id)]
    return listing(tasks, query, q=query.q, sort=query.sort)


@operation("GET", "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions/{execution_id}"
           "/tasks/{task_id}/log", "Every attempt of a task: when, to where, what the receiver answered", "webhook",
           errors=(404,))
async def GetLogsOfWebhookTask(call: Call, path: TaskPath, headers: ProjectNameHeaders) -> PlainTextResponse:
    execution = await _execution_of(call, path, headers)
    task = next((t for t in await call.query(call.services.webhooks.tasks, execution.id) if t.id == path.task_id),
                None)
    if task is None:
        raise NotFound(f"task {path.task_id} not found in execution {execution.id}")
    return PlainTextResponse(task.log)


@operation("GET", "/projects/{project_name_or_id}/webhook/lasttrigger",
           "When each webhook policy last fired, per event type", "webhook")
async def LastTrigger(call: Call, path: ProjectPath, headers: ProjectNameHeaders,
                      query: LastTriggerQuery) -> Page[WebhookLastTrigger]:
    project = await _project(call, path, headers, "list", "read webhook policies")
    return page_of([WebhookLastTrigger(policy_name=t.policy_name, event_type=t.event_type, enabled=t.enabled,
                               creation_time=iso(t.created_at),
                               last_trigger_time=iso(t.last_trigger) if t.last_trigger is not None else None)
            for t in await call.query(call.services.webhooks.last_triggers, project.id)], query)


@operation("GET", "/projects/{project_name_or_id}/webhook/events", "The event types, notify types and payload "
           "formats webhooks support", "webhook")
async def GetSupportedEventTypes(call: Call, path: ProjectPath,
                                 headers: ProjectNameHeaders) -> SupportedWebhookEventTypes:
    await _project(call, path, headers, "list", "read webhook policies")
    return SupportedWebhookEventTypes(
        event_type=list(domain.EVENT_TYPES), notify_type=list(domain.NOTIFY_TYPES),
        payload_formats=[PayloadFormat(notify_type=n, formats=list(domain.PAYLOAD_FORMATS))
                         for n in domain.NOTIFY_TYPES])
