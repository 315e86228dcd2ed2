"""Which tags an immutable tag rule holds, and what a bad rule is told."""

from __future__ import annotations

import pytest

from moorage.core.errors import Conflict, InvalidInput
from moorage.core.immutability import ImmutableRule, check_new_rule, parse_rule, protecting, stored_body

pytestmark = pytest.mark.fast


def immutable(tags: str, repos: str = "**", rule_id: int = 1, disabled: bool = False,
              decoration: str = "matches") -> ImmutableRule:
    return parse_rule({"disabled": disabled, "tag_selectors": [{"kind": "doublestar", "decoration": decoration,
                                                                "pattern": tags}],
                       "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                           "pattern": repos}]}}, rule_id)


def test_a_rule_holds_the_tags_and_repositories_its_selectors_pick() -> None:
    rule = immutable("v*", "app/**")
    assert rule.protects("app/web", "v1.0")
    assert not rule.protects("app/web", "latest")
    assert not rule.protects("tools", "v1.0")
    assert not immutable("v*", disabled=True).protects("app", "v1")
    assert immutable("latest", decoration="excludes").protects("app", "v1")


def test_the_first_enabled_rule_that_holds_a_tag_is_named() -> None:
    rules = [immutable("v*", disabled=True, rule_id=1), immutable("v1.*", rule_id=2), immutable("**", rule_id=3)]
    found = protecting(rules, "app", "v1.2")
    assert found is not None and found.id == 2 and "immutable tag rule 2" in found.describe()


def test_a_stored_rule_reads_back_the_same() -> None:
    rule = immutable("v*", "app/**", rule_id=4)
    again = parse_rule(stored_body(rule), 4)
    assert again == rule


def test_the_same_rule_twice_conflicts() -> None:
    with pytest.raises(Conflict, match="rule 1"):
        check_new_rule(immutable("v*", rule_id=0), [immutable("v*", rule_id=1)])
    check_new_rule(immutable("v*", rule_id=1), [immutable("v*", rule_id=1)], replacing=1)


@pytest.mark.parametrize(("body", "problem"), [
    ({}, "tag_selectors"),
    ({"template": "latestPushedK", "tag_selectors": [{"decoration": "matches", "pattern": "x"}]}, "template"),
    ({"action": "retain", "tag_selectors": [{"decoration": "matches", "pattern": "x"}]}, "action"),
    ({"tag_selectors": [{"decoration": "matches", "pattern": "x"}], "scope_selectors": {"tags": []}}, "repository"),
    ({"tag_selectors": [{"decoration": "repoMatches", "pattern": "x"}]}, "decoration"),
    ({"priority": -1, "tag_selectors": [{"decoration": "matches", "pattern": "x"}]}, "priority"),
])
def test_a_bad_rule_says_what_to_fix(body: dict, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_rule(body)
