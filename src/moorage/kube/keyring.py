"""Which credentials the kubelet would try for an image, in the order it would try them.

This follows the kubelet's ``pkg/credentialprovider`` keyring (BasicDockerKeyring Add/Lookup and
URLsMatch) rule by rule, so a doctor can say "the kubelet would try credential X from secret Y":

1. an ``auths`` key without scheme gets ``https://``; the scheme is then dropped;
2. a path starting ``/v1/`` or ``/v2/`` loses those 3 characters; an empty or ``/`` path leaves
   ``host[:port]``, any other path is kept (``https://index.docker.io/v1/`` → ``index.docker.io``);
3. keys are de-duplicated and sorted in reverse, so ``quay.io/coreos`` comes before ``quay.io``;
4. a key matches an image when ports are equal, host label counts are equal, every label matches
   as a Go ``filepath.Match`` glob, and the key's path is a string prefix of the image's path;
5. every match is returned, in key order; the kubelet tries them one by one;
6. with no match, a Docker Hub image gets the credentials stored under ``index.docker.io``;
7. pod pull secrets form one keyring that comes before the node keyring (config files, plugins).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from moorage.core import jsondepth
from moorage.core.reference import normalise_name, split_image
from moorage.kube.dockerconfig import DockerConfigError, decode_auth

DEFAULT_REGISTRY_HOST = "index.docker.io"
SECRET_TYPE_DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
SECRET_TYPE_DOCKERCFG = "kubernetes.io/dockercfg"

SourceKind = Literal["secret", "file", "provider"]


class KeyringError(Exception):
    """A pull secret the kubelet cannot parse: it fails the whole pull, naming the secret."""


@dataclass(frozen=True, slots=True)
class CredentialSource:
    """Where a credential came from: a pull secret (``namespace/name``), a node file, or a plugin."""

    kind: SourceKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class KeyringEntry:
    """One ``auths`` entry as the kubelet holds it: raw key as written, normalised match key."""

    raw_key: str
    key: str
    username: str
    password: str
    email: str
    source: CredentialSource


@dataclass(frozen=True, slots=True)
class KeyringMatch:
    """A credential the kubelet would pass to the runtime for this image (try order = list order)."""

    key: str
    raw_key: str
    username: str
    password: str
    source: CredentialSource
    via_default_registry: bool = False

    def describe(self) -> str:
        how = " (Docker Hub fallback)" if self.via_default_registry else ""
        return f"user {self.username!r} under key {self.raw_key!r} from {self.source}{how}"


def parse_config_entries(config: Mapping[str, Any], source: CredentialSource) -> list[KeyringEntry]:
    """Entries of a ``server → {username,password,email,auth}`` map, decoded like the kubelet.

    ``auth`` overrides ``username``/``password``; an undecodable ``auth`` is an error for the
    whole document (the kubelet's JSON unmarshalling fails the same way).
    """
    entries: list[KeyringEntry] = []
    for raw_key, ident in config.items():
        if not isinstance(ident, dict):
            raise KeyringError(f"{source}: entry {raw_key!r} is not an object")
        username = _str(ident.get("username"))
        password = _str(ident.get("password"))
        email = _str(ident.get("email"))
        auth = _str(ident.get("auth"))
        if auth:
            try:
                creds = decode_auth(auth)
            except DockerConfigError as exc:
                raise KeyringError(f"{source}: entry {raw_key!r}: {exc}") from exc
            username, password = creds.username, creds.password
        key = normalise_key(raw_key)
        if key is None:
            continue
        entries.append(KeyringEntry(raw_key, key, username, password, email, source))
    return entries


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def normalise_key(raw_key: str) -> str | None:
    """Rules 1-2: the match key of an ``auths`` key, or None when it is not a parsable URL."""
    value = raw_key if raw_key.startswith(("https://", "http://")) else "https://" + raw_key
    try:
        parsed = urlsplit(value)
        _ = parsed.port  # validates a numeric port, as Go's url.Parse does
    except ValueError:
        return None
    path = parsed.path
    if path.startswith(("/v2/", "/v1/")):
        path = path[3:]
    return parsed.netloc.rsplit("@", 1)[-1] + path if path and path != "/" else parsed.netloc.rsplit("@", 1)[-1]


def parse_dockerconfigjson(data: bytes | str, source: CredentialSource) -> list[KeyringEntry]:
    """A ``config.json`` / ``.dockerconfigjson`` document: entries of its ``auths`` map."""
    doc = _load_json(data, source)
    auths = doc.get("auths") or {}
    if not isinstance(auths, dict):
        raise KeyringError(f"{source}: 'auths' is not an object")
    return parse_config_entries(auths, source)


def parse_dockercfg(data: bytes | str, source: CredentialSource) -> list[KeyringEntry]:
    """The legacy ``.dockercfg`` document: the server map itself, without an ``auths`` wrapper."""
    return parse_config_entries(_load_json(data, source), source)


def _load_json(data: bytes | str, source: CredentialSource) -> dict[str, Any]:
    try:
        doc = jsondepth.loads(data)
    except ValueError as exc:
        raise KeyringError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise KeyringError(f"{source}: not a JSON object")
    return doc


def entries_from_secret(secret: Mapping[str, Any]) -> tuple[list[KeyringEntry], str | None]:
    """Entries of a Secret object (dict as from the API or ``kubectl get -o json``).

    Returns ``(entries, note)``; the note says why a secret contributes nothing (wrong type, missing
    key) — the kubelet silently skips such a secret, which is exactly what a user needs to hear.
    """
    import base64

    meta = secret.get("metadata") or {}
    name = f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"
    source = CredentialSource("secret", name)
    stype = secret.get("type") or ""
    data = secret.get("data") or {}
    for wanted_type, data_key, parse in ((SECRET_TYPE_DOCKERCONFIGJSON, ".dockerconfigjson",
                                          parse_dockerconfigjson),
                                         (SECRET_TYPE_DOCKERCFG, ".dockercfg", parse_dockercfg)):
        if stype == wanted_type:
            encoded = data.get(data_key)
            if not encoded:
                return [], f"secret {name} has type {stype} but no {data_key} data: skipped by the kubelet"
            try:
                raw = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise KeyringError(f"{source}: {data_key} is not valid base64") from exc
            return parse(raw, source), None
    return [], (f"secret {name} has type {stype or '(none)'}; the kubelet only reads "
                f"{SECRET_TYPE_DOCKERCONFIGJSON} (.dockerconfigjson) or {SECRET_TYPE_DOCKERCFG} (.dockercfg)")


# ---- matching ---------------------------------------------------------------------------------

def normalise_image(image: str) -> str:
    """The repository the kubelet looks up: tag/digest removed, Docker Hub names made explicit."""
    return normalise_name(split_image(image)[0])


def _split_host(netloc: str) -> tuple[list[str], str]:
    """Go's SplitURL: labels of the host and the port ('' when there is none)."""
    host, port = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        host, port = netloc[1:end], netloc[end + 2:] if netloc[end + 1:end + 2] == ":" else ""
    elif netloc.count(":") == 1:
        host, port = netloc.split(":")
    return host.split("."), port


def _schemeless(value: str) -> tuple[str, str]:
    parsed = urlsplit("https://" + value)
    return parsed.netloc, parsed.path


def urls_match(glob_key: str, target: str) -> bool:
    """Rule 4: does the keyring key (a glob) cover the image repository ``target``?"""
    try:
        glob_host, glob_path = _schemeless(glob_key)
        target_host, target_path = _schemeless(target)
    except ValueError:
        return False
    glob_labels, glob_port = _split_host(glob_host)
    target_labels, target_port = _split_host(target_host)
    if glob_port != target_port or len(glob_labels) != len(target_labels):
        return False
    if not all(go_path_match(g, t) for g, t in zip(glob_labels, target_labels, strict=True)):
        return False
    return target_path.startswith(glob_path)


def go_path_match(pattern: str, name: str) -> bool:
    """Go ``path/filepath.Match`` on one host label; a malformed pattern matches nothing."""
    regex = _glob_regex(pattern)
    return regex is not None and regex.fullmatch(name) is not None


def _glob_regex(pattern: str) -> re.Pattern[str] | None:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 >= len(pattern):
                return None
            out.append(re.escape(pattern[i + 1]))
            i += 1
        elif ch == "[":
            cls, i = _glob_class(pattern, i + 1)
            if cls is None:
                return None
            out.append(cls)
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _glob_class(pattern: str, i: int) -> tuple[str | None, int]:
    """A Go character class starting after ``[``; returns (regex, index after ``]``)."""
    negate = i < len(pattern) and pattern[i] == "^"
    if negate:
        i += 1
    ranges: list[str] = []
    first = True
    while True:
        if i >= len(pattern):
            return None, i
        if pattern[i] == "]" and not first:
            i += 1
            break
        lo, i = _class_char(pattern, i)
        if lo is None:
            return None, i
        hi = lo
        if i < len(pattern) and pattern[i] == "-":
            upper, i = _class_char(pattern, i + 1)
            if upper is None or upper < lo:
                return None, i
            hi = upper
        ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
        first = False
    body = "".join(ranges)
    # Go's negated class still never matches the separator.
    return (f"[^/{body}]" if negate else f"(?![/])[{body}]"), i


def _class_char(pattern: str, i: int) -> tuple[str | None, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        return None, i
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            return None, i
    return pattern[i], i + 1


def is_default_registry_match(image: str) -> bool:
    """Rule 6: the image lives on Docker Hub (no registry host, or docker.io/index.docker.io)."""
    parts = image.split("/", 1)
    if not parts[0]:
        return False
    if len(parts) == 1:
        return True
    if parts[0] in ("docker.io", "index.docker.io"):
        return True
    return not any(c in parts[0] for c in ".:")


@dataclass
class BasicKeyring:
    """The kubelet's BasicDockerKeyring: entries merged from several documents, looked up by image."""

    creds: dict[str, list[KeyringEntry]] = field(default_factory=dict)

    def add(self, entries: Iterable[KeyringEntry]) -> None:
        for entry in entries:
            self.creds.setdefault(entry.key, []).append(entry)

    @property
    def index(self) -> list[str]:
        """Rule 3: unique keys, reverse-sorted (byte order, like Go's sort of strings)."""
        return sorted(self.creds, key=lambda k: k.encode(), reverse=True)

    def lookup(self, image: str) -> list[KeyringMatch]:
        """Rules 4-6 for one repository (``normalise_image`` it first, as the kubelet does)."""
        matches = [_as_match(e) for key in self.index if urls_match(key, image) for e in self.creds[key]]
        if matches:
            return matches
        if is_default_registry_match(image) and DEFAULT_REGISTRY_HOST in self.creds:
            return [_as_match(e, fallback=True) for e in self.creds[DEFAULT_REGISTRY_HOST]]
        return []


def _as_match(entry: KeyringEntry, *, fallback: bool = False) -> KeyringMatch:
    return KeyringMatch(entry.key, entry.raw_key, entry.username, entry.password, entry.source, fallback)


def effective_pull_secrets(pod_secrets: Sequence[str], service_account_secrets: Sequence[str]) -> list[str]:
    """The names that end up in the pod spec: the ServiceAccount admission plugin copies the
    service account's ``imagePullSecrets`` only into a pod that lists none of its own."""
    return list(pod_secrets) if pod_secrets else list(service_account_secrets)


@dataclass
class Resolution:
    """The kubelet's view for one image: credentials to try, in order, and why some were ignored."""

    image: str
    matches: list[KeyringMatch]
    notes: list[str]


def resolve(image: str, pull_secrets: Sequence[Mapping[str, Any]] = (),
            node_entries: Sequence[KeyringEntry] = ()) -> Resolution:
    """Rule 7: pod pull secrets (one merged keyring) first, then the node keyring.

    ``pull_secrets`` are Secret objects in the pod's ``imagePullSecrets`` order (see
    :func:`effective_pull_secrets` for service-account secrets); ``node_entries`` come from
    :func:`node_config_entries` and credential-provider output (:func:`provider_entries`).
    """
    repo = normalise_image(image)
    notes: list[str] = []
    secret_ring, node_ring = BasicKeyring(), BasicKeyring()
    for secret in pull_secrets:
        entries, note = entries_from_secret(secret)
        if note:
            notes.append(note)
        secret_ring.add(entries)
    node_ring.add(node_entries)
    return Resolution(repo, secret_ring.lookup(repo) + node_ring.lookup(repo), notes)


def default_node_config_paths(kubelet_root: str = "/var/lib/kubelet", cwd: str = ".",
                              home: str | None = None) -> tuple[list[Path], list[Path]]:
    """Where the kubelet looks for node credentials: ``config.json`` candidates, then ``.dockercfg``."""
    home_dir = home if home is not None else str(Path.home())
    json_paths = [Path(kubelet_root), Path(cwd), Path(home_dir) / ".docker", Path("/.docker")]
    cfg_paths = [Path(kubelet_root), Path(cwd), Path(home_dir), Path("/")]
    return [p / "config.json" for p in json_paths], [p / ".dockercfg" for p in cfg_paths]


def node_config_entries(json_paths: Sequence[Path], dockercfg_paths: Sequence[Path] = ()) -> list[KeyringEntry]:
    """The first readable ``config.json`` wins; only if none exists is a legacy ``.dockercfg`` read."""
    for path in json_paths:
        if path.is_file():
            return parse_dockerconfigjson(path.read_bytes(), CredentialSource("file", str(path)))
    for path in dockercfg_paths:
        if path.is_file():
            return parse_dockercfg(path.read_bytes(), CredentialSource("file", str(path)))
    return []


def provider_entries(name: str, response: Mapping[str, Any]) -> list[KeyringEntry]:
    """Entries from a credential-provider plugin's response ``auth`` map."""
    auth = response.get("auth") or {}
    return parse_config_entries({k: {"username": v.get("username", ""), "password": v.get("password", "")}
                                 for k, v in auth.items() if isinstance(v, dict)},
                                CredentialSource("provider", name))
