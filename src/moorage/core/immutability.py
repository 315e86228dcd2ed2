"""Immutable tags: a tag an enabled rule of its project matches cannot be moved to other content or deleted, by
any client: a push (``docker push`` of the same tag with new content), a ``/v2`` DELETE, the management API's
deletes, or tag retention. The refusal names the rule.

A rule is Harbor's ImmutableRule: tag selectors and repository selectors (``moorage.core.selectors``), all of
which must select a tag for the rule to hold it. Re-pushing a tag's own content is no move and stays allowed,
and so is the first push of a tag. Deleting a manifest is refused when an immutable tag holds it, directly or
through an index that lists it: the tag would go with it, or point at an index missing a child.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moorage.core.errors import Conflict, InvalidInput, TagImmutable
from moorage.core.selectors import TAG_DECORATIONS, Selector, all_select, parse_scope, parse_selectors
from moorage.meta.store import MetaStore
from moorage.meta.tag_policies import StoredRule, TagPolicyModel

#: Harbor's template and action of every immutable rule.
TEMPLATE = "immutable_template"
ACTION = "immutable"
#: At most this many rules per project (as Harbor's portal allows for retention; immutability has no other cap).
MAX_RULES = 15
_MAX_PRIORITY = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ImmutableRule:
    id: int
    priority: int
    disabled: bool
    tag_selectors: tuple[Selector, ...]
    repository_selectors: tuple[Selector, ...]

    def protects(self, repository: str, tag: str) -> bool:
        """Whether the rule holds ``tag`` of ``repository`` (its name inside the project)."""
        return (not self.disabled and all_select(self.tag_selectors, tag)
                and all_select(self.repository_selectors, repository))

    def describe(self) -> str:
        tags = " and ".join(s.describe() for s in self.tag_selectors) or "every tag"
        repositories = " and ".join(s.describe() for s in self.repository_selectors) or "every repository"
        return f"immutable tag rule {self.id} (tags {tags}, in repositories {repositories})"


def parse_rule(body: Mapping[str, Any], rule_id: int = 0) -> ImmutableRule:
    """A rule from Harbor's ImmutableRule as a client sent it (or as stored), or InvalidInput saying what to fix."""
    template = body.get("template") or TEMPLATE
    action = body.get("action") or ACTION
    if template != TEMPLATE:
        raise InvalidInput(f"template of an immutable tag rule must be {TEMPLATE!r}, not {str(template)[:50]!r}")
    if action != ACTION:
        raise InvalidInput(f"action of an immutable tag rule must be {ACTION!r}, not {str(action)[:50]!r}")
    tag_selectors = parse_selectors(body.get("tag_selectors"), "tag_selectors", TAG_DECORATIONS)
    if not tag_selectors:
        raise InvalidInput('tag_selectors must hold at least one selector, e.g. '
                           '{"kind":"doublestar","decoration":"matches","pattern":"v*"}')
    repositories = parse_scope(body.get("scope_selectors"), "scope_selectors")
    priority = body.get("priority") or 0
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= _MAX_PRIORITY:
        raise InvalidInput(f"priority must be a whole number from 0 to {_MAX_PRIORITY}, not {str(priority)[:30]}")
    disabled = body.get("disabled") or False
    if not isinstance(disabled, bool):
        raise InvalidInput("disabled must be true or false")
    return ImmutableRule(rule_id, priority, disabled, tag_selectors, repositories)


def stored_body(rule: ImmutableRule) -> dict[str, Any]:
    """What is kept of a rule besides its id, priority and disabled flag (Harbor's field names)."""
    return {"template": TEMPLATE, "action": ACTION, "params": {},
            "tag_selectors": [s.harbor() for s in rule.tag_selectors],
            "scope_selectors": {"repository": [s.harbor() for s in rule.repository_selectors]}}


def from_stored(stored: StoredRule) -> ImmutableRule:
    return parse_rule({**stored.body, "priority": stored.priority, "disabled": stored.disabled}, stored.id)


def same_rule(a: ImmutableRule, b: ImmutableRule) -> bool:
    return a.tag_selectors == b.tag_selectors and a.repository_selectors == b.repository_selectors


def protecting(rules: Iterable[ImmutableRule], repository: str, tag: str) -> ImmutableRule | None:
    """The first enabled rule that holds ``tag`` of ``repository`` (its name inside the project), if any."""
    return next((rule for rule in rules if rule.protects(repository, tag)), None)


def split(repo: str) -> tuple[str, str]:
    """``project/name`` -> (project, name inside the project)."""
    project, _, name = repo.partition("/")
    return project, name


def refusal(rule: ImmutableRule, repo: str, tag: str, doing: str) -> TagImmutable:
    return TagImmutable(f"cannot {doing}: tag {tag} of {repo} is immutable by {rule.describe()}; push under a new "
                        "tag, or have a project maintainer disable or delete the rule",
                        detail={"repository": repo, "tag": tag, "rule_id": rule.id})


class ImmutabilityGuard:
    """The checks every path that moves or deletes a tag goes through (``ManifestService``, the API, retention)."""

    def __init__(self, store: MetaStore, model: TagPolicyModel) -> None:
        self.store = store
        self.model = model

    async def rules(self, repo: str) -> list[ImmutableRule]:
        """The enabled rules of ``repo``'s project."""
        project, _ = split(repo)
        return [from_stored(r) for r in await self.store.query(self.model.enabled_immutable_rules, project)]

    async def check_push(self, repo: str, tag_names: Sequence[str], digest: str) -> dict[str, ImmutableRule]:
        """Refuse to point an immutable tag that exists at other content than ``digest``; returns the rule that
        holds each of ``tag_names`` held by one, for the write to check again in its transaction."""
        if not tag_names:
            return {}
        rules = await self.rules(repo)
        if not rules:
            return {}
        current = await self.store.query(self.model.digests_of_tags, repo, list(tag_names))
        name = split(repo)[1]
        held: dict[str, ImmutableRule] = {}
        for tag in tag_names:
            rule = protecting(rules, name, tag)
            if rule is None:
                continue
            if current.get(tag, digest) != digest:
                raise refusal(rule, repo, tag, f"push other content as {repo}:{tag}")
            held[tag] = rule
        return held

    async def check_delete(self, repo: str, tag: str | None, digest: str | None) -> None:
        """Refuse to delete an immutable tag, or a manifest an immutable tag holds (its own, or an index's)."""
        rules = await self.rules(repo)
        if not rules:
            return
        name = split(repo)[1]
        if tag is not None:
            rule = protecting(rules, name, tag)
            if rule is not None:
                raise refusal(rule, repo, tag, f"delete {repo}:{tag}")
            return
        assert digest is not None
        for held_by in await self.store.query(self.model.tags_holding, repo, digest):
            rule = protecting(rules, name, held_by)
            if rule is not None:
                raise refusal(rule, repo, held_by, f"delete {repo}@{digest}")

    async def check_repository_delete(self, repo: str) -> None:
        rules = await self.rules(repo)
        if not rules:
            return
        name = split(repo)[1]
        for tag in await self.store.query(self.model.tags_of_repository, repo):
            rule = protecting(rules, name, tag)
            if rule is not None:
                raise refusal(rule, repo, tag, f"delete repository {repo}")

    async def immutable_tags(self, repo: str, tag_names: Iterable[str]) -> set[str]:
        """Which of ``tag_names`` of ``repo`` an enabled rule holds (for ``Tag.immutable`` in listings)."""
        rules = await self.rules(repo)
        name = split(repo)[1]
        return {t for t in tag_names if protecting(rules, name, t) is not None} if rules else set()


def check_new_rule(rule: ImmutableRule, existing: Iterable[ImmutableRule], replacing: int | None = None) -> None:
    """Conflict when the project has the same rule (same selectors) already."""
    for other in existing:
        if other.id != replacing and same_rule(rule, other):
            raise Conflict(f"the project already has this rule as immutable tag rule {other.id}")
