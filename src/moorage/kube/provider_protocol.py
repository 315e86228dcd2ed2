"""The kubelet credential-provider exec protocol (``credentialprovider.kubelet.k8s.io/v1``).

The kubelet runs the plugin with a CredentialProviderRequest on stdin and reads a
CredentialProviderResponse from stdout; the node's CredentialProviderConfig says which images go to
which plugin. Types here validate what the kubelet would reject, so mistakes surface at the plugin
(or at config generation) rather than as a silently ignored response on the node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml

from moorage.core import jsondepth

API_VERSION = "credentialprovider.kubelet.k8s.io/v1"
#: Older versions with the same wire shape; the reply must carry the request's apiVersion.
ACCEPTED_API_VERSIONS = (API_VERSION, "credentialprovider.kubelet.k8s.io/v1beta1")
CONFIG_API_VERSION = "kubelet.config.k8s.io/v1"
REQUEST_KIND = "CredentialProviderRequest"
RESPONSE_KIND = "CredentialProviderResponse"
CACHE_KEY_TYPES: tuple[str, ...] = ("Image", "Registry", "Global")
GLOBAL_CACHE_KEY = "global"


class ProtocolError(ValueError):
    """A request or config the kubelet protocol does not allow; the message names the field."""


@dataclass(frozen=True, slots=True)
class CredentialProviderRequest:
    image: str
    api_version: str = API_VERSION
    service_account_token: str | None = None
    service_account_annotations: dict[str, str] | None = None


def parse_request(data: bytes | str) -> CredentialProviderRequest:
    """Parse and validate the request the kubelet writes on the plugin's stdin."""
    try:
        doc = jsondepth.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"request is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ProtocolError("request must be a JSON object")
    api_version = doc.get("apiVersion")
    if api_version not in ACCEPTED_API_VERSIONS:
        raise ProtocolError(f"unsupported apiVersion {api_version!r}: expected {API_VERSION}")
    if doc.get("kind") != REQUEST_KIND:
        raise ProtocolError(f"kind must be {REQUEST_KIND}, got {doc.get('kind')!r}")
    image = doc.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ProtocolError("image must be a non-empty string")
    token = doc.get("serviceAccountToken")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("serviceAccountToken must be a string")
    annotations = doc.get("serviceAccountAnnotations")
    if annotations is not None and (not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())):
        raise ProtocolError("serviceAccountAnnotations must map strings to strings")
    return CredentialProviderRequest(image, api_version, token or None, annotations)


# ---- durations --------------------------------------------------------------------------------

_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(value: timedelta | float) -> str:
    """Go's ``time.Duration.String()``: ``5m0s``, ``1h0m0s``, ``0s``, ``1.5s``, ``250ms``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    ns = round(seconds * 1_000_000_000)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rem = divmod(ns, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    secs = _fraction(rem, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}"
    if minutes:
        return f"{sign}{minutes}m{secs}"
    return sign + secs


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def parse_go_duration(text: str) -> timedelta:
    """Go's ``time.ParseDuration`` (what the kubelet applies to ``cacheDuration``)."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return timedelta(0)
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise ProtocolError(f"invalid duration {text!r}: use Go syntax such as 5m0s, 1h, 300ms")
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    if not s:
        raise ProtocolError(f"invalid duration {text!r}")
    return timedelta(microseconds=sign * total / 1_000)


# ---- response -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuthConfig:
    username: str
    password: str


def build_response(auth: Mapping[str, AuthConfig], cache_key_type: str,
                   cache_duration: timedelta | None = None, *, api_version: str = API_VERSION,
                   service_account_token_cache_type: str | None = None) -> dict[str, Any]:
    """The CredentialProviderResponse; any cacheKeyType but Image/Registry/Global is refused
    here because the kubelet would silently ignore the whole response."""
    if cache_key_type not in CACHE_KEY_TYPES:
        raise ProtocolError(f"cacheKeyType must be one of {', '.join(CACHE_KEY_TYPES)}")
    if api_version not in ACCEPTED_API_VERSIONS:
        raise ProtocolError(f"unsupported apiVersion {api_version!r}")
    response: dict[str, Any] = {"apiVersion": api_version, "kind": RESPONSE_KIND,
                                "cacheKeyType": cache_key_type}
    if cache_duration is not None:
        if cache_duration < timedelta(0):
            raise ProtocolError("cacheDuration must not be negative")
        response["cacheDuration"] = go_duration(cache_duration)
    if service_account_token_cache_type:
        response["serviceAccountTokenCacheType"] = service_account_token_cache_type
    response["auth"] = {key: {"username": a.username, "password": a.password} for key, a in auth.items()}
    return response


def image_repository(image: str) -> str:
    """The image without tag or digest: the kubelet's cache key for ``cacheKeyType: Image``."""
    name = image.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def cache_key(image: str, cache_key_type: str) -> str:
    """The key the kubelet caches a response under: image repo, registry host[:port], or global."""
    if cache_key_type == "Image":
        return image_repository(image)
    if cache_key_type == "Registry":
        return image_repository(image).split("/", 1)[0]
    if cache_key_type == "Global":
        return GLOBAL_CACHE_KEY
    raise ProtocolError(f"cacheKeyType must be one of {', '.join(CACHE_KEY_TYPES)}")


# ---- node configuration -----------------------------------------------------------------------

@dataclass
class ProviderSpec:
    """One ``providers[]`` entry of the kubelet's CredentialProviderConfig."""

    name: str
    match_images: Sequence[str]
    default_cache_duration: timedelta | str
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    api_version: str = API_VERSION
    token_attributes: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ProtocolError(f"provider name {self.name!r} must be a plain executable name")
        if not self.match_images:
            raise ProtocolError(f"provider {self.name}: matchImages is required")
        if self.api_version not in ACCEPTED_API_VERSIONS:
            raise ProtocolError(f"provider {self.name}: unsupported apiVersion {self.api_version!r}")
        duration = self.default_cache_duration
        duration_text = go_duration(parse_go_duration(duration) if isinstance(duration, str) else duration)
        out: dict[str, Any] = {"name": self.name, "matchImages": list(self.match_images),
                               "defaultCacheDuration": duration_text, "apiVersion": self.api_version}
        if self.args:
            out["args"] = list(self.args)
        if self.env:
            out["env"] = [{"name": k, "value": v} for k, v in self.env.items()]
        if self.token_attributes:
            out["tokenAttributes"] = dict(self.token_attributes)
        return out


def provider_config(providers: Sequence[ProviderSpec]) -> dict[str, Any]:
    """The file passed to the kubelet with ``--image-credential-provider-config``."""
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ProtocolError("provider names must be unique")
    return {"apiVersion": CONFIG_API_VERSION, "kind": "CredentialProviderConfig",
            "providers": [p.to_dict() for p in providers]}


def provider_config_yaml(providers: Sequence[ProviderSpec]) -> str:
    return yaml.safe_dump(provider_config(providers), sort_keys=False, default_flow_style=False)
