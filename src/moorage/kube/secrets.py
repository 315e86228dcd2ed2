"""Image pull Secrets, byte-for-byte what ``kubectl create secret docker-registry`` makes.

The ``.dockerconfigjson`` payload is compact JSON with Go's encoder conventions (field order
username, password, email, auth; ``<``, ``>``, ``&``, U+2028 and U+2029 escaped), base64 without
line wrapping. :func:`key_warnings` explains when the server key would not match the images it is
meant for under the kubelet's keyring rules — the most common reason a correct-looking secret fails.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from moorage.client.auth import Credentials
from moorage.kube.dockerconfig import DockerConfigError, decode_auth, encode_auth
from moorage.kube.keyring import (
    SECRET_TYPE_DOCKERCONFIGJSON,
    BasicKeyring,
    CredentialSource,
    KeyringEntry,
    normalise_image,
    normalise_key,
)

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class SecretError(Exception):
    """The input cannot make a useful pull secret; the message explains what to do instead."""


def go_json(value: Any) -> str:
    """``json.Marshal`` output: compact, UTF-8, HTML-sensitive characters escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in _GO_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


@dataclass(frozen=True, slots=True)
class RegistryAuth:
    """One ``auths`` entry of a pull secret."""

    server: str
    credentials: Credentials
    email: str = ""

    def entry(self) -> dict[str, str]:
        # kubectl's DockerConfigEntry: every field omitempty, in this order.
        fields = {"username": self.credentials.username, "password": self.credentials.password,
                  "email": self.email, "auth": encode_auth(self.credentials)}
        return {k: v for k, v in fields.items() if v}


def dockerconfigjson(auths: Sequence[RegistryAuth]) -> bytes:
    """The ``.dockerconfigjson`` document for these servers."""
    return go_json({"auths": {a.server: a.entry() for a in auths}}).encode("utf-8")


def pull_secret(name: str, payload: bytes, namespace: str | None = None) -> dict[str, Any]:
    """The Secret object, field for field what ``kubectl create secret --dry-run=client`` prints."""
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["creationTimestamp"] = None
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": metadata,
        "data": {".dockerconfigjson": base64.b64encode(payload).decode("ascii")},
        "type": SECRET_TYPE_DOCKERCONFIGJSON,
    }


def render(secret: Mapping[str, Any], output: str) -> str:
    """``-o json`` (kubectl's 4-space indent) or ``-o yaml`` (keys sorted, as kubectl prints them)."""
    if output == "json":
        return json.dumps(secret, indent=4, ensure_ascii=False) + "\n"
    if output == "yaml":
        return yaml.safe_dump(dict(secret), sort_keys=True, default_flow_style=False, allow_unicode=True)
    raise SecretError(f"unknown output format {output!r}: use yaml or json")


def auths_from_docker_config(text: str, origin: str) -> list[RegistryAuth]:
    """Usable entries of a docker ``config.json`` (inline ``auth`` only).

    Refuses files whose credentials live in a credential helper or that carry no ``auth`` at all:
    the Secret would be syntactically fine and useless on every node.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SecretError(f"{origin} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SecretError(f"{origin} must hold a JSON object")
    auths = found if isinstance(found := doc.get("auths"), dict) else {}
    helpers = found if isinstance(found := doc.get("credHelpers"), dict) else {}
    store = doc.get("credsStore") if isinstance(doc.get("credsStore"), str) else ""
    usable: list[RegistryAuth] = []
    in_helpers: list[str] = []
    for server, entry in auths.items():
        auth = entry.get("auth") if isinstance(entry, dict) else None
        if auth:
            try:
                creds = decode_auth(str(auth))
            except DockerConfigError as exc:
                raise SecretError(f"{origin}: entry {server!r}: {exc}; the kubelet would reject the whole "
                                  "secret") from exc
            usable.append(RegistryAuth(server, creds, str(entry.get("email") or "")))
        elif server in helpers or store:
            in_helpers.append(server)
    in_helpers += [s for s in helpers if s not in auths]
    where = ", ".join(filter(None, [f"credsStore {store!r}" if store else "",
                                    f"credHelpers {sorted(set(helpers.values()))}" if helpers else ""]))
    if in_helpers:
        raise SecretError(
            f"{origin} keeps the credentials for {', '.join(sorted(set(in_helpers)))} in {where}, not in "
            "the file: a Secret made from it would carry no password and every pull would fail. Create the "
            "secret from the credentials instead: moorage secret create NAME --server HOST:PORT "
            "--username USER --password-stdin")
    if not usable:
        raise SecretError(f"{origin} has no 'auths' entry with an 'auth' field: the Secret would hold no "
                          "credentials. Log in first (moorage login HOST:PORT) or use moorage secret create "
                          "--server/--username/--password-stdin")
    return usable


def key_warnings(server: str, images: Sequence[str] = ()) -> list[str]:
    """Explain when the kubelet would not use this server key for the images it is meant for."""
    warnings: list[str] = []
    key = normalise_key(server)
    if key is None:
        return [f"server {server!r} is not a valid host[:port]: the kubelet ignores this entry"]
    if server != key and key != "index.docker.io":
        warnings.append(
            f"server {server!r} is keyed by the kubelet as {key!r} (scheme and /v1/ or /v2/ dropped); "
            f"write it as {key!r}, exactly as images name the registry")
    host = key.split("/", 1)[0]
    port = host.rsplit(":", 1)[1] if host.count(":") == 1 else ""
    if not images:
        if not port and "://" in server and host != "index.docker.io":
            warnings.append(f"key {key!r} has no port: it does not match images written {host}:443/... "
                            "or with any other port")
        return warnings
    probe = BasicKeyring()
    probe.add([KeyringEntry(server, key, "", "", "", CredentialSource("secret", "new"))])
    for image in images:
        repo = normalise_image(image)
        if not probe.lookup(repo):
            warnings.append(_mismatch_reason(key, repo, image))
    return warnings


def key_notes(server: str) -> list[str]:
    """What a correct key still implies for how images must be written."""
    key = normalise_key(server)
    host = (key or "").split("/", 1)[0]
    if host.count(":") != 1:
        return []
    port = host.rsplit(":", 1)[1]
    return [f"key {key!r} matches only images written {host}/...; the kubelet compares ports literally, "
            f"so images written without :{port} get no credentials from this secret"]


def _mismatch_reason(key: str, repo: str, image: str) -> str:
    key_host, _, key_path = key.partition("/")
    repo_host, _, repo_path = repo.partition("/")
    key_port = key_host.rsplit(":", 1)[1] if key_host.count(":") == 1 else ""
    repo_port = repo_host.rsplit(":", 1)[1] if repo_host.count(":") == 1 else ""
    why = "the hosts differ"
    if key_port != repo_port:
        why = (f"ports must be equal: the key has {':' + key_port if key_port else 'no port'}, the image has "
               f"{':' + repo_port if repo_port else 'no port'}")
    elif key_host.split(":")[0].count(".") != repo_host.split(":")[0].count("."):
        why = "a key matches only hosts with the same number of dot-separated labels"
    elif key_path and not repo_path.startswith(key_path):
        why = f"the key's path /{key_path} is not a prefix of the image path /{repo_path}"
    return (f"the kubelet would NOT use key {key!r} for image {image!r} (looked up as {repo!r}): {why}. "
            f"Use --server {repo_host} to match it")
