"""Registry bearer tokens and node pull credentials: JWTs signed with the store's key.

Only ES256 with a known ``kid`` is accepted; ``alg: none``, HMAC tricks, unknown keys, a wrong audience
or issuer, and expired or not-yet-valid tokens are all refused the same way.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from moorage.auth.keys import ALGORITHM, KeyRing

#: Audience suffix of node pull credentials, so a registry token is never accepted as one (or back).
NODE_AUDIENCE_SUFFIX = "/node-credential"
LEEWAY_SECONDS = 10


class InvalidToken(Exception):
    """The token cannot be trusted; the message is safe to show (it never echoes the token)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    issued_at: float
    expires_in: int


class TokenCodec:
    #: Verified tokens remembered per process. A token is immutable and only its expiry, or its key being
    #: burned (the signing keys' version moves), changes its verdict, so a hit needs no signature check:
    #: clients reuse one token for hundreds of requests, and an ECDSA verification costs more than the whole
    #: rest of a manifest GET.
    CACHE_SIZE = 4096

    def __init__(self, keys: KeyRing, issuer: str, service: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.service = service
        #: (token, audience) -> (claims, the signing keys' version they were verified under)
        self._verified: OrderedDict[tuple[str, str], tuple[dict[str, Any], int]] = OrderedDict()

    def _sign(self, claims: dict[str, Any]) -> str:
        import jwt  # on first use, as cryptography in moorage.auth.keys

        kid, private = self.keys.signing_key()
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})

    def issue(self, subject: str, access: list[dict[str, Any]], lifetime: int,
              audience: str | None = None, **extra: Any) -> IssuedToken:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": audience or self.service, "exp": now + lifetime,
                  "nbf": now - LEEWAY_SECONDS, "iat": now, "jti": secrets.token_urlsafe(18), "access": access,
                  **extra}
        return IssuedToken(self._sign(claims), float(now), lifetime)

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        key = (token, audience or self.service)
        version = self.keys.version()
        known = self._verified.get(key)
        if known is not None:
            claims, verified_under = known
            if verified_under == version and claims["exp"] + LEEWAY_SECONDS > time.time():
                return claims
            self._verified.pop(key, None)
        claims = self._verify(token, audience)
        self._verified[key] = (claims, version)
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str, audience: str | None) -> dict[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("the token is malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"the token's algorithm is not {ALGORITHM}")
        kid = header.get("kid")
        key = self.keys.public_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("the token was not signed by a key of this registry")
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience or self.service,
                              issuer=self.issuer, leeway=LEEWAY_SECONDS,
                              options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("the token is invalid") from exc

    @property
    def node_audience(self) -> str:
        return self.service + NODE_AUDIENCE_SUFFIX


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("eyJ")


def granted_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """The token's ``access`` claim as ``type:name:action`` strings (malformed entries ignored)."""
    granted: set[str] = set()
    access = claims.get("access")
    if not isinstance(access, list):
        return frozenset()
    for entry in access:
        if not isinstance(entry, dict):
            continue
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if isinstance(kind, str) and isinstance(name, str) and isinstance(actions, list):
            granted.update(f"{kind}:{name}:{a}" for a in actions if isinstance(a, str))
    return frozenset(granted)
