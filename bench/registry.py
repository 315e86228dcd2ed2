"""The registry client the harness populates both servers with, through the Distribution API only.

Authentication is discovered, never configured per server: a 401 from ``GET /v2/`` names either Basic
(distribution's htpasswd) or a Bearer token realm (Docker token auth, moorage), and the client follows it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

from bench.loadgen.http import Connection, FileBody, Response, split_location

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
                             "application/vnd.docker.distribution.manifest.v2+json",
                             "application/vnd.docker.distribution.manifest.list.v2+json"])
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(RuntimeError):
    """A request the benchmark relies on did not get the answer the specification promises."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Challenge:
    scheme: str
    params: dict[str, str]


def parse_challenge(value: str) -> Challenge:
    scheme, _, rest = value.strip().partition(" ")
    return Challenge(scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest)))


def expect(response: Response, statuses: tuple[int, ...], what: str) -> Response:
    if response.status not in statuses:
        raise RegistryError(f"{what}: HTTP {response.status} {response.body[:300]!r}")
    return response


def token_query(challenge: Challenge, scope: str) -> str:
    """Several scopes travel as repeated ``scope`` parameters, as the token specification says."""
    pairs = [("service", challenge.params.get("service", ""))] + [("scope", s) for s in scope.split()]
    return urlencode(pairs)


@dataclass
class Registry:
    """Thread-safe: each thread gets its own keep-alive connection; tokens are shared per scope."""

    url: str
    credentials: tuple[str, str] | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _auth: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _challenge: Challenge | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    def conn(self) -> Connection:
        connection = getattr(self._local, "conn", None)
        if connection is None:
            connection = Connection(self.host, self.port, buffer_size=1024 * 1024)
            self._local.conn = connection
        return connection

    # -- authentication -------------------------------------------------------------------------------

    def challenge(self) -> Challenge | None:
        """The server's answer to an anonymous ``GET /v2/``: None when it needs no credentials."""
        response = self.conn().request("GET", "/v2/")
        if response.status == 200:
            return None
        expect(response, (401,), "GET /v2/")
        return parse_challenge(response.header("www-authenticate"))

    def auth_headers(self, scope: str) -> dict[str, str]:
        """Headers that authorize ``scope`` (e.g. ``repository:bench/x:pull,push``), fetched once and reused."""
        with self._lock:
            if scope in self._auth:
                return self._auth[scope]
            if self._challenge is None:
                self._challenge = self.challenge() or Challenge("none", {})
            headers = self._authorize(self._challenge, scope)
            self._auth[scope] = headers
            return headers

    def _authorize(self, challenge: Challenge, scope: str) -> dict[str, str]:
        if challenge.scheme == "none":
            return {}
        if self.credentials is None:
            raise RegistryError(f"{self.url} asks for {challenge.scheme} authentication and we have no credentials")
        basic = basic_header(*self.credentials)
        if challenge.scheme == "basic":
            return {"Authorization": basic}
        if challenge.scheme != "bearer":
            raise RegistryError(f"unknown authentication scheme {challenge.scheme!r}")
        return {"Authorization": f"Bearer {self.fetch_token(challenge, scope)}"}

    def fetch_token(self, challenge: Challenge, scope: str) -> str:
        """Docker token authentication: GET the realm with service and scope, Basic credentials attached."""
        realm = challenge.params.get("realm", "")
        query = token_query(challenge, scope)
        assert self.credentials is not None
        connection, path = split_location(realm, self.conn())
        response = connection.request("GET", f"{path}?{query}", {"Authorization": basic_header(*self.credentials)})
        expect(response, (200,), f"token from {realm}")
        document = json.loads(response.body)
        token = document.get("token") or document.get("access_token")
        if not token:
            raise RegistryError(f"token endpoint {realm} answered without a token: {response.body[:200]!r}")
        return str(token)

    def token_url(self, scope: str) -> tuple[str, dict[str, str]] | None:
        """Path+query of the token endpoint for ``scope`` and the Basic header it wants; None without one."""
        if self._challenge is None:
            self._challenge = self.challenge() or Challenge("none", {})
        if self._challenge.scheme != "bearer" or self.credentials is None:
            return None
        realm = self._challenge.params.get("realm", "")
        query = token_query(self._challenge, scope)
        return f"{realm}?{query}", {"Authorization": basic_header(*self.credentials)}

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                body: bytes | FileBody | None = None, keep_body: bool = True) -> Response:
        all_headers = {**self.auth_headers(scope), **(headers or {})}
        return self.conn().request(method, path, all_headers, body, keep_body)

    # -- blobs and manifests --------------------------------------------------------------------------

    def push_blob(self, repo: str, digest: str, body: bytes | FileBody) -> None:
        """POST an upload, then PUT all the bytes with the digest: the monolithic upload of the spec."""
        scope = f"repository:{repo}:pull,push"
        started = expect(self.request("POST", f"/v2/{repo}/blobs/uploads/", scope), (202,), f"start upload to {repo}")
        self._finish_upload(repo, started.header("location"), digest, body, scope)

    def _finish_upload(self, repo: str, location: str, digest: str, body: bytes | FileBody, scope: str) -> None:
        connection, path = split_location(location, self.conn())
        path += ("&" if "?" in path else "?") + f"digest={quote(digest)}"
        headers = {**self.auth_headers(scope), "Content-Type": "application/octet-stream"}
        expect(connection.request("PUT", path, headers, body), (201,), f"finish upload of {digest} to {repo}")

    def mount_blob(self, repo: str, digest: str, source: str, body: bytes) -> None:
        """Cross-repository mount; a server that declines (202) gets the bytes uploaded instead."""
        scope = f"repository:{repo}:pull,push repository:{source}:pull"
        query = urlencode({"mount": digest, "from": source})
        response = self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}", scope)
        if response.status == 201:
            return
        expect(response, (202,), f"mount {digest} into {repo}")
        self._finish_upload(repo, response.header("location"), digest, body, scope)

    def put_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> str:
        scope = f"repository:{repo}:pull,push"
        response = self.request("PUT", f"/v2/{repo}/manifests/{reference}", scope,
                                {"Content-Type": media_type}, manifest)
        expect(response, (201,), f"PUT manifest {repo}:{reference}")
        return response.header("docker-content-digest") or sha256_digest(manifest)

    def close(self) -> None:
        connection = getattr(self._local, "conn", None)
        if connection is not None:
            connection.close()
            self._local.conn = None


def image_manifest(config: tuple[str, int], layers: list[tuple[str, int]],
                   annotations: dict[str, str] | None = None) -> bytes:
    """A canonical OCI image manifest; annotations make otherwise identical manifests distinct."""
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def image_config(layer_digests: list[str]) -> bytes:
    """A small but valid image configuration (diff_ids are not checked by registries)."""
    return json.dumps({"architecture": "amd64", "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": layer_digests}},
                      separators=(",", ":"), sort_keys=True).encode()
