"""Identity model: users, robot accounts, token signing keys, failed-login counters, refresh tokens.

Methods are blocking and short; HTTP code calls them through ``MetaStore.run`` / ``MetaStore.query``.
Secrets arrive here already hashed: this layer never sees a clear-text password.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from moorage.meta.changes import ACCOUNTS, SIGNING_KEYS
from moorage.meta.schema import login_failures, project_members, projects, refresh_tokens, robots, signing_keys, users
from moorage.meta.store import MetaStore


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str
    realname: str
    comment: str
    password_hash: str
    sysadmin: bool
    disabled: bool
    created_at: float
    updated_at: float
    generation: int = 0


@dataclass(frozen=True, slots=True)
class Robot:
    id: int
    #: Without the prefix: ``<project>+<name>`` or ``<name>``.
    name: str
    description: str
    secret_hash: str
    level: str
    project_id: int | None
    disabled: bool
    duration: int
    expires_at: int
    permissions: list[dict[str, Any]]
    creator_ref: int
    created_at: float
    updated_at: float
    generation: int = 0

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at != -1 and (now or time.time()) >= self.expires_at


@dataclass(frozen=True, slots=True)
class AccountRef:
    """An account by identity and credential generation: what a token is bound to, beyond its name."""

    kind: str  # "user" or "robot"
    id: int
    name: str
    generation: int


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    private_pem: str
    public_pem: str


_USER_COLUMNS = (users.c.id, users.c.username, users.c.email, users.c.realname, users.c.comment,
                 users.c.password_hash, users.c.sysadmin, users.c.disabled, users.c.created_at, users.c.updated_at,
                 users.c.generation)


#: Changes after which tokens issued before must stop working (see ``users.generation``).
_USER_STANDING = {"password_hash", "disabled", "sysadmin"}
_ROBOT_STANDING = {"secret_hash", "disabled", "duration", "expires_at", "permissions"}

# Read on a bearer token's first use in a process, and again after any account changed (moorage.auth.standing).
_USER_STATE = "SELECT generation, disabled FROM users WHERE id = :id"
_ROBOT_STATE = "SELECT generation, disabled, expires_at FROM robots WHERE id = :id"


def _robot(row: Any) -> Robot:
    return Robot(row.id, row.name, row.description, row.secret_hash, row.level, row.project_id, bool(row.disabled),
                 row.duration, row.expires_at, json.loads(row.permissions_json), row.creator_ref, row.created_at,
                 row.updated_at, row.generation)


class IdentityModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store

    # -- users ----------------------------------------------------------------------------------
    def user_by_name(self, username: str) -> User | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.username == username)).first()
        return User(*row) if row else None

    def user_by_id(self, user_id: int) -> User | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.id == user_id)).first()
        return User(*row) if row else None

    def list_users(self) -> list[User]:
        with self.store.read() as conn:
            return [User(*row) for row in conn.execute(sa.select(*_USER_COLUMNS).order_by(users.c.id))]

    def create_user(self, username: str, password_hash: str, email: str = "", realname: str = "",
                    comment: str = "", sysadmin: bool = False) -> int | None:
        """The new user's id, or None when the username (or email) is taken."""
        now = time.time()
        with self.store.write() as conn:
            taken = conn.execute(sa.select(users.c.id).where(
                sa.or_(sa.func.lower(users.c.username) == username.lower(),
                       sa.and_(users.c.email != "", users.c.email == email)))).first()
            if taken:
                return None
            return self.store.insert_new(
                conn, users, users.c.id, username=username, password_hash=password_hash, email=email,
                realname=realname, comment=comment, sysadmin=sysadmin, disabled=False, created_at=now, updated_at=now)

    def email_taken(self, email: str, except_user: int) -> bool:
        with self.store.read() as conn:
            return conn.execute(sa.select(users.c.id).where(users.c.email == email,
                                                            users.c.id != except_user)).first() is not None

    def update_user(self, user_id: int, **values: Any) -> bool:
        standing = bool(_USER_STANDING & values.keys())
        if standing:
            values["generation"] = users.c.generation + 1
        with self.store.write() as conn:
            if standing:
                self.store.changes.announce(conn, ACCOUNTS)
            return conn.execute(users.update().where(users.c.id == user_id)
                                .values(**values, updated_at=time.time())).rowcount > 0

    def delete_user(self, user_id: int, new_owner: int) -> bool:
        """Delete a user; the projects they own pass to ``new_owner`` so no project is orphaned."""
        with self.store.write() as conn:
            self.store.changes.announce(conn, ACCOUNTS)
            conn.execute(projects.update().where(projects.c.owner_id == user_id).values(owner_id=new_owner))
            conn.execute(project_members.delete().where(project_members.c.user_id == user_id))
            return conn.execute(users.delete().where(users.c.id == user_id)).rowcount > 0

    def memberships(self, user_id: int) -> dict[int, int]:
        """project id -> role id for one user."""
        with self.store.read() as conn:
            rows = conn.execute(sa.select(project_members.c.project_id, project_members.c.role_id)
                                .where(project_members.c.user_id == user_id))
            return {row.project_id: row.role_id for row in rows}

    # -- robots ---------------------------------------------------------------------------------
    def robot_by_name(self, name: str) -> Robot | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(robots).where(robots.c.name == name)).first()
        return _robot(row) if row else None

    def robot_by_id(self, robot_id: int) -> Robot | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(robots).where(robots.c.id == robot_id)).first()
        return _robot(row) if row else None

    def list_robots(self) -> list[Robot]:
        with self.store.read() as conn:
            return [_robot(row) for row in conn.execute(sa.select(robots).order_by(robots.c.id))]

    def create_robot(self, name: str, description: str, secret_hash: str, level: str, project_id: int | None,
                     disabled: bool, duration: int, expires_at: int, permissions: list[dict[str, Any]],
                     creator_ref: int) -> int | None:
        now = time.time()
        with self.store.write() as conn:
            return self.store.insert_new(
                conn, robots, robots.c.id, name=name, description=description, secret_hash=secret_hash,
                level=level, project_id=project_id, disabled=disabled, duration=duration, expires_at=expires_at,
                permissions_json=json.dumps(permissions), creator_ref=creator_ref, created_at=now, updated_at=now)

    def update_robot(self, robot_id: int, **values: Any) -> bool:
        standing = bool(_ROBOT_STANDING & values.keys())
        if standing:
            values["generation"] = robots.c.generation + 1
        if "permissions" in values:
            values["permissions_json"] = json.dumps(values.pop("permissions"))
        with self.store.write() as conn:
            if standing:
                self.store.changes.announce(conn, ACCOUNTS)
            return conn.execute(robots.update().where(robots.c.id == robot_id)
                                .values(**values, updated_at=time.time())).rowcount > 0

    def delete_robot(self, robot_id: int) -> bool:
        with self.store.write() as conn:
            self.store.changes.announce(conn, ACCOUNTS)
            return conn.execute(robots.delete().where(robots.c.id == robot_id)).rowcount > 0

    # -- signing keys ---------------------------------------------------------------------------
    def current_signing_key(self) -> SigningKey | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(signing_keys.c.kid, signing_keys.c.algorithm, signing_keys.c.private_pem,
                                         signing_keys.c.public_pem)
                               .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid).limit(1)).first()
        return SigningKey(*row) if row else None

    def signing_keys(self) -> list[SigningKey]:
        with self.store.read() as conn:
            return [SigningKey(*row) for row in conn.execute(sa.select(
                signing_keys.c.kid, signing_keys.c.algorithm, signing_keys.c.private_pem, signing_keys.c.public_pem))]

    def delete_signing_keys(self, kids: list[str]) -> None:
        with self.store.write() as conn:
            self.store.changes.announce(conn, SIGNING_KEYS)
            conn.execute(signing_keys.delete().where(signing_keys.c.kid.in_(kids)))

    def public_key(self, kid: str) -> tuple[str, str] | None:
        """(algorithm, public PEM) of a key, or None."""
        with self.store.read() as conn:
            row = conn.execute(sa.select(signing_keys.c.algorithm, signing_keys.c.public_pem)
                               .where(signing_keys.c.kid == kid)).first()
        return (row[0], row[1]) if row else None

    def add_signing_key_if_none(self, key: SigningKey) -> SigningKey:
        """Store ``key`` unless a key exists already; returns the key every process will use."""
        with self.store.write() as conn:
            row = conn.execute(sa.select(signing_keys.c.kid).limit(1)).first()
            if row is None:
                self.store.changes.announce(conn, SIGNING_KEYS)
                conn.execute(signing_keys.insert().values(kid=key.kid, algorithm=key.algorithm,
                                                          private_pem=key.private_pem, public_pem=key.public_pem,
                                                          created_at=time.time()))
        current = self.current_signing_key()
        assert current is not None
        return current

    # -- failed logins --------------------------------------------------------------------------
    def failures(self, keys: list[str], window: float) -> dict[str, int]:
        """Failure count of each of ``keys`` within the current window (absent keys have none)."""
        since = time.time() - window
        with self.store.read() as conn:
            rows = conn.execute(sa.select(login_failures.c.key, login_failures.c.count).where(
                login_failures.c.key.in_(keys), login_failures.c.window_start > since))
            return {key: count for key, count in rows}

    def record_failure(self, keys: list[str], window: float) -> None:
        now = time.time()
        # Insert, or update in SQL, never read-then-write: failures counted at the same moment by other
        # processes all add up.
        expired = login_failures.c.window_start <= now - window
        with self.store.write() as conn:
            for key in keys:
                if self.store.insert_new(conn, login_failures, login_failures.c.key, key=key, count=1,
                                         window_start=now) is None:
                    conn.execute(login_failures.update().where(login_failures.c.key == key).values(
                        count=sa.case((expired, 1), else_=login_failures.c.count + 1),
                        window_start=sa.case((expired, now), else_=login_failures.c.window_start)))

    def clear_failures(self, key: str) -> None:
        with self.store.write() as conn:
            conn.execute(login_failures.delete().where(login_failures.c.key == key))

    # -- standing of an account -----------------------------------------------------------------
    def account_standing(self, kind: str, account_id: int) -> tuple[int, float] | None:
        """The account's current generation and when it expires (epoch seconds, infinity for never), or None
        when it is gone or disabled."""
        if kind == "user":
            row = self.store.fetch_one(_USER_STATE, {"id": account_id})
            return None if row is None or row[1] else (int(row[0]), float("inf"))
        if kind == "robot":
            row = self.store.fetch_one(_ROBOT_STATE, {"id": account_id})
            if row is None or row[1]:
                return None
            return int(row[0]), float("inf") if row[2] == -1 else float(row[2])
        return None

    # -- refresh tokens -------------------------------------------------------------------------
    def add_refresh_token(self, token_hash: str, account: AccountRef, service: str, expires_at: float) -> None:
        with self.store.write() as conn:
            conn.execute(refresh_tokens.delete().where(refresh_tokens.c.expires_at < time.time()))
            conn.execute(refresh_tokens.insert().values(
                token_hash=token_hash, account=account.name, account_kind=account.kind, account_id=account.id,
                generation=account.generation, service=service, expires_at=expires_at, created_at=time.time()))

    def refresh_token_account(self, token_hash: str, service: str) -> AccountRef | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(refresh_tokens.c.account_kind, refresh_tokens.c.account_id,
                                         refresh_tokens.c.account, refresh_tokens.c.generation).where(
                refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.service == service,
                refresh_tokens.c.expires_at > time.time())).first()
        return AccountRef(*row) if row else None
