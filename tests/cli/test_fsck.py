"""``moorage fsck`` as an operator runs it after a disk incident: a real server, images pushed by skopeo,
damage done to the stopped store by hand, then the real CLI process; the repaired store takes a real
push again and gives the image back intact."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from moorage.core.fsck import ORPHAN_GRACE_SECONDS
from tests.support.clients import Skopeo
from tests.support.images import ImageInfo, blob_path, build_image, tagged_descriptor
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.postgres import Postgres

CREDS = f"admin:{ADMIN_PASSWORD}"
SRC = Path(__file__).resolve().parents[2] / "src"
# Older than the grace that protects an upload being committed: a leftover from before the incident.
LONG_AGO = time.time() - ORPHAN_GRACE_SECONDS - 3600


def fsck(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   "COLUMNS": "200", **(env or {})}
    environment.pop("MOORAGE_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", "fsck", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, env=environment, timeout=300, check=False)


def report_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def errors(report: dict[str, Any]) -> set[tuple[str, str | None]]:
    """Each error as (kind, the digest it is about: the blob's, or the manifest's)."""
    return {(p["kind"], p["digest"] or p["manifest"]) for p in report["problems"] if p["severity"] == "error"}


def problem(report: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [p for p in report["problems"] if p["kind"] == kind]
    assert len(found) == 1, (kind, report["problems"])
    return found[0]


def store_path(data_dir: Path, digest: str) -> Path:
    algorithm, hexpart = digest.split(":")
    return data_dir / "blobs" / algorithm / hexpart[:2] / hexpart


def query(data_dir: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "moorage.db") as db:
        return db.execute(sql, params).fetchall()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def flip_byte(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def assert_pulls_intact(skopeo: Skopeo, server: MoorageServer, repo: str, image: ImageInfo, layout: Path) -> None:
    """skopeo verifies each digest as it pulls; the bytes are compared with the originals as well."""
    skopeo.pull(f"{server.host}/{repo}:v1", layout, "v1", creds=CREDS)
    assert tagged_descriptor(layout, "v1")["digest"] == image.digest
    for blob in [image.manifest, image.config, *image.layers]:
        pulled = blob_path(layout, blob.digest).read_bytes()
        assert "sha256:" + hashlib.sha256(pulled).hexdigest() == blob.digest
        assert pulled == image.blob_path(blob.digest).read_bytes()


def test_fsck_names_the_damage_quarantines_it_and_a_push_restores_the_image(tmp_path: Path, skopeo: Skopeo) -> None:
    data = tmp_path / "data"
    server = MoorageServer(data, workers=1)
    app = build_image(tmp_path / "app-layout", tag="v1", layers=2, layer_size=[4096, 8192])
    other = build_image(tmp_path / "other-layout", tag="v1", layers=1)
    server.start()
    try:
        project = server.project("fsck")
        skopeo.push(app, f"{server.host}/{project}/app:v1", creds=CREDS)
        skopeo.push(other, f"{server.host}/{project}/other:v1", creds=CREDS)
        with server.client() as client:  # an upload left half-way, as a client that went away leaves it
            location = client.post(f"/v2/{project}/app/blobs/uploads/").headers["Location"]
            assert client.patch(location, content=os.urandom(1000),
                                headers={"Content-Range": "0-999"}).status_code == 202
        live = fsck(data, "--json")  # while the server runs: it only reads
        assert live.returncode == 0 and report_of(live)["problems"] == [], live.stdout + live.stderr
    finally:
        server.stop()

    # A healthy store first: fsck must not flag anything a real push left behind.
    clean = fsck(data, "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert report_of(clean)["problems"] == []
    assert report_of(clean)["checked"]["manifests"] == 2
    assert "Store is clean" in fsck(data).stdout

    # The incident.
    corrupt_layer, lost_layer = app.layer_digests
    flipped = flip_byte(store_path(data, corrupt_layer).read_bytes(), 1000)
    store_path(data, corrupt_layer).write_bytes(flipped)
    store_path(data, lost_layer).unlink()
    stray_content = os.urandom(3000)
    stray_digest = "sha256:" + hashlib.sha256(stray_content).hexdigest()
    stray = store_path(data, stray_digest)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(stray_content)
    os.utime(stray, (LONG_AGO, LONG_AGO))
    bad_manifest = flip_byte(other.manifest_bytes, 20)
    with sqlite3.connect(data / "moorage.db") as db:
        assert db.execute("UPDATE manifests SET content = ? WHERE digest = ?",
                          (bad_manifest, other.digest)).rowcount == 1
    (session_file,) = (data / "uploads").iterdir()
    session_file.unlink()
    leftover_upload = data / "uploads" / "0f0e0d0c-leftover"
    leftover_upload.write_bytes(b"x" * 500)
    os.utime(leftover_upload, (LONG_AGO, LONG_AGO))

    found = fsck(data, "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    report = report_of(found)
    assert errors(report) == {("blob_corrupt", corrupt_layer), ("blob_missing", lost_layer),
                              ("orphan_blob", stray_digest), ("manifest_corrupt", other.digest),
                              ("broken_image", app.digest)}
    broken = problem(report, "broken_image")
    assert (broken["repository"], broken["tags"]) == ("fsck/app", ["v1"])
    assert corrupt_layer in broken["message"] and lost_layer in broken["message"]
    assert problem(report, "manifest_corrupt")["tags"] == ["v1"]
    assert problem(report, "manifest_corrupt")["repository"] == "fsck/other"
    assert {p["kind"] for p in report["problems"] if p["severity"] == "warning"} == {"orphan_upload",
                                                                                    "upload_file_missing"}
    assert not any(p["repaired"] for p in report["problems"])
    # Looking changed nothing.
    assert store_path(data, corrupt_layer).read_bytes() == flipped and stray.exists()
    assert query(data, "SELECT count(*) FROM manifests WHERE digest = ?", other.digest) == [(1,)]

    human = fsck(data)
    assert human.returncode == 1, human.stderr
    for named in (corrupt_layer, lost_layer, stray_digest, other.digest, "fsck/app:v1", "fsck/other:v1"):
        assert named in human.stdout, (named, human.stdout)
    assert "5 problem(s) remain" in human.stdout and "moorage fsck --repair" in human.stdout

    repaired = fsck(data, "--repair", "--json")
    # Everything fsck can mend is mended; the image stays broken until it is pushed again.
    assert repaired.returncode == 1, repaired.stdout + repaired.stderr
    report = report_of(repaired)
    assert {(p["kind"], p["repaired"]) for p in report["problems"] if p["severity"] == "error"} == {
        ("blob_corrupt", True), ("blob_missing", True), ("orphan_blob", True), ("manifest_corrupt", True),
        ("broken_image", False)}
    quarantine = data / "quarantine"
    corrupt_copy = quarantine / "blobs" / corrupt_layer.replace(":", "-")
    stray_copy = quarantine / "blobs" / stray_digest.replace(":", "-")
    manifest_copy = quarantine / "manifests" / f"fsck_other@{other.digest.replace(':', '-')}"
    assert corrupt_copy.read_bytes() == flipped
    assert stray_copy.read_bytes() == stray_content
    assert manifest_copy.read_bytes() == bad_manifest
    assert sorted(p.name for p in (quarantine / "blobs").iterdir()) == sorted([corrupt_copy.name, stray_copy.name])
    assert problem(report, "blob_corrupt")["quarantined"] == str(corrupt_copy.relative_to(data))
    assert [mode(p) for p in (quarantine, quarantine / "blobs", quarantine / "manifests")] == [0o700] * 3
    assert [mode(p) for p in (corrupt_copy, stray_copy, manifest_copy)] == [0o600] * 3
    assert not store_path(data, corrupt_layer).exists() and not stray.exists()
    for table in ("blobs", "repository_blobs"):
        assert query(data, f"SELECT digest FROM {table} WHERE digest IN (?, ?)", corrupt_layer, lost_layer) == []
    assert query(data, "SELECT id FROM manifests WHERE digest = ?", other.digest) == []
    assert query(data, "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id "
                       "WHERE r.name = 'fsck/other'") == []
    # Upload leftovers are reported, never touched: the server purges them.
    assert leftover_upload.exists()

    again = fsck(data, "--json")
    assert again.returncode == 1
    assert errors(report_of(again)) == {("broken_image", app.digest)}
    assert "push the image again" in problem(report_of(again), "broken_image")["action"]

    server.start()
    try:
        skopeo.push(app, f"{server.host}/fsck/app:v1", creds=CREDS)
        skopeo.push(other, f"{server.host}/fsck/other:v1", creds=CREDS)
        assert_pulls_intact(skopeo, server, "fsck/app", app, tmp_path / "app-back")
        assert_pulls_intact(skopeo, server, "fsck/other", other, tmp_path / "other-back")
        with server.client() as client:
            served = client.get(f"/v2/fsck/app/blobs/{corrupt_layer}").content
        assert served == app.blob_path(corrupt_layer).read_bytes()
    finally:
        server.stop()

    healed = fsck(data, "--json")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert errors(report_of(healed)) == set()
    assert report_of(healed)["ok"] is True


def test_fsck_on_postgresql_leaves_fresh_files_alone(tmp_path: Path, postgres: Postgres, skopeo: Skopeo) -> None:
    """Metadata in PostgreSQL (MOORAGE_DATABASE_URL, as `serve` reads it). A file no record names but written a
    moment ago may be an upload being committed, so even --repair leaves it until it is older."""
    name = f"fsck_{secrets.token_hex(4)}"
    url = postgres.new_database(name)
    env = {"MOORAGE_DATABASE_URL": url}
    data = tmp_path / "data"
    server = MoorageServer(data, workers=1, env=env)
    image = build_image(tmp_path / "layout", tag="v1")
    server.start()
    try:
        skopeo.push(image, f"{server.host}/{server.project('pg')}/img:v1", creds=CREDS)
    finally:
        server.stop()

    clean = fsck(data, "--json", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert report_of(clean)["database"] == "postgresql" and report_of(clean)["problems"] == []
    assert url not in clean.stdout

    bad_manifest = flip_byte(image.manifest_bytes, 30)
    with postgres.connect(name) as db:
        assert db.execute("UPDATE manifests SET content = %s WHERE digest = %s",
                          (bad_manifest, image.digest)).rowcount == 1
    fresh = store_path(data, "sha256:" + "ab" * 32)
    fresh.parent.mkdir(parents=True, exist_ok=True)
    fresh.write_bytes(b"not yet committed, perhaps")

    first = fsck(data, "--repair", "--json", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    report = report_of(first)
    assert problem(report, "manifest_corrupt")["repaired"] is True
    orphan = problem(report, "orphan_blob")
    assert orphan["repaired"] is False and "left alone" in orphan["action"]
    assert fresh.exists()
    with postgres.connect(name) as db:
        assert db.execute("SELECT count(*) FROM manifests WHERE digest = %s", (image.digest,)).fetchone() == (0,)
    assert (data / "quarantine" / "manifests" / f"pg_img@{image.digest.replace(':', '-')}").read_bytes() == \
        bad_manifest

    os.utime(fresh, (LONG_AGO, LONG_AGO))
    second = fsck(data, "--repair", "--json", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert problem(report_of(second), "orphan_blob")["repaired"] is True
    assert not fresh.exists() and (data / "quarantine" / "blobs" / ("sha256-" + "ab" * 32)).exists()
    final = fsck(data, env=env)
    assert final.returncode == 0 and "Store is clean" in final.stdout, final.stdout + final.stderr

    # The image is pushed again and the registry serves it.
    server.start()
    try:
        skopeo.push(image, f"{server.host}/pg/img:v1", creds=CREDS)
        with server.client() as client:
            assert client.get("/v2/pg/img/manifests/v1",
                              headers={"Accept": image.media_type}).content == image.manifest_bytes
    finally:
        server.stop()


def test_fsck_refuses_a_place_that_holds_no_store(tmp_path: Path) -> None:
    missing = fsck(tmp_path / "nowhere")
    assert missing.returncode == 2 and "--data-dir" in missing.stderr and "Traceback" not in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    no_database = fsck(empty, "--json")
    assert no_database.returncode == 2 and "no moorage database" in no_database.stderr
    # Nothing was created in the wrong place.
    assert list(empty.iterdir()) == []
    unreachable = fsck(empty, env={"MOORAGE_DATABASE_URL": "postgresql+psycopg://fsck:s3cret-pw@127.0.0.1:1/x"})
    assert unreachable.returncode == 2 and "Traceback" not in unreachable.stderr
    assert "s3cret-pw" not in unreachable.stderr + unreachable.stdout
