"""Audit logs, search, statistics, system information, health, and node credentials (a moorage extension)."""

from __future__ import annotations

from moorage.api.models.common import DateTime, Int64, Model
from moorage.api.models.projects import Project


class AuditLog(Model):
    id: Int64
    username: str
    resource: str
    resource_type: str
    operation: str
    op_time: DateTime


class SearchRepository(Model):
    project_id: int
    project_name: str
    project_public: bool
    repository_name: str
    pull_count: int
    artifact_count: int


class Search(Model):
    project: list[Project]
    repository: list[SearchRepository]


class Statistic(Model):
    private_project_count: Int64
    private_repo_count: Int64
    public_project_count: Int64
    public_repo_count: Int64
    total_project_count: Int64
    total_repo_count: Int64
    total_storage_consumption: Int64


class GeneralInfo(Model):
    banner_message: str | None = None
    current_time: DateTime | None = None
    registry_url: str | None = None
    external_url: str | None = None
    auth_mode: str | None = None
    primary_auth_mode: bool | None = None
    project_creation_restriction: str | None = None
    self_registration: bool | None = None
    has_ca_root: bool | None = None
    harbor_version: str | None = None
    registry_storage_provider_name: str | None = None
    read_only: bool | None = None
    notification_enable: bool | None = None


class ComponentHealthStatus(Model):
    name: str
    #: "healthy" or "unhealthy"
    status: str
    error: str | None = None


class OverallHealthStatus(Model):
    status: str
    components: list[ComponentHealthStatus]


class NodeCredentialRequest(Model):
    """moorage extension: the image a node is about to pull, and how long the credential should live."""

    image: str
    ttl_seconds: Int64 = 3600


class NodeCredential(Model):
    """moorage extension: a pull-only credential for the kubelet credential provider."""

    username: str
    password: str
    expires_at: DateTime
