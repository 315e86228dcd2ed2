"""The webhook model's steps, each one transaction: outbox events fan out to the policies that want them
(and leave the outbox), due tasks are claimed by one worker and not another, an outcome needs the claim, and
old finished history is forgotten while undelivered work is kept."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from moorage.core.webhooks import Target
from moorage.meta import outbox
from moorage.meta.projects import ProjectModel
from moorage.meta.schema import webhook_events
from moorage.meta.store import MetaStore
from moorage.meta.webhooks import ERROR, PENDING, SUCCESS, WebhookModel
from moorage.settings import Settings

pytestmark = pytest.mark.fast


@pytest.fixture
def model(tmp_path: Path) -> Iterator[WebhookModel]:
    from moorage.server import prepare

    settings = Settings(data_dir=tmp_path, admin_password="Webhook-Test-1")
    umask = os.umask(0o077)
    try:
        prepare(settings)
    finally:
        os.umask(umask)
    store = MetaStore(settings.database)
    try:
        yield WebhookModel(store)
    finally:
        store.dispose()


def _project(model: WebhookModel, name: str) -> int:
    created = ProjectModel(model.store).create(name, 1, False, {})
    assert created is not None
    return created


def _events(model: WebhookModel, *events: outbox.OutboxEvent) -> None:
    with model.store.write() as conn:
        outbox.record(conn, events)


def test_events_fan_out_once_to_the_policies_that_want_them(model: WebhookModel) -> None:
    library = _project(model, "library")
    _project(model, "other")
    wants_push = model.create(library, "push", "", [Target("http://a"), Target("http://b")], ["PUSH_ARTIFACT"],
                              "admin", True)
    model.create(library, "off", "", [Target("http://c")], ["PUSH_ARTIFACT"], "admin", False)
    model.create(library, "deletes", "", [Target("http://d")], ["DELETE_TAG"], "admin", True)
    _events(model, *outbox.pushed("library/app", "sha256:" + "1" * 64, "m", 10, ["v1"], "alice", time.time()),
            outbox.OutboxEvent("PUSH_ARTIFACT", "other/app", "bob", [{"digest": "x"}]))
    assert model.fan_out("registry.example") == 3
    with model.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar_one() == 0
    assert model.fan_out("registry.example") == 0
    total, executions = model.executions(wants_push, 0, 10)
    assert total == 1 and executions[0].event_type == "PUSH_ARTIFACT" and executions[0].status == PENDING
    assert sorted(t.address for t in model.tasks(executions[0].id)) == ["http://a", "http://b"]

    first = model.claim("worker-1", 5.0, 10)
    assert sorted(d.target.address for d in first if d.target) == ["http://a", "http://b"]
    assert first[0].payload["event_data"]["resources"][0]["resource_url"] == "registry.example/library/app:v1"
    assert model.claim("worker-2", 5.0, 10) == [], "claimed tasks are nobody else's"
    assert not model.finish(first[0].task_id, "worker-2", SUCCESS, None, "x\n"), "only the claimant records"
    assert model.finish(first[0].task_id, "worker-1", SUCCESS, None, "ok\n")
    assert model.finish(first[1].task_id, "worker-1", PENDING, time.time() - 1, "retry\n")
    again = model.claim("worker-2", 5.0, 10)
    assert [d.task_id for d in again] == [first[1].task_id] and again[0].run_count == 1
    assert model.finish(again[0].task_id, "worker-2", ERROR, None, "given up\n")
    assert model.execution(wants_push, executions[0].id).status == ERROR  # type: ignore[union-attr]


def test_old_finished_history_is_forgotten_and_undelivered_work_kept(model: WebhookModel) -> None:
    library = _project(model, "library")
    policy = model.create(library, "p", "", [Target("http://a")], ["PUSH_ARTIFACT", "CREATE_TAG"], "admin", True)
    _events(model, *outbox.pushed("library/app", "sha256:" + "2" * 64, "m", 10, ["v1"], "alice", time.time()))
    model.fan_out("r")
    done, waiting = model.claim("w", 5.0, 10)
    model.finish(done.task_id, "w", SUCCESS, None, "ok\n")
    model.finish(waiting.task_id, "w", PENDING, time.time() + 3600, "retry later\n")
    assert model.purge(time.time() + 1) == 1
    total, left = model.executions(policy, 0, 10)
    assert total == 1 and left[0].id == waiting.execution_id
