"""Doublestar patterns as Harbor's tag and repository selectors read them."""

from __future__ import annotations

import pytest

from moorage.core.errors import InvalidInput
from moorage.core.selectors import REPOSITORY_DECORATIONS, TAG_DECORATIONS, Selector, match, parse_selector

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("**", "anything/at/all", True),
    ("", "anything", True),
    ("v*", "v1.2", True),
    ("v*", "release-v1", False),
    ("*", "a/b", False),
    ("**", "a/b", True),
    ("app/*", "app/web", True),
    ("app/*", "app/web/api", False),
    ("app/**", "app/web/api", True),
    ("**/api", "api", True),
    ("**/api", "team/x/api", True),
    ("v?.0", "v1.0", True),
    ("v?.0", "v10.0", False),
    ("{latest,stable}", "stable", True),
    ("latest,stable", "latest", True),
    ("latest,stable", "latest,stable", False),
    ("v{1,2}.*", "v2.7", True),
    ("v{1,2}.*", "v3.7", False),
    ("[0-9]*", "1.2", True),
    ("[!0-9]*", "1.2", False),
    ("[!0-9]*", "x1", True),
    ("1.0", "1x0", False),
    (r"a\*", "a*", True),
    (r"a\*", "ab", False),
])
def test_patterns_match_whole_names_as_doublestar_does(pattern: str, value: str, expected: bool) -> None:
    assert match(pattern, value) is expected


def test_excludes_select_what_does_not_match() -> None:
    assert Selector("excludes", "dev-*").selects("v1") and not Selector("excludes", "dev-*").selects("dev-3")
    assert Selector("repoExcludes", "tmp/**").selects("app") and not Selector("repoExcludes", "tmp/**").selects("tmp/a")


def test_untagged_comes_from_extras() -> None:
    assert Selector("matches", "**", extras='{"untagged":true}').untagged
    assert not Selector("matches", "**", extras='{"untagged":false}').untagged
    assert not Selector("matches", "**").untagged


@pytest.mark.parametrize(("selector", "problem"), [
    ({"kind": "regexp", "decoration": "matches", "pattern": "x"}, "kind"),
    ({"kind": "doublestar", "decoration": "repoMatches", "pattern": "x"}, "decoration"),
    ({"kind": "doublestar", "decoration": "matches", "pattern": "v{1,2"}, "never closes"),
    ({"kind": "doublestar", "decoration": "matches", "pattern": "[a-"}, "never closes"),
    ({"kind": "doublestar", "decoration": "matches", "pattern": "x", "extras": "untagged"}, "extras"),
    ("matches", "object"),
])
def test_a_bad_selector_says_what_to_fix(selector: object, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_selector(selector, "tag_selectors[0]", TAG_DECORATIONS)


def test_repository_selectors_take_repository_decorations() -> None:
    parsed = parse_selector({"kind": "doublestar", "decoration": "repoMatches", "pattern": "app/**"}, "s",
                            REPOSITORY_DECORATIONS)
    assert parsed.selects("app/web") and not parsed.selects("other")
