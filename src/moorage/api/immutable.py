"""``/projects/{project}/immutabletagrules``: the rules that make tags immutable (``moorage.core.immutability``).

Permissions are Harbor's ``immutable-tag`` resource of the project.
"""

from __future__ import annotations

from typing import Any

from moorage.api.base import BadRequest, Call, NotFound
from moorage.api.listing import listing
from moorage.api.models.immutable import ImmutableRule
from moorage.api.operations import Created, Page, operation
from moorage.api.params import Id, ListQuery, storable_id
from moorage.api.projects import ProjectNameHeaders, ProjectPath, project_by_name_or_id
from moorage.core import immutability
from moorage.meta import projects as meta
from moorage.meta.tag_policies import StoredRule

RESOURCE = "immutable-tag"


class RulePath(ProjectPath):
    immutable_rule_id: Id


def _render(stored: StoredRule) -> ImmutableRule:
    return ImmutableRule.model_validate({**stored.body, "id": stored.id, "priority": stored.priority,
                                         "disabled": stored.disabled})


async def _project(call: Call, path: ProjectPath, headers: ProjectNameHeaders, action: str,
                   what: str) -> meta.Project:
    call.require_login()
    return await project_by_name_or_id(call, path, headers, RESOURCE, action, what)


async def _existing(call: Call, project: meta.Project) -> list[StoredRule]:
    return await call.query(call.services.tag_policies.immutable_rules, project.id)


def _parse(body: dict[str, Any], rule_id: int = 0) -> immutability.ImmutableRule:
    return immutability.parse_rule(body, rule_id)


@operation("GET", "/projects/{project_name_or_id}/immutabletagrules", "List the project's immutable tag rules",
           "immutable")
async def ListImmuRules(call: Call, path: ProjectPath, headers: ProjectNameHeaders,
                        query: ListQuery) -> Page[ImmutableRule]:
    project = await _project(call, path, headers, "list", "list immutable tag rules")
    return listing([_render(r) for r in await _existing(call, project)], query, q=query.q, sort=query.sort)


@operation("POST", "/projects/{project_name_or_id}/immutabletagrules", "Add an immutable tag rule", "immutable",
           errors=(400, 404, 409))
async def CreateImmuRule(call: Call, path: ProjectPath, headers: ProjectNameHeaders,
                         body: ImmutableRule) -> Created[None]:
    project = await _project(call, path, headers, "create", "create immutable tag rules")
    rule = _parse(body.model_dump(mode="json", exclude_none=True))
    immutability.check_new_rule(rule, [immutability.from_stored(r) for r in await _existing(call, project)])
    rule_id = await call.run(call.services.tag_policies.add_immutable_rule, project.id, rule.priority, rule.disabled,
                             immutability.stored_body(rule), immutability.MAX_RULES)
    if rule_id is None:
        raise BadRequest(f"project {project.name} has {immutability.MAX_RULES} immutable tag rules, the most it may "
                         "have; delete or change one instead")
    return Created(f"/api/v2.0/projects/{path.project_name_or_id}/immutabletagrules/{rule_id}")


@operation("PUT", "/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}",
           "Change an immutable tag rule, or enable or disable it", "immutable", errors=(400, 404, 409))
async def UpdateImmuRule(call: Call, path: RulePath, headers: ProjectNameHeaders, body: ImmutableRule) -> None:
    project = await _project(call, path, headers, "update", "change immutable tag rules")
    existing = await _existing(call, project)
    current = next((r for r in existing if r.id == path.immutable_rule_id), None)
    if current is None:
        raise NotFound(f"immutable tag rule {path.immutable_rule_id} not found in project {project.name}")
    given = body.model_dump(mode="json", exclude_none=True)
    if "tag_selectors" not in given and "scope_selectors" not in given:
        # Enabling or disabling a rule (the portal's toggle) may send only that.
        given = {**current.body, "priority": current.priority, **given}
    rule = _parse(given, current.id)
    immutability.check_new_rule(rule, [immutability.from_stored(r) for r in existing], replacing=current.id)
    if not await call.run(call.services.tag_policies.update_immutable_rule, project.id, current.id, rule.priority,
                          rule.disabled, immutability.stored_body(rule)):
        raise NotFound(f"immutable tag rule {current.id} not found in project {project.name}")


@operation("DELETE", "/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}",
           "Delete an immutable tag rule", "immutable", errors=(404,))
async def DeleteImmuRule(call: Call, path: RulePath, headers: ProjectNameHeaders) -> None:
    project = await _project(call, path, headers, "delete", "delete immutable tag rules")
    rule_id = path.immutable_rule_id
    if not storable_id(rule_id) or not await call.run(call.services.tag_policies.delete_immutable_rule, project.id,
                                                      rule_id):
        raise NotFound(f"immutable tag rule {rule_id} not found in project {project.name}")
