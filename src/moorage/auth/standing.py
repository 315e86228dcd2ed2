"""Whether the account a bearer token was issued to still stands as it did then.

Tokens stay stateless and are verified without the database, but each names its account and that
account's credential generation (``moorage.meta.identity``). A disable, a deletion or a change of
credentials moves the generation, and every process notices within ``RECHECK_SECONDS``: the answer
for an account is kept that long, so a pull storm on one token costs one read every few seconds.
"""

from __future__ import annotations

import time
from typing import Any

from moorage.meta.identity import AccountRef, IdentityModel
from moorage.meta.store import MetaStore

RECHECK_SECONDS = 5.0
CLAIM = "account"


def account_claim(account: AccountRef) -> dict[str, Any]:
    return {CLAIM: {"kind": account.kind, "id": account.id, "generation": account.generation}}


class Standing:
    def __init__(self, store: MetaStore, identity: IdentityModel) -> None:
        self.store = store
        self.identity = identity
        self._known: dict[tuple[str, int], tuple[int | None, float]] = {}

    async def holds(self, claims: dict[str, Any]) -> bool:
        """True when the token is anonymous, or its account exists, is enabled and unchanged."""
        if not claims.get("sub"):
            return True
        bound = claims.get(CLAIM)
        if not isinstance(bound, dict):
            return False
        kind, account_id, generation = bound.get("kind"), bound.get("id"), bound.get("generation")
        if not isinstance(kind, str) or not isinstance(account_id, int) or not isinstance(generation, int):
            return False
        return await self._current(kind, account_id) == generation

    async def _current(self, kind: str, account_id: int) -> int | None:
        key = (kind, account_id)
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and known[1] > now:
            return known[0]
        current = await self.store.query(self.identity.account_generation, kind, account_id)
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key] = (current, now + RECHECK_SECONDS)
        return current
