"""The one typed settings object.

Values come, lowest precedence first, from the defaults below, a TOML config file
(``--config`` or ``MOORAGE_CONFIG``; ``<data_dir>/moorage.toml`` when present), ``MOORAGE_*``
environment variables, and finally command-line flags. No other module reads the environment.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "MOORAGE_"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "moorage"


class SettingsError(Exception):
    """A setting has a value that cannot be used; the message names the setting and where it was set,
    never the value (it may be a password)."""


class Settings(BaseModel):
    """Everything a moorage server process needs to know about its deployment."""

    model_config = ConfigDict(extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Where blobs, uploads, the "
                           "SQLite database, keys and certificates live.")
    listen: str = Field(default="127.0.0.1:5000", description="HOST:PORT the server binds to.")
    plain_http: bool = Field(default=False, description="Serve plain HTTP instead of HTTPS.")
    tls12: bool = Field(default=True, description="Offer TLS 1.2 (ECDHE with AES-GCM or ChaCha20-Poly1305 only) "
                        "beside TLS 1.3, for older nodes and proxies; TLS 1.3 is preferred either way.")
    workers: int = Field(default=0, description="Worker processes; 0 means one per CPU core.")
    database_url: str = Field(default="", description="SQLAlchemy URL of the metadata store; empty "
                              "means SQLite at <data_dir>/moorage.db.")
    tls_hostnames: list[str] = Field(default_factory=list, description="Extra DNS names the server "
                                     "certificate must cover (the host's own names are always added).")
    tls_ips: list[str] = Field(default_factory=list, description="Extra IP addresses the server certificate "
                               "must cover (the host's own addresses are always added).")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    access_log: bool = Field(default=True, description="One JSON line per request on stderr.")
    public_url: str = Field(default="", description="Base URL clients reach the registry at; empty "
                            "means derived from each request's Host header.")
    max_manifest_bytes: int = Field(default=4 * 1024 * 1024, description="Largest manifest accepted.")
    upload_ttl_hours: float = Field(default=24, ge=0, description="Upload sessions (and their data) untouched "
                                    "this long are purged.")
    max_uploads_per_repository: int = Field(default=100, ge=1, description="Open upload sessions one "
                                            "repository may have; more are refused with 429 until some "
                                            "finish, are cancelled or expire.")
    max_uploads_per_account: int = Field(default=1000, ge=1, description="Open upload sessions one account "
                                         "(or, anonymous, one client address) may have across repositories.")
    upload_purge_interval_minutes: float = Field(default=10, gt=0, description="How often the server looks "
                                                 "for expired upload sessions (one process among all "
                                                 "workers and replicas does it).")
    gc_grace_minutes: float = Field(default=120, ge=0, description="Garbage collection deletes only blobs older "
                                    "than this (0 allowed: leases alone then keep every push safe).")
    gc_lease_minutes: float = Field(default=60, gt=0, description="A blob uploaded, mounted or found (HEAD) in a "
                                    "repository is kept for it this long, until a manifest there references it.")
    auth_enabled: bool = Field(default=True, description="Enforce projects, users, roles and robot accounts "
                               "on the registry (token authentication). Off: anyone may do anything.")
    admin_password: str = Field(default="", description="Password of the `admin` account created on the first "
                                "start; empty means generate one and print it once.")
    token_service: str = Field(default="moorage-registry", description="The `service` name in the token "
                               "challenge and the `aud` of registry tokens.")
    token_issuer: str = Field(default="moorage-token-service", description="The `iss` of registry tokens.")
    token_lifetime_minutes: int = Field(default=30, description="How long a registry bearer token lives.")
    refresh_token_days: int = Field(default=30, description="How long an OAuth2 refresh token (access_type="
                                    "offline) lives.")
    secret_key: str = Field(default="", description="The key (base64 of 32 bytes) that seals the token signing "
                            "key in the database; give every replica the same. Empty: read secret_key_file.")
    secret_key_file: Path | None = Field(default=None, description="File holding the secret key; default "
                                         "<data_dir>/secret.key, made on the first start.")
    robot_name_prefix: str = Field(default="robot$", description="Prefix of robot account names.")
    robot_default_duration_days: int = Field(default=30, description="Robot lifetime when a create request "
                                             "gives no duration (-1 never expires).")
    project_creation_restriction: str = Field(default="adminonly", description="Who may create projects: "
                                              "`adminonly` or `everyone` (any logged-in user).")
    login_max_failures: int = Field(default=10, description="Failed logins for one account from one client "
                                    "address within the window before that address is refused for that account "
                                    "(never for others); past it, refusals for the account slow down.")
    login_max_failures_per_address: int = Field(default=100, description="Failed logins from one client "
                                                "address within the window before it is refused.")
    login_failure_window_seconds: int = Field(default=300, description="Window (and lockout) for failed logins.")
    node_credential_max_ttl_seconds: int = Field(default=4 * 3600, description="Longest lifetime of a node "
                                                 "pull credential from /api/v2.0/node-credentials.")
    portal_session_minutes: float = Field(default=480, gt=0, description="How long a web portal sign-in lasts "
                                          "before the portal asks for the password again.")
    storage_backend: Literal["filesystem", "s3"] = Field(default="filesystem", description="Where blobs live: "
                                                         "`filesystem` (<data_dir>/blobs) or `s3` (an S3-"
                                                         "compatible bucket, the s3_* settings).")
    s3_bucket: str = Field(default="", description="Bucket holding the blobs (storage_backend = s3).")
    s3_endpoint: str = Field(default="", description="URL of the S3 API, e.g. http://minio:9000; empty means "
                             "AWS S3 in s3_region.")
    s3_region: str = Field(default="us-east-1", description="Region of the bucket (any value for most "
                           "S3-compatible servers).")
    s3_path_style: bool = Field(default=False, description="Address the bucket as <endpoint>/<bucket> instead "
                                "of <bucket>.<endpoint> (MinIO, Ceph RGW, SeaweedFS usually need this).")
    s3_prefix: str = Field(default="", description="Key prefix for everything moorage stores in the bucket.")
    s3_redirect: bool = Field(default=False, description="Answer blob GETs with a 307 to a presigned URL of "
                              "the object, so clients download from the bucket directly; off: stream through "
                              "the registry.")
    s3_access_key_id: str = Field(default="", description="Access key id; empty means the usual AWS lookup "
                                  "(AWS_ACCESS_KEY_ID, profiles, instance roles).")
    s3_secret_access_key: str = Field(default="", repr=False, description="Secret key belonging to "
                                      "s3_access_key_id (never logged).")
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=300, description="How long one webhook delivery "
                                           "may take unless its target sets its own timeout.")
    webhook_retry_base_seconds: float = Field(default=10, gt=0, description="Pause after a webhook delivery's first "
                                              "failure; each further failure doubles it.")
    webhook_retry_max_seconds: float = Field(default=3600, gt=0, description="Longest pause between two attempts "
                                             "of a webhook delivery.")
    webhook_give_up_hours: float = Field(default=24, gt=0, description="A webhook delivery still failing this long "
                                         "after its event is given up (status Error).")
    webhook_history_days: float = Field(default=30, gt=0, description="Webhook executions, tasks and their logs "
                                        "are kept this long once delivered or given up.")
    webhook_poll_seconds: float = Field(default=1, gt=0, description="How often each server process looks for "
                                        "webhook deliveries to make.")
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    metrics_token: str = Field(default="", description="Bearer token /metrics requires; empty means none.")
    metrics_usage_refresh_seconds: float = Field(default=30, gt=0, description="How old the values /metrics reads "
                                                 "from the database (storage, per-project usage) may get before "
                                                 "a scrape refreshes them in the background.")
    config: Path | None = Field(default=None, description="TOML file to read settings from.")

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'moorage.db'}"

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from file, environment and explicit overrides (``None`` values are ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    sources = {name: f"--{name.replace('_', '-')}" for name in given}
    environment = _environment()
    sources.update({name: f"{ENV_PREFIX}{name.upper()}" for name in environment if name not in given})
    located = _validate({**environment, **given}, sources)
    if located.config is not None and not located.config.is_file():
        raise SettingsError(f"the settings file {located.config} (from {sources['config']}) does not exist")
    config_file = located.config or (located.data_dir / "moorage.toml")
    file_values: dict[str, Any] = {}
    if config_file.is_file():
        try:
            with config_file.open("rb") as fh:
                file_values = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read the settings file {config_file}: {exc}") from None
        sources = {**{name: str(config_file) for name in file_values}, **sources}
    return _validate({**file_values, **environment, **given}, sources)


def _environment() -> dict[str, Any]:
    """``MOORAGE_<SETTING>`` variables (names in any case); list settings are JSON lists."""
    variables = {key.upper(): value for key, value in os.environ.items() if key.upper().startswith(ENV_PREFIX)}
    values: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = variables.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is None:
            continue
        if get_origin(field.annotation) is list:
            try:
                raw = json.loads(raw)
            except ValueError:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be a JSON list, e.g. '[\"a\", \"b\"]'") from None
        values[name] = raw
    return values


def _validate(values: dict[str, Any], sources: dict[str, str]) -> Settings:
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "settings"
            problems.append(f"{name} (from {sources.get(name, 'defaults')}): {error['msg']}")
        raise SettingsError("invalid setting: " + "; ".join(problems)) from None
