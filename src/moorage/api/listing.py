"""Harbor's ``q`` filters and ``sort`` over a listing, and the page of it asked for.

``q``: ``k=v`` (exact), ``k=~v`` (fuzzy), ``k=[min~max]`` (range), ``k={a b}`` (any of), ``k=(a b)`` (all
of), joined by commas. ``sort``: comma-separated keys, ``-`` before one for descending.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from moorage.api.base import BadRequest
from moorage.api.operations import Page
from moorage.api.params import PageQuery, number, page_offset

M = TypeVar("M")
B = TypeVar("B", bound=BaseModel)


@dataclass(frozen=True)
class Filter:
    key: str
    kind: str  # "exact", "fuzzy", "range", "union", "intersection"
    values: tuple[str, ...]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_q(q: str | None) -> list[Filter]:
    if not q:
        return []
    filters: list[Filter] = []
    for part in re.split(r",(?![^{(\[]*[})\]])", q):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadRequest(f"invalid query {part!r}: expected key=value")
        if value.startswith("~"):
            filters.append(Filter(key, "fuzzy", (_unquote(value[1:]),)))
        elif value.startswith("[") and value.endswith("]") and "~" in value:
            low, high = value[1:-1].split("~", 1)
            filters.append(Filter(key, "range", (_unquote(low), _unquote(high))))
        elif value.startswith("{") and value.endswith("}"):
            filters.append(Filter(key, "union", tuple(_unquote(v) for v in value[1:-1].split())))
        elif value.startswith("(") and value.endswith(")"):
            filters.append(Filter(key, "intersection", tuple(_unquote(v) for v in value[1:-1].split())))
        else:
            filters.append(Filter(key, "exact", (_unquote(value),)))
    return filters


def parse_sort(sort: str | None) -> list[tuple[str, bool]]:
    """(key, descending) pairs."""
    return [(key.lstrip("-"), key.startswith("-")) for key in (k.strip() for k in (sort or "").split(",")) if key]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(view: dict[str, Any], f: Filter, aliases: dict[str, str]) -> bool:
    key = aliases.get(f.key, f.key)
    if key not in view:
        raise BadRequest(f"cannot filter by {f.key!r}")
    value = view[key]
    values = value if isinstance(value, list) else [value]
    texts = [_text(v) for v in values]
    if f.kind == "exact":
        return f.values[0] in texts
    if f.kind == "fuzzy":
        return any(f.values[0].lower() in t.lower() for t in texts)
    if f.kind == "union":
        return any(v in texts for v in f.values)
    if f.kind == "intersection":
        return all(v in texts for v in f.values)
    low, high = f.values
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool):
            if (not low or v >= number(low, f.key)) and (not high or v <= number(high, f.key)):
                return True
        elif (not low or str(v) >= low) and (not high or str(v) <= high):
            return True
    return False


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is None, "" if value is None else value)


def _pair_key(key: str, pair: tuple[dict[str, Any], Any]) -> tuple[bool, Any]:
    return _sort_key(pair[0].get(key))


def sort_views(pairs: list[tuple[dict[str, Any], M]], sort: str | None,
               aliases: dict[str, str]) -> list[tuple[dict[str, Any], M]]:
    for name, descending in reversed(parse_sort(sort)):
        key = aliases.get(name, name)
        if pairs and (key not in pairs[0][0] or isinstance(pairs[0][0][key], dict | list)):
            raise BadRequest(f"cannot sort by {name!r}")
        pairs = sorted(pairs, key=functools.partial(_pair_key, key), reverse=descending)
    return pairs


def page_of(items: list[M], query: PageQuery, total: int | None = None) -> Page[M]:
    """The page ``query`` asks for out of ``items`` (all of them)."""
    start = page_offset(query.page, query.page_size)
    return Page(items[start:start + query.page_size], len(items) if total is None else total)


def listing(items: list[B], query: PageQuery, *, q: str | None = None, sort: str | None = None,
            view: Callable[[B], dict[str, Any]] | None = None, aliases: dict[str, str] | None = None) -> Page[B]:
    """Filter ``items`` by ``q``, sort them by ``sort``, and cut the page. Filters and sorts see each item as
    its JSON fields plus what ``view`` adds (fields Harbor filters by but does not show)."""
    aliases = aliases or {}
    pairs = [({**item.model_dump(mode="json", by_alias=True), **(view(item) if view else {})}, item)
             for item in items]
    filters = parse_q(q)
    pairs = [pair for pair in pairs if all(matches(pair[0], f, aliases) for f in filters)]
    return page_of([item for _, item in sort_views(pairs, sort, aliases)], query)
