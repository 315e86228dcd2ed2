"""A project's storage quota holds with real clients and under load: docker and skopeo are refused with the
numbers when a push would pass the limit; a hundred concurrent pushes end with the exact usage; deletes and
garbage collection bring it down; ``moorage fsck`` finds no drift, and finds (and repairs) drift put there."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.api.harbor import api
from tests.e2e.test_storage_reclaim import gc
from tests.support.clients import DockerCli, Skopeo
from tests.support.databases import own_server
from tests.support.images import build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob

CREDS = f"admin:{ADMIN_PASSWORD}"
MiB = 1024 * 1024
LEASE_SECONDS = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MoorageServer]:
    """A registry of its own whose garbage collection takes what is unreferenced at once (no grace, short leases)."""
    yield from own_server(request, tmp_path / "data", {"MOORAGE_GC_GRACE_MINUTES": "0",
                                                       "MOORAGE_GC_LEASE_MINUTES": str(LEASE_SECONDS / 60)})


def fsck(server: MoorageServer, *options: str) -> tuple[int, dict]:
    """``moorage fsck --json`` run as an operator would, beside the serving registry."""
    result = subprocess.run([sys.executable, "-m", "moorage.cli.main", "fsck", "--data-dir", str(server.data_dir),
                             "--json", *options], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **server.env})
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def drift(report: dict) -> list[dict]:
    return [p for p in report["problems"] if p["kind"] == "quota_drift"]


def usage(server: MoorageServer, project: str) -> dict:
    with api(server) as admin:
        r = admin.get(f"/projects/{project}/summary")
        assert r.status_code == 200, r.text
        return r.json()["quota"]  # type: ignore[no-any-return]


def create_project(server: MoorageServer, name: str, limit: int) -> str:
    with api(server) as admin:
        r = admin.post("/projects", json={"project_name": name, "storage_limit": limit})
        assert r.status_code == 201, r.text
    return name


class Ledger:
    """What the pushes of a test put in a project, digest -> size: the usage the registry must report."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.images: dict[str, dict[str, int]] = {}

    def push(self, client: httpx.Client, repo: str, tag: str | None, layers: list[bytes]) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
        for blob in (config, *layers):
            if client.head(f"/v2/{repo}/blobs/{digest_of(blob)}").status_code != 200:
                push_blob(client, repo, blob)
        body = json.dumps(image_manifest(config, layers)).encode()
        digest = digest_of(body)
        r = client.put(f"/v2/{repo}/manifests/{tag or digest}", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, r.text
        with self.lock:
            self.images[f"{repo}@{digest}"] = {digest: len(body), **{digest_of(b): len(b) for b in (config, *layers)}}
        return digest

    def forget(self, repo: str, digest: str) -> None:
        with self.lock:
            del self.images[f"{repo}@{digest}"]

    def total(self) -> int:
        distinct: dict[str, int] = {}
        for content in self.images.values():
            distinct.update(content)
        return sum(distinct.values())


def test_docker_and_skopeo_pushes_past_the_limit_are_refused_with_the_numbers(
        moorage: MoorageServer, docker: DockerCli, skopeo: Skopeo, tmp_path: Path) -> None:
    small = create_project(moorage, f"quota-small-{secrets.token_hex(3)}", MiB)
    roomy = moorage.project(f"quota-roomy-{secrets.token_hex(3)}")
    image = build_image(tmp_path / "layout", tag="v1", layer_size=2 * MiB)
    layer = image.layers[0].size

    refused = skopeo.push(image, f"{moorage.host}/{small}/app:v1", creds=CREDS, check=False)
    assert not refused.ok
    assert "denied" in refused.output.lower()
    assert "would exceed the project's limit of 1 MiB; 0 B used" in refused.output, refused.output
    assert usage(moorage, small)["used"] == {"storage": 0}

    # docker pushes the same image (pulled from a project without a limit) and is refused the same way.
    skopeo.push(image, f"{moorage.host}/{roomy}/app:v1", creds=CREDS)
    docker.login(moorage.host, "admin", ADMIN_PASSWORD)
    docker.pull(f"{moorage.host}/{roomy}/app:v1")
    docker.run("tag", f"{moorage.host}/{roomy}/app:v1", f"{moorage.host}/{small}/app:v1")
    pushed = docker.run("push", f"{moorage.host}/{small}/app:v1", check=False)
    assert not pushed.ok
    assert "would exceed the project's limit of 1 MiB" in pushed.output, pushed.output
    assert usage(moorage, small)["used"] == {"storage": 0}
    with moorage.client() as client:
        assert client.get(f"/v2/{small}/app/manifests/v1").status_code == 404

    # Raised, the same push goes through and is counted in full: manifest, config and layer.
    with api(moorage) as admin:
        assert admin.put(f"/projects/{small}", json={"storage_limit": 4 * MiB}).status_code == 200
    skopeo.push(image, f"{moorage.host}/{small}/app:v1", creds=CREDS)
    assert usage(moorage, small)["used"] == {"storage": image.manifest.size + image.config.size + layer}


def test_concurrent_pushes_deletes_and_gc_keep_the_usage_exact(server: MoorageServer) -> None:
    project = create_project(server, "busy", 1024 * MiB)
    ledger = Ledger()
    shared = os.urandom(64 * 1024)
    start = threading.Barrier(100)

    def one_push(n: int) -> tuple[str, str]:
        with server.client() as client:
            start.wait(timeout=60)
            repo = f"{project}/app{n % 10}"
            return repo, ledger.push(client, repo, f"v{n}", [shared, os.urandom(20_000 + n)])

    with ThreadPoolExecutor(max_workers=100) as pool:
        pushed = list(pool.map(one_push, range(100)))
    assert len(pushed) == 100
    assert usage(server, project) == {"hard": {"storage": 1024 * MiB}, "used": {"storage": ledger.total()}}
    code, report = fsck(server)
    assert code == 0 and not drift(report), report["problems"]

    # Deletes through both APIs, while other clients keep pushing and garbage collection runs in a loop.
    stop = threading.Event()
    failures: list[str] = []

    def keep_pushing(worker: int) -> None:
        with server.client() as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    ledger.push(client, f"{project}/late{worker}", f"n{n}", [shared, os.urandom(10_000)])
                except AssertionError as exc:  # recorded, not raised: the thread must not die silently
                    failures.append(str(exc))

    def collect() -> None:
        while not stop.is_set():
            gc(server, "--delete-untagged")

    workers = [threading.Thread(target=keep_pushing, args=(w,)) for w in range(3)] + [threading.Thread(target=collect)]
    for thread in workers:
        thread.start()
    try:
        with api(server) as admin, server.client() as client:
            for repo, digest in pushed[:40]:
                r = admin.delete(f"/projects/{project}/repositories/{repo.split('/', 1)[1]}/artifacts/{digest}")
                assert r.status_code == 200, r.text
                ledger.forget(repo, digest)
            for repo, digest in pushed[40:60]:
                assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
                ledger.forget(repo, digest)
            # Untagged images go only when garbage collection takes them (--delete-untagged).
            for n in range(5):
                ledger.push(client, f"{project}/untagged", None, [os.urandom(30_000 + n)])
    finally:
        stop.set()
        for thread in workers:
            thread.join(timeout=120)
    assert not failures, failures[:3]
    with ledger.lock:
        untagged = [key for key in ledger.images if key.startswith(f"{project}/untagged@")]
        for key in untagged:
            del ledger.images[key]
    time.sleep(LEASE_SECONDS + 1)
    gc(server, "--delete-untagged")
    assert usage(server, project)["used"] == {"storage": ledger.total()}
    code, report = fsck(server)
    assert code == 0 and not drift(report), report["problems"]
    assert report["checked"]["project_quotas"] >= 1

    # Deleting a repository gives back everything only it held.
    with api(server) as admin:
        for n in range(10):
            assert admin.delete(f"/projects/{project}/repositories/app{n}").status_code == 200
    with ledger.lock:
        for key in [k for k in ledger.images if k.startswith(f"{project}/app")]:
            del ledger.images[key]
    assert usage(server, project)["used"] == {"storage": ledger.total()}


def test_fsck_reports_drift_and_repair_recounts_it(server: MoorageServer) -> None:
    project = create_project(server, "drifty", -1)
    ledger = Ledger()
    with server.client() as client:
        for n in range(3):
            ledger.push(client, f"{project}/app", f"v{n}", [os.urandom(40_000)])
    # What a bug (or a hand-edited database) would leave: a usage that no longer adds up.
    engine = sa.create_engine(server.env.get("MOORAGE_DATABASE_URL") or f"sqlite:///{server.data_dir / 'moorage.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE project_quotas SET used = used + 12345 WHERE project_id = "
                             "(SELECT id FROM projects WHERE name = :name)"), {"name": project})
        conn.execute(sa.text("DELETE FROM project_blobs WHERE project_id = (SELECT id FROM projects WHERE name = "
                             ":name) AND digest = (SELECT MIN(digest) FROM project_blobs)"), {"name": project})
    engine.dispose()
    code, report = fsck(server)
    assert code == 1
    [found] = drift(report)
    assert found["message"].startswith(f"project {project}: usage recorded as {ledger.total() + 12345} bytes")
    assert f"add up to {ledger.total()} bytes (+12345;" in found["message"]
    assert found["action"].startswith("--repair")
    code, repaired = fsck(server, "--repair")
    assert code == 0 and drift(repaired)[0]["repaired"]
    code, clean = fsck(server)
    assert code == 0 and not drift(clean)
    assert usage(server, project)["used"] == {"storage": ledger.total()}
