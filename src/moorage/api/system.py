"""Audit logs, search, statistics, system info, health, ping, and node pull credentials."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from starlette.responses import JSONResponse, PlainTextResponse, Response

import moorage
from moorage.api.base import (
    PAGED,
    BadRequest,
    Call,
    Filter,
    Forbidden,
    int_param,
    iso,
    operation,
    page_args,
    page_response,
    parse_q,
    parse_sort,
)
from moorage.api.models import NodeCredentialRequest
from moorage.api.projects import can, project_by_name, render, visible_projects
from moorage.auth import rbac
from moorage.meta.audit import COLUMNS, CONDITION_KINDS, AuditEntry, Condition


def render_log(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "username": entry.username, "resource": entry.resource,
            "resource_type": entry.resource_type, "operation": entry.operation, "op_time": iso(entry.op_time)}


def _moment(value: str) -> float | None:
    """A bound of an ``op_time`` range: Harbor's ``2006-01-02 15:04:05`` (UTC), ISO 8601, or Unix seconds."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"op_time bound {value!r} is not a time: use 2006-01-02 15:04:05, ISO 8601 or "
                         "Unix seconds") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _condition(f: Filter) -> Condition:
    if f.key not in COLUMNS:
        raise BadRequest(f"cannot filter the audit log by {f.key!r}; use one of {', '.join(COLUMNS)}")
    if f.kind not in CONDITION_KINDS:
        raise BadRequest(f"{f.key}=(...) matches all of several values, which one field cannot; "
                         f"use {f.key}={{...}} for any of them")
    if f.key == "op_time":
        if f.kind != "range":
            raise BadRequest("filter op_time by a range: op_time=[2006-01-02 15:04:05~2006-01-03 00:00:00]")
        return Condition(f.key, f.kind, tuple(_moment(v) for v in f.values))
    if f.key == "id":
        values = tuple(int_param(v, "id") if v else None for v in f.values)
        return Condition(f.key, f.kind, values)
    return Condition(f.key, f.kind, f.values)


def _order(sort: str | None) -> list[tuple[str, bool]]:
    order = parse_sort(sort)
    for name, _ in order:
        if name not in COLUMNS:
            raise BadRequest(f"cannot sort the audit log by {name!r}; use one of {', '.join(COLUMNS)}")
    return order


async def _logs(call: Call, projects: list[str] | None) -> Response:
    page, size = page_args(call)
    conditions = [_condition(f) for f in parse_q(call.query("q"))]
    total, entries = await call.auth.store.run(call.auth.audit.page, projects, conditions,
                                               _order(call.query("sort")), (page - 1) * size, size)
    return page_response(call, total, [render_log(e) for e in entries])


@operation("GET", "/audit-logs", "Audit logs (all for administrators; project administrators: their projects)",
           "auditlog", response="AuditLog[]", params=PAGED)
async def listAuditLogs(call: Call) -> Response:
    call.require_login()
    if call.subject.sysadmin:
        return await _logs(call, None)
    return await _logs(call, [p.name for p in await visible_projects(call) if can(call, p, "project", "update")])


@operation("GET", "/projects/{project_name}/logs", "Audit logs of a project", "project", response="AuditLog[]",
           params=[("project_name", "path", "string"), *PAGED])
async def getLogs(call: Call) -> Response:
    project = await project_by_name(call, call.params["project_name"], "log", "list", "read the audit log")
    return await _logs(call, [project.name])


@operation("GET", "/search", "Search projects and repositories", "search", response="Search",
           params=[("q", "query", "string")], public=True)
async def search(call: Call) -> Response:
    q = (call.query("q") or "").strip().lower()
    if not q:
        raise BadRequest("q is required")
    counts = await call.auth.store.query(call.auth.projects.repo_counts)
    found_projects, found_repos = [], []
    for project in await visible_projects(call):
        if q in project.name:
            found_projects.append(render(project, call.subject, counts.get(project.name, 0)))
        if counts.get(project.name) and can(call, project, "repository", "list"):
            for repo in await call.auth.store.query(call.auth.projects.repositories, project.name):
                if q in repo.name:
                    found_repos.append({"project_id": project.id, "project_name": project.name,
                                        "project_public": project.public, "repository_name": repo.name,
                                        "pull_count": 0, "artifact_count": repo.artifact_count})
    return JSONResponse({"project": found_projects, "repository": found_repos})


@operation("GET", "/statistics", "Project and repository counts", "statistic", response="Statistic")
async def getStatistic(call: Call) -> Response:
    call.require_login()
    counts = await call.auth.store.query(call.auth.projects.repo_counts)
    projects = await visible_projects(call)
    public = [p for p in projects if p.public]
    private = [p for p in projects if not p.public]
    stats = {"public_project_count": len(public), "public_repo_count": sum(counts.get(p.name, 0) for p in public),
             "private_project_count": len(private),
             "private_repo_count": sum(counts.get(p.name, 0) for p in private)}
    stats["total_project_count"] = stats["public_project_count"] + stats["private_project_count"]
    stats["total_repo_count"] = stats["public_repo_count"] + stats["private_repo_count"]
    stats["total_storage_consumption"] = (await call.auth.store.query(call.auth.projects.storage_bytes)
                                          if call.subject.sysadmin else 0)
    return JSONResponse(stats)


@operation("GET", "/systeminfo", "General system information", "systeminfo", response="GeneralInfo", public=True)
async def getSystemInfo(call: Call) -> Response:
    settings = call.auth.settings
    info: dict[str, Any] = {"auth_mode": "db_auth", "primary_auth_mode": False, "self_registration": False,
                            "harbor_version": f"moorage-{moorage.__version__}",
                            "current_time": iso(time.time()), "banner_message": "", "read_only": False,
                            "project_creation_restriction": settings.project_creation_restriction,
                            "has_ca_root": False, "notification_enable": False}
    if not call.subject.anonymous:
        host = call.request.headers.get("host", settings.listen)
        info["registry_url"] = settings.public_url.split("://", 1)[-1].rstrip("/") if settings.public_url else host
        info["external_url"] = settings.public_url or f"{call.request.url.scheme}://{host}"
        info["registry_storage_provider_name"] = "filesystem"
    return JSONResponse(info)


@operation("GET", "/health", "Health of the components", "health", response="OverallHealthStatus", public=True)
async def getHealth(call: Call) -> Response:
    def probe() -> None:
        with call.auth.store.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    components = [{"name": "core", "status": "healthy"}]
    try:
        await call.auth.store.run(probe)
        components.append({"name": "database", "status": "healthy"})
    except Exception as exc:  # a health check reports failures, it does not raise them
        components.append({"name": "database", "status": "unhealthy", "error": type(exc).__name__})
    status = "healthy" if all(c["status"] == "healthy" for c in components) else "unhealthy"
    return JSONResponse({"status": status, "components": components})


@operation("GET", "/ping", "Liveness", "ping", public=True)
async def getPing(call: Call) -> Response:
    return PlainTextResponse("Pong")


def image_project(image: str) -> str | None:
    """The project of ``[host[:port]/]project/repo[:tag|@digest]``."""
    name = image.split("@", 1)[0]
    parts = name.split("/")
    if len(parts) >= 3 or (len(parts) == 2 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost")):
        parts = parts[1:]
    return parts[0] if len(parts) >= 2 and parts[0] else None


@operation("POST", "/node-credentials", "Mint a short-lived pull-only credential for a node (moorage extension)",
           "node", body=NodeCredentialRequest, response="NodeCredential")
async def createNodeCredential(call: Call) -> Response:
    call.require_login()
    subject = call.subject
    if not subject.is_robot or subject.pull_only is not None or subject.id is None:
        raise Forbidden("node credentials are minted for robot accounts only (authenticate with the node's robot)")
    req = await call.body(NodeCredentialRequest)
    maximum = call.auth.settings.node_credential_max_ttl_seconds
    if req.ttl_seconds < 60:
        raise BadRequest("ttl_seconds must be at least 60")
    ttl = min(req.ttl_seconds, maximum)
    project_name = image_project(req.image)
    if project_name is None:
        raise BadRequest(f"image {req.image!r} does not name a project (want [host/]project/repository[:tag])")
    await project_by_name(call, project_name, "repository", "pull", "pull images")
    pullable = rbac.pullable_projects(subject)
    projects = ["*"] if pullable is None else sorted(pullable)
    issued = call.auth.codec.issue(subject.name, [], ttl, audience=call.auth.codec.node_audience,
                                   robot_id=subject.id, generation=subject.generation, projects=projects)
    expires = datetime.fromtimestamp(issued.issued_at + ttl, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return JSONResponse({"username": subject.name, "password": issued.token, "expires_at": expires})
