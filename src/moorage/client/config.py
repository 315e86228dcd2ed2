"""Where the admin CLI finds its server and credentials: flags, then environment, then a profile file.

The profile (``~/.config/moorage/cli.json``, or ``$XDG_CONFIG_HOME/moorage/cli.json``, or the file named
by ``MOORAGE_CLI_CONFIG``) is written by ``moorage admin login``; it holds one entry per server and
remembers which server is current. It contains a password, so it is created mode 0600 in a 0700
directory and replaced atomically; nothing here ever prints a password.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_SERVER = "MOORAGE_SERVER"
ENV_USERNAME = "MOORAGE_USERNAME"
ENV_PASSWORD = "MOORAGE_PASSWORD"
ENV_PROFILE = "MOORAGE_CLI_CONFIG"


class ConfigError(Exception):
    """The CLI cannot tell which server to talk to, or as whom; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything needed to open a :class:`~moorage.client.harbor.HarborClient`."""

    server: str
    username: str | None
    password: str | None
    insecure: bool = False
    ca_file: str | None = None

    @property
    def auth(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    def __repr__(self) -> str:  # the password must not leak through logs or tracebacks
        return (f"Connection(server={self.server!r}, username={self.username!r}, password=<hidden>, "
                f"insecure={self.insecure!r}, ca_file={self.ca_file!r})")


def normalize_server(value: str) -> str:
    """``host:port`` -> ``https://host:port``; drop a trailing ``/`` or a pasted ``/api/v2.0``."""
    text = value.strip()
    if not text:
        raise ConfigError("the server URL is empty")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{value!r} is not a server URL: expected http(s)://HOST[:PORT]")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/api/v2.0").rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def profile_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_PROFILE):
        return Path(env[ENV_PROFILE]).expanduser()
    if env.get("XDG_CONFIG_HOME"):
        base = Path(env["XDG_CONFIG_HOME"])
    else:
        base = Path(env.get("HOME") or Path.home()) / ".config"
    return base / "moorage" / "cli.json"


@dataclass(slots=True)
class Profile:
    """The parsed profile file: ``{"current": URL, "servers": {URL: {username, password, insecure, ca_file}}}``."""

    path: Path
    current: str | None
    servers: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path | None = None) -> Profile:
        path = path or profile_path()
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path, None, {})
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; fix or delete it, then run moorage admin login") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} is not a moorage CLI profile; delete it and run moorage admin login")
        servers = found if isinstance(found := raw.get("servers"), dict) else {}
        current = raw.get("current") if isinstance(raw.get("current"), str) else None
        return cls(path, current, {k: v for k, v in servers.items() if isinstance(v, dict)})

    def save(self) -> None:
        """Atomic replace of a 0600 file, so a crash never leaves half a profile or a readable password."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = json.dumps({"current": self.current, "servers": self.servers}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".cli.json.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        os.chmod(self.path, 0o600)

    def remember(self, connection: Connection) -> None:
        entry: dict[str, Any] = {"username": connection.username, "password": connection.password}
        if connection.insecure:
            entry["insecure"] = True
        if connection.ca_file:
            entry["ca_file"] = connection.ca_file
        self.servers[connection.server] = entry
        self.current = connection.server

    def forget(self, server: str) -> bool:
        removed = self.servers.pop(server, None) is not None
        if self.current == server:
            self.current = next(iter(self.servers), None)
        return removed


def resolve(*, server: str | None = None, username: str | None = None, password: str | None = None,
            insecure: bool | None = None, ca_file: str | None = None, env: Mapping[str, str] | None = None,
            profile: Profile | None = None, need_credentials: bool = True) -> Connection:
    """Flags win over ``MOORAGE_*`` variables, which win over the profile written by ``moorage admin login``.

    Profile credentials are used only for the server they were saved for, and only when no other
    username was given: a password must never be sent to a server it was not typed for.
    """
    env = os.environ if env is None else env
    profile = profile if profile is not None else Profile.load(profile_path(env))
    chosen = server or env.get(ENV_SERVER) or profile.current
    if not chosen:
        raise ConfigError("no server given: use --server URL, set MOORAGE_SERVER, or run "
                          "moorage admin login URL")
    url = normalize_server(chosen)
    saved = profile.servers.get(url, {})
    user = username or env.get(ENV_USERNAME)
    secret = password if password is not None else env.get(ENV_PASSWORD)
    if user is None:
        user = saved.get("username")
        if secret is None:
            secret = saved.get("password")
    elif secret is None and saved.get("username") == user:
        secret = saved.get("password")
    if need_credentials and (not user or secret is None):
        who = f" for {user}" if user else ""
        raise ConfigError(f"no credentials{who} on {url}: run moorage admin login {url}, or set "
                          f"{ENV_USERNAME} and {ENV_PASSWORD}, or pass --username with --password-stdin")
    return Connection(
        server=url, username=user, password=secret,
        insecure=bool(insecure) if insecure is not None else bool(saved.get("insecure", False)),
        ca_file=ca_file or saved.get("ca_file"),
    )
