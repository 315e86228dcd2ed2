"""``/users``: local accounts (administrators manage them; everyone sees and edits themselves)."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse, Response

from moorage.api.base import (
    PAGED,
    BadRequest,
    Call,
    Conflict,
    Forbidden,
    NotFound,
    created,
    iso,
    listing,
    ok,
    operation,
)
from moorage.api.models import PasswordReq, UserCreationReq, UserProfile, UserSysAdminFlag
from moorage.auth import rbac
from moorage.auth.bootstrap import ADMIN
from moorage.auth.secrets import hash_secret, password_problem, verify_secret
from moorage.meta.identity import User

USERNAME_FORBIDDEN = re.compile(r"[,\"~#%$:\s/\\]")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
USER_ID = [("user_id", "path", "integer")]


def render(user: User) -> dict[str, Any]:
    return {"user_id": user.id, "username": user.username, "email": user.email, "realname": user.realname,
            "comment": user.comment, "sysadmin_flag": user.sysadmin, "admin_role_in_auth": False,
            "disabled": user.disabled, "creation_time": iso(user.created_at), "update_time": iso(user.updated_at)}


def _admin(call: Call, action: str, what: str) -> None:
    call.require(rbac.allowed_system(call.subject, "user", action), what)


async def _user(call: Call) -> User:
    raw = call.params["user_id"]
    if not raw.isdigit():
        raise BadRequest(f"user_id must be an integer, not {raw!r}")
    user = await call.auth.store.query(call.auth.identity.user_by_id, int(raw))
    if user is None:
        raise NotFound(f"user {raw} not found")
    return user


def _self_or_admin(call: Call, user: User, what: str) -> None:
    call.require_login()
    mine = call.subject.kind == "user" and call.subject.id == user.id
    call.require(mine or call.subject.sysadmin, what)


def _check_email(email: str) -> None:
    if email and not EMAIL.match(email):
        raise BadRequest(f"invalid email address {email!r}")


@operation("GET", "/users", "List users", "user", response="UserResp[]", params=PAGED)
async def listUsers(call: Call) -> Response:
    _admin(call, "list", "list users")
    users = await call.auth.store.query(call.auth.identity.list_users)
    return listing(call, [render(u) for u in users])


@operation("POST", "/users", "Create a local user", "user", body=UserCreationReq, status=201)
async def createUser(call: Call) -> Response:
    _admin(call, "create", "create users")
    req = await call.body(UserCreationReq)
    if not req.username or len(req.username) > 255 or USERNAME_FORBIDDEN.search(req.username):
        raise BadRequest(f"invalid username {req.username!r}: 1-255 characters, none of , \" ~ # % $ : / \\ "
                         "or spaces")
    if req.username.startswith(call.auth.settings.robot_name_prefix):
        raise BadRequest(f"usernames may not start with the robot prefix {call.auth.settings.robot_name_prefix!r}")
    _check_email(req.email)
    problem = password_problem(req.password)
    if problem:
        raise BadRequest(problem)
    user_id = await call.run(call.auth.identity.create_user, req.username, hash_secret(req.password), req.email,
                             req.realname, req.comment)
    if user_id is None:
        raise Conflict(f"username {req.username} or email {req.email} is already taken")
    return created(f"/api/v2.0/users/{user_id}")


@operation("GET", "/users/current", "The calling user", "user", response="UserResp")
async def getCurrentUserInfo(call: Call) -> Response:
    call.require_login()
    if call.subject.kind != "user" or call.subject.id is None:
        raise Forbidden(f"{call.subject.name} is a robot account, not a user")
    user = await call.auth.store.query(call.auth.identity.user_by_id, call.subject.id)
    if user is None:
        raise NotFound("the current user no longer exists")
    return JSONResponse(render(user))


@operation("GET", "/users/search", "Search users by username", "user", response="UserSearchRespItem[]",
           params=[*PAGED[:2], ("username", "query", "string")])
async def searchUsers(call: Call) -> Response:
    call.require_login()
    wanted = call.query("username")
    if not wanted:
        raise BadRequest("username is required")
    users = await call.auth.store.query(call.auth.identity.list_users)
    return listing(call, [{"user_id": u.id, "username": u.username} for u in users
                          if wanted.lower() in u.username.lower()])


@operation("GET", "/users/{user_id}", "Get a user", "user", response="UserResp", params=USER_ID)
async def getUser(call: Call) -> Response:
    user = await _user(call)
    _self_or_admin(call, user, f"read user {user.id}")
    return JSONResponse(render(user))


@operation("PUT", "/users/{user_id}", "Update a user's profile", "user", body=UserProfile, params=USER_ID)
async def updateUserProfile(call: Call) -> Response:
    user = await _user(call)
    _self_or_admin(call, user, f"update user {user.id}")
    req = await call.body(UserProfile)
    values: dict[str, Any] = {}
    if req.email is not None:
        _check_email(req.email)
        if req.email and await call.auth.store.query(call.auth.identity.email_taken, req.email, user.id):
            raise Conflict(f"email {req.email} is already taken")
        values["email"] = req.email
    if req.realname is not None:
        values["realname"] = req.realname
    if req.comment is not None:
        values["comment"] = req.comment
    if req.disabled is not None:
        _admin(call, "update", "disable users")
        if user.username == ADMIN:
            raise Forbidden("the admin account cannot be disabled")
        values["disabled"] = req.disabled
    if values:
        await call.run(call.auth.identity.update_user, user.id, **values)
    return ok()


@operation("DELETE", "/users/{user_id}", "Delete a user", "user", params=USER_ID)
async def deleteUser(call: Call) -> Response:
    _admin(call, "delete", "delete users")
    user = await _user(call)
    if user.username == ADMIN or user.id == call.subject.id:
        raise Forbidden("the admin account and your own account cannot be deleted")
    call.require(call.subject.sysadmin or not user.sysadmin, "delete an administrator")
    admin = await call.auth.store.query(call.auth.identity.user_by_name, ADMIN)
    await call.run(call.auth.identity.delete_user, user.id, admin.id if admin else 1)
    return ok()


@operation("PUT", "/users/{user_id}/sysadmin", "Grant or revoke system administrator", "user",
           body=UserSysAdminFlag, params=USER_ID)
async def setUserSysAdmin(call: Call) -> Response:
    # Only an administrator makes another: a robot's user:update must not mint one (nobody grants what it lacks).
    call.require(call.subject.sysadmin, "change administrators")
    user = await _user(call)
    req = await call.body(UserSysAdminFlag)
    if user.username == ADMIN and not req.sysadmin_flag:
        raise Forbidden("the admin account stays an administrator")
    await call.run(call.auth.identity.update_user, user.id, sysadmin=req.sysadmin_flag)
    return ok()


@operation("PUT", "/users/{user_id}/password", "Change a password", "user", body=PasswordReq, params=USER_ID)
async def updateUserPassword(call: Call) -> Response:
    user = await _user(call)
    _self_or_admin(call, user, f"change the password of user {user.id}")
    req = await call.body(PasswordReq)
    problem = password_problem(req.new_password)
    if problem:
        raise BadRequest(problem)
    needs_old = not call.subject.sysadmin or (req.old_password is not None and call.subject.id == user.id)
    if needs_old and not (req.old_password and await call.auth.store.run(verify_secret, user.password_hash,
                                                                         req.old_password)):
        raise Forbidden("the old password is not correct")
    if await call.auth.store.run(verify_secret, user.password_hash, req.new_password):
        raise BadRequest("the new password must differ from the old one")
    await call.run(call.auth.identity.update_user, user.id, password_hash=hash_secret(req.new_password))
    return ok()
