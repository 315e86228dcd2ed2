"""Online garbage collection: what nothing references goes, while pushes and pulls carry on.

A run plans on one snapshot of every reference (``plan``: pure, so a dry run lists exactly what a real
run decides) and then deletes item by item, each deletion re-checked in its own transaction
(``moorage.meta.gc``): a manifest only while still untagged and unreferenced, a repository's link to a
blob only once its lease has passed and no manifest there references it, a blob only when nothing links
or references it and it is older than the grace period. A blob's deletion is decided together with a
tombstone, in one transaction; its content goes next, then the tombstone. A push of that digest waits
for the tombstone to go, and a run that dies midway finishes the tombstoned deletions on the next run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from moorage.blobs.driver import BlobDriver
from moorage.core.cron import cron_of, next_run
from moorage.core.errors import Conflict, InvalidInput
from moorage.meta.gc import GCModel, LinkRow, ManifestRow, Snapshot
from moorage.meta.schedules import Schedule, ScheduleModel

log = logging.getLogger("moorage.gc")

T = TypeVar("T")
Progress = Callable[[int, int], None]
#: Links expired, and blobs decided and deleted, per transaction: one commit per blob held the sweep under
#: 1,000 blobs/s on SQLite. Between two batches the run looks whether it was asked to stop.
BATCH = 200
#: A run whose row has not been touched this long belongs to a process that died.
STALE_AFTER_SECONDS = 600.0
#: The name of garbage collection's schedule (and of the in-server job that runs it when due).
SCHEDULE = "gc"


@dataclass
class Plan:
    #: Untagged manifests to delete, every one after whatever references it.
    manifests: list[ManifestRow] = field(default_factory=list)
    #: Repository links whose lease has passed and that no manifest of the repository references.
    links: list[LinkRow] = field(default_factory=list)
    #: (digest, size) of blobs nothing will link or reference.
    blobs: list[tuple[str, int]] = field(default_factory=list)
    #: (digest, size) a run that died decided to delete and did not finish.
    unfinished: list[tuple[str, int]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.blobs) + sum(size for _, size in self.unfinished)


@dataclass
class Outcome:
    run_id: int
    dry_run: bool
    manifests: int
    blobs: int
    bytes: int
    status: str
    log: list[str]
    #: Seconds taking the snapshot and planning; seconds deleting (0 for a dry run).
    mark_seconds: float = 0.0
    sweep_seconds: float = 0.0


def plan(view: Snapshot, now: float, created_before: float, delete_untagged: bool) -> Plan:
    """What a run started on ``view`` deletes."""
    result = Plan(unfinished=sorted(view.tombstones.items()))
    doomed = _untagged(view) if delete_untagged else set()
    result.manifests = _parents_first(view, doomed)
    in_repository: set[tuple[int, str]] = set()
    anywhere: set[str] = set()
    for mid, refs in view.references.items():
        if mid in doomed or mid not in view.manifests:
            continue
        repository = view.manifests[mid].repository_id
        for digest, kind in refs:
            if kind == "blob":
                in_repository.add((repository, digest))
                anywhere.add(digest)
    linked: set[str] = set()
    for link in view.links:
        if link.leased_until < now and (link.repository_id, link.digest) not in in_repository:
            result.links.append(link)
        else:
            linked.add(link.digest)
    result.blobs = sorted((digest, size) for digest, (size, created) in view.blobs.items()
                          if digest not in linked and digest not in anywhere and created < created_before)
    return result


def _untagged(view: Snapshot) -> set[int]:
    """Manifests nothing keeps: not tagged, not a child of a kept index, not a referrer of a kept manifest."""
    by_digest = {(m.repository_id, m.digest): m.id for m in view.manifests.values()}
    referrers: dict[tuple[int, str], list[int]] = defaultdict(list)
    for m in view.manifests.values():
        if m.subject:
            referrers[(m.repository_id, m.subject)].append(m.id)
    kept = {mid for mid in view.tagged if mid in view.manifests}
    pending = list(kept)
    while pending:
        m = view.manifests[pending.pop()]
        following = [by_digest.get((m.repository_id, digest)) for digest, kind in view.references.get(m.id, [])
                     if kind == "manifest"]
        following += referrers[(m.repository_id, m.digest)]
        for mid in following:
            if mid is not None and mid not in kept:
                kept.add(mid)
                pending.append(mid)
    return set(view.manifests) - kept


def _parents_first(view: Snapshot, doomed: set[int]) -> list[ManifestRow]:
    """``doomed`` ordered so that an index goes before its children and a subject before its referrers: each
    deletion's re-check then finds nothing that still holds the next."""
    by_digest = {(view.manifests[mid].repository_id, view.manifests[mid].digest): mid for mid in doomed}
    after: dict[int, list[int]] = defaultdict(list)
    waiting: dict[int, int] = dict.fromkeys(doomed, 0)
    for mid in doomed:
        m = view.manifests[mid]
        held = [by_digest.get((m.repository_id, digest)) for digest, kind in view.references.get(mid, [])
                if kind == "manifest"]
        for child in held:
            if child is not None and child != mid:
                after[mid].append(child)
                waiting[child] += 1
        subject = by_digest.get((m.repository_id, m.subject)) if m.subject else None
        if subject is not None and subject != mid:
            after[subject].append(mid)
            waiting[mid] += 1
    ready = sorted(mid for mid, count in waiting.items() if count == 0)
    ordered: list[int] = []
    while ready:
        mid = ready.pop()
        ordered.append(mid)
        for nxt in after[mid]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    ordered += sorted(set(doomed) - set(ordered))  # a cycle cannot be pushed; kept safe if one appears
    return [view.manifests[mid] for mid in ordered]


class GarbageCollector:
    """Blocking: the server runs it off the event loop, the CLI in the foreground."""

    def __init__(self, model: GCModel, driver: BlobDriver, grace_minutes: float) -> None:
        self.model = model
        self.driver = driver
        self.grace_minutes = grace_minutes
        #: Told of every finished run (the server's metrics).
        self.observe: Callable[[Outcome], None] | None = None

    def start(self, *, dry_run: bool, delete_untagged: bool, trigger: str = "Manual") -> int:
        """Record a run as started; ``collect`` it next."""
        run_id = self.model.start_run(trigger, dry_run, delete_untagged)
        assert run_id is not None
        return run_id

    def launch(self, *, dry_run: bool, delete_untagged: bool) -> int:
        """Start a manual run in the background and answer its id at once (the API's "run now"); Conflict while
        another run is going, as two runs would only race each other through the same deletions."""
        run_id = self.model.start_run("Manual", dry_run, delete_untagged, alone=True)
        if run_id is None:
            raise Conflict("a garbage collection is already running; wait for it to finish or stop it first")

        def work() -> None:
            try:
                self.collect(dry_run=dry_run, delete_untagged=delete_untagged, run_id=run_id)
            except Exception as exc:  # recorded in the run's log by collect; the thread has nobody to raise to
                log.warning("garbage collection %d failed: %s", run_id, getattr(exc, "orig", None) or exc)

        threading.Thread(target=work, name=f"gc-{run_id}", daemon=True).start()
        return run_id

    def collect(self, *, dry_run: bool, delete_untagged: bool, trigger: str = "Manual",
                progress: Progress | None = None, run_id: int | None = None) -> Outcome:
        if run_id is None:
            run_id = self.start(dry_run=dry_run, delete_untagged=delete_untagged, trigger=trigger)
        lines: list[str] = []
        if abandoned := self.model.abandon_stale(STALE_AFTER_SECONDS):
            lines.append(f"marked {abandoned} run(s) whose process stopped midway as failed; their deletions "
                         "finish in this run")
        try:
            outcome = self._collect(run_id, dry_run, delete_untagged, lines, progress)
        except Exception as exc:
            lines.append(f"failed: {getattr(exc, 'orig', None) or exc}")
            self.model.finish_run(run_id, "Error", 0, 0, 0, "\n".join(lines) + "\n")
            raise
        self.model.finish_run(run_id, outcome.status, outcome.blobs, outcome.manifests, outcome.bytes,
                              "\n".join(lines) + "\n")
        if self.observe is not None:
            self.observe(outcome)
        return outcome

    def _collect(self, run_id: int, dry_run: bool, delete_untagged: bool, lines: list[str],
                 progress: Progress | None) -> Outcome:
        started = time.time()
        view = self.model.snapshot()
        todo = plan(view, view.taken_at, view.taken_at - self.grace_minutes * 60, delete_untagged)
        marked = time.time()
        lines.append(f"{'dry run: ' if dry_run else ''}marked in {marked - started:.2f} s: "
                     f"{len(todo.manifests)} untagged manifest(s), {len(todo.links)} expired blob link(s), "
                     f"{len(todo.blobs) + len(todo.unfinished)} blob(s) of {todo.bytes} bytes to delete "
                     f"({len(view.blobs)} blobs in the store, grace {self.grace_minutes:g} min)")
        for m in todo.manifests:
            lines.append(f"{'would delete' if dry_run else 'delete'} manifest {m.digest} "
                         f"(repository id {m.repository_id})")
        for digest, size in [*todo.unfinished, *todo.blobs]:
            lines.append(f"{'would delete' if dry_run else 'delete'} blob {digest} ({size} bytes)")
        if dry_run:
            return Outcome(run_id, True, len(todo.manifests), len(todo.blobs) + len(todo.unfinished), todo.bytes,
                           "Success", lines, marked - started)
        manifests = sum(self.model.delete_manifest_if_unreferenced(m.id) for m in todo.manifests)
        for links in _batches(todo.links):
            self.model.expire_links(links, view.taken_at)
        total = len(todo.unfinished) + len(todo.blobs)
        done = freed = deleted = 0
        for batch in _batches(todo.unfinished):
            self._remove([digest for digest, _ in batch])
            deleted, freed, done = deleted + len(batch), freed + sum(size for _, size in batch), done + len(batch)
            if progress:
                progress(done, total)
        cutoff = view.taken_at - self.grace_minutes * 60
        for batch in _batches(todo.blobs):
            if self.model.stop_requested(run_id):
                lines.append(f"stopped on request after {deleted} blob(s)")
                return Outcome(run_id, False, manifests, deleted, freed, "Stopped", lines, marked - started,
                               time.time() - marked)
            doomed = self.model.tombstone([digest for digest, _ in batch], cutoff)
            self._remove(list(doomed))
            deleted, freed = deleted + len(doomed), freed + sum(doomed.values())
            lines.extend(f"kept blob {digest}: referenced again since the plan" for digest, _ in batch
                         if digest not in doomed)
            done += len(batch)
            if progress:
                progress(done, total)
        swept = time.time() - marked
        lines.append(f"swept in {swept:.2f} s: deleted {manifests} manifest(s) and {deleted} blob(s), "
                     f"freed {freed} bytes")
        log.info("garbage collection %d: %d manifest(s), %d blob(s), %d bytes freed", run_id, manifests, deleted,
                 freed)
        return Outcome(run_id, False, manifests, deleted, freed, "Success", lines, marked - started, swept)

    def _remove(self, digests: list[str]) -> None:
        # One request per thousand keys on object storage (DeleteObjects); one unlink each on a filesystem.
        self.driver.delete_many(digests)
        if digests:
            self.model.clear_tombstones(digests)


def _batches(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def run_if_due(collector: GarbageCollector, schedules: ScheduleModel) -> Outcome | None:
    """Run garbage collection when its schedule says so; the run is claimed in the database, so among all
    the processes that look only one runs it."""
    now = time.time()
    current = schedules.get(SCHEDULE)
    if current is None or current.next_run is None:
        return None
    due = schedules.claim_due(SCHEDULE, now, next_run(current.cron, now))
    if due is None:
        return None
    return collector.collect(dry_run=bool(due.parameters.get("dry_run")),
                             delete_untagged=bool(due.parameters.get("delete_untagged")), trigger="Schedule")


def parameters(given: Mapping[str, Any] | None) -> dict[str, bool]:
    """A run's parameters as a client gives them: ``delete_untagged`` and ``dry_run``, both false unless set
    (Harbor's ``workers`` and anything else are ignored: one run deletes item by item, in one thread)."""
    chosen = {}
    for name in ("delete_untagged", "dry_run"):
        value = (given or {}).get(name, False)
        if not isinstance(value, bool):
            raise InvalidInput(f"parameters.{name} must be true or false")
        chosen[name] = value
    return chosen


def set_schedule(schedules: ScheduleModel, type_: str, cron: str | None, chosen: dict[str, bool]) -> Schedule | None:
    """Run garbage collection by a Harbor ScheduleObj from now on ("None": no longer by any)."""
    expression = cron_of(type_, cron)
    if not expression:
        if type_ == "Manual":
            raise InvalidInput("a schedule of type Manual runs once, now: POST it instead of updating the schedule")
        schedules.delete(SCHEDULE)
        return None
    schedules.put(SCHEDULE, type_, expression, chosen, next_run(expression, time.time()))
    return schedules.get(SCHEDULE)
