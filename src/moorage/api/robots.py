"""``/robots``: Harbor v2 robot accounts, system or project level; the secret is shown once."""

from __future__ import annotations

import re
import time
from typing import Any

from moorage.api.base import BadRequest, Call, Conflict, Forbidden, NotFound, iso
from moorage.api.listing import listing
from moorage.api.models.robots import Robot as RobotModel
from moorage.api.models.robots import RobotCreate, RobotCreated, RobotPermission, RobotSec
from moorage.api.operations import Created, Page, operation
from moorage.api.params import Id, ListQuery, Params, storable_id
from moorage.api.projects import record
from moorage.auth import rbac
from moorage.auth.secrets import generate_secret, hash_secret, password_problem
from moorage.meta.identity import Robot

ROBOT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
ACTIONS = {"*", "pull", "push", "create", "read", "update", "delete", "list", "operate", "scanner-pull", "stop"}


class RobotPath(Params):
    robot_id: Id


def render(call: Call, robot: Robot) -> RobotModel:
    return RobotModel(id=robot.id, name=call.auth.settings.robot_name_prefix + robot.name,
                      description=robot.description, level=robot.level, duration=robot.duration, editable=True,
                      disable=robot.disabled, expires_at=robot.expires_at,
                      permissions=[RobotPermission.model_validate(p) for p in robot.permissions],
                      creator_type="local", creator_ref=robot.creator_ref, creation_time=iso(robot.created_at),
                      update_time=iso(robot.updated_at))


def _expires_at(created_at: float, duration: int) -> int:
    return -1 if duration == -1 else int(created_at) + duration * 86400


def _duration(call: Call, value: int | None) -> int:
    if value is None or value == 0:
        return call.auth.settings.robot_default_duration_days
    if value < -1:
        raise BadRequest("duration must be -1 (never expires) or a number of days")
    return value


def _permissions(permissions: list[RobotPermission], level: str) -> list[dict[str, Any]]:
    if not permissions:
        raise BadRequest("permissions must list at least one {kind, namespace, access}")
    for permission in permissions:
        if permission.kind not in ("project", "system"):
            raise BadRequest(f"permission kind must be project or system, not {permission.kind!r}")
        if level == "project" and permission.kind != "project":
            raise BadRequest("a project robot can only hold project permissions")
        for access in permission.access:
            if access.action not in ACTIONS:
                raise BadRequest(f"unknown action {access.action!r}")
            if access.effect not in ("allow", "deny"):
                raise BadRequest("effect must be allow or deny")
    return [p.model_dump() for p in permissions]


async def _may_manage(call: Call, level: str, project_id: int | None, action: str) -> None:
    call.require_login()
    if level == "system" or project_id is None:
        call.require(rbac.allowed_system(call.subject, "robot", action), f"{action} system robot accounts")
        return
    project = await call.query(call.auth.projects.by_id, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    ref = rbac.ProjectRef(project.id, project.name, project.public)
    call.require(rbac.allowed(call.subject, ref, "robot", action),
                 f"{action} robot accounts of project {project.name}")


async def _require_grantable(call: Call, permissions: list[dict[str, Any]], what: str) -> None:
    """Refuse unless the caller holds, itself, everything ``permissions`` give (robot:create or robot:update
    alone must not mint a robot stronger than its maker, nor take one over)."""
    names = {p.get("namespace", "") for p in permissions if p.get("kind", "project") == "project"} - {"*"}
    projects: dict[str, rbac.ProjectRef] = {}
    for name in names:
        project = await call.query(call.auth.projects.by_name, name)
        if project is not None:
            projects[name] = rbac.ProjectRef(project.id, project.name, project.public)
    problem = rbac.ungrantable(call.subject, permissions, projects)
    if problem:
        raise Forbidden(f"cannot {what}: {problem}")


async def _robot(call: Call, robot_id: int, action: str) -> Robot:
    robot = await call.query(call.auth.identity.robot_by_id, robot_id) if storable_id(robot_id) else None
    if robot is None:
        call.require_login()
        raise NotFound(f"robot {robot_id} not found")
    if not (_itself(call, robot) and action in ("read", "update-secret")):
        await _may_manage(call, robot.level, robot.project_id, "update" if action == "update-secret" else action)
    return robot


def _itself(call: Call, robot: Robot) -> bool:
    return call.subject.is_robot and call.subject.id == robot.id and call.subject.pull_only is None


def _secret(given: str | None) -> str:
    if given is None or given == "":
        return generate_secret()
    problem = password_problem(given)
    if problem:
        raise BadRequest(f"invalid secret: {problem}")
    return given


def _project_of(robot: Robot) -> str | None:
    """The project a project robot belongs to (its stored name is ``<project>+<name>``)."""
    return robot.name.split("+", 1)[0] if robot.level == "project" and "+" in robot.name else None


@operation("GET", "/robots", "List robot accounts", "robot")
async def ListRobot(call: Call, query: ListQuery) -> Page[RobotModel]:
    call.require_login()
    robots = await call.query(call.auth.identity.list_robots)
    projects = {p.id: p for p in await call.query(call.auth.projects.list)}
    visible: list[RobotModel] = []
    project_ids: dict[int, int] = {}
    for robot in robots:
        if robot.level == "system" or robot.project_id is None:
            allowed = rbac.allowed_system(call.subject, "robot", "list")
        else:
            p = projects.get(robot.project_id)
            allowed = p is not None and rbac.allowed(call.subject, rbac.ProjectRef(p.id, p.name, p.public), "robot",
                                                     "list")
        if allowed:
            visible.append(render(call, robot))
            project_ids[robot.id] = robot.project_id or 0
    return listing(visible, query, q=query.q, sort=query.sort,
                   view=lambda r: {"project_id": project_ids.get(r.id or 0, 0)},
                   aliases={"Level": "level", "ProjectID": "project_id", "Name": "name"})


@operation("POST", "/robots", "Create a robot account", "robot", errors=(404, 409))
async def CreateRobot(call: Call, body: RobotCreate) -> Created[RobotCreated]:
    call.require_login()
    req = body
    if req.level not in ("system", "project"):
        raise BadRequest("level must be system or project")
    if not ROBOT_NAME.match(req.name) or len(req.name) > 128:
        raise BadRequest(f"invalid robot name {req.name!r}: use lower-case letters and digits, optionally separated "
                         "by single '.', '_' or '-'")
    permissions = _permissions(req.permissions, req.level)
    project_id: int | None = None
    stored_name = req.name
    if req.level == "project":
        namespaces = {p.namespace for p in req.permissions}
        if len(namespaces) != 1:
            raise BadRequest("a project robot's permissions must all name its one project (namespace)")
        namespace = namespaces.pop()
        project = await call.query(call.auth.projects.by_name, namespace)
        if project is None:
            raise NotFound(f"project {namespace} not found")
        project_id = project.id
        stored_name = f"{project.name}+{req.name}"
        if len(stored_name) > 255:
            raise BadRequest(f"robot name {req.name!r} is too long for project {project.name}: the project name, "
                             "'+' and the robot name must fit in 255 characters")
    await _may_manage(call, req.level, project_id, "create")
    if req.level == "system":
        for permission in req.permissions:
            if permission.kind == "project" and permission.namespace != "*" and await call.query(
                    call.auth.projects.by_name, permission.namespace) is None:
                raise NotFound(f"project {permission.namespace} not found")
    await _require_grantable(call, permissions, "create this robot")
    duration = _duration(call, req.duration)
    secret = _secret(req.secret)
    now = time.time()
    robot_id = await call.run(call.auth.identity.create_robot, stored_name, req.description,
                              hash_secret(secret), req.level, project_id, req.disable, duration,
                              _expires_at(now, duration), permissions,
                              call.subject.id if call.subject.kind == "user" and call.subject.id else 0)
    if robot_id is None:
        raise Conflict(f"robot {call.auth.settings.robot_name_prefix}{stored_name} already exists")
    robot = await call.query(call.auth.identity.robot_by_id, robot_id)
    assert robot is not None
    await record(call, call.auth.settings.robot_name_prefix + stored_name, "robot", "create", _project_of(robot))
    return Created(f"/api/v2.0/robots/{robot_id}", RobotCreated(
        id=robot_id, name=call.auth.settings.robot_name_prefix + stored_name, secret=secret,
        creation_time=iso(robot.created_at), expires_at=robot.expires_at))


@operation("GET", "/robots/{robot_id}", "Get a robot account", "robot")
async def GetRobotByID(call: Call, path: RobotPath) -> RobotModel:
    return render(call, await _robot(call, path.robot_id, "read"))


@operation("PUT", "/robots/{robot_id}", "Update a robot account", "robot")
async def UpdateRobot(call: Call, path: RobotPath, body: RobotModel) -> None:
    robot = await _robot(call, path.robot_id, "update")
    await _require_grantable(call, robot.permissions, f"change robot {robot.id}")
    req = body
    if req.level is not None and req.level != robot.level:
        raise BadRequest("a robot's level cannot be changed")
    prefix = call.auth.settings.robot_name_prefix
    if req.name is not None and req.name not in (robot.name, prefix + robot.name, robot.name.split("+")[-1]):
        raise BadRequest("a robot cannot be renamed")
    values: dict[str, Any] = {}
    if req.description is not None:
        values["description"] = req.description
    if req.disable is not None:
        values["disabled"] = req.disable
    if req.duration is not None:
        values["duration"] = _duration(call, req.duration)
        values["expires_at"] = _expires_at(robot.created_at, values["duration"])
    if req.permissions is not None:
        values["permissions"] = _permissions(req.permissions, robot.level)
        if robot.level == "project" and {p.namespace for p in req.permissions} != {robot.name.split("+", 1)[0]}:
            raise BadRequest("a project robot's permissions must name its own project")
        await _require_grantable(call, values["permissions"], f"give robot {robot.id} these permissions")
    if values:
        await call.run(call.auth.identity.update_robot, robot.id, **values)
        await record(call, prefix + robot.name, "robot", "update", _project_of(robot))


@operation("PATCH", "/robots/{robot_id}", "Refresh a robot's secret", "robot")
async def RefreshSec(call: Call, path: RobotPath, body: RobotSec) -> RobotSec:
    robot = await _robot(call, path.robot_id, "update-secret")
    if not _itself(call, robot):
        # Whoever sets a robot's secret can act as that robot.
        await _require_grantable(call, robot.permissions, f"refresh the secret of robot {robot.id}")
    secret = _secret(body.secret)
    await call.run(call.auth.identity.update_robot, robot.id, secret_hash=hash_secret(secret))
    return RobotSec(secret=secret)


@operation("DELETE", "/robots/{robot_id}", "Delete a robot account", "robot")
async def DeleteRobot(call: Call, path: RobotPath) -> None:
    robot = await _robot(call, path.robot_id, "delete")
    await call.run(call.auth.identity.delete_robot, robot.id)
    await record(call, call.auth.settings.robot_name_prefix + robot.name, "robot", "delete", _project_of(robot))
