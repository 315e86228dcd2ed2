"""Webhook deliveries survive what goes wrong around them: a receiver that is down for a while gets every
event once it is back, each exactly once by id; a receiver that answers 500 gets the event again; and a
server killed (SIGKILL) after a push committed but before its events went out delivers them after restart.
On SQLite and on PostgreSQL, with two worker processes sharing the work."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.harbor import api, make_project
from tests.e2e.test_storage_reclaim import push
from tests.support.moorage import MoorageServer
from tests.support.postgres import Postgres
from tests.support.procs import wait_until
from tests.support.webhook_receiver import WebhookReceiver

# Quick retries so a test sees several attempts; a short timeout so a killed worker's claim runs out soon.
FAST_RETRIES = {"MOORAGE_WEBHOOK_RETRY_BASE_SECONDS": "0.3", "MOORAGE_WEBHOOK_RETRY_MAX_SECONDS": "1",
                "MOORAGE_WEBHOOK_TIMEOUT_SECONDS": "2", "MOORAGE_WEBHOOK_POLL_SECONDS": "0.2"}


@pytest.fixture(params=["sqlite", "postgresql"])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return dict(FAST_RETRIES)
    postgres: Postgres = request.getfixturevalue("postgres")
    url = postgres.new_database(f"hooks_{os.getpid()}_{tmp_path.name.replace('-', '_')}"[:60])
    return {**FAST_RETRIES, "MOORAGE_DATABASE_URL": url}


@pytest.fixture
def server(tmp_path: Path, environment: dict[str, str]) -> Iterator[MoorageServer]:
    server = MoorageServer(tmp_path / "data", workers=2, env=environment)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def policy_for(server: MoorageServer, address: str) -> tuple[str, int]:
    with api(server) as admin:
        project = make_project(admin)
        r = admin.post(f"/projects/{project}/webhook/policies", headers={"X-Is-Resource-Name": "true"},
                       json={"name": "ci", "targets": [{"address": address}],
                             "event_types": ["PUSH_ARTIFACT", "CREATE_TAG"]})
        assert r.status_code == 201, r.text
        return project, int(r.headers["location"].rsplit("/", 1)[1])


def tasks_of(server: MoorageServer, project: str, policy_id: int) -> list[dict[str, Any]]:
    base = f"/projects/{project}/webhook/policies/{policy_id}/executions"
    named = {"X-Is-Resource-Name": "true"}
    with api(server) as admin:
        executions = admin.get(base, headers=named, params={"page_size": 100}).json()
        return [t for e in executions for t in admin.get(f"{base}/{e['id']}/tasks", headers=named).json()]


def all_delivered(server: MoorageServer, project: str, policy_id: int, count: int) -> bool:
    tasks = tasks_of(server, project, policy_id)
    return len(tasks) == count and all(t["status"] == "Success" for t in tasks)


def test_a_receiver_down_for_a_while_gets_every_event_exactly_once(server: MoorageServer, tmp_path: Path) -> None:
    receiver = WebhookReceiver(tmp_path / "receiver")
    project, policy_id = policy_for(server, receiver.url)
    with server.client() as registry:
        for tag in ("a", "b", "c"):
            push(registry, f"{project}/app", tag, [os.urandom(64)])

    def retried() -> bool:
        tasks = tasks_of(server, project, policy_id)
        return len(tasks) == 6 and all(t["run_count"] >= 2 for t in tasks)
    wait_until(retried, timeout=60, what="every delivery to have failed twice while the receiver is down")
    receiver.start()
    try:
        wait_until(lambda: all_delivered(server, project, policy_id, 6), timeout=60,
                   what="every delivery to succeed once the receiver is up")
        ids = [e["headers"]["x-moorage-event-id"] for e in receiver.received()]
        assert len(ids) == 6 and len(set(ids)) == 6, "each event arrives once"
        assert sorted(e["json"]["type"] for e in receiver.received()) == ["CREATE_TAG"] * 3 + ["PUSH_ARTIFACT"] * 3
    finally:
        receiver.stop()
    with api(server) as admin:
        task = tasks_of(server, project, policy_id)[0]
        execution_id = task["execution_id"]
        log = admin.get(f"/projects/{project}/webhook/policies/{policy_id}/executions/{execution_id}/tasks/"
                        f"{task['id']}/log", headers={"X-Is-Resource-Name": "true"}).text
    assert "ConnectError" in log and "retry at" in log and log.rstrip().endswith("delivered"), log


def test_a_receiver_answering_500_gets_the_event_again(server: MoorageServer, tmp_path: Path) -> None:
    receiver = WebhookReceiver(tmp_path / "receiver", fail_first=2).start()
    try:
        project, policy_id = policy_for(server, receiver.url)
        with server.client() as registry:
            push(registry, f"{project}/app", "v1", [b"x"])
        wait_until(lambda: all_delivered(server, project, policy_id, 2), timeout=60, what="both deliveries")
        entries = [line for line in receiver.record.read_text().splitlines() if line]
        assert len(entries) == 4, "two refused with 500, then each of the two events taken once"
        assert len({e["headers"]["x-moorage-event-id"] for e in receiver.received()}) == 2
    finally:
        receiver.stop()


def test_a_server_killed_between_commit_and_delivery_delivers_after_restart(server: MoorageServer,
                                                                           tmp_path: Path) -> None:
    receiver = WebhookReceiver(tmp_path / "receiver")  # not listening yet: nothing can be delivered
    project, policy_id = policy_for(server, receiver.url)
    with server.client() as registry:
        digest, _ = push(registry, f"{project}/app", "v1", [os.urandom(64)])
    # The push has committed (201); its events are in the outbox or failing against the absent receiver.
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    wait_until(lambda: server.process is not None and not server.process.alive(), timeout=15, what="the kill")
    server.process = None
    receiver.start()
    try:
        server.start()
        wait_until(lambda: len(receiver.received()) >= 2, timeout=90, what="the events after the restart")
        wait_until(lambda: all_delivered(server, project, policy_id, 2), timeout=60, what="both tasks done")
        received = receiver.received()
        assert sorted(e["json"]["type"] for e in received) == ["CREATE_TAG", "PUSH_ARTIFACT"]
        assert {e["json"]["event_data"]["resources"][0]["digest"] for e in received} == {digest}
        assert len({e["headers"]["x-moorage-event-id"] for e in received}) == 2
    finally:
        receiver.stop()


def test_webhook_test_sends_a_signed_sample(server: MoorageServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    receiver = WebhookReceiver(tmp_path / "receiver").start()
    try:
        done = subprocess.run([sys.executable, "-m", "moorage.cli.main", "webhook", "test", receiver.url,
                               "--secret", "abc", "--event", "DELETE_TAG"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert "HTTP 200" in done.stderr
        entry = receiver.received()[0]
        assert entry["json"]["type"] == "DELETE_TAG"
        assert entry["headers"]["x-moorage-signature-256"].startswith("sha256=")
        project, _ = policy_for(server, receiver.url)
        env = {**os.environ, "MOORAGE_DATA_DIR": str(server.data_dir), **server.env}
        done = subprocess.run([sys.executable, "-m", "moorage.cli.main", "webhook", "test", "--project", project],
                              capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        assert receiver.received()[1]["json"]["type"] == "PUSH_ARTIFACT"
    finally:
        receiver.stop()
    down = subprocess.run([sys.executable, "-m", "moorage.cli.main", "webhook", "test", receiver.url],
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "failed" in down.stderr
