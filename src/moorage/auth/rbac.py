"""The one answer to "may this subject do this action on this resource of this project".

Harbor's project roles (ids and names from Harbor's ``const.go`` and ``rbac_role.go``) and its permission
matrix, reduced to the resources moorage has. The registry's token service, its Basic-auth path and every
management API operation ask ``allowed`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PROJECT_ADMIN, DEVELOPER, GUEST, MAINTAINER, LIMITED_GUEST = 1, 2, 3, 4, 5

ROLE_NAMES = {PROJECT_ADMIN: "projectAdmin", DEVELOPER: "developer", GUEST: "guest", MAINTAINER: "maintainer",
              LIMITED_GUEST: "limitedGuest"}

Perm = tuple[str, str]


def _perms(spec: dict[str, str]) -> frozenset[Perm]:
    return frozenset((resource, action) for resource, actions in spec.items() for action in actions.split())


# Harbor's matrix (``rbac_role.go``), each role a superset of the one below it. Resources moorage does not
# implement yet (labels, scans, helm charts, ...) are held all the same: a role holds them in Harbor, and a
# project administrator must be able to grant them to a robot as Harbor's clients ask.
_LIMITED_GUEST = {"project": "read", "metadata": "read", "quota": "read", "repository": "list read pull",
                  "artifact": "list read", "artifact-addition": "read", "tag": "list", "accessory": "list",
                  "helm-chart": "read list", "helm-chart-version": "read list", "configuration": "read",
                  "scan": "read", "scanner": "read"}
_GUEST = {**_LIMITED_GUEST, "member": "list read", "log": "list", "robot": "list read", "label": "read list"}
_DEVELOPER = {**_GUEST, "repository": "list read pull push update create", "artifact": "list read create",
              "tag": "list create", "artifact-label": "create delete",
              "tag-retention": "create read update delete list operate", "helm-chart": "read list create",
              "helm-chart-version": "read list create", "helm-chart-version-label": "create delete list"}
_MAINTAINER = {**_DEVELOPER, "repository": "list read pull push update create delete",
               "artifact": "list read create delete", "tag": "list create delete",
               "metadata": "read create update delete", "label": "read list create update delete",
               "immutable-tag": "create update delete list", "helm-chart": "read list create delete",
               "helm-chart-version": "read list create delete", "notification-policy": "list",
               "scan": "read create stop"}
_PROJECT_ADMIN = {**_MAINTAINER, "project": "read update delete",
                  "member": "list read create update delete", "robot": "list read create update delete",
                  "notification-policy": "list read create update delete", "scanner": "read create",
                  "configuration": "read update", "preheat-policy": "list read create update delete"}

ROLE_PERMISSIONS: dict[int, frozenset[Perm]] = {
    PROJECT_ADMIN: _perms(_PROJECT_ADMIN),
    MAINTAINER: _perms(_MAINTAINER),
    DEVELOPER: _perms(_DEVELOPER),
    GUEST: _perms(_GUEST),
    LIMITED_GUEST: _perms(_LIMITED_GUEST),
}

#: What anyone, even anonymous, may do in a public project.
PUBLIC_PERMISSIONS = _perms({"project": "read", "metadata": "read", "repository": "list read pull",
                             "artifact": "list read", "tag": "list"})

#: Robot permission (resource, action) as Harbor spells it -> what it grants here.
_ROBOT_ALIASES: dict[Perm, frozenset[Perm]] = {
    ("repository", "pull"): _perms({"repository": "pull read list", "artifact": "read list", "tag": "list",
                                    "project": "read"}),
    ("repository", "push"): _perms({"repository": "push", "artifact": "create", "tag": "create",
                                    "project": "read"}),
    ("repository", "delete"): _perms({"repository": "delete", "artifact": "delete", "tag": "delete"}),
    ("artifact", "delete"): _perms({"artifact": "delete", "repository": "delete"}),
}

#: Registry token actions -> the permission each needs.
REGISTRY_ACTIONS: dict[str, Perm] = {
    "pull": ("repository", "pull"),
    "push": ("repository", "push"),
    "delete": ("artifact", "delete"),
}


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: int
    name: str
    public: bool


@dataclass(frozen=True, slots=True)
class Subject:
    """An authenticated (or anonymous) caller with everything needed to decide access without the database."""

    kind: str  # "user", "robot" or "anonymous"
    name: str = ""
    id: int | None = None
    sysadmin: bool = False
    #: project id -> Harbor role id (users)
    roles: dict[int, int] = field(default_factory=dict)
    #: project name (or "*") -> permissions (robots)
    robot_grants: dict[str, frozenset[Perm]] = field(default_factory=dict)
    #: system-level robot permissions, e.g. ("project", "create")
    system_grants: frozenset[Perm] = frozenset()
    #: A node pull credential: pull only, in these projects only.
    pull_only: frozenset[str] | None = None
    #: The account's credential generation when it authenticated (``moorage.meta.identity``): tokens carry it.
    generation: int = 0

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def is_robot(self) -> bool:
        return self.kind == "robot"


ANONYMOUS = Subject(kind="anonymous")


def robot_grants(permissions: Iterable[dict[str, Any]]) -> tuple[dict[str, frozenset[Perm]], frozenset[Perm]]:
    """Harbor RobotPermission list -> (per-namespace grants, system grants)."""
    grants: dict[str, set[Perm]] = {}
    system: set[Perm] = set()
    for permission in permissions:
        kind = permission.get("kind", "project")
        namespace = permission.get("namespace", "")
        for access in permission.get("access", []):
            if access.get("effect", "allow") == "deny":
                continue
            perm = (access.get("resource", ""), access.get("action", ""))
            if kind == "system":
                system.add(perm)
                continue
            expanded = set(_ROBOT_ALIASES.get(perm, frozenset({perm})))
            if perm[1] == "*":
                # Every action any role has on the resource; "*" itself names no action anyone checks.
                expanded = {p for role in ROLE_PERMISSIONS.values() for p in role if p[0] == perm[0]}
                for alias, extra in _ROBOT_ALIASES.items():
                    if alias[0] == perm[0]:
                        expanded |= extra
            grants.setdefault(namespace, set()).update(expanded)
    return {k: frozenset(v) for k, v in grants.items()}, frozenset(system)


def allowed(subject: Subject, project: ProjectRef | None, resource: str, action: str) -> bool:
    """May ``subject`` do ``action`` on ``resource`` of ``project`` (None: the project does not exist)?"""
    if project is None:
        return False
    if subject.pull_only is not None:
        return (resource, action) in _ROBOT_ALIASES[("repository", "pull")] and (
            project.name in subject.pull_only or "*" in subject.pull_only)
    if subject.sysadmin:
        return True
    perm = (resource, action)
    if project.public and perm in PUBLIC_PERMISSIONS:
        return True
    if subject.kind == "user":
        role = subject.roles.get(project.id)
        return role is not None and perm in ROLE_PERMISSIONS.get(role, frozenset())
    if subject.kind == "robot":
        return perm in subject.robot_grants.get(project.name, frozenset()) \
            or perm in subject.robot_grants.get("*", frozenset())
    return False


def allowed_system(subject: Subject, resource: str, action: str) -> bool:
    """System-level operations (users, system robots, audit logs, project creation)."""
    if subject.sysadmin:
        return True
    return subject.is_robot and subject.pull_only is None and (resource, action) in subject.system_grants


def pullable_projects(subject: Subject) -> frozenset[str] | None:
    """Project names a robot may pull from (None: any project, "*" namespace)."""
    if subject.pull_only is not None:
        return subject.pull_only
    if "*" in subject.robot_grants and ("repository", "pull") in subject.robot_grants["*"]:
        return None
    return frozenset(ns for ns, perms in subject.robot_grants.items() if ("repository", "pull") in perms)


# -- granting: nobody gives away what they do not hold -----------------------------------------------
def held_in_project(subject: Subject, project: ProjectRef) -> frozenset[Perm] | None:
    """Every permission ``subject`` holds in ``project`` by its own right (None: all of them, a system
    administrator). What anyone may do in a public project is not held: a grant built on it would
    outlive the project going private."""
    if subject.sysadmin:
        return None
    if subject.pull_only is not None:
        return frozenset()
    if subject.kind == "user":
        return ROLE_PERMISSIONS.get(subject.roles.get(project.id, 0), frozenset())
    if subject.kind == "robot":
        return subject.robot_grants.get(project.name, frozenset()) | subject.robot_grants.get("*", frozenset())
    return frozenset()


def _missing(wanted: Iterable[Perm], held: frozenset[Perm] | None) -> list[Perm]:
    return [] if held is None else sorted(p for p in set(wanted) if p not in held)


def _spell(perms: list[Perm]) -> str:
    return ", ".join(f"{resource}:{action}" for resource, action in perms)


def ungrantable(creator: Subject, permissions: Iterable[dict[str, Any]],
                projects: dict[str, ProjectRef]) -> str | None:
    """Why ``creator`` may not hand out ``permissions`` (Harbor's RobotPermission list), or None when it holds
    every one of them itself, in each project named (``projects``: name -> ref of every namespace but "*").

    The permissions are compared after expansion (``repository:pull`` also reads artifacts, ``*`` is every
    action), so nothing reaches the new holder that its creator lacks."""
    if creator.sysadmin:
        return None
    grants, system = robot_grants(permissions)
    problems: list[str] = []
    held_system = creator.system_grants if creator.is_robot and creator.pull_only is None else frozenset()
    if missing := _missing(system, held_system):
        problems.append(f"system permission(s) {_spell(missing)}")
    for namespace, wanted in sorted(grants.items()):
        if namespace == "*":
            held: frozenset[Perm] | None = (creator.robot_grants.get("*", frozenset())
                                            if creator.is_robot and creator.pull_only is None else frozenset())
            where = "every project"
        else:
            project = projects.get(namespace)
            held = held_in_project(creator, project) if project is not None else frozenset()
            where = f"project {namespace}"
        if missing := _missing(wanted, held):
            problems.append(f"{_spell(missing)} in {where}")
    if not problems:
        return None
    return (f"{creator.name} can only grant permissions it holds itself; it lacks " + "; ".join(problems))


def role_ungrantable(creator: Subject, project: ProjectRef, role_id: int) -> str | None:
    """Why ``creator`` may not give someone ``role_id`` in ``project``, or None when it holds all the role does."""
    missing = _missing(ROLE_PERMISSIONS.get(role_id, frozenset()), held_in_project(creator, project))
    if not missing:
        return None
    return (f"{creator.name} can only grant what it holds itself: the {ROLE_NAMES.get(role_id, role_id)} role "
            f"of project {project.name} includes {_spell(missing)}")
