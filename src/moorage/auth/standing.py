"""Whether the account a bearer token was issued to still stands as it did then.

Tokens stay stateless and are verified without the database, but each names its account and that
account's credential generation (``moorage.meta.identity``). A disable, a deletion or a change of
credentials moves the generation. Each process remembers an account's standing until any account changes:
the change is announced in its transaction (``moorage.meta.changes``), so every worker and replica drops what
it remembered once it commits, and a pull storm on one token costs one read per process, not one per request.
"""

from __future__ import annotations

import time
from typing import Any

from moorage.meta.changes import ACCOUNTS
from moorage.meta.identity import AccountRef, IdentityModel
from moorage.meta.store import MetaStore

CLAIM = "account"
#: Accounts remembered per process; past that the memory starts over (a flood of one-off tokens).
MAX_REMEMBERED = 10_000


def account_claim(account: AccountRef) -> dict[str, Any]:
    return {CLAIM: {"kind": account.kind, "id": account.id, "generation": account.generation}}


class Standing:
    def __init__(self, store: MetaStore, identity: IdentityModel) -> None:
        self.store = store
        self.identity = identity
        #: (kind, id) -> ((generation, expires at) or None, the accounts version it was read under)
        self._known: dict[tuple[str, int], tuple[tuple[int, float] | None, int]] = {}

    async def holds(self, claims: dict[str, Any]) -> bool:
        """True when the token is anonymous, or its account exists, is enabled, unexpired and unchanged."""
        if not claims.get("sub"):
            return True
        bound = claims.get(CLAIM)
        if not isinstance(bound, dict):
            return False
        kind, account_id, generation = bound.get("kind"), bound.get("id"), bound.get("generation")
        if not isinstance(kind, str) or not isinstance(account_id, int) or not isinstance(generation, int):
            return False
        current = await self._current(kind, account_id)
        return current is not None and current[0] == generation and current[1] > time.time()

    async def _current(self, kind: str, account_id: int) -> tuple[int, float] | None:
        key = (kind, account_id)
        # Every change committed before this request is heard first; the version is taken before the read: a
        # change committed during the read moves it, and the entry stored below is then never trusted.
        heard = await self.store.changes.fence()
        version = self.store.changes.version(ACCOUNTS)
        known = self._known.get(key)
        if heard and known is not None and known[1] == version:
            return known[0]
        current = await self.store.query(self.identity.account_standing, kind, account_id)
        if len(self._known) > MAX_REMEMBERED:
            self._known.clear()
        self._known[key] = (current, version)
        return current
