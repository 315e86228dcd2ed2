"""Docker ``config.json`` and podman ``auth.json``: where they live, and reading/writing credentials.

Both files share one shape: ``{"auths": {"<server>": {"auth": base64("user:pass")}}, ...}``, plus
``credsStore`` (one helper for every server) and ``credHelpers`` (``server → helper``). When a helper
applies, the secret goes to ``docker-credential-<helper>`` over its stdin/stdout protocol and the file
keeps only an empty ``auths`` entry, as docker does. Every other key of the file is kept as it was.
Helpers are run without a shell, so robot names such as ``robot$test-1+ci`` reach them untouched.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from moorage.client.auth import Credentials

#: The key docker uses for Docker Hub (a historical URL, not a host).
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

Flavor = Literal["docker", "podman"]


class DockerConfigError(Exception):
    """The file or the credential helper could not be used; the message says why."""


def docker_config_path(env: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (what the docker CLI reads)."""
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".docker" / "config.json"


def podman_auth_path(env: Mapping[str, str], authfile: str | os.PathLike[str] | None = None) -> Path:
    """``--authfile``, else ``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``.

    Without ``XDG_RUNTIME_DIR`` containers/image falls back to ``/run/containers/<uid>/auth.json``.
    """
    if authfile:
        return Path(authfile)
    if env.get("REGISTRY_AUTH_FILE"):
        return Path(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    return Path(f"/run/containers/{os.getuid()}/auth.json")


def server_key(registry: str, flavor: Flavor = "docker") -> str:
    """The ``auths`` key a client writes for ``registry``: ``host[:port]``, scheme and path dropped.

    Docker Hub is the exception: docker keys it ``https://index.docker.io/v1/``, podman ``docker.io``.
    """
    rest = registry.split("://", 1)[1] if "://" in registry else registry
    host = rest.split("/", 1)[0]
    if not host:
        raise DockerConfigError(f"no registry host in {registry!r}")
    if host in _DOCKER_HUB_HOSTS or registry == DOCKER_HUB_KEY:
        return DOCKER_HUB_KEY if flavor == "docker" else "docker.io"
    return host


def key_variants(key: str) -> list[str]:
    """Other spellings of the same server that older clients (or people) put in ``auths``."""
    if key in (DOCKER_HUB_KEY, "docker.io"):
        return [DOCKER_HUB_KEY, "docker.io", "index.docker.io", "https://index.docker.io/v1"]
    return [key, f"https://{key}", f"https://{key}/", f"http://{key}", f"http://{key}/",
            f"https://{key}/v1/", f"https://{key}/v2/"]


def encode_auth(credentials: Credentials) -> str:
    """base64("user:pass") on one line: a wrapped value is rejected by the kubelet and by docker."""
    return base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode("ascii")


def decode_auth(value: str) -> Credentials:
    """Inverse of :func:`encode_auth`; accepts unpadded base64 and embedded newlines, like docker."""
    cleaned = value.strip().replace("\n", "").replace("\r", "")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise DockerConfigError("the auth field is not base64 of UTF-8 text") from exc
    username, sep, password = text.partition(":")
    if not sep:
        raise DockerConfigError("the auth field must be base64(username:password); no ':' found")
    return Credentials(username, password)


@dataclass
class AuthFile:
    """One config.json/auth.json in memory; ``data`` is the whole document, unknown keys included."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AuthFile:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(p, {})
        if not text.strip():
            return cls(p, {})
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DockerConfigError(f"{p} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise DockerConfigError(f"{p} must hold a JSON object")
        auths = data.get("auths")
        if auths is not None and not isinstance(auths, dict):
            raise DockerConfigError(f"{p}: 'auths' must be an object")
        return cls(p, data)

    @property
    def auths(self) -> dict[str, Any]:
        auths = self.data.get("auths")
        return auths if isinstance(auths, dict) else {}

    def helper_for(self, key: str) -> str | None:
        """The credential helper responsible for ``key``: ``credHelpers`` first, then ``credsStore``."""
        helpers = self.data.get("credHelpers")
        if isinstance(helpers, dict):
            for variant in key_variants(key):
                if isinstance(helpers.get(variant), str) and helpers[variant]:
                    return str(helpers[variant])
        store = self.data.get("credsStore")
        return store if isinstance(store, str) and store else None

    def save(self) -> None:
        write_json_atomic(self.path, self.data)


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` in one rename, mode 0600 from the first byte: it holds passwords."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent="\t", ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class CredentialHelper:
    """``docker-credential-<name>``: ``store`` (JSON in), ``get`` (server in, JSON out), ``erase``."""

    def __init__(self, name: str, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.env = dict(os.environ if env is None else env)
        exe = shutil.which(f"docker-credential-{name}", path=self.env.get("PATH"))
        if exe is None:
            raise DockerConfigError(f"credential helper docker-credential-{name} is configured but not "
                                    "found on PATH")
        self.executable = exe

    def _run(self, action: str, stdin: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([self.executable, action], input=stdin, capture_output=True, text=True,
                                  env=self.env, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DockerConfigError(f"docker-credential-{self.name} {action} failed: {exc}") from exc

    def store(self, server: str, credentials: Credentials) -> None:
        payload = json.dumps({"ServerURL": server, "Username": credentials.username,
                              "Secret": credentials.password})
        done = self._run("store", payload)
        if done.returncode != 0:
            raise DockerConfigError(f"docker-credential-{self.name} store: {_helper_message(done)}")

    def get(self, server: str) -> Credentials | None:
        done = self._run("get", server)
        if done.returncode != 0:
            if "credentials not found" in (done.stdout + done.stderr).lower():
                return None
            raise DockerConfigError(f"docker-credential-{self.name} get: {_helper_message(done)}")
        try:
            body = json.loads(done.stdout)
            return Credentials(str(body["Username"]), str(body["Secret"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DockerConfigError(f"docker-credential-{self.name} get: unreadable answer") from exc

    def erase(self, server: str) -> None:
        done = self._run("erase", server)
        if done.returncode != 0 and "credentials not found" not in (done.stdout + done.stderr).lower():
            raise DockerConfigError(f"docker-credential-{self.name} erase: {_helper_message(done)}")


def _helper_message(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}")[:500]


def store_credentials(path: Path, key: str, credentials: Credentials,
                      env: Mapping[str, str] | None = None) -> str:
    """Save ``credentials`` for ``key``; returns where they went (``file`` or the helper's name)."""
    auth_file = AuthFile.load(path)
    helper = auth_file.helper_for(key)
    auths = auth_file.data.setdefault("auths", {})
    if helper:
        CredentialHelper(helper, env).store(key, credentials)
        # Docker keeps an empty entry so `docker login` listings and our keyring see the server.
        entry = auths.get(key) if isinstance(auths.get(key), dict) else {}
        entry.pop("auth", None)
        auths[key] = entry
    else:
        entry = auths.get(key) if isinstance(auths.get(key), dict) else {}
        for stale in ("username", "password", "identitytoken"):
            entry.pop(stale, None)
        entry["auth"] = encode_auth(credentials)
        auths[key] = entry
    auth_file.save()
    return helper or "file"


def get_credentials(path: Path, key: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials stored for ``key`` (any spelling of it), from the file or its helper."""
    auth_file = AuthFile.load(path)
    helper = auth_file.helper_for(key)
    if helper:
        return CredentialHelper(helper, env).get(key)
    for variant in key_variants(key):
        entry = auth_file.auths.get(variant)
        if isinstance(entry, dict) and entry.get("auth"):
            return decode_auth(str(entry["auth"]))
    return None


def remove_credentials(path: Path, key: str, env: Mapping[str, str] | None = None) -> bool:
    """Forget ``key`` (every spelling of it) in the file and its helper; True when something was removed."""
    auth_file = AuthFile.load(path)
    helper = auth_file.helper_for(key)
    removed = False
    if helper:
        existed = CredentialHelper(helper, env).get(key) is not None
        CredentialHelper(helper, env).erase(key)
        removed = existed
    auths = auth_file.auths
    for variant in key_variants(key):
        if variant in auths:
            del auths[variant]
            removed = True
    if removed and auth_file.path.exists():
        auth_file.save()
    return removed
