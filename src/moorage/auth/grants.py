"""Requested access -> granted access: the intersection the token service puts in a token.

A request is never failed for asking too much; what the subject may not do is simply left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from moorage.auth import rbac
from moorage.core.reference import project_of
from moorage.meta.projects import ProjectModel


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]


def parse_scope(text: str) -> Scope | None:
    """``type:name:actions`` (the name may hold ``:`` only in theory; split on the first and last)."""
    if text.count(":") < 2:
        return None
    kind, rest = text.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    if not kind or not name:
        return None
    return Scope(kind, name, tuple(a for a in actions.split(",") if a))


def parse_scopes(values: list[str]) -> list[Scope]:
    # A client may send several scopes in one parameter, separated by spaces (the OAuth2 form).
    return [s for value in values for part in value.split() if (s := parse_scope(part)) is not None]


class Granter:
    def __init__(self, projects: ProjectModel) -> None:
        self.projects = projects

    def project_ref(self, name: str | None) -> rbac.ProjectRef | None:
        if name is None:
            return None
        project = self.projects.by_name(name)
        return rbac.ProjectRef(project.id, project.name, project.public) if project else None

    def grant(self, subject: rbac.Subject, scopes: list[Scope]) -> list[dict[str, object]]:
        """The ``access`` claim for ``scopes``: each with the actions ``subject`` may do (blocking)."""
        refs: dict[str | None, rbac.ProjectRef | None] = {}
        access: list[dict[str, object]] = []
        for scope in scopes:
            actions: list[str] = []
            if scope.type == "repository":
                project_name = project_of(scope.name)
                if project_name not in refs:
                    refs[project_name] = self.project_ref(project_name)
                project = refs[project_name]
                wanted = ["pull", "push", "delete"] if "*" in scope.actions else list(scope.actions)
                actions = [a for a in wanted if a in rbac.REGISTRY_ACTIONS
                           and rbac.allowed(subject, project, *rbac.REGISTRY_ACTIONS[a])]
            elif scope.type == "registry" and scope.name == "catalog" and subject.sysadmin:
                actions = [a for a in scope.actions if a == "*"]
            access.append({"type": scope.type, "name": scope.name, "actions": actions})
        return access
