"""What a retention run keeps and deletes, decided on a repository's manifests built by hand: each template,
selectors, untagged artifacts, never-pulled artifacts, indexes and referrers as units, immutable tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from moorage.core.errors import Conflict, InvalidInput
from moorage.core.immutability import parse_rule as parse_immutable
from moorage.core.retention import Rule, metadata, parse_policy, parse_rule, plan, render_log
from moorage.meta.tag_policies import ManifestView, TagView

pytestmark = pytest.mark.fast

NOW = 1_000_000_000.0
DAY = 86400.0
REPO = "team/app"


def m(digest: str, pushed_days_ago: float, tags: Sequence[str] = (), pulled_days_ago: float | None = None,
      children: Sequence[str] = (), subject: str | None = None) -> ManifestView:
    pushed = NOW - pushed_days_ago * DAY
    pulled = None if pulled_days_ago is None else NOW - pulled_days_ago * DAY
    return ManifestView(hash(digest) % 10_000, digest, pushed, pulled, subject,
                        [TagView(t, pushed, pulled) for t in tags], list(children))


def rule(template: str, value: int = 0, tags: str = "**", untagged: bool = False, repos: str = "**",
         number: int = 1) -> Rule:
    body: dict[str, Any] = {
        "template": template, "params": {template: value} if template != "always" else {},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags,
                           "extras": '{"untagged":true}' if untagged else ""}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repos}]}}
    return parse_rule(body, number)


def deleted(views: list[ManifestView], *rules: Rule) -> list[str]:
    return plan(REPO, views, rules, [], NOW).deleted


def test_latest_pushed_k_keeps_the_k_pushed_last() -> None:
    views = [m("a", 5, ["v1"]), m("b", 3, ["v2"]), m("c", 1, ["v3"])]
    assert deleted(views, rule("latestPushedK", 2)) == ["a"]


def test_latest_pulled_n_counts_a_never_pulled_artifact_as_pulled_when_pushed() -> None:
    # b was pulled 10 days ago; c was never pulled but pushed yesterday: c is the more recent.
    views = [m("a", 30, ["v1"], pulled_days_ago=20), m("b", 30, ["v2"], pulled_days_ago=10), m("c", 1, ["v3"])]
    assert deleted(views, rule("latestPulledN", 1)) == ["a", "b"]


def test_days_since_last_push_and_pull() -> None:
    views = [m("old", 40, ["v1"]), m("new", 2, ["v2"]), m("used", 40, ["v3"], pulled_days_ago=1)]
    assert deleted(views, rule("nDaysSinceLastPush", 7)) == ["old", "used"]
    # Never pulled and pushed two days ago: pulled within 7 days as far as retention is concerned (harbor#18479).
    assert deleted(views, rule("nDaysSinceLastPull", 7)) == ["old"]


def test_always_keeps_what_its_selectors_pick_and_the_rest_goes() -> None:
    views = [m("rel", 100, ["v1.0"]), m("dev", 1, ["dev-7"])]
    assert deleted(views, rule("always", tags="v*")) == ["dev"]
    excluding = parse_rule({"template": "always", "tag_selectors": [
        {"kind": "doublestar", "decoration": "excludes", "pattern": "dev-*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}, 1)
    assert deleted(views, excluding) == ["dev"]


def test_an_artifact_stays_when_any_of_its_tags_is_kept() -> None:
    views = [m("a", 10, ["dev-1", "v1.0"]), m("b", 1, ["dev-2"])]
    assert deleted(views, rule("always", tags="v*")) == ["b"]


def test_rules_are_combined_with_or() -> None:
    views = [m("a", 50, ["v1"]), m("b", 40, ["v2"]), m("c", 1, ["dev"])]
    assert deleted(views, rule("latestPushedK", 1, tags="v*"), rule("nDaysSinceLastPush", 7, number=2)) == ["a"]


def test_untagged_artifacts_go_unless_a_rule_takes_them() -> None:
    views = [m("tagged", 5, ["v1"]), m("loose", 1)]
    assert deleted(views, rule("always")) == ["loose"]
    assert deleted(views, rule("always", untagged=True)) == []


def test_a_repository_no_rule_applies_to_loses_nothing() -> None:
    assert deleted([m("a", 5, ["v1"])], rule("latestPushedK", 0, repos="other/**")) == []


def test_an_index_and_its_children_are_one_unit() -> None:
    views = [m("amd64", 9), m("arm64", 9), m("index", 9, ["v1"], children=["amd64", "arm64"]),
             m("amd64-2", 1), m("index-2", 1, ["v2"], children=["amd64-2"])]
    # The old index goes, its children with it (after it); the kept index keeps its child.
    gone = deleted(views, rule("latestPushedK", 1))
    assert gone[0] == "index" and sorted(gone[1:]) == ["amd64", "arm64"]
    result = plan(REPO, views, [rule("latestPushedK", 2)], [], NOW)
    assert result.deleted == [] and result.kept["amd64"] == "kept with index"


def test_a_child_of_a_kept_index_stays_even_when_its_own_tag_is_not_kept() -> None:
    views = [m("child", 9, ["child-tag"]), m("index", 1, ["v1"], children=["child"])]
    assert deleted(views, rule("always", tags="v*")) == []


def test_a_child_tagged_and_kept_on_its_own_outlives_its_index() -> None:
    views = [m("a", 9, ["keep-me"]), m("b", 9), m("index", 9, ["v1"], children=["a", "b"])]
    assert deleted(views, rule("always", tags="keep-*")) == ["index", "b"]


def test_a_child_shared_with_a_kept_index_stays() -> None:
    views = [m("shared", 9), m("old", 9, ["v1"], children=["shared"]), m("new", 1, ["v2"], children=["shared"])]
    assert deleted(views, rule("latestPushedK", 1)) == ["old"]


def test_referrers_follow_their_subject() -> None:
    views = [m("image", 9, ["v1"]), m("signature", 9, subject="image"), m("new", 1, ["v2"]),
             m("sbom", 1, subject="new")]
    assert deleted(views, rule("latestPushedK", 1)) == ["image", "signature"]


def test_an_immutable_tag_keeps_its_artifact_and_says_why() -> None:
    views = [m("a", 9, ["v1.0"]), m("b", 1, ["v2.0"])]
    guard = parse_immutable({"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v1.*"}]},
                            7)
    result = plan(REPO, views, [rule("latestPushedK", 1)], [guard], NOW)
    assert result.deleted == []
    assert "immutable tag rule 7" in result.kept["a"]


def test_the_log_lists_every_tag_with_its_fate() -> None:
    views = [m("a", 9, ["v1"]), m("b", 1, ["v2", "latest"])]
    rules = [rule("latestPushedK", 1)]
    text = render_log(plan(REPO, views, rules, [], NOW), True, {}, rules)
    lines = {line.split("|")[1].strip(): line.split("|")[7].strip() for line in text.splitlines()
             if line.startswith("| team/app")}
    assert lines == {"team/app:v1": "DEL", "team/app:v2": "RETAIN", "team/app:latest": "RETAIN"}
    assert "would delete" in text and "latestPushedK" in text


def test_policies_are_validated_as_harbor_does() -> None:
    good = {"template": "latestPushedK", "params": {"latestPushedK": 3},
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                "pattern": "**"}]}}
    policy = parse_policy({"algorithm": "or", "rules": [good], "scope": {"level": "project", "ref": 3},
                           "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}}})
    assert policy.cron == "0 0 0 * * *" and policy.rules[0].value == 3
    with pytest.raises(Conflict, match="rule 2 is the same as rule 1"):
        parse_policy({"rules": [good, good], "scope": {"level": "project", "ref": 3}})
    with pytest.raises(InvalidInput, match="15 rules"):
        parse_policy({"rules": [good] * 16, "scope": {"level": "project", "ref": 3}})
    with pytest.raises(InvalidInput, match=r"params\.latestPushedK is required"):
        parse_rule({**good, "params": {}}, 1)
    with pytest.raises(InvalidInput, match="template must be one of"):
        parse_rule({**good, "template": "keepEverything"}, 1)
    with pytest.raises(InvalidInput, match="cron"):
        parse_policy({"rules": [good], "scope": {"level": "project", "ref": 3},
                      "trigger": {"kind": "Schedule", "settings": {"cron": "every day"}}})
    with pytest.raises(InvalidInput, match="scope"):
        parse_policy({"rules": [good], "scope": {"level": "system"}})


def test_metadata_names_harbors_templates_and_selectors() -> None:
    meta = metadata()
    assert [t["rule_template"] for t in meta["templates"]] == ["latestPushedK", "latestPulledN", "nDaysSinceLastPush",
                                                              "nDaysSinceLastPull", "always"]
    assert meta["tag_selectors"][0]["decorations"] == ["matches", "excludes"]
    assert meta["scope_selectors"][0]["decorations"] == ["repoMatches", "repoExcludes"]
