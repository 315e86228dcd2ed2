"""Harbor's tag and repository selectors: doublestar patterns that a retention or immutable tag rule matches
tags and repositories with.

A selector is ``{kind, decoration, pattern, extras}``. The kind is ``doublestar`` (Harbor's only one here);
the decoration ``matches`` / ``excludes`` for tags, ``repoMatches`` / ``repoExcludes`` for repositories; the
pattern is doublestar's: ``*`` any run of characters but ``/``, ``**`` any run including ``/``, ``?`` one
character but ``/``, ``[a-z]`` / ``[!a-z]`` a class, ``{a,b}`` alternatives, ``\\`` an escape. A comma list at
the top (``a,b``) is the same as ``{a,b}``, as Harbor's portal writes it; an empty pattern matches everything.
Repositories are matched by their name inside the project (``app/web`` for ``team/app/web``). A tag selector's
``extras`` may hold ``{"untagged": true}``: the rule then also applies to artifacts without a tag.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moorage.core.errors import InvalidInput

KIND = "doublestar"
TAG_DECORATIONS = ("matches", "excludes")
REPOSITORY_DECORATIONS = ("repoMatches", "repoExcludes")
#: The one key of a rule's ``scope_selectors``.
REPOSITORY = "repository"
MAX_PATTERN = 512


class PatternInvalid(ValueError):
    """A pattern doublestar cannot read; the message says where."""


def _top_level_commas(pattern: str) -> bool:
    depth, escaped, in_class = 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            return True
    return False


def _translate(pattern: str) -> str:
    """The regular expression of a doublestar pattern (anchored by the caller)."""
    out: list[str] = []
    i, depth, n = 0, 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise PatternInvalid(f"pattern {pattern!r} ends with an escaping backslash")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            if pattern.startswith("**", i):
                at_start = i == 0 or pattern[i - 1] in "/{,"
                after = i + 2
                if at_start and pattern.startswith("/", after):
                    out.append("(?:.*/)?")  # "**/" is zero or more whole directories
                    i = after + 1
                else:
                    out.append(".*")
                    i = after
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            if end < 0:
                raise PatternInvalid(f"pattern {pattern!r} opens a character class '[' it never closes")
            body = pattern[i + 1:end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            if not body:
                raise PatternInvalid(f"pattern {pattern!r} has an empty character class")
            escaped = "".join("\\" + c if c in "\\[]^" else c for c in body)
            out.append(f"[^/{escaped}]" if negate else f"[{escaped}]")
            i = end + 1
            continue
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}":
            if depth == 0:
                raise PatternInvalid(f"pattern {pattern!r} closes a '}}' it never opened")
            depth -= 1
            out.append(")")
        elif char == "," and depth > 0:
            out.append("|")
        else:
            out.append(re.escape(char))
        i += 1
    if depth:
        raise PatternInvalid(f"pattern {pattern!r} opens a '{{' it never closes")
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A doublestar pattern, ready to match whole names; PatternInvalid when it cannot be read."""
    if _top_level_commas(pattern):
        pattern = "{" + pattern + "}"
    return re.compile(_translate(pattern), re.DOTALL)


def match(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the doublestar ``pattern`` as a whole (an empty pattern matches everything)."""
    if not pattern:
        return True
    return compile_pattern(pattern).fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Selector:
    decoration: str
    pattern: str
    kind: str = KIND
    extras: str = ""

    def selects(self, value: str) -> bool:
        matched = match(self.pattern, value)
        return not matched if self.decoration in ("excludes", "repoExcludes") else matched

    @property
    def untagged(self) -> bool:
        """Whether the rule also takes artifacts without a tag (``extras`` ``{"untagged": true}``)."""
        try:
            extras = json.loads(self.extras) if self.extras else {}
        except ValueError:
            return False
        return isinstance(extras, dict) and extras.get("untagged") is True

    def describe(self) -> str:
        verb = "matching" if self.decoration in ("matches", "repoMatches") else "excluding"
        return f"{verb} {self.pattern or '**'!r}"

    def harbor(self) -> dict[str, str]:
        return {"kind": self.kind, "decoration": self.decoration, "pattern": self.pattern, "extras": self.extras}


def parse_selector(value: Any, where: str, decorations: tuple[str, ...]) -> Selector:
    """One selector as a client sent it, or InvalidInput saying what to fix."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be an object with kind, decoration and pattern")
    kind = value.get("kind") or KIND
    decoration = value.get("decoration")
    pattern = value.get("pattern") or ""
    extras = value.get("extras") or ""
    if kind != KIND:
        raise InvalidInput(f"{where}.kind must be {KIND!r}, not {str(kind)[:50]!r}")
    if decoration not in decorations:
        raise InvalidInput(f"{where}.decoration must be one of {', '.join(decorations)}, not "
                           f"{str(decoration)[:50]!r}")
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
        raise InvalidInput(f"{where}.pattern must be a doublestar pattern of at most {MAX_PATTERN} characters")
    if not isinstance(extras, str):
        raise InvalidInput(f'{where}.extras must be a JSON string such as "{{\\"untagged\\":true}}"')
    if extras:
        try:
            parsed = json.loads(extras)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidInput(f'{where}.extras must be a JSON object in a string, such as "{{\\"untagged\\":true}}"')
    try:
        compile_pattern(pattern) if pattern else None
    except (PatternInvalid, re.error) as exc:
        raise InvalidInput(f"{where}.pattern: {exc}") from None
    return Selector(decoration, pattern, kind, extras)


def parse_selectors(values: Any, where: str, decorations: tuple[str, ...]) -> tuple[Selector, ...]:
    if values is None:
        return ()
    if not isinstance(values, list):
        raise InvalidInput(f"{where} must be a list of selectors")
    return tuple(parse_selector(v, f"{where}[{i}]", decorations) for i, v in enumerate(values))


def parse_scope(values: Any, where: str) -> tuple[Selector, ...]:
    """A rule's ``scope_selectors``: ``{"repository": [selectors]}``."""
    if values is None:
        return ()
    if not isinstance(values, Mapping):
        raise InvalidInput(f'{where} must be an object such as {{"repository": [...]}}')
    unknown = sorted(set(values) - {REPOSITORY})
    if unknown:
        raise InvalidInput(f"{where} can only hold {REPOSITORY!r}, not {unknown[0][:50]!r}")
    return parse_selectors(values.get(REPOSITORY), f"{where}.{REPOSITORY}", REPOSITORY_DECORATIONS)


def all_select(selectors: Iterable[Selector], value: str) -> bool:
    """Selectors of one rule narrow one another: a value is selected when every one selects it."""
    return all(s.selects(value) for s in selectors)
