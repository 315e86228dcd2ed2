"""Audit logs, search, statistics, system info, health, ping, and node pull credentials."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from starlette.responses import PlainTextResponse

import moorage
from moorage.api.base import BadRequest, Call, Forbidden, NotFound, iso
from moorage.api.listing import Filter, parse_q, parse_sort
from moorage.api.models.system import (
    AuditLog,
    ComponentHealthStatus,
    GeneralInfo,
    NodeCredential,
    NodeCredentialRequest,
    OverallHealthStatus,
    Search,
    SearchRepository,
    Statistic,
)
from moorage.api.operations import Page, operation
from moorage.api.params import INT64_MAX, ListQuery, Params, number, page_offset, whole_number
from moorage.api.projects import ProjectNamePath, can, project_by_name, render, visible_projects
from moorage.auth import rbac
from moorage.meta.audit import COLUMNS, CONDITION_KINDS, AuditEntry, Condition


class SearchQuery(Params):
    q: str


def render_log(entry: AuditEntry) -> AuditLog:
    return AuditLog(id=entry.id, username=entry.username, resource=entry.resource, resource_type=entry.resource_type,
                    operation=entry.operation, op_time=iso(entry.op_time))


_NUMERIC = re.compile(r"-?[0-9.]+")


def _moment(value: str) -> float | None:
    """A bound of an ``op_time`` range: Harbor's ``2006-01-02 15:04:05`` (UTC), ISO 8601, or Unix seconds."""
    if not value:
        return None
    if _NUMERIC.fullmatch(value):
        return number(value, "op_time")
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
        values = tuple(whole_number(v, "id", 0, INT64_MAX) if v else None for v in f.values)
        return Condition(f.key, f.kind, values)
    return Condition(f.key, f.kind, f.values)


def _order(sort: str | None) -> list[tuple[str, bool]]:
    order = parse_sort(sort)
    for name, _ in order:
        if name not in COLUMNS:
            raise BadRequest(f"cannot sort the audit log by {name!r}; use one of {', '.join(COLUMNS)}")
    return order


async def _logs(call: Call, query: ListQuery, projects: list[str] | None) -> Page[AuditLog]:
    conditions = [_condition(f) for f in parse_q(query.q)]
    total, entries = await call.run(call.auth.audit.page, projects, conditions, _order(query.sort),
                                    page_offset(query.page, query.page_size), query.page_size)
    return Page([render_log(e) for e in entries], total)


@operation("GET", "/audit-logs", "Audit logs (all for administrators; project administrators: their projects)",
           "auditlog")
async def listAuditLogs(call: Call, query: ListQuery) -> Page[AuditLog]:
    call.require_login()
    if call.subject.sysadmin:
        return await _logs(call, query, None)
    return await _logs(call, query, [p.name for p in await visible_projects(call) if can(call, p, "project", "update")])


@operation("GET", "/projects/{project_name}/logs", "Audit logs of a project", "project")
async def getLogs(call: Call, path: ProjectNamePath, query: ListQuery) -> Page[AuditLog]:
    project = await project_by_name(call, path.project_name, "log", "list", "read the audit log")
    return await _logs(call, query, [project.name])


@operation("GET", "/search", "Search projects and repositories", "search", public=True)
async def search(call: Call, query: SearchQuery) -> Search:
    q = query.q.strip().lower()
    if not q:
        raise BadRequest("q is required")
    counts = await call.query(call.auth.projects.repo_counts)
    found = Search(project=[], repository=[])
    for project in await visible_projects(call):
        if q in project.name:
            found.project.append(render(project, call.subject, counts.get(project.name, 0)))
        if counts.get(project.name) and can(call, project, "repository", "list"):
            for repo in await call.query(call.auth.projects.repositories, project.name):
                if q in repo.name:
                    found.repository.append(SearchRepository(
                        project_id=project.id, project_name=project.name, project_public=project.public,
                        repository_name=repo.name, pull_count=repo.pull_count, artifact_count=repo.artifact_count))
    return found


@operation("GET", "/statistics", "Project and repository counts", "statistic")
async def getStatistic(call: Call) -> Statistic:
    call.require_login()
    counts = await call.query(call.auth.projects.repo_counts)
    projects = await visible_projects(call)
    public = [p for p in projects if p.public]
    private = [p for p in projects if not p.public]
    public_repos = sum(counts.get(p.name, 0) for p in public)
    private_repos = sum(counts.get(p.name, 0) for p in private)
    return Statistic(public_project_count=len(public), public_repo_count=public_repos,
                     private_project_count=len(private), private_repo_count=private_repos,
                     total_project_count=len(projects), total_repo_count=public_repos + private_repos,
                     total_storage_consumption=await call.query(call.auth.projects.storage_bytes)
                     if call.subject.sysadmin else 0)


@operation("GET", "/systeminfo", "General system information", "systeminfo", public=True)
async def getSystemInfo(call: Call) -> GeneralInfo:
    settings = call.auth.settings
    info = GeneralInfo(auth_mode="db_auth", primary_auth_mode=False, self_registration=False,
                       harbor_version=f"moorage-{moorage.__version__}", current_time=iso(time.time()),
                       banner_message="", read_only=False,
                       project_creation_restriction=settings.project_creation_restriction,
                       has_ca_root=_ca_file(call) is not None,
                       notification_enable=False)
    if not call.subject.anonymous:
        host = call.request.headers.get("host", settings.listen)
        info.registry_url = settings.public_url.split("://", 1)[-1].rstrip("/") if settings.public_url else host
        info.external_url = settings.public_url or f"{call.request.url.scheme}://{host}"
        info.registry_storage_provider_name = "filesystem"
    return info


def _ca_file(call: Call) -> Path | None:
    """The CA nodes must trust: moorage's own, when it serves HTTPS with it (not behind --plain-http)."""
    # Imported here: moorage.tls.certs loads the cryptography library, which a registry without
    # authentication never needs otherwise (tests/auth/test_crypto_loading.py).
    from moorage.tls.certs import server_paths

    settings = call.auth.settings
    ca = server_paths(settings.data_dir).ca
    return ca if not settings.plain_http and ca.is_file() else None


@operation("GET", "/systeminfo/getcert", "The registry's root CA certificate (PEM), for nodes to trust", "systeminfo",
           public=True, errors=(404,))
async def getCert(call: Call) -> PlainTextResponse:
    # Public as in Harbor: a CA is not a secret, and a node fetches it before it can log in
    # (`moorage node-config --ca-fingerprint` pins what it gets).
    ca = _ca_file(call)
    if ca is None:
        raise NotFound("this registry has no CA to hand out: it serves plain HTTP, or TLS is terminated in front of "
                       "it with another certificate")
    pem = await call.run(ca.read_text)
    return PlainTextResponse(pem, headers={"Content-Disposition": 'attachment; filename="ca.crt"'})


@operation("GET", "/health", "Health of the components", "health", public=True)
async def getHealth(call: Call) -> OverallHealthStatus:
    def probe() -> None:
        with call.auth.store.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    components = [ComponentHealthStatus(name="core", status="healthy")]
    try:
        await call.run(probe)
        components.append(ComponentHealthStatus(name="database", status="healthy"))
    except Exception as exc:  # a health check reports failures, it does not raise them
        components.append(ComponentHealthStatus(name="database", status="unhealthy", error=type(exc).__name__))
    status = "healthy" if all(c.status == "healthy" for c in components) else "unhealthy"
    return OverallHealthStatus(status=status, components=components)


@operation("GET", "/ping", "Liveness", "ping", public=True)
async def getPing(call: Call) -> PlainTextResponse:
    return PlainTextResponse("Pong")


def image_project(image: str) -> str | None:
    """The project of ``[host[:port]/]project/repo[:tag|@digest]``."""
    name = image.split("@", 1)[0]
    parts = name.split("/")
    if len(parts) >= 3 or (len(parts) == 2 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost")):
        parts = parts[1:]
    return parts[0] if len(parts) >= 2 and parts[0] else None


@operation("POST", "/node-credentials", "Mint a short-lived pull-only credential for a node (moorage extension)",
           "node", errors=(404,), extension=True)
async def createNodeCredential(call: Call, body: NodeCredentialRequest) -> NodeCredential:
    call.require_login()
    subject = call.subject
    if not subject.is_robot or subject.pull_only is not None or subject.id is None:
        raise Forbidden("node credentials are minted for robot accounts only (authenticate with the node's robot)")
    maximum = call.auth.settings.node_credential_max_ttl_seconds
    if body.ttl_seconds < 60:
        raise BadRequest("ttl_seconds must be at least 60")
    ttl = min(body.ttl_seconds, maximum)
    project_name = image_project(body.image)
    if project_name is None:
        raise BadRequest(f"image {body.image!r} does not name a project (want [host/]project/repository[:tag])")
    await project_by_name(call, project_name, "repository", "pull", "pull images")
    pullable = rbac.pullable_projects(subject)
    projects = ["*"] if pullable is None else sorted(pullable)
    issued = call.auth.codec.issue(subject.name, [], ttl, audience=call.auth.codec.node_audience,
                                   robot_id=subject.id, generation=subject.generation, projects=projects)
    expires = datetime.fromtimestamp(issued.issued_at + ttl, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return NodeCredential(username=subject.name, password=issued.token, expires_at=expires)
