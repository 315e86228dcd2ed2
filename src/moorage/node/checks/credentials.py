"""Which credential the kubelet would hand the runtime for an image, from the files on this node.

Pod pull secrets (``--secret``: a Secret manifest) form the first keyring; the node keyring follows:
``--docker-config`` and the kubelet's own ``config.json`` search path under the node root
(``/var/lib/kubelet``, the kubelet's working directory ``/``, ``$HOME/.docker`` of root, ``/.docker``).
When nothing matches, :func:`near_misses` says why each key was passed over, because "the secret is
keyed ``10.0.0.5`` but the image says ``10.0.0.5:443``" is the usual reason.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from moorage.kube.keyring import (
    SECRET_TYPE_DOCKERCFG,
    SECRET_TYPE_DOCKERCONFIGJSON,
    CredentialSource,
    KeyringEntry,
    KeyringError,
    KeyringMatch,
    default_node_config_paths,
    entries_from_secret,
    node_config_entries,
    normalise_image,
    parse_dockerconfigjson,
    resolve,
    urls_match,
)


class CredentialInputError(ValueError):
    """A ``--secret``/``--docker-config`` file that cannot be read at all (a usage error)."""


def load_secret(path: Path) -> dict[str, Any]:
    """The first Secret in a YAML or JSON manifest; ``stringData`` is folded into ``data`` as the API
    server does on create."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CredentialInputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CredentialInputError(f"{path} is not YAML/JSON: {exc}") from None
    for doc in docs:
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        for item in items or []:
            if isinstance(item, dict) and item.get("kind", "Secret") == "Secret" and (
                    "data" in item or "stringData" in item or "type" in item):
                return _fold_string_data(item)
    raise CredentialInputError(f"{path} holds no Secret (expected kind: Secret with type "
                               f"{SECRET_TYPE_DOCKERCONFIGJSON} or {SECRET_TYPE_DOCKERCFG})")


def _fold_string_data(secret: dict[str, Any]) -> dict[str, Any]:
    string_data = secret.get("stringData")
    if not isinstance(string_data, dict):
        return secret
    data = dict(secret.get("data") or {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode("ascii")
    return {**secret, "data": data}


def load_docker_config(path: Path) -> list[KeyringEntry]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CredentialInputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_dockerconfigjson(raw, CredentialSource("file", str(path)))
    except KeyringError as exc:
        raise CredentialInputError(str(exc)) from None


def node_file_entries(root: Path) -> tuple[list[KeyringEntry], list[Path]]:
    """The node's own credentials as the kubelet (running as root, cwd ``/``) finds them."""
    json_paths, cfg_paths = default_node_config_paths(kubelet_root=str(root / "var/lib/kubelet"),
                                                      cwd=str(root), home=str(root / "root"))
    unique_json = list(dict.fromkeys([*json_paths, root / ".docker/config.json"]))
    return node_config_entries(unique_json, list(dict.fromkeys(cfg_paths))), unique_json


@dataclass
class CredentialChoice:
    """The kubelet's answer for one image: credentials to try in order, and why others were skipped."""

    repository: str
    matches: list[KeyringMatch]
    notes: list[str] = field(default_factory=list)
    considered: list[KeyringEntry] = field(default_factory=list)
    consulted: list[str] = field(default_factory=list)

    def describe(self) -> list[dict[str, str]]:
        """Key, user and source of each candidate; never the password."""
        return [{"key": m.raw_key, "username": m.username, "source": str(m.source)} for m in self.matches]


def choose(image: str, secret: dict[str, Any] | None, docker_config: list[KeyringEntry],
           node_entries: list[KeyringEntry], consulted: list[str]) -> CredentialChoice:
    """Run the kubelet's keyring over these inputs (raises KeyringError for a broken pull secret)."""
    secrets = [secret] if secret is not None else []
    resolution = resolve(image, secrets, [*docker_config, *node_entries])
    considered: list[KeyringEntry] = []
    if secret is not None:
        considered += entries_from_secret(secret)[0]
    considered += [*docker_config, *node_entries]
    return CredentialChoice(resolution.image, resolution.matches, list(resolution.notes), considered, consulted)


def _split(netloc_path: str) -> tuple[str, str, str]:
    netloc, _, path = netloc_path.partition("/")
    host, port = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        host, port = netloc[:end + 1], netloc[end + 2:]
    elif netloc.count(":") == 1:
        host, port = netloc.split(":")
    return host, port, path


def near_misses(entries: list[KeyringEntry], image: str) -> list[str]:
    """Why each configured key does not cover the image, in the kubelet's terms."""
    repo = normalise_image(image)
    r_host, r_port, r_path = _split(repo)
    reasons: list[str] = []
    for entry in entries:
        if urls_match(entry.key, repo):
            continue
        k_host, k_port, k_path = _split(entry.key)
        where = f"key {entry.raw_key!r} ({entry.source})"
        if k_host.lower() == r_host.lower() and k_port != r_port:
            reasons.append(f"{where}: port {k_port or '(none)'} ≠ {r_port or '(none)'} in the image; the kubelet "
                           "requires the ports to be equal")
        elif k_host.lower() != r_host.lower():
            reasons.append(f"{where}: host {k_host} is not the image's host {r_host}")
        else:
            reasons.append(f"{where}: path {k_path!r} is not a prefix of {r_path!r}")
    return reasons
