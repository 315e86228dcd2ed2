"""Local user accounts."""

from __future__ import annotations

from pydantic import Field

from moorage.api.models.common import DateTime, Int64, Model


class UserResp(Model):
    email: str
    realname: str
    comment: str
    user_id: Int64
    username: str
    sysadmin_flag: bool
    admin_role_in_auth: bool
    creation_time: DateTime
    update_time: DateTime
    #: moorage extension: the account may not log in.
    disabled: bool


class UserSearchRespItem(Model):
    user_id: Int64
    username: str


class UserCreationReq(Model):
    username: str = Field(max_length=255)
    password: str
    email: str = Field(default="", max_length=255)
    realname: str = Field(default="", max_length=255)
    comment: str = Field(default="", max_length=1024)


class UserProfile(Model):
    email: str | None = Field(default=None, max_length=255)
    realname: str | None = Field(default=None, max_length=255)
    comment: str | None = Field(default=None, max_length=1024)
    #: moorage extension: an administrator may disable (or re-enable) an account.
    disabled: bool | None = None


class PasswordReq(Model):
    old_password: str | None = None
    new_password: str


class UserSysAdminFlag(Model):
    sysadmin_flag: bool
