"""Upload sessions cannot pile up: open sessions are capped per repository and per account (429
TOOMANYREQUESTS saying which cap and what to do), and abandoned ones are purged while the server runs,
not only at its next start. Each server here is started by its test module with small caps or a short
time-to-live, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.harbor import PASSWORD, add_member, api, make_project, make_user, unique
from tests.registry.conftest import assert_error, digest_of, push_blob
from tests.support.moorage import MoorageServer
from tests.support.procs import running

PER_REPOSITORY = 5
PER_ACCOUNT = 8
DEVELOPER = 2
TTL_SECONDS = 3.0


def _server(request: pytest.FixtureRequest, data_dir: Path, env: dict[str, str]) -> Iterator[MoorageServer]:
    if request.param == "postgresql":
        env["MOORAGE_DATABASE_URL"] = request.getfixturevalue("postgres").new_database(
            data_dir.name.replace("-", "_"))
    yield from running(lambda: MoorageServer(data_dir, workers=2, env=env))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def capped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    yield from _server(request, tmp_path_factory.mktemp("capped"), {
        "MOORAGE_MAX_UPLOADS_PER_REPOSITORY": str(PER_REPOSITORY),
        "MOORAGE_MAX_UPLOADS_PER_ACCOUNT": str(PER_ACCOUNT)})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def expiring(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    yield from _server(request, tmp_path_factory.mktemp("expiring"), {
        "MOORAGE_UPLOAD_TTL_HOURS": str(TTL_SECONDS / 3600),
        "MOORAGE_UPLOAD_PURGE_INTERVAL_MINUTES": "0.02"})


@pytest.fixture(scope="module")
def project(capped: MoorageServer) -> str:
    with api(capped) as admin:
        return make_project(admin)


def developer(server: MoorageServer, project: str) -> tuple[str, httpx.Client]:
    """A new account that may push to ``project``, and a client speaking to the registry as it."""
    with api(server) as admin:
        _, name = make_user(admin)
        add_member(admin, project, name, DEVELOPER)
    return name, httpx.Client(base_url=server.url, auth=(name, PASSWORD), timeout=60)


def start(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def refused(client: httpx.Client, repo: str) -> str:
    """Starting a session in ``repo`` is refused with 429; returns the message."""
    return str(assert_error(client.post(f"/v2/{repo}/blobs/uploads/"), 429, "TOOMANYREQUESTS")["message"])


def finish(client: httpx.Client, location: str) -> None:
    blob = os.urandom(1000)
    done = client.put(location, params={"digest": digest_of(blob)}, content=blob)
    assert done.status_code == 201, done.text


def test_a_repository_holds_only_so_many_open_sessions_until_one_is_finished_or_cancelled(
        capped: MoorageServer, project: str) -> None:
    repo = f"{project}/{unique('full')}"
    (_, alice), (_, bob) = developer(capped, project), developer(capped, project)
    with alice, bob:
        by_alice = [start(alice, repo) for _ in range(PER_REPOSITORY)]

        message = refused(alice, repo)
        assert f"repository {repo} already has {PER_REPOSITORY} open uploads" in message
        assert "max_uploads_per_repository" in message
        assert "finish or cancel (DELETE) open uploads, or wait for them to expire after 24 h" in message
        # The cap is the repository's, whoever asks; other repositories are not affected.
        assert "max_uploads_per_repository" in refused(bob, repo)
        start(alice, f"{project}/{unique('other')}")
        # A single-request push has no session, so a full repository still takes it.
        push_blob(alice, repo, os.urandom(100))

        # Cancelling an upload of one's own needs only the right to push, which a developer has.
        assert alice.delete(by_alice.pop()).status_code == 204
        by_alice.append(start(alice, repo))
        refused(alice, repo)

        finish(alice, by_alice.pop())
        start(bob, repo)
        refused(bob, repo)


def test_an_account_holds_only_so_many_open_sessions_across_repositories(
        capped: MoorageServer, project: str) -> None:
    (name, carol), (_, dave) = developer(capped, project), developer(capped, project)
    with carol, dave:
        first, second, third = (f"{project}/{unique('acct')}" for _ in range(3))
        sessions = [start(carol, first) for _ in range(PER_REPOSITORY)]
        sessions += [start(carol, second) for _ in range(PER_ACCOUNT - PER_REPOSITORY)]

        message = refused(carol, third)
        assert f"account {name} already has {PER_ACCOUNT} open uploads" in message
        assert "max_uploads_per_account" in message
        assert "finish or cancel (DELETE) open uploads" in message
        # Another account is not affected.
        start(dave, third)

        finish(carol, sessions.pop())
        start(carol, third)
        refused(carol, third)


def test_concurrent_starts_never_overshoot_the_cap(capped: MoorageServer, project: str) -> None:
    repo = f"{project}/{unique('race')}"
    name, erin = developer(capped, project)
    erin.close()

    def attempt(_: int) -> int:
        with httpx.Client(base_url=capped.url, auth=(name, PASSWORD), timeout=60) as client:
            return client.post(f"/v2/{repo}/blobs/uploads/").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(attempt, range(16)))
    assert sorted(statuses) == [202] * PER_REPOSITORY + [429] * (16 - PER_REPOSITORY)


def test_abandoned_sessions_are_purged_while_the_server_runs_but_active_ones_survive(
        expiring: MoorageServer) -> None:
    repo = expiring.project("library") + "/purged"
    uploads = expiring.data_dir / "uploads"
    # Left by a single-request push cut off by a crash: no session owns it.
    orphan = uploads / "orphan-of-a-crashed-push"
    orphan.write_bytes(b"half a blob")
    long_ago = time.time() - 3600
    os.utime(orphan, (long_ago, long_ago))

    with expiring.client() as client:
        idle = start(client, repo)
        assert client.patch(idle, content=b"i" * 1000).status_code == 202
        idle_file = uploads / idle.rsplit("/", 1)[1]
        assert idle_file.exists()

        active = start(client, repo)
        sent = bytearray()
        began = time.monotonic()
        idle_gone_after: float | None = None
        # Keep the active session busy until the idle one is gone and the active one has lived
        # several times the time-to-live (so several purges have passed it by).
        while idle_gone_after is None or time.monotonic() - began < 3 * TTL_SECONDS:
            assert time.monotonic() - began < 60, "the idle session was never purged"
            chunk = os.urandom(512)
            response = client.patch(active, content=chunk,
                                    headers={"Content-Range": f"{len(sent)}-{len(sent) + len(chunk) - 1}"})
            assert response.status_code == 202, response.text
            sent += chunk
            if idle_gone_after is None and client.get(idle).status_code == 404:
                idle_gone_after = time.monotonic() - began
            time.sleep(0.2)  # a client pacing its chunks, not a wait for the server

        assert idle_gone_after >= TTL_SECONDS * 0.9, "purged before its time-to-live ran out"
        assert_error(client.get(idle), 404, "BLOB_UPLOAD_UNKNOWN")
        assert not idle_file.exists()
        assert not orphan.exists()

        digest = "sha256:" + hashlib.sha256(sent).hexdigest()
        done = client.put(active, params={"digest": digest})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/{repo}/blobs/{digest}").content == bytes(sent)
    assert expiring.process is not None and expiring.process.alive(), "no restart was needed"
    assert '"logger": "moorage.uploads", "message": "removed 1 upload(s) untouched for' in expiring.log()
