"""Request bodies of the management API, with Harbor's field names (unknown fields are ignored, as Harbor does)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProjectReq(_Body):
    project_name: str | None = Field(default=None, max_length=255)
    public: bool | None = None
    metadata: dict[str, Any] | None = None
    cve_allowlist: dict[str, Any] | None = None
    storage_limit: int | None = None
    registry_id: int | None = None


class UserEntity(_Body):
    user_id: int | None = None
    username: str | None = None


class ProjectMember(_Body):
    role_id: int
    member_user: UserEntity | None = None
    member_group: dict[str, Any] | None = None


class RoleRequest(_Body):
    role_id: int


class UserCreationReq(_Body):
    username: str
    password: str
    email: str = ""
    realname: str = ""
    comment: str = ""


class UserProfile(_Body):
    email: str | None = None
    realname: str | None = None
    comment: str | None = None
    #: moorage extension: an administrator may disable (or re-enable) an account.
    disabled: bool | None = None


class PasswordReq(_Body):
    old_password: str | None = None
    new_password: str


class UserSysAdminFlag(_Body):
    sysadmin_flag: bool


class RobotAccess(_Body):
    resource: str
    action: str
    effect: str = "allow"


class RobotPermission(_Body):
    kind: str = "project"
    namespace: str
    access: list[RobotAccess] = Field(default_factory=list)


class RobotCreate(_Body):
    name: str
    description: str = ""
    secret: str | None = None
    level: str
    disable: bool = False
    duration: int | None = None
    permissions: list[RobotPermission] = Field(default_factory=list)


class Robot(_Body):
    name: str | None = None
    description: str | None = None
    level: str | None = None
    disable: bool | None = None
    duration: int | None = None
    permissions: list[RobotPermission] | None = None


class RobotSec(_Body):
    secret: str | None = None


class NewTag(_Body):
    name: str


class NodeCredentialRequest(_Body):
    image: str
    ttl_seconds: int = 3600
