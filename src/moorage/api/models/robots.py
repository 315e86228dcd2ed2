"""Robot accounts (Harbor's v2 robots), system or project level."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from moorage.api.models.common import DateTime, Int64, Model
from moorage.api.params import INT32_MAX

#: Days, -1 never expires; the database keeps a 32-bit count (about 5.8 million years).
Duration = Annotated[int, Field(ge=-1, le=INT32_MAX, json_schema_extra={"format": "int64"})]


class Access(Model):
    resource: str
    action: str
    effect: str = "allow"


class RobotPermission(Model):
    #: "project" or "system"
    kind: str = "project"
    #: The project's name, or "*" for every project
    namespace: str
    access: list[Access] = Field(default_factory=list)


class Robot(Model):
    """A robot as listed, and the body that updates one (where only the given fields change)."""

    id: Int64 | None = None
    name: str | None = None
    description: str | None = Field(default=None, max_length=1024)
    secret: str | None = None
    level: str | None = None
    duration: Duration | None = None
    editable: bool | None = None
    disable: bool | None = None
    expires_at: Int64 | None = None
    permissions: list[RobotPermission] | None = None
    creator_type: str | None = None
    creator_ref: Int64 | None = None
    creation_time: DateTime | None = None
    update_time: DateTime | None = None


class RobotCreate(Model):
    name: str
    description: str = Field(default="", max_length=1024)
    secret: str | None = None
    #: "system" or "project"
    level: str
    disable: bool = False
    duration: Duration | None = None
    permissions: list[RobotPermission] = Field(default_factory=list)


class RobotCreated(Model):
    id: Int64
    name: str
    secret: str
    creation_time: DateTime
    expires_at: Int64


class RobotSec(Model):
    """An empty or missing secret asks the server to generate one."""

    secret: str | None = None
