"""A project's policies, read-only: immutable tag rules, the tag retention policy and webhooks, each shown
to whoever the API lets list it (changing them is the API's and the CLI's, for now)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from moorage.api import immutable, retention, webhooks
from moorage.api.base import ApiError
from moorage.portal.pages.common import project_view
from moorage.portal.web import Ctx, page

#: Enough for any project's policies on one page (Harbor's UI shows them unpaged too).
POLICY_PAGE = {"page": "1", "page_size": "100"}


def _selectors(selectors: list[Any] | None) -> str:
    return ", ".join(f"{s.decoration or 'matches'} {s.pattern}" for s in selectors or []) or "—"


async def _section(work: Any) -> tuple[Any, str | None]:
    """A section's data, or why the API would not give it (shown in its place)."""
    try:
        return await work, None
    except ApiError as exc:
        return None, exc.message


@page
async def policies_page(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    view = await project_view(ctx, name)
    path, headers = {"project_name_or_id": name}, {"is_resource_name": "true"}
    rules, rules_error = await _section(ctx.call(immutable.ListImmuRules, path=path, headers=headers,
                                                 query=POLICY_PAGE))
    hooks, hooks_error = await _section(ctx.call(webhooks.ListWebhookPoliciesOfProject, path=path, headers=headers,
                                                 query=POLICY_PAGE))
    policy, policy_error = None, None
    retention_id = view.project.metadata.retention_id
    if retention_id:
        policy, policy_error = await _section(ctx.call(retention.getRetention, path={"id": retention_id}))
    immutable_rows = [{"repositories": _selectors((r.scope_selectors or {}).get("repository")),
                       "tags": _selectors(r.tag_selectors), "disabled": bool(r.disabled)}
                      for r in (rules.items if rules else [])]
    retention_rows = [{"rule": f"{r.template} {', '.join(f'{v}' for v in (r.params or {}).values())}".strip(),
                       "repositories": _selectors((r.scope_selectors or {}).get("repository")),
                       "tags": _selectors(r.tag_selectors), "disabled": bool(r.disabled)}
                      for r in (policy.rules or [] if policy else [])]
    schedule = ((policy.trigger.settings or {}).get("cron") if policy and policy.trigger else None) or ""
    # A target's address only: its auth header and signing secret are credentials.
    hook_rows = [{"name": h.name, "targets": ", ".join(t.address or "" for t in h.targets or []),
                  "events": ", ".join(h.event_types or []), "enabled": h.enabled is not False}
                 for h in (hooks.items if hooks else [])]
    return ctx.render("policies.html", view=view, tab="policies", immutable_rows=immutable_rows,
                      rules_error=rules_error, retention_rows=retention_rows, schedule=schedule,
                      has_retention=policy is not None, policy_error=policy_error, hook_rows=hook_rows,
                      hooks_error=hooks_error)
