"""An operator outgrows one machine: ``moorage migrate-storage`` moves an embedded installation (SQLite and
files) into PostgreSQL and an S3 bucket, verifying every blob on the way, and can be run again after a failure
until it is done. The new setup then serves every image the old one held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.clients import Containerd, Skopeo
from tests.support.images import build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.oci import digest_of
from tests.support.postgres import Postgres
from tests.support.s3 import SeaweedFS

CREDS = f"admin:{ADMIN_PASSWORD}"
MiB = 1024 * 1024


def migrate(source: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", "migrate-storage", "--from", str(source),
                           *options], capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def blob_file(data_dir: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return data_dir / "blobs" / algorithm / hexpart[:2] / hexpart


def test_an_embedded_install_moves_to_postgresql_and_s3(tmp_path: Path, postgres: Postgres, seaweedfs: SeaweedFS,
                                                        skopeo: Skopeo, containerd: Containerd) -> None:
    old = MoorageServer(tmp_path / "embedded", log_path=tmp_path / "embedded.log")
    old.start()
    try:
        project = old.project("moving")
        images = {name: build_image(tmp_path / name, layers=2, layer_size=[size, 2048])
                  for name, size in (("app", 18 * MiB), ("tool", 64 * 1024))}
        for name, image in images.items():
            skopeo.push(image, f"{old.host}/{project}/{name}:v1", creds=CREDS)
    finally:
        old.stop()

    bucket = seaweedfs.new_bucket()
    env = {**seaweedfs.settings_env(bucket), "MOORAGE_DATABASE_URL": postgres.new_database("migrated"),
           "MOORAGE_DATA_DIR": str(tmp_path / "unused")}

    # A damaged blob stops the move before the database: nothing refers to content that is not there.
    damaged = blob_file(old.data_dir, images["app"].layers[0].digest)
    original = damaged.read_bytes()
    damaged.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    first = migrate(old.data_dir, env, "--json")
    assert first.returncode == 1, first.stderr
    summary = json.loads(first.stdout)
    assert list(summary["failed"]) == [images["app"].layers[0].digest]
    assert "digest" in summary["failed"][images["app"].layers[0].digest]
    assert summary["database"] == "not copied"
    assert summary["copied"] == summary["blobs"] - 1

    # Repaired, the second run copies only what is missing, then the database.
    damaged.write_bytes(original)
    second = migrate(old.data_dir, env, "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert (summary["copied"], summary["already_there"]) == (1, summary["blobs"] - 1)
    assert summary["database"] == "copied" and summary["tables"]["manifests"] == 2

    # A third run finds everything done; the progress bar shows without --json.
    third = migrate(old.data_dir, env)
    assert third.returncode == 0, third.stderr
    assert "already copied" in third.stdout

    secret = (old.data_dir / "secret.key").read_text().strip()
    new = MoorageServer(tmp_path / "replica", env={**env, "MOORAGE_SECRET_KEY": secret},
                        log_path=tmp_path / "replica.log")
    new.start()
    try:
        for name, image in images.items():
            reference = f"{new.host}/{project}/{name}:v1"
            skopeo.copy(f"docker://{reference}", f"oci:{tmp_path / ('back-' + name)}:v1", creds=CREDS)
            copied = tmp_path / f"back-{name}" / "blobs" / "sha256" / image.layers[0].digest.split(":")[1]
            assert digest_of(copied.read_bytes()) == image.layers[0].digest
            containerd.pull(reference, user=CREDS)
            assert containerd.images()[reference] == image.digest
        # New rows get fresh ids past the copied ones: a new project and a push work.
        other = new.project("after-move")
        skopeo.push(images["tool"], f"{new.host}/{other}/tool:v2", creds=CREDS)
    finally:
        new.stop()
