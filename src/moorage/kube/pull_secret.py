"""``moorage pull-secret``: from "project + robot" to correct pull Secrets, and keeping them correct.

A pull Secret made from a person's password breaks when the person leaves; one made by hand breaks on
base64 wrapping or a ``https://`` server key. This module makes a pull-only robot on the project and
Secrets that carry it under the key nodes match (``host:port``, exactly as images name the registry).

A robot's secret is shown once, at creation or refresh, and a refresh kills every copy of the old one:
the Secret already serving another namespace would stop working (pods there go to ``ImagePullBackOff``).
So a secret is never refreshed unless ``--rotate`` asks for it. Adding a namespace reuses a working copy
of the robot's secret from a Secret moorage wrote earlier (read through the kubeconfig); when none can be
read (no ``--apply``, or the Secrets are gone), the new namespace gets a robot of its own
(``<robot>-<namespace>``) instead. ``--rotate`` refreshes the robot and rewrites every Secret moorage wrote
for it, naming each. Those Secrets are found by labels (:data:`MANAGED_BY` etc.) and by an annotation
holding the exact robot name, because label values cannot carry ``$`` or ``+``.

The Harbor API and the cluster are behind two small interfaces (:class:`RobotAPI`, :class:`Cluster`) so
the flow reads top to bottom in :func:`provision`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from moorage.client.auth import Credentials
from moorage.core import jsondepth
from moorage.kube.dockerconfig import encode_auth
from moorage.kube.secrets import RegistryAuth, dockerconfigjson, pull_secret

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "moorage"
PROJECT_LABEL = "moorage.io/project"
ROBOT_LABEL = "moorage.io/robot"
ROBOT_ANNOTATION = "moorage.io/robot-name"
REGISTRY_ANNOTATION = "moorage.io/registry"
DOCKERCONFIGJSON_KEY = ".dockerconfigjson"

_ROBOT_BARE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_DNS_BAD = re.compile(r"[^a-z0-9.-]+")


class PullSecretError(Exception):
    """The request cannot be carried out safely; the message says why and what to do instead."""


# ---- names -----------------------------------------------------------------------------------------

def _dns_name(text: str, limit: int = 253) -> str:
    name = _DNS_BAD.sub("-", text.lower()).strip("-.")[:limit].strip("-.")
    if not name:
        raise PullSecretError(f"cannot make a Kubernetes name out of {text!r}; pass --name")
    return name


def default_secret_name(project: str) -> str:
    """``moorage-<project>``, made a valid DNS subdomain (Harbor allows ``_`` in project names, Kubernetes not)."""
    return _dns_name(f"moorage-{project}")


def default_robot_name(secret_name: str) -> str:
    """``pull-<secret name>``: one robot per Secret name, so rotating one never surprises another."""
    bare = re.sub(r"[^a-z0-9]+", "-", f"pull-{secret_name}".lower()).strip("-")
    return bare[:128].rstrip("-")


def bare_robot_name(value: str) -> str:
    """``--robot`` as the user typed it: ``ci``, or a full ``robot$proj+ci`` pasted from a listing."""
    bare = value.rsplit("+", 1)[-1] if "+" in value else value
    if not _ROBOT_BARE.match(bare) or len(bare) > 128:
        raise PullSecretError(f"invalid robot name {value!r}: use lower-case letters and digits, optionally "
                              "separated by single '.', '_' or '-'")
    return bare


def label_value(text: str) -> str:
    """A label value (<= 63 chars of ``[A-Za-z0-9._-]``, alphanumeric at both ends) standing for ``text``.

    Lossy (``robot$p+x`` -> ``robot.p.x``), so lookups also check the exact name in :data:`ROBOT_ANNOTATION`.
    """
    value = _LABEL_BAD.sub(".", text).strip("._-")
    if len(value) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        value = value[:52].rstrip("._-") + "-" + digest
    return value


def registry_host(server_url: str) -> str:
    """What images name the registry by, from the API URL: ``host[:port]`` exactly as written there."""
    netloc = urlsplit(server_url if "://" in server_url else f"https://{server_url}").netloc
    if not netloc:
        raise PullSecretError(f"no registry host in {server_url!r}; pass --registry HOST:PORT")
    return netloc.rsplit("@", 1)[-1]


# ---- robots ----------------------------------------------------------------------------------------

def robot_request(project: str, bare: str, duration: int | None) -> dict[str, Any]:
    """Harbor's RobotCreate for a project robot that may pull the project's repositories and nothing else."""
    body: dict[str, Any] = {
        "name": bare, "level": "project",
        "description": "Kubernetes image pull secret (made by moorage pull-secret)",
        "permissions": [{"kind": "project", "namespace": project,
                         "access": [{"resource": "repository", "action": "pull"}]}],
    }
    if duration is not None:
        body["duration"] = duration
    return body


def pull_only_problem(robot: Mapping[str, Any], project: str) -> str | None:
    """None when ``robot`` can do nothing but pull in ``project``; otherwise what else it can do."""
    extra: list[str] = []
    for permission in robot.get("permissions") or []:
        scope = f"{permission.get('kind')}/{permission.get('namespace')}"
        for access in permission.get("access") or []:
            if access.get("effect", "allow") == "deny":
                continue
            action = f"{access.get('resource')}:{access.get('action')}"
            if permission.get("kind") != "project" or permission.get("namespace") != project or \
                    action != "repository:pull":
                extra.append(f"{scope} {action}")
    return ", ".join(extra) if extra else None


def matches_robot(listed_name: str, project: str, bare: str) -> bool:
    """Listed names carry the server's (configurable) prefix: ``robot$test-1+ci``."""
    return listed_name.endswith(f"{project}+{bare}") and (
        len(listed_name) == len(project) + len(bare) + 1 or not listed_name[-len(project) - len(bare) - 2].isalnum())


@dataclass(frozen=True, slots=True)
class RobotCredential:
    id: int
    name: str
    secret: str
    expires_at: int | None
    how: str  # "created", "refreshed" or "reused"

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.name, self.secret)

    def __repr__(self) -> str:  # never let the secret reach a log or a traceback
        return f"RobotCredential(id={self.id}, name={self.name!r}, secret=<hidden>, how={self.how!r})"


def describe_expiry(expires_at: int | None) -> str:
    if expires_at is None:
        return "expiry unknown"
    if expires_at < 0:
        return "never expires"
    when = dt.datetime.fromtimestamp(expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"expires {when}"


# ---- Secrets ---------------------------------------------------------------------------------------

def tracking_labels(project: str, robot_name: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, PROJECT_LABEL: label_value(project), ROBOT_LABEL: label_value(robot_name)}


def tracking_selector(project: str, robot_name: str) -> str:
    return ",".join(f"{k}={v}" for k, v in tracking_labels(project, robot_name).items())


def managed_secret(name: str, namespace: str | None, registry: str, credentials: Credentials,
                   project: str) -> dict[str, Any]:
    """The kubectl-shaped Secret plus the labels and annotations that let ``--rotate`` find it again."""
    secret = pull_secret(name, dockerconfigjson([RegistryAuth(registry, credentials)]), namespace)
    metadata = secret["metadata"]
    metadata["labels"] = tracking_labels(project, credentials.username)
    metadata["annotations"] = {ROBOT_ANNOTATION: credentials.username, REGISTRY_ANNOTATION: registry}
    return secret


def payload_of(data: Mapping[str, str] | None) -> bytes | None:
    raw = (data or {}).get(DOCKERCONFIGJSON_KEY)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw)
    except ValueError:
        return None


def credentials_in(payload: bytes | None, robot_name: str) -> Credentials | None:
    """The robot's credentials as stored in a ``.dockerconfigjson``, if it holds them."""
    try:
        auths = jsondepth.loads(payload or b"").get("auths") or {}
    except (ValueError, AttributeError):
        return None
    for entry in auths.values():
        if isinstance(entry, dict) and entry.get("username") == robot_name and entry.get("password"):
            return Credentials(robot_name, str(entry["password"]))
    return None


def rotated_payload(payload: bytes, robot_name: str, secret: str) -> bytes:
    """The same ``.dockerconfigjson`` (same server keys, other entries untouched) with the robot's new secret."""
    doc = jsondepth.loads(payload)
    auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
    for entry in auths.values():
        if isinstance(entry, dict) and entry.get("username") == robot_name:
            entry["password"] = secret
            entry["auth"] = encode_auth(Credentials(robot_name, secret))
    if set(doc) == {"auths"} and all(isinstance(e, dict) and e.get("username") and e.get("password")
                                     for e in auths.values()):
        # Written back exactly as kubectl would write it.
        return dockerconfigjson([RegistryAuth(key, Credentials(e["username"], e["password"]), e.get("email") or "")
                                 for key, e in auths.items()])
    return json.dumps(doc, separators=(",", ":")).encode()


# ---- the flow ----------------------------------------------------------------------------------------

class RobotAPI(Protocol):
    """What the flow needs from the Harbor API (satisfied by :class:`moorage.client.harbor.HarborClient`)."""

    def get_project(self, project: str | int) -> dict[str, Any]: ...
    def list_project_robots(self, project_id: int) -> list[dict[str, Any]]: ...
    def create_robot(self, robot: Mapping[str, Any]) -> dict[str, Any]: ...
    def refresh_robot_secret(self, robot_id: int, secret: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class StoredSecret:
    namespace: str
    name: str
    data: dict[str, str]
    annotations: dict[str, str]


class Cluster(Protocol):
    """What the flow needs from Kubernetes (satisfied by :class:`moorage.kube.apply.KubeWriter`)."""

    default_namespace: str

    def find_managed(self, selector: str, namespaces: Sequence[str]) -> list[StoredSecret]: ...
    def apply_secret(self, manifest: Mapping[str, Any]) -> str: ...
    def update_secret_data(self, namespace: str, name: str, data: Mapping[str, str]) -> str: ...
    def add_image_pull_secret(self, namespace: str, service_account: str, secret_name: str) -> str: ...


@dataclass
class Request:
    project: str
    secret_name: str
    robot: str  # bare name, without prefix and project
    registry: str
    namespaces: list[str] = field(default_factory=list)
    service_accounts: list[str] = field(default_factory=list)
    duration: int | None = None
    apply: bool = False
    rotate: bool = False


@dataclass
class Outcome:
    robot: RobotCredential
    manifests: list[dict[str, Any]]


Say = Callable[[str], None]
Verify = Callable[[Credentials], bool]


def find_robot(api: RobotAPI, project_id: int, project: str, bare: str) -> dict[str, Any] | None:
    found = [r for r in api.list_project_robots(project_id) if matches_robot(str(r.get("name", "")), project, bare)]
    return found[0] if found else None


def provision(api: RobotAPI, cluster: Cluster | None, req: Request, verify: Verify, say: Say) -> Outcome:
    """Make sure a robot exists for each target, pick its credential, write/emit the Secrets; never refresh a
    secret in use unless ``req.rotate`` says so (then every copy moorage wrote is updated)."""
    project = api.get_project(req.project)
    project_id = int(project["project_id"])
    existing = find_robot(api, project_id, req.project, req.robot)
    if existing is not None:
        _check_reusable(existing, req.project)
    elif req.rotate:
        raise PullSecretError(f"nothing to rotate: project {req.project} has no robot {req.robot!r} (run without "
                              "--rotate to create it)")
    targets: list[str | None] = list(req.namespaces) or (
        [cluster.default_namespace] if cluster is not None and req.apply else [None])

    tracked = _tracked(cluster, req.project, existing, targets)
    shared: RobotCredential | None
    if existing is None:
        shared = _create(api, req, req.robot, say)
    elif req.rotate:
        shared = _refresh(api, existing, tracked, say)
    else:
        shared = _reuse(existing, tracked, verify, say)
    if shared is not None:
        chosen: dict[str | None, RobotCredential] = dict.fromkeys(targets, shared)
    else:
        assert existing is not None
        say(f"robot {existing['name']}: exists, but no Secret moorage can read holds a working copy of its secret "
            "(a robot's secret is shown only once). Refreshing it would break every Secret already holding it, so "
            "each new Secret gets a robot of its own (refresh deliberately with --rotate)")
        chosen = {t: _own_robot(api, cluster, req, project_id, t, verify, say) for t in targets}
    manifests = [managed_secret(req.secret_name, ns, req.registry, chosen[ns].credentials, req.project)
                 for ns in targets]

    if cluster is not None and req.apply:
        for manifest in manifests:
            ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
            say(f"secret {ns}/{name}: {cluster.apply_secret(manifest)}")
            for sa in req.service_accounts:
                say(f"serviceaccount {ns}/{sa}: {cluster.add_image_pull_secret(ns, sa, name)}")

    if shared is not None and shared.how == "refreshed":
        written = {(m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests} if req.apply else set()
        _rewrite_stale(cluster, [s for s in tracked if (s.namespace, s.name) not in written], shared, req, say)
    return Outcome(chosen[targets[0]], manifests)


def _tracked(cluster: Cluster | None, project: str, robot: Mapping[str, Any] | None,
             targets: Sequence[str | None]) -> list[StoredSecret]:
    """The Secrets moorage wrote for ``robot`` that the kubeconfig lets us read (none without a cluster)."""
    if robot is None or cluster is None:
        return []
    name = str(robot["name"])
    return [s for s in cluster.find_managed(tracking_selector(project, name), [t for t in targets if t])
            if s.annotations.get(ROBOT_ANNOTATION) == name]


def _create(api: RobotAPI, req: Request, bare: str, say: Say) -> RobotCredential:
    made = api.create_robot(robot_request(req.project, bare, req.duration))
    robot = RobotCredential(int(made["id"]), str(made["name"]), str(made["secret"]), made.get("expires_at"),
                            "created")
    say(f"robot {robot.name}: created, pull-only on project {req.project}, {describe_expiry(robot.expires_at)}")
    return robot


def _reuse(robot: Mapping[str, Any], tracked: Sequence[StoredSecret], verify: Verify,
           say: Say) -> RobotCredential | None:
    """A working copy of the robot's secret from a Secret moorage wrote earlier, if one can be read."""
    robot_id, name, expires = int(robot["id"]), str(robot["name"]), robot.get("expires_at")
    for stored in tracked:
        creds = credentials_in(payload_of(stored.data), name)
        if creds is not None and verify(creds):
            say(f"robot {name}: exists; reusing the working secret already stored in Secret "
                f"{stored.namespace}/{stored.name} ({describe_expiry(expires)})")
            return RobotCredential(robot_id, name, creds.password, expires, "reused")
    return None


def _refresh(api: RobotAPI, robot: Mapping[str, Any], tracked: Sequence[StoredSecret], say: Say) -> RobotCredential:
    fresh = api.refresh_robot_secret(int(robot["id"]))
    name = str(robot["name"])
    holders = ", ".join(f"{s.namespace}/{s.name}" for s in tracked) or "none that moorage can see"
    say(f"robot {name}: secret refreshed (--rotate); the old secret is now refused by the registry. Secrets "
        f"moorage wrote with it: {holders}")
    return RobotCredential(int(robot["id"]), name, str(fresh["secret"]), robot.get("expires_at"), "refreshed")


def _rewrite_stale(cluster: Cluster | None, stale: Sequence[StoredSecret], robot: RobotCredential, req: Request,
                   say: Say) -> None:
    if cluster is None:
        say("warning: the robot's old secret no longer works; Secrets already holding it must be rewritten: "
            "apply the output in their namespaces, or let moorage find and update them through your kubeconfig: "
            f"moorage pull-secret {req.project} --robot {req.robot} --rotate")
        return
    for stored in stale:
        payload = payload_of(stored.data)
        if payload is None:
            continue
        data = {**stored.data, DOCKERCONFIGJSON_KEY: base64.b64encode(
            rotated_payload(payload, robot.name, robot.secret)).decode("ascii")}
        result = cluster.update_secret_data(stored.namespace, stored.name, data)
        say(f"secret {stored.namespace}/{stored.name}: {result} (new robot secret)")


def own_robot_name(base: str, namespace: str) -> str:
    """The robot a namespace gets when the shared one's secret cannot be reused: ``<base>-<namespace>``."""
    return bare_robot_name(re.sub(r"[^a-z0-9]+", "-", f"{base}-{namespace}".lower()).strip("-")[:128].rstrip("-"))


def _own_robot(api: RobotAPI, cluster: Cluster | None, req: Request, project_id: int, namespace: str | None,
               verify: Verify, say: Say) -> RobotCredential:
    if namespace is None:
        # A Secret for no namespace yet: the next free numbered robot, so nothing in use is touched.
        for number in range(2, 1000):
            bare = own_robot_name(req.robot, str(number))
            if find_robot(api, project_id, req.project, bare) is None:
                return _create(api, req, bare, say)
        raise PullSecretError(f"robots {req.robot}-2 … {req.robot}-999 all exist; pass --robot NAME")
    bare = own_robot_name(req.robot, namespace)
    found = find_robot(api, project_id, req.project, bare)
    if found is None:
        return _create(api, req, bare, say)
    _check_reusable(found, req.project)
    reused = _reuse(found, _tracked(cluster, req.project, found, [namespace]), verify, say)
    if reused is None:
        raise PullSecretError(
            f"robot {found['name']} (namespace {namespace}'s own) exists too, and no Secret moorage can read holds "
            "its secret; refreshing it would break any Secret still using it. Either refresh it on purpose: "
            f"moorage pull-secret {req.project} --robot {bare} --rotate --apply -n {namespace} (updates the Secrets "
            "moorage wrote for it), or make another: --robot NEW-NAME")
    return reused


def _check_reusable(robot: Mapping[str, Any], project: str) -> None:
    name = robot.get("name")
    problem = pull_only_problem(robot, project)
    if problem:
        raise PullSecretError(f"robot {name} can do more than pull ({problem}); a pull secret would spread that "
                              "power to every namespace that holds it. Choose another --robot name")
    if robot.get("disable"):
        raise PullSecretError(f"robot {name} is disabled: enable it (moorage robot enable) or choose another --robot")
    expires = robot.get("expires_at")
    if isinstance(expires, int) and 0 <= expires < time.time():
        raise PullSecretError(f"robot {name} expired ({describe_expiry(expires)}); delete it or choose another "
                              "--robot, then run this again")
