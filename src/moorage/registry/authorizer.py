"""Who may do what: the interface the dispatcher calls before every handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import Request

from moorage.registry.access import Access


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as far as the registry cares: a name (empty when anonymous) and granted scopes."""

    name: str = ""
    granted: frozenset[str] = field(default_factory=frozenset)

    def may(self, access: Access, action: str) -> bool:
        return f"{access.type}:{access.name}:{action}" in self.granted


class Authorizer(Protocol):
    async def authorize(self, request: Request, needed: list[Access]) -> Principal:
        """Return the principal, or raise ``Unauthorized`` (no valid credentials) or ``Denied``."""


class OpenAuthorizer:
    """Everyone may do everything: the core registry before projects and tokens are configured."""

    async def authorize(self, request: Request, needed: list[Access]) -> Principal:
        return Principal(granted=frozenset(f"{a.type}:{a.name}:{x}" for a in needed for x in a.actions))
