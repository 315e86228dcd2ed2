"""Who is calling: Basic credentials of a user, a robot, or a node pull credential -> ``Subject``.

Failed logins are counted in the store (every worker and replica sees the same counts) and audited.
Nobody can lock an account out for others: the lock is per (account, client address) and per address,
so an attacker locks out only itself. Failures against an account from anywhere only slow down the
answers to further failures; a right password is answered at once. Robot secrets are long and random,
so robots have no per-account lock at all. Every refusal looks the same: the caller never learns
whether the account exists, is disabled, expired, or just got the password wrong.
"""

from __future__ import annotations

import asyncio
import threading
import time

from moorage.auth import rbac
from moorage.auth.secrets import burn_verification, fingerprint, verify_secret
from moorage.auth.tokens import InvalidToken, TokenCodec, looks_like_jwt
from moorage.meta.audit import AuditModel
from moorage.meta.identity import AccountRef, IdentityModel, Robot, User
from moorage.settings import Settings

#: Seconds a successful Argon2 verification is remembered by a process. The cache key includes the
#: stored hash, so a password change or secret refresh invalidates it in every process at once.
VERIFIED_TTL = 60.0
#: The longest a refusal is held back when an account is under attack from many addresses.
MAX_FAILURE_DELAY = 8.0


class LoginRefused(Exception):
    """Bad credentials (or unknown, disabled or expired account: deliberately indistinguishable).
    ``delay``: seconds to hold the answer back (the account has failed often lately, from anywhere)."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__("login refused")
        self.delay = delay


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
    async def login(self, username: str, password: str, client: str | None) -> rbac.Subject:
        """``authenticate`` off the event loop; a refusal is held back by its delay here, on the loop, so
        slowing an attacker down costs no thread."""
        try:
            return await self.identity.store.run(self.authenticate, username, password, client)
        except LoginRefused as refused:
            if refused.delay:
                await asyncio.sleep(refused.delay)
            raise

    def authenticate(self, username: str, password: str, client: str | None) -> rbac.Subject:
        """Blocking (Argon2, store): call through ``login``."""
        account = username.lower()
        locks: dict[str, int] = {}
        if not self._is_robot(username):
            locks[f"pair:{account}@{client or '-'}"] = self.settings.login_max_failures
        if client:
            # An address is shared by everyone behind one NAT or CI runner, so it gets a larger budget
            # than one account: it stops a sweep across accounts without locking out a whole office.
            locks[f"address:{client}"] = self.settings.login_max_failures_per_address
        window = self.settings.login_failure_window_seconds
        counts = self.identity.failures(list(locks), window)
        if any(counts.get(key, 0) >= limit for key, limit in locks.items()):
            raise LoginThrottled()
        subject = self._check(username, password)
        if subject is None:
            account_key = f"account:{account}"
            self.identity.record_failure([*locks, account_key], window)
            self.audit.record(username[:255], username[:255], "user", "login_failed", None, client)
            failed = self.identity.failures([account_key], window).get(account_key, 0)
            raise LoginRefused(self._failure_delay(failed))
        pair = next((key for key in locks if key.startswith("pair:")), None)
        if pair is not None and counts.get(pair):
            self.identity.clear_failures(pair)
        return subject

    def _failure_delay(self, failures: int) -> float:
        """Half a second once an account has failed more often than one address may, doubling with every
        further failure (from any address), up to ``MAX_FAILURE_DELAY``."""
        beyond = failures - self.settings.login_max_failures
        return 0.0 if beyond <= 0 else min(0.5 * 2 ** (beyond - 1), MAX_FAILURE_DELAY)

    def _is_robot(self, username: str) -> bool:
        prefix = self.settings.robot_name_prefix
        return bool(prefix) and username.startswith(prefix)

    def _check(self, username: str, password: str) -> rbac.Subject | None:
        if not username or not password:
            return None
        if self._is_robot(username):
            return self._robot(username, username[len(self.settings.robot_name_prefix):], password)
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
        # Credentials minted before the generation claim existed carry none; they still die with the robot.
        if claims.get("generation", robot.generation) != robot.generation:
            return None
        projects = claims.get("projects")
        if not isinstance(projects, list):
            return None
        return rbac.Subject(kind="robot", name=full_name, id=robot.id, generation=robot.generation,
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
                            roles=self.identity.memberships(user.id), generation=user.generation)

    def robot_subject(self, robot: Robot) -> rbac.Subject:
        grants, system = rbac.robot_grants(robot.permissions)
        if robot.level == "project":
            # A project robot acts in its own project only, whatever its permission list says.
            project = robot.name.split("+", 1)[0]
            grants = {project: grants.get(project, frozenset())}
            system = frozenset()
        return rbac.Subject(kind="robot", name=self.settings.robot_name_prefix + robot.name, id=robot.id,
                            robot_grants=grants, system_grants=system, generation=robot.generation)

    def subject_for_account(self, account: AccountRef) -> rbac.Subject | None:
        """Re-load the account a refresh token was issued to: None when it is gone, disabled or expired, or
        its credentials changed since (a password change, a disable, a new secret)."""
        if account.kind == "robot":
            robot = self.identity.robot_by_id(account.id)
            if robot is None or robot.disabled or robot.expired() or robot.generation != account.generation:
                return None
            return self.robot_subject(robot)
        if account.kind == "user":
            user = self.identity.user_by_id(account.id)
            if user is None or user.disabled or user.generation != account.generation:
                return None
            return self.user_subject(user)
        return None


def account_of(subject: rbac.Subject) -> AccountRef | None:
    """The account a token issued to ``subject`` is bound to; None for anonymous callers."""
    if subject.anonymous or subject.id is None:
        return None
    return AccountRef(subject.kind, subject.id, subject.name, subject.generation)
