"""``/quotas``: each project's storage quota (hard limit and usage), listed, read and changed by administrators.

Usage is kept by the registry as content is pushed and deleted (``moorage.core.quotas``); only the limit is
written here. A project's quota is also set through ``storage_limit`` when the project is created or updated.
"""

from __future__ import annotations

from moorage.api.base import BadRequest, Call, NotFound, iso
from moorage.api.listing import sort_views
from moorage.api.models.quotas import Quota, QuotaUpdateReq
from moorage.api.operations import Page, operation
from moorage.api.params import Id, PageQuery, Params, storable_id
from moorage.auth import rbac
from moorage.core import quotas
from moorage.meta.quotas import Quota as StoredQuota

#: The one resource a quota limits.
STORAGE = "storage"


class QuotaPath(Params):
    id: Id


class QuotaListQuery(PageQuery):
    #: The kind of thing quotas are of: only "project" exists.
    reference: str | None = None
    #: The project's id.
    reference_id: str | None = None
    #: ``hard.storage``, ``used.storage``, ``creation_time`` or ``update_time``, ``-`` first for descending.
    sort: str | None = None


def _require(call: Call, action: str) -> None:
    call.require_login()
    call.require(rbac.allowed_system(call.subject, "quota", action), f"{action} quotas")


def render(quota: StoredQuota) -> Quota:
    return Quota(id=quota.id, ref={"id": quota.project_id, "name": quota.project, "owner_name": quota.owner_name},
                 hard={STORAGE: quota.hard}, used={STORAGE: quota.used}, creation_time=iso(quota.created_at),
                 update_time=iso(quota.updated_at))


async def _quota(call: Call, quota_id: int) -> StoredQuota:
    found = await call.query(call.services.quotas.model.get, quota_id) if storable_id(quota_id) else None
    if found is None:
        raise NotFound(f"quota {quota_id} not found")
    return found


@operation("GET", "/quotas", "List quotas", "quota")
async def listQuotas(call: Call, query: QuotaListQuery) -> Page[Quota]:
    _require(call, "list")
    stored = await call.query(call.services.quotas.model.all)
    if query.reference is not None and query.reference != "project":
        stored = []
    if query.reference_id is not None:
        stored = [q for q in stored if str(q.project_id) == query.reference_id.strip()]
    views = [({"hard.storage": q.hard, "used.storage": q.used, "creation_time": q.created_at,
               "update_time": q.updated_at, "id": q.id}, q) for q in stored]
    ordered = [q for _, q in sort_views(views, query.sort, {})]
    start = (query.page - 1) * query.page_size
    return Page([render(q) for q in ordered[start:start + query.page_size]], len(ordered))


@operation("GET", "/quotas/{id}", "Get the specified quota", "quota", errors=(404,))
async def getQuota(call: Call, path: QuotaPath) -> Quota:
    _require(call, "read")
    return render(await _quota(call, path.id))


def hard_storage(body: QuotaUpdateReq) -> int:
    """The storage limit a request sets."""
    hard = body.hard
    if not hard:
        raise BadRequest('hard must name the limits to set, e.g. {"hard": {"storage": 10737418240}} '
                         "(bytes; -1 for no limit)")
    unknown = sorted(set(hard) - {STORAGE})
    if unknown:
        raise BadRequest(f"quotas limit only {STORAGE!r} (bytes), not {', '.join(repr(u) for u in unknown)}")
    return quotas.storage_limit(hard[STORAGE], "hard.storage")


@operation("PUT", "/quotas/{id}", "Update the hard limits of the specified quota", "quota", errors=(400, 404))
async def updateQuota(call: Call, path: QuotaPath, body: QuotaUpdateReq) -> None:
    _require(call, "update")
    limit = hard_storage(body)
    await _quota(call, path.id)
    if not await call.run(call.services.quotas.model.set_hard, path.id, limit):
        raise NotFound(f"quota {path.id} not found")
