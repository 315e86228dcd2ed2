"""Tag retention: a project's policy says which artifacts each repository keeps; everything else goes.

A policy (Harbor's RetentionPolicy) holds up to 15 rules, combined with OR. A rule applies to the repositories
its repository selectors pick; in each, its tag selectors pick artifacts by their tags (an artifact is picked
when one of its tags is; an untagged one only with ``{"untagged": true}``), and its template keeps some of
those: ``latestPushedK`` the K pushed last, ``latestPulledN`` the N pulled last, ``nDaysSinceLastPush`` /
``nDaysSinceLastPull`` those pushed / pulled within N days, ``always`` all. Rules act on tags; an artifact goes
only when no tag keeps it, and then with all its tags. A repository no enabled rule applies to is left alone.

Times: an artifact's push time is the last time it was pushed under any of its tags (or, untagged, its
first push); its pull time the last pull, and never earlier than its push: a never-pulled artifact counts
as pulled when it was pushed, so "pulled within 7 days" does not delete what was pushed yesterday.

Units: an index and the manifests it lists are one unit, and so are a manifest and its referrers (signatures,
SBOMs): what a kept artifact lists or is referred to by stays, whatever its own tags say; what only a removed
artifact holds goes with it. An artifact an immutable tag rule protects is kept (and logged as such).

``plan`` is pure: a dry run reports exactly what a real run removes. A real run deletes through the same
``ManifestService`` a client's delete goes through (immutability is checked again there), parents first,
each only if no tag came to it since the plan; garbage collection frees the blobs later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moorage.core.cron import cron_of, next_run
from moorage.core.errors import Conflict, DomainError, InvalidInput, ManifestUnknown, NameUnknown, TagImmutable
from moorage.core.immutability import ImmutabilityGuard, ImmutableRule, protecting, split
from moorage.core.manifests import ManifestService
from moorage.core.reference import parse_digest
from moorage.core.selectors import TAG_DECORATIONS, Selector, all_select, parse_scope, parse_selectors
from moorage.meta.schedules import ScheduleModel
from moorage.meta.store import MetaStore
from moorage.meta.tag_policies import SCHEDULE_PREFIX, ManifestView, StoredPolicy, TagPolicyModel

log = logging.getLogger("moorage.retention")

MAX_RULES = 15
ACTION = "retain"
ALGORITHM = "or"
LEVEL = "project"
TRIGGER_KIND = "Schedule"
MANUAL, SCHEDULED = "MANUAL", "SCHEDULE"
DAY = 86400.0
#: Deletions between two looks at whether the run was asked to stop.
STOP_CHECK_EVERY = 20
#: A run whose row has not moved this long belongs to a process that died.
STALE_AFTER_SECONDS = 600.0
_MAX_PARAM = 2**31 - 1
#: Who deleted what a real run removes, in its events (webhooks, the outbox).
OPERATOR = "tag-retention"

#: Harbor's rule templates: id -> (what the portal shows, the parameter's unit or None when it takes none).
TEMPLATES: dict[str, tuple[str, str | None]] = {
    "latestPushedK": ("the most recently pushed # artifacts", "COUNT"),
    "latestPulledN": ("the most recently pulled # artifacts", "COUNT"),
    "nDaysSinceLastPush": ("pushed within the last # days", "DAYS"),
    "nDaysSinceLastPull": ("pulled within the last # days", "DAYS"),
    "always": ("always", None),
}


def metadata() -> dict[str, Any]:
    """Harbor's RetentionMetadata: the templates and selectors a policy may use."""
    return {
        "templates": [{"rule_template": template, "display_text": text, "action": ACTION,
                       "params": [{"type": "int", "unit": unit, "required": True}] if unit else []}
                      for template, (text, unit) in TEMPLATES.items()],
        "scope_selectors": [{"display_text": "Repositories", "kind": "doublestar",
                             "decorations": ["repoMatches", "repoExcludes"]}],
        "tag_selectors": [{"display_text": "Tags", "kind": "doublestar", "decorations": ["matches", "excludes"]}],
    }


# -- the policy --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rule:
    number: int
    priority: int
    disabled: bool
    template: str
    #: The template's parameter (K, N or days); 0 for ``always``.
    value: int
    tag_selectors: tuple[Selector, ...]
    repository_selectors: tuple[Selector, ...]

    def applies_to(self, repository: str) -> bool:
        return not self.disabled and all_select(self.repository_selectors, repository)

    def picks(self, candidate: Candidate) -> bool:
        if not candidate.tags:
            return bool(self.tag_selectors) and all(s.untagged for s in self.tag_selectors)
        return any(all_select(self.tag_selectors, t) for t in candidate.tags)

    def describe(self) -> str:
        text, unit = TEMPLATES[self.template]
        what = text.replace("#", str(self.value)) if unit else text
        tags = " and ".join(s.describe() for s in self.tag_selectors) or "every tag"
        untagged = " (and untagged)" if self.tag_selectors and all(s.untagged for s in self.tag_selectors) else ""
        return f"rule {self.number} ({self.template}: {what}; tags {tags}{untagged})"

    def harbor(self) -> dict[str, Any]:
        _, unit = TEMPLATES[self.template]
        return {"id": self.number, "priority": self.priority, "disabled": self.disabled, "action": ACTION,
                "template": self.template, "params": {self.template: self.value} if unit else {},
                "tag_selectors": [s.harbor() for s in self.tag_selectors],
                "scope_selectors": {"repository": [s.harbor() for s in self.repository_selectors]}}


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    #: Six-field cron it runs by; "" for manual runs only.
    cron: str
    project_id: int

    def harbor(self) -> dict[str, Any]:
        """Harbor's RetentionPolicy without its id."""
        return {"algorithm": ALGORITHM, "rules": [r.harbor() for r in self.rules],
                "trigger": {"kind": TRIGGER_KIND, "settings": {"cron": self.cron}, "references": {}},
                "scope": {"level": LEVEL, "ref": self.project_id}}


def _int(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one kind of number; Harbor's clients may send 10.0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_PARAM:
        raise InvalidInput(f"{where} must be a whole number from 0 to {_MAX_PARAM}, not {str(value)[:30]}")
    return value


def parse_rule(body: Any, number: int) -> Rule:
    where = f"rules[{number - 1}]"
    if not isinstance(body, Mapping):
        raise InvalidInput(f"{where} must be a RetentionRule object")
    action = body.get("action") or ACTION
    if action != ACTION:
        raise InvalidInput(f"{where}.action must be {ACTION!r} (rules say what to keep), not {str(action)[:50]!r}")
    template = body.get("template")
    if template not in TEMPLATES:
        raise InvalidInput(f"{where}.template must be one of {', '.join(TEMPLATES)}, not {str(template)[:50]!r}")
    params = body.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidInput(f"{where}.params must be an object such as {{{template!r}: 10}}")
    _, unit = TEMPLATES[template]
    value = 0
    if unit:
        if template not in params:
            raise InvalidInput(f"{where}.params.{template} is required: the number of "
                               f"{'artifacts' if unit == 'COUNT' else 'days'} to keep")
        value = _int(params[template], f"{where}.params.{template}")
    tag_selectors = parse_selectors(body.get("tag_selectors"), f"{where}.tag_selectors", TAG_DECORATIONS)
    if not tag_selectors:
        raise InvalidInput(f"{where}.tag_selectors must hold a selector, e.g. "
                           '{"kind":"doublestar","decoration":"matches","pattern":"**"}')
    repositories = parse_scope(body.get("scope_selectors"), f"{where}.scope_selectors")
    if not repositories:
        raise InvalidInput(f'{where}.scope_selectors must hold {{"repository": [a selector]}}, e.g. '
                           '{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}')
    priority = _int(body.get("priority") or 0, f"{where}.priority")
    disabled = body.get("disabled") or False
    if not isinstance(disabled, bool):
        raise InvalidInput(f"{where}.disabled must be true or false")
    return Rule(number, priority, disabled, template, value, tag_selectors, repositories)


def parse_policy(body: Mapping[str, Any]) -> Policy:
    """A policy from Harbor's RetentionPolicy, or InvalidInput / Conflict saying what to fix."""
    algorithm = body.get("algorithm") or ALGORITHM
    if algorithm != ALGORITHM:
        raise InvalidInput(f"algorithm must be {ALGORITHM!r} (the rules' results are combined), not "
                           f"{str(algorithm)[:50]!r}")
    rules = body.get("rules") or []
    if not isinstance(rules, list):
        raise InvalidInput("rules must be a list of RetentionRule objects")
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"only {MAX_RULES} rules are allowed at most; this policy has {len(rules)}")
    parsed = [parse_rule(rule, n) for n, rule in enumerate(rules, start=1)]
    seen: dict[tuple[Any, ...], int] = {}
    for rule in parsed:
        key = (rule.template, rule.value, rule.disabled, rule.tag_selectors, rule.repository_selectors)
        if key in seen:
            raise Conflict(f"rule {rule.number} is the same as rule {seen[key]}; remove one of them")
        seen[key] = rule.number
    scope = body.get("scope") or {}
    if not isinstance(scope, Mapping) or scope.get("level") != LEVEL:
        raise InvalidInput(f'scope must be {{"level": "{LEVEL}", "ref": <project id>}}')
    ref = scope.get("ref")
    if not isinstance(ref, int) or isinstance(ref, bool) or not 1 <= ref <= _MAX_PARAM:
        raise InvalidInput(f"scope.ref must be a project id, not {str(ref)[:30]}")
    trigger = body.get("trigger") or {}
    if not isinstance(trigger, Mapping):
        raise InvalidInput(f'trigger must be {{"kind": "{TRIGGER_KIND}", "settings": {{"cron": "0 0 0 * * *"}}}}')
    kind = trigger.get("kind") or TRIGGER_KIND
    if kind != TRIGGER_KIND:
        raise InvalidInput(f"trigger.kind must be {TRIGGER_KIND!r}, not {str(kind)[:50]!r}")
    settings = trigger.get("settings") or {}
    cron = settings.get("cron") if isinstance(settings, Mapping) else None
    if cron is not None and not isinstance(cron, str):
        raise InvalidInput('trigger.settings.cron must be a string: six fields, seconds first ("" for none)')
    cron = cron_of("Custom", cron) if (cron or "").strip() else ""
    return Policy(tuple(parsed), cron, ref)


# -- the plan -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Candidate:
    """An artifact rules decide on: tagged, or untagged and listed by no index of the repository."""

    digest: str
    tags: list[str]
    pushed_at: float
    pulled_at: float
    created_at: float


@dataclass(slots=True)
class RepositoryPlan:
    repository: str
    candidates: list[Candidate]
    #: digest -> why it stays (a rule, immutability, a kept index or subject)
    kept: dict[str, str] = field(default_factory=dict)
    #: Digests to delete, each before whatever it lists or is referred to by.
    deleted: list[str] = field(default_factory=list)
    #: digest -> why it goes with another artifact (listed by a removed index, referrer of a removed subject)
    follows: dict[str, str] = field(default_factory=dict)


def _retained(rule: Rule, picked: list[Candidate], now: float) -> list[Candidate]:
    newest_push = sorted(picked, key=lambda c: (-c.pushed_at, c.digest))
    if rule.template == "latestPushedK":
        return newest_push[:rule.value]
    if rule.template == "latestPulledN":
        return sorted(picked, key=lambda c: (-c.pulled_at, c.digest))[:rule.value]
    if rule.template == "nDaysSinceLastPush":
        return [c for c in picked if c.pushed_at >= now - rule.value * DAY]
    if rule.template == "nDaysSinceLastPull":
        return [c for c in picked if c.pulled_at >= now - rule.value * DAY]
    return list(picked)


def candidates(views: Sequence[ManifestView]) -> list[Candidate]:
    digests = {v.digest for v in views}
    listed = {child for v in views for child in v.children}
    found = []
    for v in views:
        if not v.tags and (v.digest in listed or (v.subject is not None and v.subject in digests)):
            continue  # part of another artifact's unit
        pushed = max([v.created_at, *(t.pushed_at for t in v.tags)])
        pulled = max(v.pull_time or pushed, pushed)
        found.append(Candidate(v.digest, [t.name for t in v.tags], pushed, pulled, v.created_at))
    return found


def plan(repository: str, views: Sequence[ManifestView], rules: Sequence[Rule], immutable: Sequence[ImmutableRule],
         now: float) -> RepositoryPlan:
    """What a run keeps and deletes in ``repository`` (its full name), from its manifests ``views``."""
    name = split(repository)[1]
    result = RepositoryPlan(repository, candidates(views))
    applying = [rule for rule in rules if rule.applies_to(name)]
    if not applying:
        result.kept = {v.digest: "no enabled rule applies to this repository" for v in views}
        return result
    for rule in applying:
        for kept in _retained(rule, [c for c in result.candidates if rule.picks(c)], now):
            result.kept.setdefault(kept.digest, f"retained by {rule.describe()}")
    for c in result.candidates:
        if c.digest in result.kept:
            continue
        guarded = next(((t, r) for t in c.tags if (r := protecting(immutable, name, t)) is not None), None)
        if guarded is not None:
            result.kept[c.digest] = f"kept: tag {guarded[0]} is immutable by {guarded[1].describe()}"
    by_digest = {v.digest: v for v in views}
    referrers: dict[str, list[str]] = {}
    for v in views:
        if v.subject is not None:
            referrers.setdefault(v.subject, []).append(v.digest)

    def held(digest: str) -> list[str]:
        view = by_digest.get(digest)
        return [*(view.children if view else []), *referrers.get(digest, [])]

    # What a kept artifact lists or is referred to by stays with it.
    pending = list(result.kept)
    while pending:
        digest = pending.pop()
        for other in held(digest):
            if other in by_digest and other not in result.kept:
                result.kept[other] = f"kept with {digest}"
                pending.append(other)
    doomed = [v.digest for v in views if v.digest not in result.kept]
    doomed_set = set(doomed)
    for digest in doomed:
        for other in held(digest):
            if other in doomed_set:
                result.follows.setdefault(other, f"goes with {digest}")
    result.deleted = _parents_first(doomed, held)
    return result


def _parents_first(doomed: list[str], held: Any) -> list[str]:
    members = set(doomed)
    waiting = dict.fromkeys(doomed, 0)
    for digest in doomed:
        for other in held(digest):
            if other in members and other != digest:
                waiting[other] += 1
    ready = sorted((d for d, n in waiting.items() if n == 0), reverse=True)
    ordered: list[str] = []
    while ready:
        digest = ready.pop()
        ordered.append(digest)
        for other in held(digest):
            if other in members and other != digest:
                waiting[other] -= 1
                if waiting[other] == 0:
                    ready.append(other)
    return ordered + sorted(members - set(ordered))


# -- the log ------------------------------------------------------------------------------------------------
def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y/%m/%d %H:%M:%S")


def render_log(result: RepositoryPlan, dry_run: bool, outcome: Mapping[str, str], rules: Sequence[Rule]) -> str:
    """A run's log of one repository: Harbor's table (one row per tag, RETAIN / DEL / ERR), then why."""
    header = ["Artifact", "Kind", "labels", "PushedTime", "PulledTime", "CreatedTime", "Retention"]
    rows: list[list[str]] = []
    for c in result.candidates:
        mark = "RETAIN" if c.digest in result.kept else ("ERR" if c.digest in outcome else "DEL")
        for label in ([f"{result.repository}:{t}" for t in c.tags] or [f"{result.repository}@{c.digest}"]):
            rows.append([label, "image", "", _time(c.pushed_at), _time(c.pulled_at), _time(c.created_at), mark])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    out = [f"Repository: {result.repository}", f"Rule algorithm: {ALGORITHM}", f"Dry run: {str(dry_run).lower()}",
           *(f"Applied {r.describe()}" for r in rules),
           f"{len(result.candidates)} candidate(s), {len(result.deleted)} manifest(s) to delete", "",
           line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows), ""]
    for c in result.candidates:
        if c.digest in result.kept:
            out.append(f"RETAIN {c.digest}: {result.kept[c.digest]}")
    for digest in result.deleted:
        verb = "would delete" if dry_run else "deleted"
        if digest in outcome:
            out.append(f"ERR {digest}: {outcome[digest]}")
        else:
            reason = result.follows.get(digest, "retained by no rule")
            out.append(f"DEL {digest}: {verb} ({reason})")
    return "\n".join(out) + "\n"


# -- runs -----------------------------------------------------------------------------------------------------
def schedule_name(policy_id: int) -> str:
    return f"{SCHEDULE_PREFIX}{policy_id}"


def set_schedule(schedules: ScheduleModel, policy_id: int, cron: str) -> None:
    """Run the policy by ``cron`` from now on ("" for manual runs only)."""
    if not cron:
        schedules.delete(schedule_name(policy_id))
        return
    schedules.put(schedule_name(policy_id), "Custom", cron, {}, next_run(cron, time.time()))


class RetentionService:
    def __init__(self, store: MetaStore, model: TagPolicyModel, schedules: ScheduleModel,
                 manifests: ManifestService, guard: ImmutabilityGuard) -> None:
        self.store = store
        self.model = model
        self.schedules = schedules
        self.manifests = manifests
        self.guard = guard
        self._running: set[asyncio.Task[None]] = set()

    async def launch(self, policy: StoredPolicy, trigger: str, dry_run: bool) -> int:
        """Start a run in the background and answer its id at once; Conflict while the policy runs already."""
        execution_id = await self.store.run(self.model.start_execution, policy.id, trigger, dry_run)
        if execution_id is None:
            raise Conflict(f"retention policy {policy.id} is running already; wait for it or stop it first")
        task = asyncio.create_task(self._guarded(execution_id, policy, dry_run), name=f"retention-{execution_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return execution_id

    async def _guarded(self, execution_id: int, policy: StoredPolicy, dry_run: bool) -> None:
        try:
            await self.execute(execution_id, policy, dry_run)
        except Exception as exc:  # recorded as the run's status; the task has nobody to raise to
            log.warning("retention run %d failed: %s", execution_id, getattr(exc, "orig", None) or exc)

    async def execute(self, execution_id: int, stored: StoredPolicy, dry_run: bool) -> str:
        """Run a policy over every repository of its project; returns the run's final status."""
        status = "Success"
        try:
            await self.store.run(self.model.abandon_stale, STALE_AFTER_SECONDS)
            policy = parse_policy({**stored.body, "scope": {"level": LEVEL, "ref": stored.project_id}})
            immutable = await self.guard.rules(f"{stored.project_name}/")
            for repository in await self.store.query(self.model.repositories_of, stored.project_name):
                applying = [r for r in policy.rules if r.applies_to(split(repository)[1])]
                if not applying:
                    continue
                if await self.store.run(self.model.stop_requested, execution_id):
                    status = "Stopped"
                    break
                outcome = await self._repository(execution_id, repository, applying, immutable, dry_run)
                if outcome != "Success":
                    status = outcome
                    if outcome == "Stopped":
                        break
        except asyncio.CancelledError:
            # The process is going down: say so now rather than leave the run "Running" until it is found stale.
            await asyncio.shield(self.store.run(self.model.finish_execution, execution_id, "Stopped"))
            raise
        except Exception:
            await self.store.run(self.model.finish_execution, execution_id, "Error")
            raise
        await self.store.run(self.model.finish_execution, execution_id, status)
        log.info("retention run %d of policy %d (%s): %s", execution_id, stored.id,
                 "dry run" if dry_run else "real run", status)
        return status

    async def _repository(self, execution_id: int, repository: str, rules: list[Rule],
                          immutable: list[ImmutableRule], dry_run: bool) -> str:
        task_id = await self.store.run(self.model.start_task, execution_id, repository)
        try:
            # A thread, not the event loop: a repository may hold many thousands of manifests.
            views = await self.store.run(self.model.repository_view, repository)
            result = plan(repository, views, rules, immutable, time.time())
            outcome: dict[str, str] = {}
            status = "Success"
            if not dry_run:
                status = await self._delete(execution_id, repository, result, views, outcome)
            deleted = {d for d in result.deleted if d not in outcome}
            retained = sum(1 for c in result.candidates if c.digest not in deleted)
            await self.store.run(self.model.finish_task, task_id, status, len(result.candidates), retained,
                                 render_log(result, dry_run, outcome, rules))
            return status
        except Exception as exc:
            await self.store.run(self.model.finish_task, task_id, "Error", 0, 0,
                                 f"failed: {getattr(exc, 'orig', None) or exc}\n")
            raise

    async def _delete(self, execution_id: int, repository: str, result: RepositoryPlan, views: list[ManifestView],
                      outcome: dict[str, str]) -> str:
        planned = {v.digest: {t.name for t in v.tags} for v in views}
        for done, digest in enumerate(result.deleted):
            if done and done % STOP_CHECK_EVERY == 0 and await self.store.run(self.model.stop_requested,
                                                                                execution_id):
                for rest in result.deleted[done:]:
                    outcome[rest] = "not deleted: the run was stopped"
                return "Stopped"
            now_tagged = await self.store.query(self.model.tags_of, repository, digest)
            if now_tagged - planned.get(digest, set()):
                outcome[digest] = f"not deleted: tagged {', '.join(sorted(now_tagged))} since the run began"
                continue
            try:
                await self.manifests.delete(repository, None, parse_digest(digest), operator=OPERATOR)
            except TagImmutable as exc:
                outcome[digest] = f"not deleted: {exc.message}"
            except (ManifestUnknown, NameUnknown):
                pass  # deleted by someone else meanwhile: gone as planned
            except DomainError as exc:
                outcome[digest] = f"not deleted: {exc.message}"
        return "Success"

    async def stop(self, execution_id: int) -> None:
        await self.store.run(self.model.request_stop, execution_id)

    async def run_due(self) -> int:
        """Run every policy whose schedule is due, each claimed in the database so that only one process
        among all that look runs it; returns how many ran."""
        ran = 0
        now = time.time()
        for name in await self.store.query(self.model.due_schedules, now):
            current = await self.store.query(self.schedules.get, name)
            if current is None:
                continue
            due = await self.store.run(self.schedules.claim_due, name, now, next_run(current.cron, now))
            if due is None:
                continue
            policy_id = int(name.removeprefix(SCHEDULE_PREFIX))
            policy = await self.store.query(self.model.policy, policy_id)
            if policy is None:  # its project was deleted, and the policy with it
                await self.store.run(self.schedules.delete, name)
                continue
            execution_id = await self.store.run(self.model.start_execution, policy_id, SCHEDULED, False)
            if execution_id is None:
                log.info("scheduled retention of policy %d skipped: a run of it is still going", policy_id)
                continue
            await self.execute(execution_id, policy, False)
            ran += 1
        return ran

