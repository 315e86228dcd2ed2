"""The Docker registry authentication dance, shared by login, doctor, bench and the credential provider.

A registry answers ``GET /v2/`` with 200 (no auth), or 401 plus a ``WWW-Authenticate`` challenge:
``Basic realm=...`` (send the credentials on every request) or ``Bearer realm=...,service=...``
(exchange the credentials at the realm for a token, then send the token). The flow is written once
as a generator that yields requests and receives responses, so the sync and async drivers share it.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

USER_AGENT = "moorage"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        """The ``Authorization`` value for HTTP Basic; ``$`` and ``:`` in secrets pass through as bytes."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class RegistryAuthError(Exception):
    """The registry could not be reached or authenticated against; the message says why."""


class InvalidCredentials(RegistryAuthError):
    """The registry (or its token service) rejected the username or password."""


class RegistryUnreachable(RegistryAuthError):
    """Connection, TLS or protocol failure before credentials could be judged."""


class UnsupportedChallenge(RegistryAuthError):
    """The registry asked for an authentication scheme we do not speak."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge from a ``WWW-Authenticate`` header; scheme and parameter names are lower-cased."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68_CHARS = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Scanner:
    """RFC 9110 section 11.6.1 grammar: challenges are ``scheme [token68 | #auth-param]``, comma-separated."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def skip_ws_commas(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t,":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self, chars: frozenset[str] = _TOKEN_CHARS) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1
        return self.text[start:self.pos]

    def quoted(self) -> str:
        assert self.peek() == '"'
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if ch == '"':
                return "".join(out)
            out.append(ch)
        raise ValueError("unterminated quoted string in WWW-Authenticate")

    def looks_like_param(self) -> bool:
        """True when the text at the cursor is ``name = ...`` (a parameter), not the next challenge."""
        save = self.pos
        name = self.token()
        self.skip_ws()
        is_param = bool(name) and self.peek() == "=" and not self.text.startswith("==", self.pos)
        self.pos = save
        return is_param


def parse_challenges(headers: str | Iterable[str]) -> list[Challenge]:
    """Parse one or more ``WWW-Authenticate`` header values into challenges, in order.

    Malformed trailing input ends parsing instead of raising: a registry with a sloppy header
    should still be usable through the challenges we could read.
    """
    values = [headers] if isinstance(headers, str) else list(headers)
    result: list[Challenge] = []
    for value in values:
        scanner = _Scanner(value)
        try:
            _parse_into(scanner, result)
        except ValueError:
            continue
    return result


def _parse_into(s: _Scanner, result: list[Challenge]) -> None:
    while True:
        s.skip_ws_commas()
        if not s.peek():
            return
        scheme = s.token()
        if not scheme:
            raise ValueError(f"expected an auth scheme at offset {s.pos}")
        s.skip_ws()
        params: dict[str, str] = {}
        token68: str | None = None
        if s.peek() and s.peek() != "," and not s.looks_like_param():
            save = s.pos
            candidate = s.token(_TOKEN68_CHARS)
            while s.peek() == "=":
                candidate += "="
                s.pos += 1
            s.skip_ws()
            if candidate and s.peek() in ("", ","):
                token68 = candidate
            else:
                s.pos = save
        while token68 is None:
            s.skip_ws_commas()
            if not s.peek() or not s.looks_like_param():
                break
            name = s.token().lower()
            s.skip_ws()
            s.pos += 1  # the '='
            s.skip_ws()
            val = s.quoted() if s.peek() == '"' else s.token()
            params.setdefault(name, val)
            s.skip_ws()
            if s.peek() and s.peek() != ",":
                raise ValueError(f"unexpected {s.peek()!r} after parameter {name!r}")
        result.append(Challenge(scheme.lower(), params, token68))


def ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """System trust plus an optional extra CA bundle (the registry's own CA)."""
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


def registry_base_url(registry: str, *, plain_http: bool = False) -> str:
    """``host[:port]`` (or a URL) → the base URL whose ``/v2/`` is the API root."""
    if registry.startswith(("http://", "https://")):
        scheme, _, rest = registry.partition("://")
    else:
        scheme, rest = ("http" if plain_http else "https"), registry
    host = rest.split("/", 1)[0]
    if host in ("index.docker.io", "docker.io"):
        host = "registry-1.docker.io"
    return f"{scheme}://{host}"


def describe_transport_error(exc: Exception, url: str) -> str:
    """Name the real cause of a connection failure, with the fix, instead of a bare traceback line."""
    text = str(exc)
    if "IP address mismatch" in text or "doesn't contain any IP SANs" in text:
        return (f"TLS: the certificate served at {url} does not list this IP address in its "
                "subjectAltName; reissue the certificate with the IP as a SAN (or connect by a name it lists)")
    if "Hostname mismatch" in text:
        return f"TLS: the certificate served at {url} is not valid for this host name ({text})"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (f"TLS: the certificate served at {url} is not trusted ({text}); pass the registry's CA "
                "with --ca-file")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return f"TLS handshake failed at {url}: the server speaks plain HTTP; use --plain-http"
    return f"cannot reach {url}: {text or type(exc).__name__}"


FlowStep = Generator[httpx.Request, httpx.Response, str | None]


def authorization_flow(base_url: str, credentials: Credentials | None,
                       scopes: Sequence[str] = (), *, client_id: str = USER_AGENT) -> FlowStep:
    """Yield the requests of the auth dance; the return value is the ``Authorization`` header or None.

    None means the registry answered ``/v2/`` without asking for credentials. The final request
    checks the obtained header against ``/v2/`` so a 200 here means the credentials really work.
    """
    ping = f"{base_url.rstrip('/')}/v2/"
    response = yield httpx.Request("GET", ping, headers={"User-Agent": USER_AGENT})
    if response.status_code == 200:
        return None
    if response.status_code != 401:
        raise RegistryUnreachable(f"GET {ping} answered {response.status_code}; "
                                  "this does not look like an OCI/Docker registry")
    challenges = parse_challenges(response.headers.get_list("www-authenticate"))
    if not challenges:
        raise UnsupportedChallenge(f"GET {ping} answered 401 without a WWW-Authenticate challenge")
    if credentials is None:
        raise InvalidCredentials(f"{base_url} requires credentials")
    by_scheme = {c.scheme: c for c in reversed(challenges)}
    if "bearer" in by_scheme:
        header = yield from _bearer(by_scheme["bearer"], credentials, scopes, client_id)
    elif "basic" in by_scheme:
        header = credentials.basic()
    else:
        raise UnsupportedChallenge(f"{base_url} offers only {', '.join(c.scheme for c in challenges)}; "
                                   "moorage speaks Basic and Bearer")
    check = yield httpx.Request("GET", ping, headers={"User-Agent": USER_AGENT, "Authorization": header})
    if check.status_code == 200:
        return header
    if check.status_code in (401, 403):
        raise InvalidCredentials(f"{base_url} rejected the credentials for {credentials.username!r} "
                                 f"({check.status_code})")
    raise RegistryUnreachable(f"GET {ping} with credentials answered {check.status_code}")


def _bearer(challenge: Challenge, credentials: Credentials, scopes: Sequence[str],
            client_id: str) -> Generator[httpx.Request, httpx.Response, str]:
    realm = challenge.realm
    if not realm:
        raise UnsupportedChallenge("Bearer challenge without a realm: no token service to ask")
    params: list[tuple[str, str]] = []
    if challenge.service:
        params.append(("service", challenge.service))
    for scope in scopes or ([challenge.scope] if challenge.scope else []):
        params.append(("scope", scope))
    params += [("account", credentials.username), ("client_id", client_id)]
    response = yield httpx.Request("GET", realm, params=tuple(params), headers={
        "User-Agent": USER_AGENT, "Authorization": credentials.basic()})
    if response.status_code in (401, 403):
        raise InvalidCredentials(f"the token service {realm} rejected the credentials for "
                                 f"{credentials.username!r} ({response.status_code})")
    if response.status_code != 200:
        raise RegistryUnreachable(f"the token service {realm} answered {response.status_code}")
    try:
        body: Any = response.json()
    except ValueError as exc:
        raise RegistryUnreachable(f"the token service {realm} did not answer JSON") from exc
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryUnreachable(f"the token service {realm} answered without a token")
    return f"Bearer {token}"


def authorize(client: httpx.Client, base_url: str, credentials: Credentials | None,
              scopes: Sequence[str] = ()) -> str | None:
    """Run the auth dance with a sync client; returns the ``Authorization`` value (None = anonymous)."""
    flow = authorization_flow(base_url, credentials, scopes)
    try:
        request = next(flow)
        while True:
            try:
                response = client.send(request)
            except httpx.TransportError as exc:
                raise RegistryUnreachable(describe_transport_error(exc, str(request.url))) from exc
            request = flow.send(response)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def verify_login(registry: str, credentials: Credentials, *, plain_http: bool = False,
                 ca_file: str | None = None, timeout: float = 30.0) -> str | None:
    """What ``docker login`` checks: these credentials are accepted by this registry's ``/v2/``."""
    base = registry_base_url(registry, plain_http=plain_http)
    with httpx.Client(verify=ssl_context(ca_file), timeout=timeout, follow_redirects=True) as client:
        return authorize(client, base, credentials)
