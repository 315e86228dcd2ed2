"""``/users``: local accounts (administrators manage them; everyone sees and edits themselves)."""

from __future__ import annotations

import re
from typing import Any

from moorage.api.base import BadRequest, Call, Conflict, Forbidden, NotFound, iso
from moorage.api.listing import listing, page_of
from moorage.api.models.users import (
    PasswordReq,
    UserCreationReq,
    UserProfile,
    UserResp,
    UserSearchRespItem,
    UserSysAdminFlag,
)
from moorage.api.operations import Created, Page, operation
from moorage.api.params import Id, ListQuery, PageQuery, Params, storable_id
from moorage.api.projects import record
from moorage.auth import rbac
from moorage.auth.bootstrap import ADMIN
from moorage.auth.secrets import hash_secret, password_problem, verify_secret
from moorage.meta.identity import User

USERNAME_FORBIDDEN = re.compile(r"[,\"~#%$:\s/\\]")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserPath(Params):
    user_id: Id


class UserSearchQuery(PageQuery):
    username: str


def render(user: User) -> UserResp:
    return UserResp(user_id=user.id, username=user.username, email=user.email, realname=user.realname,
                    comment=user.comment, sysadmin_flag=user.sysadmin, admin_role_in_auth=False,
                    disabled=user.disabled, creation_time=iso(user.created_at), update_time=iso(user.updated_at))


def _admin(call: Call, action: str, what: str) -> None:
    call.require(rbac.allowed_system(call.subject, "user", action), what)


async def _user(call: Call, user_id: int) -> User:
    user = await call.query(call.auth.identity.user_by_id, user_id) if storable_id(user_id) else None
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def _self_or_admin(call: Call, user: User, what: str) -> None:
    call.require_login()
    call.require(_is_self(call, user) or call.subject.sysadmin, what)


def _is_self(call: Call, user: User) -> bool:
    return call.subject.kind == "user" and call.subject.id == user.id


def _check_email(email: str) -> None:
    if email and not EMAIL.match(email):
        raise BadRequest(f"invalid email address {email!r}")


@operation("GET", "/users", "List users", "user")
async def listUsers(call: Call, query: ListQuery) -> Page[UserResp]:
    _admin(call, "list", "list users")
    users = await call.query(call.auth.identity.list_users)
    return listing([render(u) for u in users], query, q=query.q, sort=query.sort)


@operation("POST", "/users", "Create a local user", "user", errors=(409,))
async def createUser(call: Call, body: UserCreationReq) -> Created[None]:
    _admin(call, "create", "create users")
    if not body.username or USERNAME_FORBIDDEN.search(body.username):
        raise BadRequest(f"invalid username {body.username!r}: 1-255 characters, none of , \" ~ # % $ : / \\ "
                         "or spaces")
    if body.username.startswith(call.auth.settings.robot_name_prefix):
        raise BadRequest(f"usernames may not start with the robot prefix {call.auth.settings.robot_name_prefix!r}")
    _check_email(body.email)
    problem = password_problem(body.password)
    if problem:
        raise BadRequest(problem)
    user_id = await call.run(call.auth.identity.create_user, body.username, hash_secret(body.password), body.email,
                             body.realname, body.comment)
    if user_id is None:
        raise Conflict(f"username {body.username} or email {body.email} is already taken")
    await record(call, body.username, "user", "create", None)
    return Created(f"/api/v2.0/users/{user_id}")


@operation("GET", "/users/current", "The calling user", "user", errors=(404,))
async def getCurrentUserInfo(call: Call) -> UserResp:
    call.require_login()
    if call.subject.kind != "user" or call.subject.id is None:
        raise Forbidden(f"{call.subject.name} is a robot account, not a user")
    user = await call.query(call.auth.identity.user_by_id, call.subject.id)
    if user is None:
        raise NotFound("the current user no longer exists")
    return render(user)


@operation("GET", "/users/search", "Search users by username", "user")
async def searchUsers(call: Call, query: UserSearchQuery) -> Page[UserSearchRespItem]:
    call.require_login()
    if not query.username:
        raise BadRequest("username is required")
    wanted = query.username.lower()
    users = await call.query(call.auth.identity.list_users)
    return page_of([UserSearchRespItem(user_id=u.id, username=u.username) for u in users
                    if wanted in u.username.lower()], query)


@operation("GET", "/users/{user_id}", "Get a user", "user")
async def getUser(call: Call, path: UserPath) -> UserResp:
    user = await _user(call, path.user_id)
    _self_or_admin(call, user, f"read user {user.id}")
    return render(user)


@operation("PUT", "/users/{user_id}", "Update a user's profile", "user", errors=(409,))
async def updateUserProfile(call: Call, path: UserPath, body: UserProfile) -> None:
    user = await _user(call, path.user_id)
    _self_or_admin(call, user, f"update user {user.id}")
    values: dict[str, Any] = {}
    if body.email is not None:
        _check_email(body.email)
        taken: bool = bool(body.email) and await call.query(call.auth.identity.email_taken, body.email, user.id)
        if taken:
            raise Conflict(f"email {body.email} is already taken")
        values["email"] = body.email
    if body.realname is not None:
        values["realname"] = body.realname
    if body.comment is not None:
        values["comment"] = body.comment
    if body.disabled is not None:
        _admin(call, "update", "disable users")
        if user.username == ADMIN:
            raise Forbidden("the admin account cannot be disabled")
        values["disabled"] = body.disabled
    if values:
        await call.run(call.auth.identity.update_user, user.id, **values)


@operation("DELETE", "/users/{user_id}", "Delete a user", "user")
async def deleteUser(call: Call, path: UserPath) -> None:
    _admin(call, "delete", "delete users")
    user = await _user(call, path.user_id)
    if user.username == ADMIN or user.id == call.subject.id:
        raise Forbidden("the admin account and your own account cannot be deleted")
    call.require(call.subject.sysadmin or not user.sysadmin, "delete an administrator")
    admin = await call.query(call.auth.identity.user_by_name, ADMIN)
    await call.run(call.auth.identity.delete_user, user.id, admin.id if admin else 1)
    await record(call, user.username, "user", "delete", None)


@operation("PUT", "/users/{user_id}/sysadmin", "Grant or revoke system administrator", "user")
async def setUserSysAdmin(call: Call, path: UserPath, body: UserSysAdminFlag) -> None:
    # Only an administrator makes another: a robot's user:update must not mint one (nobody grants what it lacks).
    call.require(call.subject.sysadmin, "change administrators")
    user = await _user(call, path.user_id)
    if user.username == ADMIN and not body.sysadmin_flag:
        raise Forbidden("the admin account stays an administrator")
    await call.run(call.auth.identity.update_user, user.id, sysadmin=body.sysadmin_flag)


@operation("PUT", "/users/{user_id}/password", "Change a password", "user")
async def updateUserPassword(call: Call, path: UserPath, body: PasswordReq) -> None:
    user = await _user(call, path.user_id)
    _self_or_admin(call, user, f"change the password of user {user.id}")
    problem = password_problem(body.new_password)
    if problem:
        raise BadRequest(problem)
    # As Harbor: your own password, administrator or not, only with the old one; another's, as an administrator.
    if _is_self(call, user) or not call.subject.sysadmin:
        if not body.old_password:
            raise BadRequest("old_password is required to change your own password")
        if not await call.run(verify_secret, user.password_hash, body.old_password):
            raise Forbidden("the old password is not correct")
    if await call.run(verify_secret, user.password_hash, body.new_password):
        raise BadRequest("the new password must differ from the old one")
    await call.run(call.auth.identity.update_user, user.id, password_hash=hash_secret(body.new_password))
