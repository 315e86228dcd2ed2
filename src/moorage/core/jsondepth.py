"""JSON from clients, parsed with a bound on how deeply arrays and objects nest.

``json.loads`` recurses once per level: a body of 100,000 ``[`` exhausts the interpreter's recursion
limit and surfaces as a ``RecursionError`` (a 500) instead of a refusal. Real documents are shallow
(an OCI manifest nests about four levels), so the depth is measured on the raw text first and the
parser only ever sees documents that nest at most ``max_depth`` levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deep enough for any manifest, API body or kubelet request; shallow enough to be harmless.
MAX_DEPTH = 64

# Brackets inside strings are text, not structure. Escapes go first (in valid JSON a backslash only
# occurs in a string, where it always starts a pair), which leaves strings without quotes or
# backslashes inside; an unterminated one runs to the end, as the parser stops there anyway. Both
# patterns match wherever they start, so the scan stays linear in the size of the document.
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"?')
# After the strings are gone, keep only the brackets, with both kinds folded onto "[" and "]".
_FOLD = bytes.maketrans(b"{}", b"[]")
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))


class TooDeeplyNested(ValueError):
    """The document nests arrays and objects deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        super().__init__(f"it nests arrays and objects deeper than {max_depth} levels")


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether ``text`` opens more than ``max_depth`` arrays/objects at once, counted as the parser
    meets them (for invalid JSON this may overcount, never undercount what the parser reaches)."""
    # Outside strings JSON is ASCII, and UTF-8 never encodes anything else with a byte below 0x80.
    if "\\" in text:
        text = _ESCAPE.sub("", text)
    brackets = _STRING.sub("", text).encode("utf-8", "surrogatepass").translate(_FOLD, _NOT_A_BRACKET)
    if brackets.count(b"[") <= max_depth:
        return False
    depth = 0
    # Each piece is a run of openings followed by one closing (the last piece has none).
    for run in brackets.split(b"]"):
        depth += len(run)
        if depth > max_depth:
            return True
        depth = max(depth - 1, 0)
    return False


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises :class:`TooDeeplyNested` (a ``ValueError``) instead of recursing
    without bound; every other problem is the ``ValueError`` ``json.loads`` raises (invalid JSON,
    invalid UTF-8, an integer too long to convert)."""
    # Decoded the way json.loads decodes bytes (UTF-8, -16 or -32), so the scan reads the same characters.
    if isinstance(data, str):
        text = data
    else:
        raw = bytes(data)
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    if nesting_exceeds(text, max_depth):
        raise TooDeeplyNested(max_depth)
    try:
        return json.loads(text)
    except RecursionError:
        # Unreachable after the scan above unless the caller is already deep in its own stack.
        raise TooDeeplyNested(max_depth) from None


def loads_exchanged(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``loads`` held to what RFC 8259 asks of JSON exchanged between systems, for documents other programs
    read after us (manifests): UTF-8 without a byte order mark, names unique within an object, no
    ``NaN``/``Infinity``. Python's parser takes all of those, where Go's (containerd's, distribution's)
    refuses some and reads duplicate names differently, so a document we accept could mean something else
    to them, or nothing. Every refusal is a ``ValueError`` saying which rule was broken."""
    raw = bytes(data)
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ValueError("it starts with a byte order mark; JSON is UTF-8 without one")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    if nesting_exceeds(text, max_depth):
        raise TooDeeplyNested(max_depth)
    return json.loads(text, object_pairs_hook=_unique_names, parse_constant=_no_constant)


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"the name {name[:100]!r} appears twice in one object, which readers resolve "
                                 "differently")
            seen.add(name)
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
