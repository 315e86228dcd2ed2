"""Lookups several pages share: a project as the API shows it, and what the signed-in user may do in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moorage.api import projects, system
from moorage.api.models.projects import Project, ProjectSummary
from moorage.auth import rbac
from moorage.portal.web import Ctx

ROLES = [(rbac.PROJECT_ADMIN, "Project admin"), (rbac.MAINTAINER, "Maintainer"), (rbac.DEVELOPER, "Developer"),
         (rbac.GUEST, "Guest"), (rbac.LIMITED_GUEST, "Limited guest")]
ROLE_LABELS = dict(ROLES)


@dataclass
class ProjectView:
    """A project and the buttons its page may offer (the API decides again when one is pressed)."""

    project: Project
    subject: rbac.Subject

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def public(self) -> bool:
        return self.project.metadata.public == "true"

    def can(self, resource: str, action: str) -> bool:
        ref = rbac.ProjectRef(self.project.project_id, self.project.name, self.public)
        return rbac.allowed(self.subject, ref, resource, action)

    @property
    def role(self) -> str:
        if self.subject.sysadmin and not self.project.current_user_role_id:
            return "System admin"
        return ROLE_LABELS.get(self.project.current_user_role_id, "Public access" if self.public else "—")


async def project_view(ctx: Ctx, name: str) -> ProjectView:
    project = await ctx.call(projects.getProject, path={"project_name_or_id": name},
                             headers={"is_resource_name": "true"})
    return ProjectView(project, ctx.subject)


async def summary_of(ctx: Ctx, name: str) -> ProjectSummary:
    summary: ProjectSummary = await ctx.call(projects.getProjectSummary, path={"project_name_or_id": name},
                                             headers={"is_resource_name": "true"})
    return summary


def quota_of(summary: ProjectSummary) -> dict[str, Any] | None:
    """Used and limit bytes of storage, when the summary carries Harbor's ``quota`` (``{hard, used}``)."""
    quota = getattr(summary, "quota", None)
    if quota is None:
        return None
    data = quota.model_dump() if hasattr(quota, "model_dump") else quota
    if not isinstance(data, dict):
        return None
    hard = (data.get("hard") or {}).get("storage")
    used = (data.get("used") or {}).get("storage")
    if not isinstance(used, int):
        return None
    if not isinstance(hard, int) or hard <= 0:
        return {"used": used, "hard": None, "percent": None}
    return {"used": used, "hard": hard, "percent": min(100, round(used * 100 / hard))}


async def registry_host(ctx: Ctx) -> str:
    """HOST[:PORT] as image references spell it (the API's ``registry_url``)."""
    info = await ctx.call(system.getSystemInfo)
    return str(info.registry_url or ctx.request.headers.get("host", ""))
