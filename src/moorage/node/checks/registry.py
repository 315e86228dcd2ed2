"""The registry conversation a pull starts with: ``/v2/``, the pull token, the manifest HEAD.

The token check distinguishes the two auth failures users confuse: the token service refusing the
credentials (401: wrong user or password, ``unauthorized``) and a token that is granted but does not
carry the ``pull`` action for the repository (the account has no role on the project: ``denied``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from moorage.client.auth import USER_AGENT, Challenge, Credentials, parse_challenges

MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
))


@dataclass(frozen=True, slots=True)
class Ping:
    status: int
    challenges: list[Challenge]
    api_version: str

    @property
    def bearer(self) -> Challenge | None:
        return next((c for c in self.challenges if c.scheme == "bearer"), None)

    @property
    def basic(self) -> Challenge | None:
        return next((c for c in self.challenges if c.scheme == "basic"), None)


def ping(client: httpx.Client, base_url: str) -> Ping:
    response = client.get(f"{base_url}/v2/", headers={"User-Agent": USER_AGENT})
    return Ping(response.status_code, parse_challenges(response.headers.get_list("www-authenticate")),
                response.headers.get("docker-distribution-api-version", ""))


@dataclass
class PullAuth:
    """The outcome of asking for pull access with one credential (or none)."""

    granted: bool
    cause: str | None = None
    message: str = ""
    header: str | None = None
    actions: list[str] | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _token_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified: the doctor only reads what it was granted."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _granted_actions(claims: dict[str, Any], repository: str) -> list[str]:
    actions: list[str] = []
    for entry in claims.get("access") or []:
        if isinstance(entry, dict) and entry.get("type") == "repository" and entry.get("name") == repository:
            actions += [str(a) for a in entry.get("actions") or []]
    return actions


def pull_access(client: httpx.Client, base_url: str, ping_result: Ping, repository: str,
                credentials: Credentials | None) -> PullAuth:
    """Ask the registry for pull access on ``repository`` the way a runtime does."""
    if ping_result.status == 200:
        return PullAuth(True, message="the registry asks for no authentication")
    who = f"user {credentials.username!r}" if credentials else "anonymous"
    bearer = ping_result.bearer
    if bearer is not None and bearer.realm:
        return _bearer_pull(client, bearer, repository, credentials, who)
    if credentials is None:
        return PullAuth(False, "unauthorized", "unauthorized: authentication required (no credentials sent)")
    response = client.get(f"{base_url}/v2/", headers={"User-Agent": USER_AGENT,
                                                      "Authorization": credentials.basic()})
    if response.status_code == 200:
        return PullAuth(True, message=f"Basic credentials of {who} accepted", header=credentials.basic())
    return PullAuth(False, "unauthorized", f"unauthorized: {who} rejected by {base_url}/v2/ "
                                           f"({response.status_code})")


def _bearer_pull(client: httpx.Client, challenge: Challenge, repository: str,
                 credentials: Credentials | None, who: str) -> PullAuth:
    scope = f"repository:{repository}:pull"
    params = {"scope": scope, **({"service": challenge.service} if challenge.service else {})}
    headers = {"User-Agent": USER_AGENT}
    if credentials is not None:
        params["account"] = credentials.username
        headers["Authorization"] = credentials.basic()
    response = client.get(str(challenge.realm), params=params, headers=headers)
    details = {"token_service": str(challenge.realm), "scope": scope, "status": response.status_code}
    if response.status_code in (401, 403):
        return PullAuth(False, "unauthorized", f"unauthorized: the token service refused the credentials of "
                                               f"{who} ({response.status_code})", details=details)
    if response.status_code != 200:
        return PullAuth(False, "token-service-error", f"the token service {challenge.realm} answered "
                                                      f"{response.status_code}: {response.text[:200]}",
                        details=details)
    try:
        body = response.json()
        token = body.get("token") or body.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        return PullAuth(False, "token-service-error", f"the token service {challenge.realm} answered "
                                                      "without a token", details=details)
    header = f"Bearer {token}"
    claims = _token_claims(token)
    if claims is None or "access" not in claims:
        # An opaque token: only the manifest request can tell whether it carries pull.
        return PullAuth(True, message=f"token granted to {who} (opaque; pull checked with the manifest)",
                        header=header, details=details)
    actions = _granted_actions(claims, repository)
    details["granted_actions"] = actions
    if "pull" not in actions:
        return PullAuth(False, "denied", f"denied: the token for {who} grants {actions or 'no actions'} on "
                                         f"{repository}, not pull", header=header, actions=actions, details=details)
    return PullAuth(True, message=f"token for {who} grants {', '.join(actions)} on {repository}",
                    header=header, actions=actions, details=details)


@dataclass(frozen=True, slots=True)
class ManifestHead:
    status: int
    digest: str
    media_type: str
    error: str


def head_manifest(client: httpx.Client, base_url: str, repository: str, reference: str,
                  authorization: str | None) -> ManifestHead:
    headers = {"User-Agent": USER_AGENT, "Accept": MANIFEST_ACCEPT}
    if authorization:
        headers["Authorization"] = authorization
    url = f"{base_url}/v2/{repository}/manifests/{reference}"
    response = client.head(url, headers=headers)
    error = ""
    if response.status_code >= 400:
        # HEAD has no body; a GET tells the registry's own error code (MANIFEST_UNKNOWN, NAME_UNKNOWN, ...).
        body = client.get(url, headers=headers)
        try:
            errors = body.json().get("errors") or []
            error = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
        except (ValueError, AttributeError):
            error = body.text[:200]
    return ManifestHead(response.status_code, response.headers.get("docker-content-digest", ""),
                        response.headers.get("content-type", ""), error)
