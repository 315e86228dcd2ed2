"""Quotas: a project's hard limits and usage, by resource (``storage``, in bytes)."""

from __future__ import annotations

from typing import Any

from moorage.api.models.common import DateTime, Int64, Model

#: Harbor's ResourceList: resource name -> amount; the one resource is ``storage`` (bytes, -1 unlimited).
ResourceList = dict[str, Int64]


class QuotaUpdateReq(Model):
    hard: ResourceList | None = None


class Quota(Model):
    id: Int64 | None = None
    #: What the quota is of: ``{"id", "name", "owner_name"}`` of its project.
    ref: dict[str, Any] | None = None
    hard: ResourceList
    used: ResourceList
    creation_time: DateTime | None = None
    update_time: DateTime | None = None


class ProjectSummaryQuota(Model):
    hard: ResourceList | None = None
    used: ResourceList | None = None
