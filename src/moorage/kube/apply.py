"""Writing pull Secrets through the user's kubeconfig, with the official ``kubernetes`` client.

Create-or-replace per namespace (a replace carries the ``resourceVersion`` it read, and is retried on a
409 so a concurrent writer is never silently overwritten), and adding the Secret to service accounts'
``imagePullSecrets``. That list is atomic in the ServiceAccount type — a patch replaces it whole — so we
send the full list we read plus our entry, pinned to the ``resourceVersion`` we read: entries others
put there are kept, and a racing change makes us re-read instead of dropping it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from moorage.kube.pull_secret import MANAGED_BY, MANAGER, StoredSecret

T = TypeVar("T")
ATTEMPTS = 5


class KubeError(Exception):
    """The cluster refused or could not be reached; the message names the object and the reason."""


def _status_message(exc: Any) -> str:
    try:
        body = json.loads(exc.body or "")
        return str(body.get("message") or exc.reason)
    except (ValueError, AttributeError, TypeError):
        return str(getattr(exc, "reason", "") or exc)


class KubeWriter:
    """One connection to the cluster named by ``kubeconfig``/``context`` (kubectl's defaults otherwise)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            self._api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise KubeError(f"cannot use the kubeconfig ({where}): {exc}") from exc
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
        self.context = str((chosen or {}).get("name") or "")
        self.default_namespace = str(((chosen or {}).get("context") or {}).get("namespace") or "default")
        self.core = client.CoreV1Api(self._api_client)
        self.server = str(self._api_client.configuration.host)

    def close(self) -> None:
        self._api_client.close()

    def __enter__(self) -> KubeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing ----

    def _call(self, what: str, call: Callable[[], T], *, ok: Sequence[int] = ()) -> T | None:
        """Run one API call; a listed status returns None, any other failure becomes a KubeError."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return call()
        except ApiException as exc:
            if exc.status in ok:
                return None
            hint = ""
            if exc.status == 401:
                hint = " (the kubeconfig's credentials were refused)"
            elif exc.status == 403:
                hint = " (the kubeconfig user lacks RBAC permission for this)"
            raise KubeError(f"{what}: {_status_message(exc)} (HTTP {exc.status}){hint}") from exc
        except HTTPError as exc:
            raise KubeError(f"{what}: cannot reach the Kubernetes API at {self.server}: {exc}") from exc

    # ---- Secrets ----

    def apply_secret(self, manifest: Mapping[str, Any]) -> str:
        """Create, or replace what is there; returns "created", "updated", "unchanged" or "replaced"."""
        meta = manifest["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        body = _api_body(manifest)
        for _ in range(ATTEMPTS):
            created = self._call(f"create secret {ns}/{name}",
                                 lambda: self.core.create_namespaced_secret(ns, _as_model(body)), ok=(409,))
            if created is not None:
                return "created"
            current = self._call(f"read secret {ns}/{name}", lambda: self.core.read_namespaced_secret(name, ns),
                                 ok=(404,))
            if current is None:
                continue  # deleted between our create and read: create again
            if (current.type or "Opaque") != body["type"]:
                raise KubeError(f"secret {ns}/{name} exists with type {current.type}; the type of a Secret cannot "
                                f"change: delete it (kubectl delete secret -n {ns} {name}) or choose another --name")
            assert current.metadata is not None  # the API server always returns an object's metadata
            labels, annotations = dict(current.metadata.labels or {}), dict(current.metadata.annotations or {})
            if (dict(current.data or {}) == body["data"] and all(labels.get(k) == v for k, v in
                                                                   body["metadata"]["labels"].items())
                    and all(annotations.get(k) == v for k, v in body["metadata"]["annotations"].items())):
                return "unchanged"
            # Keep labels/annotations others added; ours win on conflict.
            update = {**body, "metadata": {**body["metadata"], "resourceVersion": current.metadata.resource_version,
                                           "labels": {**labels, **body["metadata"]["labels"]},
                                           "annotations": {**annotations, **body["metadata"]["annotations"]}}}
            adopted = labels.get(MANAGED_BY) != MANAGER
            if self._replace(ns, name, update):
                return "replaced (it was not made by moorage; now managed by it)" if adopted else "updated"
        raise KubeError(f"secret {ns}/{name} kept changing under us; try again")

    def _replace(self, ns: str, name: str, body: Mapping[str, Any]) -> bool:
        """False on a 409 (someone wrote in between): the caller re-reads and tries again."""
        return self._call(f"replace secret {ns}/{name}",
                          lambda: self.core.replace_namespaced_secret(name, ns, _as_model(dict(body))),
                          ok=(409,)) is not None

    def update_secret_data(self, namespace: str, name: str, data: Mapping[str, str]) -> str:
        for _ in range(ATTEMPTS):
            current = self._call(f"read secret {namespace}/{name}",
                                 lambda: self.core.read_namespaced_secret(name, namespace), ok=(404,))
            if current is None:
                return "gone (deleted meanwhile)"
            body = self._api_client.sanitize_for_serialization(current)
            body["data"] = dict(data)
            if self._replace(namespace, name, body):
                return "updated"
        raise KubeError(f"secret {namespace}/{name} kept changing under us; try again")

    def find_managed(self, selector: str, namespaces: Sequence[str]) -> list[StoredSecret]:
        """Secrets matching ``selector`` in every namespace; only ``namespaces`` when listing all is forbidden."""
        def every() -> Any:
            return self.core.list_secret_for_all_namespaces(label_selector=selector)

        listed = self._call("list secrets in all namespaces", every, ok=(403,))
        if listed is not None:
            items = list(listed.items or [])
        else:
            items = []
            for ns in namespaces:
                def one(ns: str = ns) -> Any:
                    return self.core.list_namespaced_secret(ns, label_selector=selector)

                found = self._call(f"list secrets in {ns}", one, ok=(404,))
                items += list(found.items or []) if found is not None else []
        return [StoredSecret(str(s.metadata.namespace), str(s.metadata.name), dict(s.data or {}),
                             dict(s.metadata.annotations or {})) for s in items]

    # ---- service accounts ----

    def add_image_pull_secret(self, namespace: str, service_account: str, secret_name: str) -> str:
        """Append ``secret_name`` to the account's ``imagePullSecrets`` unless listed; others stay as they are."""
        what = f"serviceaccount {namespace}/{service_account}"
        for _ in range(ATTEMPTS):
            current = self._call(f"read {what}", lambda: self.core.read_namespaced_service_account(
                service_account, namespace), ok=(404,))
            if current is None:
                raise KubeError(f"{what} not found: create it first (moorage does not create service accounts), "
                                "or pass another --service-account")
            entries = [{"name": ref.name} for ref in current.image_pull_secrets or [] if ref is not None]
            if any(e["name"] == secret_name for e in entries):
                return f"already lists {secret_name}"
            assert current.metadata is not None  # the API server always returns an object's metadata
            patch = {"metadata": {"resourceVersion": current.metadata.resource_version},
                     "imagePullSecrets": [*entries, {"name": secret_name}]}
            done = self._call(f"patch {what}", functools.partial(self.core.patch_namespaced_service_account,
                                                                 service_account, namespace, patch), ok=(409,))
            if done is not None:
                kept = f" (kept {', '.join(str(e['name']) for e in entries)})" if entries else ""
                return f"imagePullSecrets += {secret_name}{kept}"
        raise KubeError(f"{what} kept changing under us; try again")


def _as_model(body: dict[str, Any]) -> Any:
    """A body where the client's signature names its model class (``V1Secret``): the client serialises a plain
    dict as it is, so the request carries exactly the manifest moorage rendered, as kubectl would send it."""
    return body


def _api_body(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as the API takes it: no ``creationTimestamp: null`` (that field is the server's)."""
    meta = {k: v for k, v in manifest["metadata"].items() if k != "creationTimestamp"}
    meta.setdefault("labels", {})
    meta.setdefault("annotations", {})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": manifest["type"],
            "data": dict(manifest["data"])}
