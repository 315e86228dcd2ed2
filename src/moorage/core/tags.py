"""Listings a client pages through: a repository's tags and the registry's catalog (lexical, ``n`` + ``last``)."""

from __future__ import annotations

from moorage.core.errors import NameUnknown, PaginationInvalid
from moorage.core.reference import parse_decimal
from moorage.meta.registry import RegistryModel
from moorage.meta.store import MetaStore

#: The most names one page holds, whatever ``n`` asks.
MAX_PAGE = 10_000


def page_size(raw: str | None) -> int | None:
    """``n`` as the client gave it: None for every name, else at most ``MAX_PAGE``."""
    if raw is None or raw == "":
        return None
    n = parse_decimal(raw)
    if n is None:
        raise PaginationInvalid(f"n must be a non-negative integer, not {raw[:50]!r}")
    return min(n, MAX_PAGE)


def _comparable(last: str | None) -> str | None:
    """``last`` as the store can compare it: PostgreSQL refuses text holding NUL, which no name holds. The
    names after ``ab<NUL>c`` are exactly those after ``ab``, so it is cut there."""
    if not last:
        return None
    return last.partition("\x00")[0] or None


class TagService:
    def __init__(self, store: MetaStore, model: RegistryModel) -> None:
        self.store = store
        self.model = model

    async def of_repository(self, repo: str, n: int | None, last: str | None) -> list[str]:
        last = _comparable(last)
        names: list[str] | None = [] if n == 0 else await self.store.query(self.model.list_tags, repo, n, last)
        if names is None or (n == 0 and not await self.store.query(self.model.repository_exists, repo)):
            raise NameUnknown(f"repository {repo} does not exist", detail={"name": repo})
        return names or []

    async def catalog(self, n: int | None, last: str | None) -> list[str]:
        return [] if n == 0 else await self.store.query(self.model.list_repositories, n, _comparable(last))
