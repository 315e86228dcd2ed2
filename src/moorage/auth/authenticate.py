"""Who is calling: Basic credentials of a user, a robot, or a node pull credential -> ``Subject``.

Failed logins are counted per account and per client address in the store (every worker and replica
sees the same counts) and audited. Every refusal looks the same: the caller never learns whether the
account exists, is disabled, expired, or just got the password wrong.
"""

from __future__ import annotations

import threading
import time

from moorage.auth import rbac
from moorage.auth.secrets import burn_verification, fingerprint, verify_secret
from moorage.auth.tokens import InvalidToken, TokenCodec, looks_like_jwt
from moorage.meta.audit import AuditModel
from moorage.meta.identity import IdentityModel, Robot, User
from moorage.settings import Settings

#: Seconds a successful Argon2 verification is remembered by a process. The cache key includes the
#: stored hash, so a password change or secret refresh invalidates it in every process at once.
VERIFIED_TTL = 60.0


class LoginRefused(Exception):
    """Bad credentials (or unknown, disabled or expired account: deliberately indistinguishable)."""


class LoginThrottled(Exception):
    """Too many failed logins for this account or from this address."""


class Authenticator:
    def __init__(self, settings: Settings, identity: IdentityModel, audit: AuditModel, codec: TokenCodec) -> None:
        self.settings = settings
        self.identity = identity
        self.audit = audit
        self.codec = codec
        self._verified: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- the one entry point --------------------------------------------------------------------
    def authenticate(self, username: str, password: str, client: str | None) -> rbac.Subject:
        """Blocking (Argon2, store): call through ``MetaStore.run``."""
        # An address is shared by everyone behind one NAT or CI runner, so it gets a larger budget
        # than one account: it stops a sweep across accounts without locking out a whole office.
        limits = {f"account:{username.lower()}": self.settings.login_max_failures}
        if client:
            limits[f"address:{client}"] = self.settings.login_max_failures_per_address
        keys = list(limits)
        window = self.settings.login_failure_window_seconds
        counts = self.identity.failures(keys, window)
        if any(counts.get(key, 0) >= limit for key, limit in limits.items()):
            raise LoginThrottled()
        subject = self._check(username, password)
        if subject is None:
            self.identity.record_failure(keys, window)
            self.audit.record(username[:255], username[:255], "user", "login_failed", None, client)
            raise LoginRefused()
        return subject

    def _check(self, username: str, password: str) -> rbac.Subject | None:
        if not username or not password:
            return None
        prefix = self.settings.robot_name_prefix
        if prefix and username.startswith(prefix):
            return self._robot(username, username[len(prefix):], password)
        user = self.identity.user_by_name(username)
        if user is None:
            burn_verification(password)
            return None
        if not self._verify("user", user.username, user.password_hash, password) or user.disabled:
            return None
        return self.user_subject(user)

    def _robot(self, full_name: str, stored_name: str, password: str) -> rbac.Subject | None:
        robot = self.identity.robot_by_name(stored_name)
        if robot is None:
            burn_verification(password)
            return None
        if looks_like_jwt(password):
            return self._node_credential(full_name, robot, password)
        if not self._verify("robot", robot.name, robot.secret_hash, password):
            return None
        if robot.disabled or robot.expired():
            return None
        return self.robot_subject(robot)

    def _node_credential(self, full_name: str, robot: Robot, token: str) -> rbac.Subject | None:
        try:
            claims = self.codec.verify(token, audience=self.codec.node_audience)
        except InvalidToken:
            return None
        if claims.get("sub") != full_name or claims.get("robot_id") != robot.id or robot.disabled or robot.expired():
            return None
        projects = claims.get("projects")
        if not isinstance(projects, list):
            return None
        return rbac.Subject(kind="robot", name=full_name, id=robot.id,
                            pull_only=frozenset(p for p in projects if isinstance(p, str)))

    def _verify(self, kind: str, name: str, stored_hash: str, password: str) -> bool:
        key = fingerprint(f"{kind}\0{name}\0{stored_hash}\0{password}")
        now = time.monotonic()
        expiry = self._verified.get(key)
        if expiry is not None and expiry > now:
            return True
        if not verify_secret(stored_hash, password):
            return False
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = now + VERIFIED_TTL
        return True

    # -- subjects -------------------------------------------------------------------------------
    def user_subject(self, user: User) -> rbac.Subject:
        return rbac.Subject(kind="user", name=user.username, id=user.id, sysadmin=user.sysadmin,
                            roles=self.identity.memberships(user.id))

    def robot_subject(self, robot: Robot) -> rbac.Subject:
        grants, system = rbac.robot_grants(robot.permissions)
        if robot.level == "project":
            # A project robot acts in its own project only, whatever its permission list says.
            project = robot.name.split("+", 1)[0]
            grants = {project: grants.get(project, frozenset())}
            system = frozenset()
        return rbac.Subject(kind="robot", name=self.settings.robot_name_prefix + robot.name, id=robot.id,
                            robot_grants=grants, system_grants=system)

    def subject_for_account(self, account: str) -> rbac.Subject | None:
        """Re-load an account named in a refresh token; None if it is gone, disabled or expired."""
        prefix = self.settings.robot_name_prefix
        if prefix and account.startswith(prefix):
            robot = self.identity.robot_by_name(account[len(prefix):])
            if robot is None or robot.disabled or robot.expired():
                return None
            return self.robot_subject(robot)
        user = self.identity.user_by_name(account)
        if user is None or user.disabled:
            return None
        return self.user_subject(user)
