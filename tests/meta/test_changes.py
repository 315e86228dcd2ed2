"""An operator runs more than one process: replicas on PostgreSQL, or the workers of one server on SQLite. Each
process remembers some answers (an account's standing behind a bearer token, verified tokens, signing keys);
a change made through one process must hold in every other the moment it is acknowledged: a robot disabled,
a password changed, a tag moved, a member removed, a project made private.

Requests are pinned to one worker process each (an HTTP connection stays with the worker that accepted it),
so a test knows that the process answering after the change is one that remembered the answer before it.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from moorage.meta.changes import ACCOUNTS, LISTENER_NAME, SIGNING_KEYS
from moorage.meta.store import MetaStore
from tests.api.harbor import PASSWORD, add_member, make_project, make_robot, make_user
from tests.support import oci
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.postgres import Postgres
from tests.support.procs import group_members

SERVICE = "moorage-registry"
ADMIN = ("admin", ADMIN_PASSWORD)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Pinned:
    """One kept-alive HTTP connection, and so one worker process of the server, for every request."""

    def __init__(self, server: MoorageServer) -> None:
        self.server = server
        self.conn = http.client.HTTPConnection(server.bind_host, server.port, timeout=30)
        self.conn.connect()

    def request(self, method: str, path: str, auth: tuple[str, str] | str | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        sent = dict(headers or {})
        if isinstance(auth, tuple):
            sent["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        elif isinstance(auth, str):
            sent["Authorization"] = f"Bearer {auth}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=sent)
        response = self.conn.getresponse()
        answer = Answer(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
        assert answer.status < 500, answer.body
        # The connection must stay with its worker: a closed one would be reopened to any of them.
        assert self.conn.sock is not None, "the server closed the pinned connection"
        return answer

    def manifest(self, repo: str, tag: str, auth: tuple[str, str] | str | None) -> Answer:
        return self.request("GET", f"/v2/{repo}/manifests/{tag}", auth, headers={"Accept": oci.OCI_MANIFEST})

    def worker(self) -> int:
        """The PID of the server process holding the other end of this connection."""
        assert self.conn.sock is not None and self.server.process is not None
        client_port = self.conn.sock.getsockname()[1]
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == self.server.port and int(remote.split(":")[1], 16) == client_port:
                inode = fields[9]
        assert inode is not None, "the server's end of the connection is not in /proc/net/tcp"
        for pid in group_members(self.server.process.pid):
            try:
                links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
            except OSError:
                continue
            if f"socket:[{inode}]" in links:
                return pid
        raise AssertionError("no process of the server holds the connection")

    def close(self) -> None:
        self.conn.close()


def one_per_worker(server: MoorageServer) -> list[Pinned]:
    """A pinned connection to each of the server's worker processes."""
    found: dict[int, Pinned] = {}
    spare: list[Pinned] = []
    for _ in range(64):
        pinned = Pinned(server)
        pinned.request("GET", "/v2/", ADMIN)
        worker = pinned.worker()
        if worker in found:
            spare.append(pinned)
        else:
            found[worker] = pinned
        if len(found) == server.workers:
            break
    for pinned in spare:
        pinned.close()
    assert len(found) == server.workers, f"reached {len(found)} of {server.workers} workers in 64 connections"
    return list(found.values())


def bearer_token(server: MoorageServer, auth: tuple[str, str], scope: str) -> str:
    r = httpx.get(f"{server.url}/service/token", params={"service": SERVICE, "scope": scope}, auth=auth)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def refused_token(answer: Answer) -> None:
    assert answer.status == 401, answer.body
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def push(server: MoorageServer, repo: str, tag: str) -> str:
    with server.client() as registry:
        return oci.push_image(registry, repo, tag, layer_size=512)[0]


@dataclass
class Setup:
    """Two places to make changes and watch them: ``changer`` makes them, ``watchers`` must see them at once."""

    changer: MoorageServer
    changer_api: Pinned
    watchers: list[Pinned]
    watched: MoorageServer


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Setup]:
    """Replicas A and B of one registry: one PostgreSQL database and one data directory between them."""
    root = tmp_path_factory.mktemp("changes-replicas")
    url = postgres.new_database(f"changes_{root.name.replace('-', '_')}")
    a, b = (MoorageServer(root / "volume", env={"MOORAGE_DATABASE_URL": url}, log_path=root / f"{name}.log")
            for name in ("a", "b"))
    pinned: list[Pinned] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(MoorageServer.start, (a, b)))
        pinned = [Pinned(a), *one_per_worker(b)]
        yield Setup(changer=a, changer_api=pinned[0], watchers=pinned[1:], watched=b)
    finally:
        for connection in pinned:
            connection.close()
        for server in (a, b):
            server.stop()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """One server on SQLite with two worker processes: changes through one, watched through the other."""
    server = MoorageServer(tmp_path_factory.mktemp("changes-workers"), workers=2)
    pinned: list[Pinned] = []
    try:
        server.start()
        pinned = one_per_worker(server)
        yield Setup(changer=server, changer_api=pinned[0], watchers=pinned[1:], watched=server)
    finally:
        for connection in pinned:
            connection.close()
        server.stop()


@pytest.fixture(params=["replicas on PostgreSQL", "workers on SQLite"])
def setup(request: pytest.FixtureRequest) -> Setup:
    return request.getfixturevalue("replicas" if request.param.startswith("replicas") else "workers")


def admin_api(setup: Setup) -> httpx.Client:
    return httpx.Client(base_url=f"{setup.changer.url}/api/v2.0", auth=ADMIN, timeout=30)


def test_a_robot_disabled_through_one_process_is_refused_by_every_other_at_once(setup: Setup) -> None:
    with admin_api(setup) as admin:
        project = make_project(admin)
        robot = make_robot(admin, project, ["pull"])
    repo = f"{project}/app"
    push(setup.changer, repo, "v1")
    creds = (robot["name"], robot["secret"])
    # A token issued by the changing process is accepted by the watching ones, which remember its standing.
    token = bearer_token(setup.changer, creds, f"repository:{repo}:pull")
    for watcher in setup.watchers:
        for _ in range(3):
            assert watcher.manifest(repo, "v1", token).status == 200
        assert watcher.manifest(repo, "v1", creds).status == 200

    answer = setup.changer_api.request("PUT", f"/api/v2.0/robots/{robot['id']}", ADMIN, body={"disable": True})
    assert answer.status == 200, answer.body

    for watcher in setup.watchers:
        refused_token(watcher.manifest(repo, "v1", token))
        assert watcher.manifest(repo, "v1", creds).status == 401
        assert watcher.request("GET", f"/service/token?service={SERVICE}", creds).status == 401


def test_a_password_changed_through_one_process_ends_the_users_tokens_in_every_other_at_once(setup: Setup) -> None:
    with admin_api(setup) as admin:
        project = make_project(admin)
        uid, name = make_user(admin)
        add_member(admin, project, name, 3)
    repo = f"{project}/app"
    push(setup.changer, repo, "v1")
    token = bearer_token(setup.changer, (name, PASSWORD), f"repository:{repo}:pull")
    for watcher in setup.watchers:
        assert watcher.manifest(repo, "v1", token).status == 200

    answer = setup.changer_api.request("PUT", f"/api/v2.0/users/{uid}/password", (name, PASSWORD),
                                       body={"old_password": PASSWORD, "new_password": "Changed-Passw0rd"})
    assert answer.status == 200, answer.body

    for watcher in setup.watchers:
        refused_token(watcher.manifest(repo, "v1", token))
        assert watcher.manifest(repo, "v1", (name, PASSWORD)).status == 401
        assert watcher.manifest(repo, "v1", (name, "Changed-Passw0rd")).status == 200


def test_a_tag_moved_through_one_process_is_served_by_every_other_at_once(setup: Setup) -> None:
    with admin_api(setup) as admin:
        project = make_project(admin)
    repo = f"{project}/app"
    first = push(setup.changer, repo, "stable")
    for watcher in setup.watchers:
        assert watcher.manifest(repo, "stable", ADMIN).headers["docker-content-digest"] == first

    second = push(setup.changer, repo, "stable")
    assert second != first
    for watcher in setup.watchers:
        answer = watcher.manifest(repo, "stable", ADMIN)
        assert answer.status == 200 and answer.headers["docker-content-digest"] == second
        assert oci.digest_of(answer.body) == second

    answer = setup.changer_api.request("DELETE", f"/api/v2.0/projects/{project}/repositories/app/artifacts/"
                                       f"{second}/tags/stable", ADMIN)
    assert answer.status == 200, answer.body
    for watcher in setup.watchers:
        assert watcher.manifest(repo, "stable", ADMIN).status == 404


def test_a_member_removed_or_a_project_made_private_through_one_process_holds_in_every_other_at_once(
        setup: Setup) -> None:
    with admin_api(setup) as admin:
        project = make_project(admin, public=True)
        _, name = make_user(admin)
        member = add_member(admin, project, name, 3)
    repo = f"{project}/app"
    push(setup.changer, repo, "v1")
    for watcher in setup.watchers:
        assert watcher.manifest(repo, "v1", (name, PASSWORD)).status == 200
        assert watcher.manifest(repo, "v1", None).status == 200

    answer = setup.changer_api.request("DELETE", f"/api/v2.0/projects/{project}/members/{member}", ADMIN,
                                       headers={"X-Is-Resource-Name": "true"})
    assert answer.status == 200, answer.body
    answer = setup.changer_api.request("PUT", f"/api/v2.0/projects/{project}", ADMIN,
                                       body={"metadata": {"public": "false"}}, headers={"X-Is-Resource-Name": "true"})
    assert answer.status == 200, answer.body

    for watcher in setup.watchers:
        # Public content no longer: the member left is refused (403), an anonymous caller is asked to log in.
        assert watcher.manifest(repo, "v1", (name, PASSWORD)).status == 403
        assert watcher.manifest(repo, "v1", None).status == 401


# -- the feed itself: a version moves once a change commits, and never for one that rolled back -----------------

def announce(store: MetaStore, topic: str, commit: bool = True) -> None:
    class RolledBack(Exception):
        pass

    try:
        with store.write() as conn:
            store.changes.announce(conn, topic)
            if not commit:
                raise RolledBack
    except RolledBack:
        pass


@pytest.mark.fast
def test_workers_sharing_a_sqlite_file_see_a_version_move_on_commit_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'moorage.db'}"
    writer, reader = MetaStore(url), MetaStore(url)  # each as a worker process would open it
    try:
        before = reader.changes.version(ACCOUNTS)
        with writer.write() as conn:
            writer.changes.announce(conn, ACCOUNTS)
            assert reader.changes.version(ACCOUNTS) == before  # not before the commit
        assert reader.changes.version(ACCOUNTS) != before
        moved = reader.changes.version(ACCOUNTS)
        announce(writer, ACCOUNTS, commit=False)
        assert reader.changes.version(ACCOUNTS) == moved
        assert (tmp_path / "moorage.db.changes").stat().st_mode & 0o077 == 0  # private, as the data directory
    finally:
        writer.dispose()
        reader.dispose()


async def until(predicate: Callable[[], Awaitable[object]], what: str, timeout: float = 30) -> object:
    """Poll ``predicate`` on the event loop (which must keep running: it reads the listening connection)."""
    deadline = time.monotonic() + timeout
    while not (result := await predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.02)
    return result


def test_replicas_on_postgresql_hear_committed_changes_and_trust_nothing_while_deaf(postgres: Postgres) -> None:
    database = "changes_feed"
    url = postgres.new_database(database)
    writer, reader = MetaStore(url), MetaStore(url)

    async def story() -> None:
        async def steady() -> int | None:
            heard = await reader.changes.fence()
            first = reader.changes.version(ACCOUNTS)
            return first if heard and first >= 0 and reader.changes.version(ACCOUNTS) == first else None

        before = await until(steady, "the reader to listen")
        # Heard at once: a fence after the commit has the change, whatever the load on the machine.
        for _ in range(20):
            announce(writer, ACCOUNTS, commit=False)
            keys = reader.changes.version(SIGNING_KEYS)
            announce(writer, SIGNING_KEYS)
            assert await reader.changes.fence()
            assert reader.changes.version(SIGNING_KEYS) != keys
            assert reader.changes.version(ACCOUNTS) == before, "a rolled-back change was heard"
        announce(writer, ACCOUNTS)
        assert await reader.changes.fence()
        assert reader.changes.version(ACCOUNTS) != before
        # Many requests at once share round trips, and every one of them has the change.
        heard = reader.changes.version(ACCOUNTS)
        announce(writer, ACCOUNTS)
        assert all(await asyncio.gather(*(reader.changes.fence() for _ in range(200))))
        assert reader.changes.version(ACCOUNTS) != heard

        # The listening connection dies (a PostgreSQL restart, a network cut): nothing cached may be trusted
        # until it listens again, and then every topic has moved, since what changed meanwhile went unheard.
        heard = reader.changes.version(ACCOUNTS)
        with postgres.connect() as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = %s AND application_name = %s", (database, LISTENER_NAME))
            assert killed.fetchall() == [(True,)]

            async def deaf() -> bool:
                return not await reader.changes.fence() and \
                    reader.changes.version(ACCOUNTS) != reader.changes.version(ACCOUNTS)

            await until(deaf, "the reader to stop trusting its caches")
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        again = await until(steady, "the reader to listen again")
        assert again != heard

    try:
        asyncio.run(story())
    finally:
        writer.dispose()
        reader.dispose()
