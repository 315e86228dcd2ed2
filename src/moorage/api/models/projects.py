"""Projects, their metadata and CVE allowlist, their members."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from moorage.api.models.common import DateTime, Int32, Int64, Model
from moorage.api.models.quotas import ProjectSummaryQuota


class ProjectMetadata(Model):
    """Every value is a string, ``"true"``/``"false"`` for flags. Keys Harbor does not name are kept too."""

    model_config = ConfigDict(extra="allow")

    public: str | None = None
    enable_content_trust: str | None = None
    enable_content_trust_cosign: str | None = None
    prevent_vul: str | None = None
    severity: str | None = None
    auto_scan: str | None = None
    auto_sbom_generation: str | None = None
    reuse_sys_cve_allowlist: str | None = None
    retention_id: str | None = None
    proxy_speed_kb: str | None = None
    max_upstream_conn: str | None = None
    proxy_cache_local_on_not_found: str | None = None


class CVEAllowlistItem(Model):
    cve_id: str | None = Field(default=None, max_length=255)


class CVEAllowlist(Model):
    id: Int64 | None = None
    project_id: Int64 | None = None
    #: Epoch seconds; None never expires.
    expires_at: Int64 | None = None
    items: list[CVEAllowlistItem] | None = None
    creation_time: DateTime | None = None
    update_time: DateTime | None = None


class ProjectReq(Model):
    project_name: str | None = Field(default=None, max_length=255)
    #: Deprecated in Harbor in favour of ``metadata.public``; still honoured.
    public: bool | None = None
    #: Values may come as strings, booleans or numbers; they are kept as strings.
    metadata: dict[str, str | bool | int | None] | None = None
    cve_allowlist: CVEAllowlist | None = None
    storage_limit: Int64 | None = None
    registry_id: Int64 | None = None


class Project(Model):
    project_id: Int32
    owner_id: Int32
    name: str
    registry_id: Int64
    creation_time: DateTime
    update_time: DateTime
    deleted: bool
    owner_name: str
    togglable: bool
    current_user_role_id: int
    current_user_role_ids: list[Int32]
    repo_count: int
    metadata: ProjectMetadata
    cve_allowlist: CVEAllowlist


class ProjectSummary(Model):
    repo_count: int
    project_admin_count: int | None = None
    maintainer_count: int | None = None
    developer_count: int | None = None
    guest_count: int | None = None
    limited_guest_count: int | None = None
    quota: ProjectSummaryQuota | None = None


class ProjectDeletable(Model):
    deletable: bool
    message: str


class UserEntity(Model):
    user_id: Int64 | None = None
    username: str | None = None


class UserGroup(Model):
    id: Int64 | None = None
    group_name: str | None = None
    group_type: Int64 | None = None
    ldap_group_dn: str | None = None


class ProjectMember(Model):
    role_id: Int64
    member_user: UserEntity | None = None
    member_group: UserGroup | None = None


class RoleRequest(Model):
    role_id: Int64


class ProjectMemberEntity(Model):
    id: int
    project_id: int
    entity_name: str
    role_name: str
    role_id: int
    entity_id: int
    #: "u" for a user, "g" for a group
    entity_type: str
