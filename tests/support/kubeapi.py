"""A stand-in for the Kubernetes API server, run as a real HTTPS process on 127.0.0.1.

**Why a stand-in:** no kube-apiserver can be installed on this machine class (no Debian, PyPI or npm
package ships one), so tests of ``moorage pull-secret --apply`` talk to this instead. It is small but
follows the real server's documented wire behaviour for exactly the calls moorage makes through the
official ``kubernetes`` Python client, so that client runs unmodified against it:

- ``GET /version``, ``GET /api`` (discovery);
- namespaces: ``GET/POST /api/v1/namespaces``, ``GET /api/v1/namespaces/{ns}``; a new namespace gets its
  ``default`` ServiceAccount, as the service-account controller would add it;
- secrets: ``GET/POST /api/v1/namespaces/{ns}/secrets`` (list with ``labelSelector``; create answers 201,
  or 409 ``AlreadyExists``), ``GET/PUT/DELETE /api/v1/namespaces/{ns}/secrets/{name}`` (404 ``NotFound``;
  PUT with a stale ``resourceVersion`` is a 409 ``Conflict``; ``type`` is immutable; a
  ``kubernetes.io/dockerconfigjson`` Secret must hold valid JSON under ``.dockerconfigjson``), and
  ``GET /api/v1/secrets`` across namespaces;
- service accounts: list, ``GET``, ``PUT`` and ``PATCH`` ``/api/v1/namespaces/{ns}/serviceaccounts/{name}``
  with ``application/strategic-merge-patch+json`` (what the Python client sends for a dict body),
  ``application/merge-patch+json`` and ``application/json-patch+json``. As in Kubernetes,
  ``imagePullSecrets`` of a ServiceAccount is an atomic list (a patch replaces it whole) while ``secrets``
  merges by ``name``; a ``metadata.resourceVersion`` in a patch is a precondition (409 on mismatch);
- every write bumps one global ``resourceVersion``; errors are ``Status`` objects with the real reasons;
- every request needs ``Authorization: Bearer <token>`` (else 401 ``Unauthorized``).

``GET /_standin/requests`` returns ``[{"method", "path", "content_type"}]`` of what was called, so tests can
check what the client really sent. Run it with :class:`KubeAPIServer` (which also writes a kubeconfig with
the CA and the token), or ``python -m tests.support.kubeapi --listen 127.0.0.1:PORT --token T --cert C --key K``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import datetime as dt
import json
import os
import re
import secrets
import ssl
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

JSONObj = dict[str, Any]
DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class APIError(Exception):
    """Rendered as a ``Status`` object, as the real server does for every failure."""

    def __init__(self, code: int, reason: str, message: str, details: JSONObj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> JSONObj:
        body: JSONObj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


def invalid(kind: str, name: str, field: str, why: str) -> APIError:
    return APIError(422, "Invalid", f'{kind} "{name}" is invalid: {field}: {why}',
                    {"name": name, "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": why,
                                                             "field": field}]})


# ---- label selectors -------------------------------------------------------------------------------

def _split_requirements(selector: str) -> list[str]:
    """Commas separate requirements except inside ``in (a,b)``."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def label_matches(selector: str, labels: dict[str, str]) -> bool:
    """The label-selector grammar: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (..)``, ``k notin (..)``."""
    for req in _split_requirements(selector):
        set_match = re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", req)
        if set_match:
            key, op, values = set_match.group(1), set_match.group(2), {v.strip() for v in set_match.group(3).split(",")}
            inside = key in labels and labels[key] in values
            if inside != (op == "in"):
                return False
            continue
        if "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in req:
            key, value = (s.strip() for s in req.split("==" if "==" in req else "=", 1))
            if labels.get(key) != value:
                return False
        elif req.startswith("!"):
            if req[1:].strip() in labels:
                return False
        elif req not in labels:
            return False
    return True


# ---- patches ---------------------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_serviceaccount(target: JSONObj, patch: JSONObj) -> JSONObj:
    """Strategic merge for a ServiceAccount: like a merge patch, but ``secrets`` merges by ``name``.

    ``imagePullSecrets`` carries no patch strategy in the ServiceAccount type (``+listType=atomic``), so a
    patch replaces the whole list; that is why a client must send the full list it wants.
    """
    plain = {k: v for k, v in patch.items() if k != "secrets"}
    result = merge_patch(target, plain)
    if "secrets" in patch:
        if patch["secrets"] is None:
            result.pop("secrets", None)
        else:
            merged = {s.get("name"): s for s in result.get("secrets") or []}
            for item in patch["secrets"]:
                if item.get("$patch") == "delete":
                    merged.pop(item.get("name"), None)
                else:
                    merged[item.get("name")] = merge_patch(merged.get(item.get("name")), item)
            result["secrets"] = list(merged.values())
    return result


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise APIError(422, "Invalid", f"json patch path {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target: JSONObj, operations: list[JSONObj]) -> JSONObj:
    """RFC 6902 subset the real server accepts: add, remove, replace, test."""
    doc = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(str(op.get("path", "")))
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        kind = op.get("op")
        try:
            if kind == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent[last]
                if current != op.get("value"):
                    raise APIError(422, "Invalid", f"the server rejected our request due to an error in our "
                                   f"request: testing value {op.get('path')} failed")
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind in ("add", "replace"):
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(op.get("value"))
                    elif kind == "add":
                        parent.insert(int(last), op.get("value"))
                    else:
                        parent[int(last)] = op.get("value")
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = op.get("value")
            else:
                raise APIError(422, "Invalid", f"unsupported json patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise APIError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                           f"{kind} {op.get('path')}: {exc!r}") from exc
    return doc


# ---- the store ---------------------------------------------------------------------------------------

class Store:
    """All objects, under one lock; ``resourceVersion`` is one counter for everything, like etcd's revision."""

    def __init__(self, namespaces: list[str]) -> None:
        self.lock = threading.Lock()
        self.revision = 1
        self.namespaces: dict[str, JSONObj] = {}
        self.objects: dict[tuple[str, str, str], JSONObj] = {}  # (resource, namespace, name)
        self.requests: list[JSONObj] = []
        for ns in namespaces:
            self.create_namespace({"metadata": {"name": ns}})

    def _bump(self) -> str:
        self.revision += 1
        return str(self.revision)

    def _stamp(self, obj: JSONObj, namespace: str | None) -> None:
        meta = obj.setdefault("metadata", {})
        meta.pop("creationTimestamp", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["resourceVersion"] = self._bump()
        if namespace is not None:
            meta["namespace"] = namespace

    def create_namespace(self, body: JSONObj) -> JSONObj:
        name = str((body.get("metadata") or {}).get("name") or "")
        if not _DNS_SUBDOMAIN.match(name) or len(name) > 63:
            raise invalid("Namespace", name, "metadata.name", "a lowercase RFC 1123 label must consist of lower "
                          "case alphanumeric characters or '-'")
        if name in self.namespaces:
            raise APIError(409, "AlreadyExists", f'namespaces "{name}" already exists',
                           {"name": name, "kind": "namespaces"})
        ns = {"kind": "Namespace", "apiVersion": "v1", "metadata": dict(body.get("metadata") or {}),
              "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        self._stamp(ns, None)
        self.namespaces[name] = ns
        sa = {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "default"}}
        self._stamp(sa, name)
        self.objects[("serviceaccounts", name, "default")] = sa
        return ns

    def require_namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise not_found("namespaces", namespace)

    def get(self, resource: str, namespace: str, name: str) -> JSONObj:
        self.require_namespace(namespace)
        obj = self.objects.get((resource, namespace, name))
        if obj is None:
            raise not_found(resource, name)
        return obj

    def list(self, resource: str, namespace: str | None, selector: str | None) -> list[JSONObj]:
        if namespace is not None:
            self.require_namespace(namespace)
        found = [o for (r, ns, _), o in sorted(self.objects.items())
                 if r == resource and (namespace is None or ns == namespace)]
        if selector:
            found = [o for o in found if label_matches(selector, o["metadata"].get("labels") or {})]
        return found

    def create(self, resource: str, kind: str, namespace: str, body: JSONObj) -> JSONObj:
        self.require_namespace(namespace)
        obj = self._validated(resource, kind, namespace, body)
        name = obj["metadata"]["name"]
        if (resource, namespace, name) in self.objects:
            raise APIError(409, "AlreadyExists", f'{resource} "{name}" already exists',
                           {"name": name, "kind": resource})
        self._stamp(obj, namespace)
        self.objects[(resource, namespace, name)] = obj
        return obj

    def replace(self, resource: str, kind: str, namespace: str, name: str, body: JSONObj) -> JSONObj:
        current = self.get(resource, namespace, name)
        obj = self._validated(resource, kind, namespace, body)
        if obj["metadata"]["name"] != name:
            raise APIError(400, "BadRequest", f"the name of the object ({obj['metadata']['name']}) does not match "
                           f"the name on the URL ({name})")
        wanted = obj["metadata"].get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise APIError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the object '
                           "has been modified; please apply your changes to the latest version and try again",
                           {"name": name, "kind": resource})
        if resource == "secrets" and obj.get("type", "Opaque") != current.get("type", "Opaque"):
            raise invalid("Secret", name, "type", "field is immutable")
        if current.get("immutable") and (obj.get("data") != current.get("data")):
            raise invalid("Secret", name, "data", "field is immutable when `immutable` is set")
        meta = obj["metadata"]
        for kept in ("uid", "creationTimestamp"):
            meta[kept] = current["metadata"][kept]
        meta["namespace"] = namespace
        unchanged = {k: v for k, v in obj.items() if k != "metadata"} == {
            k: v for k, v in current.items() if k != "metadata"} and meta.get("labels") == current["metadata"].get(
            "labels") and meta.get("annotations") == current["metadata"].get("annotations")
        # The real server skips the write (and keeps resourceVersion) when nothing changed.
        meta["resourceVersion"] = current["metadata"]["resourceVersion"] if unchanged else self._bump()
        self.objects[(resource, namespace, name)] = obj
        return obj

    def delete(self, resource: str, namespace: str, name: str) -> JSONObj:
        obj = self.get(resource, namespace, name)
        del self.objects[(resource, namespace, name)]
        self._bump()
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "kind": resource, "uid": obj["metadata"]["uid"]}}

    def patch(self, resource: str, kind: str, namespace: str, name: str, content_type: str, patch: Any) -> JSONObj:
        current = self.get(resource, namespace, name)
        base = copy.deepcopy(current)
        base.setdefault("kind", kind)
        base.setdefault("apiVersion", "v1")
        if content_type == "application/json-patch+json":
            if not isinstance(patch, list):
                raise APIError(400, "BadRequest", "json patch must be a list of operations")
            result = json_patch(base, patch)
        elif not isinstance(patch, dict):
            raise APIError(400, "BadRequest", "the patch must be a JSON object")
        elif content_type == "application/merge-patch+json":
            result = merge_patch(base, patch)
        elif content_type == "application/strategic-merge-patch+json":
            result = strategic_merge_serviceaccount(base, patch) if resource == "serviceaccounts" else merge_patch(
                base, patch)
        else:
            raise APIError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: application/json-patch+json, application/merge-patch+"
                           f"json, application/apply-patch+yaml, application/strategic-merge-patch+json "
                           f"(got {content_type!r})")
        wanted = (result.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise APIError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the object '
                           "has been modified; please apply your changes to the latest version and try again",
                           {"name": name, "kind": resource})
        result.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.replace(resource, kind, namespace, name, result)

    def _validated(self, resource: str, kind: str, namespace: str, body: JSONObj) -> JSONObj:
        if not isinstance(body, dict):
            raise APIError(400, "BadRequest", "the request body must be a JSON object")
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, kind) or obj.get("apiVersion") not in (None, "v1"):
            raise APIError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) or kind "
                           f"({obj.get('kind')}) does not match the expected v1 {kind}")
        obj["kind"], obj["apiVersion"] = kind, "v1"
        meta = obj.setdefault("metadata", {})
        name = str(meta.get("name") or "")
        if meta.get("namespace") not in (None, namespace):
            raise APIError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        if not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            raise invalid(kind, name, "metadata.name", "a lowercase RFC 1123 subdomain must consist of lower case "
                          "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")
        for key, value in (meta.get("labels") or {}).items():
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                raise invalid(kind, name, f"metadata.labels: Invalid value: {value!r}",
                              "a valid label must be an empty string or consist of alphanumeric characters, '-', "
                              "'_' or '.', and must start and end with an alphanumeric character")
            if not isinstance(key, str) or not key:
                raise invalid(kind, name, "metadata.labels", "invalid label key")
        for dropped in ("uid", "creationTimestamp", "selfLink", "managedFields"):
            meta.pop(dropped, None)
        for empty in ("labels", "annotations"):
            if meta.get(empty) == {}:
                del meta[empty]
        if resource == "secrets":
            self._validate_secret(obj, name)
        return obj

    @staticmethod
    def _validate_secret(obj: JSONObj, name: str) -> None:
        data = dict(obj.get("data") or {})
        for key, value in (obj.pop("stringData", None) or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        for key, value in data.items():
            if not _DATA_KEY.match(key):
                raise invalid("Secret", name, f"data[{key}]", "a valid config key must consist of alphanumeric "
                              "characters, '-', '_' or '.'")
            try:
                base64.b64decode(str(value), validate=True)
            except binascii.Error as exc:
                raise APIError(400, "BadRequest", f"Secret in version \"v1\" cannot be handled as a Secret: "
                               f"illegal base64 data in data[{key}]") from exc
        if data:
            obj["data"] = data
        obj.setdefault("type", "Opaque")
        if obj["type"] == DOCKERCONFIGJSON:
            raw = data.get(".dockerconfigjson")
            if raw is None:
                raise invalid("Secret", name, "data[.dockerconfigjson]", "Required value")
            try:
                json.loads(base64.b64decode(raw))
            except ValueError as exc:
                raise invalid("Secret", name, "data[.dockerconfigjson]", f"invalid JSON: {exc}") from exc


# ---- HTTP ------------------------------------------------------------------------------------------

_ROUTES = [
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(secrets|serviceaccounts)/([^/]+)$"), "item"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(secrets|serviceaccounts)$"), "collection"),
    (re.compile(r"^/api/v1/(secrets|serviceaccounts)$"), "all"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)$"), "namespace"),
    (re.compile(r"^/api/v1/namespaces$"), "namespaces"),
]
_KINDS = {"secrets": "Secret", "serviceaccounts": "ServiceAccount"}


def _for_list(obj: JSONObj) -> JSONObj:
    """List items carry no kind/apiVersion on the wire."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class Handler(BaseHTTPRequestHandler):
    server_version = "kube-apiserver-standin/1.32"
    protocol_version = "HTTP/1.1"
    store: Store
    token: str

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.command} {self.path} -> {format % args}\n")

    def _send(self, code: int, body: JSONObj | list[Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise APIError(400, "BadRequest", f"the request body is not JSON: {exc}") from exc

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if self.headers.get("Authorization") != f"Bearer {self.token}":
                self._body()
                raise APIError(401, "Unauthorized", "Unauthorized")
            with self.store.lock:
                self.store.requests.append({"method": self.command, "path": url.path, "content_type": content_type})
                code, body = self._route(url.path, query, content_type)
        except APIError as error:
            code, body = error.code, error.status()
        self._send(code, body)

    def _route(self, path: str, query: dict[str, str], content_type: str) -> tuple[int, Any]:
        store, method = self.store, self.command
        if path in ("/version", "/version/") and method == "GET":
            return 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-moorage-standin",
                         "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z",
                         "goVersion": "go1.23.4", "compiler": "gc", "platform": "linux/amd64"}
        if path in ("/api", "/api/") and method == "GET":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.headers.get("Host", "")}]}
        if path == "/_standin/requests" and method == "GET":
            return 200, list(store.requests)
        for pattern, shape in _ROUTES:
            match = pattern.match(path)
            if not match:
                continue
            groups = [unquote(g) for g in match.groups()]
            if shape == "namespaces":
                if method == "GET":
                    return 200, {"kind": "NamespaceList", "apiVersion": "v1",
                                 "metadata": {"resourceVersion": str(store.revision)},
                                 "items": [_for_list(n) for n in store.namespaces.values()]}
                if method == "POST":
                    return 201, store.create_namespace(self._body() or {})
            elif shape == "namespace" and method == "GET":
                store.require_namespace(groups[0])
                return 200, store.namespaces[groups[0]]
            elif shape == "all" and method == "GET":
                return 200, self._list(groups[0], None, query)
            elif shape == "collection":
                namespace, resource = groups
                if method == "GET":
                    return 200, self._list(resource, namespace, query)
                if method == "POST":
                    return 201, store.create(resource, _KINDS[resource], namespace, self._body() or {})
            elif shape == "item":
                namespace, resource, name = groups
                if method == "GET":
                    return 200, store.get(resource, namespace, name)
                if method == "PUT":
                    return 200, store.replace(resource, _KINDS[resource], namespace, name, self._body() or {})
                if method == "PATCH":
                    return 200, store.patch(resource, _KINDS[resource], namespace, name, content_type, self._body())
                if method == "DELETE":
                    self._body()
                    return 200, store.delete(resource, namespace, name)
            raise APIError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                           f"resource ({method} {path})")
        raise APIError(404, "NotFound", "the server could not find the requested resource")

    def _list(self, resource: str, namespace: str | None, query: dict[str, str]) -> JSONObj:
        items = self.store.list(resource, namespace, query.get("labelSelector"))
        return {"kind": f"{_KINDS[resource]}List", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.store.revision)}, "items": [_for_list(i) for i in items]}

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def serve(listen: str, token: str, cert: str, key: str, namespaces: list[str]) -> None:
    host, _, port = listen.rpartition(":")
    if not host.startswith("127."):
        raise SystemExit("the stand-in only listens on a loopback address")
    handler = type("BoundHandler", (Handler,), {"store": Store(namespaces), "token": token})
    httpd = ThreadingHTTPServer((host, int(port)), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    sys.stderr.write(f"kube-apiserver stand-in listening on https://{listen}\n")
    sys.stderr.flush()
    httpd.serve_forever()


# ---- the test-side handle ---------------------------------------------------------------------------

class KubeAPIServer:
    """Start the stand-in as a separate process on a free loopback port; ``kubeconfig`` points at it."""

    def __init__(self, workdir: Path, namespaces: tuple[str, ...] = ("default",)) -> None:
        from tests.support.procs import free_port

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.token = "standin-" + secrets.token_hex(16)
        self.namespaces = namespaces
        self.kubeconfig = self.workdir / "kubeconfig"
        self.context = "standin"
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> KubeAPIServer:
        from tests.support.procs import ManagedProcess, wait_until
        from tests.support.tlscerts import make_tls_files

        tls = make_tls_files(self.workdir / "tls", ips=["127.0.0.1"], dns=["localhost"])
        self.ca_file = tls.ca
        self._write_kubeconfig(tls.ca_pem)
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "tests.support.kubeapi", "--listen", f"127.0.0.1:{self.port}",
                   "--token", self.token, "--cert", str(tls.certificate), "--key", str(tls.key)]
        for ns in self.namespaces:
            command += ["--namespace", ns]
        self.process = ManagedProcess(command, self.workdir / "kubeapi.log", env=env, cwd=root).start()
        wait_until(self._ready, timeout=30, what=f"kube-apiserver stand-in on {self.url}", process=self.process)
        return self

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _ready(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/version", verify=self.tls_context(), timeout=1,
                             headers={"Authorization": f"Bearer {self.token}"}).status_code == 200
        except httpx.HTTPError:
            return False

    def _write_kubeconfig(self, ca_pem: bytes) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": self.context, "preferences": {},
            "clusters": [{"name": "standin", "cluster": {
                "server": self.url, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
            "users": [{"name": "standin-admin", "user": {"token": self.token}}],
            "contexts": [{"name": self.context, "context": {"cluster": "standin", "user": "standin-admin",
                                                             "namespace": "default"}}],
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def requests(self) -> list[JSONObj]:
        import httpx

        response = httpx.get(f"{self.url}/_standin/requests", verify=self.tls_context(),
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        response.raise_for_status()
        return list(response.json())

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def running(workdir: Path, namespaces: tuple[str, ...] = ("default",)) -> Iterator[KubeAPIServer]:
    """For fixtures: ``yield from running(tmp, ("a", "b"))``."""
    server = KubeAPIServer(workdir, namespaces).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--namespace", action="append", default=[])
    args = parser.parse_args(argv)
    serve(args.listen, args.token, args.cert, args.key, args.namespace)


if __name__ == "__main__":
    main()
