"""An operator reclaims disk through Harbor's garbage collection API: a dry run, a real run, its log and
history, a stop, and a schedule that the server itself runs, once, though two workers look at it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.harbor import PASSWORD, api, assert_error, make_user
from tests.e2e.test_storage_reclaim import blob_file, push
from tests.support.moorage import MoorageServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MoorageServer]:
    # No grace and a lease of a second: what the test deletes is garbage as soon as it is deleted.
    server = MoorageServer(tmp_path / "data", env={"MOORAGE_GC_GRACE_MINUTES": "0",
                                                   "MOORAGE_GC_LEASE_MINUTES": str(1 / 60)})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def finished(admin: httpx.Client, location: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = admin.get(location.removeprefix("/api/v2.0"))
        assert r.status_code == 200, r.text
        if r.json()["job_status"] not in ("Pending", "Running"):
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"run still {r.json()['job_status']} after {timeout} s"
        time.sleep(0.2)


def run_now(admin: httpx.Client, **parameters: bool) -> dict:
    r = admin.post("/system/gc/schedule", json={"schedule": {"type": "Manual"}, "parameters": parameters})
    assert r.status_code == 201, r.text
    return finished(admin, r.headers["location"])


def test_a_dry_run_then_a_real_run_free_what_a_deleted_image_held(server: MoorageServer) -> None:
    project = server.project("gcapi")
    with server.client() as client:
        old, old_blobs = push(client, f"{project}/app", "old", [os.urandom(200_000)])
        _, new_blobs = push(client, f"{project}/app", "new", [os.urandom(100_000)])
    time.sleep(1.5)  # the pushes' leases have passed
    with api(server) as admin:
        assert admin.delete(f"/projects/{project}/repositories/app/artifacts/{old}").status_code == 200
        gone = [d for d in old_blobs if d not in new_blobs]
        dry = run_now(admin, dry_run=True, delete_untagged=False)
        assert dry["job_status"] == "Success" and dry["job_name"] == "GARBAGE_COLLECTION"
        assert json.loads(dry["job_parameters"]) == {"delete_untagged": False, "dry_run": True}
        assert all(blob_file(server, d).exists() for d in gone), "a dry run deletes nothing"
        dry_log = admin.get(f"/system/gc/{dry['id']}/log")
        assert dry_log.headers["content-type"].startswith("text/plain")
        assert all(f"would delete blob {d}" in dry_log.text for d in gone)

        real = run_now(admin)
        assert real["job_status"] == "Success" and real["job_kind"] == "MANUAL"
        assert not any(blob_file(server, d).exists() for d in gone)
        assert all(blob_file(server, d).exists() for d in new_blobs)
        assert all(f"delete blob {d}" in admin.get(f"/system/gc/{real['id']}/log").text for d in gone)

        history = admin.get("/system/gc", params={"page": 1, "page_size": 1})
        assert history.headers["x-total-count"] == "2"
        assert [h["id"] for h in history.json()] == [real["id"]], "newest first, one per page"
        # Stopping a run that has finished leaves it as it was.
        assert admin.put(f"/system/gc/{real['id']}").status_code == 200
        assert admin.get(f"/system/gc/{real['id']}").json()["job_status"] == "Success"
        assert_error(admin.get("/system/gc/999999"), 404, "NOT_FOUND")
        assert_error(admin.get("/system/gc/999999/log"), 404, "NOT_FOUND")
        assert_error(admin.get("/system/gc/x"), 400, "BAD_REQUEST")
        bad = admin.post("/system/gc/schedule", json={"schedule": {"type": "Manual"},
                                                      "parameters": {"dry_run": "yes"}})
        assert_error(bad, 400, "BAD_REQUEST")
        assert "dry_run" in bad.json()["errors"][0]["message"]


def test_only_administrators_collect_garbage(server: MoorageServer) -> None:
    with api(server) as admin:
        _, name = make_user(admin)
    with api(server, (name, PASSWORD)) as user, api(server, None) as anonymous:
        for client, status, code in ((user, 403, "FORBIDDEN"), (anonymous, 401, "UNAUTHORIZED")):
            assert_error(client.get("/system/gc"), status, code)
            assert_error(client.get("/system/gc/schedule"), status, code)
            assert_error(client.post("/system/gc/schedule", json={"schedule": {"type": "Manual"}}), status, code)
            assert_error(client.put("/system/gc/schedule", json={"schedule": {"type": "Daily"}}), status, code)


def test_a_schedule_is_set_changed_and_cancelled_and_the_server_runs_it_once_per_due_time(
        server: MoorageServer) -> None:
    with api(server) as admin:
        assert admin.get("/system/gc/schedule").json() == {}, "no schedule: Harbor's empty object"
        assert_error(admin.post("/system/gc/schedule", json={"schedule": {"type": "Custom", "cron": "0 3 * * *"}}),
                     400, "BAD_REQUEST")  # five fields: Harbor's cron has seconds first
        assert_error(admin.post("/system/gc/schedule", json={"schedule": {"type": "Yearly"}}), 400, "BAD_REQUEST")

        r = admin.post("/system/gc/schedule", json={"schedule": {"type": "Daily"},
                                                    "parameters": {"delete_untagged": True}})
        assert r.status_code == 201, r.text
        daily = admin.get("/system/gc/schedule").json()
        assert daily["schedule"]["type"] == "Daily" and daily["schedule"]["cron"] == "0 0 0 * * *"
        assert daily["schedule"]["next_scheduled_time"].endswith("T00:00:00.000Z")
        assert json.loads(daily["job_parameters"]) == {"delete_untagged": True, "dry_run": False}
        assert_error(admin.post("/system/gc/schedule", json={"schedule": {"type": "Hourly"}}), 409, "CONFLICT")
        assert_error(admin.put("/system/gc/schedule", json={"schedule": {"type": "Manual"}}), 400, "BAD_REQUEST")

        # Every two seconds: each worker looks every 30 s, and each due time is claimed by one of them.
        r = admin.put("/system/gc/schedule", json={"schedule": {"type": "Custom", "cron": "*/2 * * * * *"}})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 45
        scheduled: list[dict] = []
        while not scheduled:
            assert time.monotonic() < deadline, "the schedule never ran"
            time.sleep(1)
            scheduled = [h for h in admin.get("/system/gc").json() if h["job_kind"] == "SCHEDULE"]
        time.sleep(2)
        runs = [h for h in admin.get("/system/gc", params={"page_size": 100}).json() if h["job_kind"] == "SCHEDULE"]
        assert len(runs) == 1, f"one look, one claimed run, not one per worker: {runs}"
        assert finished(admin, f"/system/gc/{runs[0]['id']}")["job_status"] == "Success"

        assert admin.put("/system/gc/schedule", json={"schedule": {"type": "None"}}).status_code == 200
        assert admin.get("/system/gc/schedule").json() == {}
