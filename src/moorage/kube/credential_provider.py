"""``moorage-credential-provider``: the kubelet exec plugin that hands out short-lived pull credentials.

The node keeps one long-lived credential (a file readable by root only). For each image the kubelet
asks about, the plugin exchanges it at the registry for a short-lived, pull-only credential scoped to
that image, so no password sits in pull secrets and nothing "expires in k8s" unnoticed
(REFERENCE §4 items 6 and 8). The node credential is only ever sent to the configured registry.

Configuration comes from the provider's ``args`` / ``env`` in the kubelet's CredentialProviderConfig::

    --registry URL            MOORAGE_PROVIDER_REGISTRY         e.g. https://192.168.2.250:443
    --credential-file PATH    MOORAGE_PROVIDER_CREDENTIAL_FILE  {"username","password"} or a config.json
    --ca-file PATH            MOORAGE_PROVIDER_CA_FILE          the registry's CA (optional)
    --ttl SECONDS             MOORAGE_PROVIDER_TTL              lifetime asked for (default 3600)
    --cache-key-type TYPE     MOORAGE_PROVIDER_CACHE_KEY_TYPE   Image (default) or Registry

Exit status 0 with a CredentialProviderResponse on stdout, or non-zero with the reason on stderr and
nothing on stdout (the kubelet then pulls without these credentials and logs our message).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from moorage.client.auth import Credentials, describe_transport_error, ssl_context
from moorage.kube.dockerconfig import DockerConfigError, decode_auth, key_variants, server_key
from moorage.kube.keyring import normalise_image
from moorage.kube.provider_protocol import (
    AuthConfig,
    ProtocolError,
    build_response,
    image_repository,
    parse_request,
)

MINT_PATH = "/api/v2.0/node-credentials"
DEFAULT_TTL_SECONDS = 3600
#: Stop serving a cached credential this long before it expires, so a pull never starts with a
#: credential that dies mid-transfer (REFERENCE §4 item 5).
EXPIRY_MARGIN = timedelta(seconds=60)


class ProviderError(Exception):
    """Anything that stops the plugin from answering; the message goes to the kubelet's log."""


@dataclass(frozen=True, slots=True)
class MintedCredentials:
    username: str
    password: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    registry_url: str
    credential_file: Path
    ca_file: str | None = None
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    cache_key_type: str = "Image"

    @property
    def registry_host(self) -> str:
        return server_key(self.registry_url)


def load_node_credentials(path: Path, registry_host: str) -> Credentials:
    """The node's long-lived credential: ``{"username","password"}`` or a docker config.json."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProviderError(f"cannot read node credential file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ProviderError(f"node credential file {path} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise ProviderError(f"node credential file {path} must hold a JSON object")
    if isinstance(doc.get("username"), str) and isinstance(doc.get("password"), str):
        return Credentials(doc["username"], doc["password"])
    auths = found if isinstance(found := doc.get("auths"), dict) else {}
    for variant in key_variants(registry_host):
        entry = auths.get(variant)
        if isinstance(entry, dict) and entry.get("auth"):
            try:
                return decode_auth(str(entry["auth"]))
            except DockerConfigError as exc:
                raise ProviderError(f"{path}: entry {variant!r}: {exc}") from exc
    raise ProviderError(f"{path} has no credential for {registry_host} (expected {{\"username\", "
                        f"\"password\"}} or auths[{registry_host!r}].auth)")


def _parse_expiry(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ProviderError(f"registry answered an unreadable expires_at {value!r} (want RFC 3339 or epoch)")


def mint_credentials(registry_url: str, node_credentials: Credentials, image: str, ttl_seconds: int,
                     *, ca_file: str | None = None, timeout: float = 20.0,
                     client: httpx.Client | None = None) -> MintedCredentials:
    """Exchange the node's credential for a short-lived pull credential for ``image``.

    ``POST {registry}/api/v2.0/node-credentials`` with Basic auth and ``{"image", "ttl_seconds"}``;
    the registry answers ``{"username", "password", "expires_at"}``.
    """
    url = registry_url.rstrip("/") + MINT_PATH
    body = {"image": image, "ttl_seconds": ttl_seconds}
    headers = {"Authorization": node_credentials.basic(), "User-Agent": "moorage-credential-provider"}
    own = client is None
    http = client or httpx.Client(verify=ssl_context(ca_file), timeout=timeout)
    try:
        response = http.post(url, json=body, headers=headers)
    except httpx.TransportError as exc:
        raise ProviderError(describe_transport_error(exc, url)) from exc
    finally:
        if own:
            http.close()
    if response.status_code in (401, 403):
        raise ProviderError(f"{url} refused the node credential for {node_credentials.username!r} "
                            f"({response.status_code}{_error_detail(response)})")
    if response.status_code not in (200, 201):
        raise ProviderError(f"{url} answered {response.status_code}{_error_detail(response)}")
    try:
        doc = response.json()
        username, password = doc["username"], doc["password"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(f"{url} answered without username/password") from exc
    if not isinstance(username, str) or not isinstance(password, str):
        raise ProviderError(f"{url} answered non-string credentials")
    return MintedCredentials(username, password, _parse_expiry(doc.get("expires_at")))


def _error_detail(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return ": " + "; ".join(str(e.get("message", e.get("code", ""))) for e in errors)[:300]
    except (ValueError, AttributeError):
        return ""


def answer(raw_request: bytes | str, config: ProviderConfig,
           now: datetime | None = None) -> dict[str, Any]:
    """The whole plugin minus I/O: request in, CredentialProviderResponse out."""
    request = parse_request(raw_request)
    repo = normalise_image(request.image)
    registry = repo.split("/", 1)[0]
    key = image_repository(request.image) if config.cache_key_type == "Image" else config.registry_host
    if registry != config.registry_host:
        # matchImages sent us an image of another registry: never show it the node credential.
        return build_response({}, config.cache_key_type, timedelta(0), api_version=request.api_version)
    node = load_node_credentials(config.credential_file, config.registry_host)
    minted = mint_credentials(config.registry_url, node, request.image, config.ttl_seconds,
                              ca_file=config.ca_file)
    remaining = minted.expires_at - (now or datetime.now(UTC)) - EXPIRY_MARGIN
    cache_for = max(timedelta(0), min(remaining, timedelta(seconds=config.ttl_seconds)))
    cache_for = timedelta(seconds=int(cache_for.total_seconds()))
    return build_response({key: AuthConfig(minted.username, minted.password)}, config.cache_key_type,
                          cache_for, api_version=request.api_version)


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> ProviderConfig:
    parser = argparse.ArgumentParser(prog="moorage-credential-provider", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default=env.get("MOORAGE_PROVIDER_REGISTRY"))
    parser.add_argument("--credential-file", default=env.get("MOORAGE_PROVIDER_CREDENTIAL_FILE"))
    parser.add_argument("--ca-file", default=env.get("MOORAGE_PROVIDER_CA_FILE"))
    parser.add_argument("--ttl", type=int, default=int(env.get("MOORAGE_PROVIDER_TTL") or DEFAULT_TTL_SECONDS))
    parser.add_argument("--cache-key-type", choices=("Image", "Registry"),
                        default=env.get("MOORAGE_PROVIDER_CACHE_KEY_TYPE") or "Image")
    args = parser.parse_args(list(argv))
    if not args.registry or not args.registry.startswith(("https://", "http://")):
        raise ProviderError("--registry (or MOORAGE_PROVIDER_REGISTRY) must be the registry URL, "
                            "e.g. https://registry.example:443")
    if not args.credential_file:
        raise ProviderError("--credential-file (or MOORAGE_PROVIDER_CREDENTIAL_FILE) is required")
    if args.ttl <= 0:
        raise ProviderError("--ttl must be a positive number of seconds")
    return ProviderConfig(args.registry, Path(args.credential_file), args.ca_file or None, args.ttl,
                          args.cache_key_type)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; nothing is written to stdout unless the answer is complete and valid."""
    try:
        config = parse_config(sys.argv[1:] if argv is None else argv, os.environ)
        response = answer(sys.stdin.buffer.read(), config)
    except (ProtocolError, ProviderError) as exc:
        print(f"moorage-credential-provider: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(response) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
