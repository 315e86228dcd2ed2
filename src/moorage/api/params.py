"""Every number and string a client puts in a path or a query string, checked in one place.

Numbers are written in ASCII digits only: ``str.isdigit`` and ``\\d`` also accept digits of other
scripts and superscripts (``'³'.isdigit()`` is true, ``int('³')`` raises), and ``int()`` itself takes
``'٣'``, ``' 3 '`` and ``'3_0'``. Ids are bounded to what a 64-bit column holds (SQLite refuses a larger
value outright, which surfaced as a 500).

Text is checked too: PostgreSQL cannot store or even compare a string holding NUL, and neither
database driver can encode a lone UTF-16 surrogate (which JSON's ``\\ud800`` escapes produce).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
MAX_PAGE_SIZE = 100

_DIGITS = re.compile(r"[0-9]{1,19}")
_NUMBER = re.compile(r"-?[0-9]{1,19}(?:\.[0-9]{1,19})?")
_BAD_TEXT = re.compile(r"[\x00\ud800-\udfff]")


class ParamError(ValueError):
    """A parameter that is not what its name promises; the message says what to send instead."""


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    """``raw`` as an integer from ``low`` to ``high``, written in ASCII digits only."""
    if not _DIGITS.fullmatch(raw):
        if raw.isascii() and raw.isdigit():
            raise ParamError(f"{name} must be between {low} and {high}, not {raw}")
        raise ParamError(f"{name} must be a whole number written with the digits 0-9, not {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise ParamError(f"{name} must be between {low} and {high}, not {value}")
    return value


def resource_id(raw: str, name: str) -> int:
    """An id in a path: 1 to 2^63-1 (whether it names anything is for the handler to say, with a 404)."""
    return whole_number(raw, name, 1, INT64_MAX)


def storable_id(value: int) -> bool:
    """Whether ``value`` can be the id of a stored row. Rows are numbered from 1 in 32-bit columns (PostgreSQL
    ``integer``, which refuses even to compare with a larger value), so a larger id names nothing."""
    return 1 <= value <= INT32_MAX


def page_offset(page: int, size: int) -> int:
    """Where page ``page`` starts, kept within what a database OFFSET takes (pages past the end are empty)."""
    return min((page - 1) * size, INT64_MAX)


def number(raw: str, name: str) -> float:
    """A bound of a ``q`` range over a numeric field: ASCII digits, an optional sign and fraction."""
    if not _NUMBER.fullmatch(raw):
        raise ParamError(f"{name} must be a number written with the digits 0-9, not {raw!r}")
    value = float(raw)
    if not math.isfinite(value):
        raise ParamError(f"{name} is out of range: {raw}")
    return value


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or looked up as text, or None when it can."""
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return "contains a lone UTF-16 surrogate (invalid Unicode)"


def json_text_problem(value: Any, where: str = "body") -> str | None:
    """The first string (key or value) in a parsed JSON document that ``text_problem`` refuses, said
    with where it is."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{where} {problem}" if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                return f"a key of {where} {problem}"
            found = json_text_problem(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = json_text_problem(item, f"{where}[{index}]")
            if found:
                return found
    return None


# -- typed parameters ------------------------------------------------------------------------------------------
# The operations declare their path, query and header parameters as models of these types; the dispatcher
# validates them before the handler runs (``moorage.api.dispatch``), and the OpenAPI document shows them.

def _digits(low: int, high: int) -> Callable[[Any, ValidationInfo], Any]:
    def parse(value: Any, info: ValidationInfo) -> Any:
        return whole_number(value, info.field_name or "value", low, high) if isinstance(value, str) else value
    return parse


def _int64(low: int, high: int) -> dict[str, Any]:
    return {"ge": low, "le": high, "json_schema_extra": {"format": "int64"}}


#: An id in a path: 1 to 2^63-1 in ASCII digits (whether it names anything is the handler's 404).
Id = Annotated[int, Field(**_int64(1, INT64_MAX)), BeforeValidator(_digits(1, INT64_MAX))]
PageNumber = Annotated[int, Field(**_int64(1, INT64_MAX)), BeforeValidator(_digits(1, INT64_MAX))]
PageSize = Annotated[int, Field(**_int64(1, MAX_PAGE_SIZE)), BeforeValidator(_digits(1, MAX_PAGE_SIZE))]


class Params(BaseModel):
    """Parameters of one place (path, query or headers); names not declared are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class PageQuery(Params):
    """Harbor's paging: ``page`` from 1, ``page_size`` 1 to 100 (10 when not given)."""

    page: PageNumber = 1
    page_size: PageSize = 10


class ListQuery(PageQuery):
    """Paging with Harbor's ``q`` filter and ``sort`` (``moorage.api.listing``)."""

    q: str | None = None
    sort: str | None = None
