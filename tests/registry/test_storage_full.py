"""A registry whose disk fills up says so, keeps nothing half-written, and carries on once there is room."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.conftest import OCI_MANIFEST, assert_error, digest_of, image_manifest
from tests.support.moorage import MoorageServer


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A real 40 MiB filesystem (tmpfs) for the data directory, grown later by remounting."""
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(volume)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    yield volume
    subprocess.run(["umount", "--lazy", str(volume)], check=False)


def test_a_full_disk_answers_507_keeps_the_session_and_recovers(small_volume: Path) -> None:
    server = MoorageServer(small_volume / "data", workers=1)
    server.expected_5xx = {507}
    server.start()
    try:
        repo = server.project("library") + "/big"
        data = os.urandom(64 * 1024 * 1024)
        first = 4 * 1024 * 1024
        with server.client() as client:
            error = assert_error(client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(data)},
                                             content=data), 507, "UNKNOWN")
            assert "storage is full" in error["message"] and "free space" in error["message"]

            location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
            assert client.patch(location, content=data[:first],
                                headers={"Content-Range": f"0-{first - 1}"}).status_code == 202
            assert_error(client.patch(location, content=data[first:],
                                      headers={"Content-Range": f"{first}-{len(data) - 1}"}), 507, "UNKNOWN")
            # The failed chunk is cut back off the upload: its space is free again, the session intact.
            assert client.get(location).headers["Range"] == f"0-{first - 1}"
            uploads = list((server.data_dir / "uploads").iterdir())
            assert [f.stat().st_size for f in uploads] == [first]

            # Filled to the last byte, the metadata database cannot commit a manifest either.
            config = b'{"architecture":"amd64","os":"linux"}'
            assert client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(config)},
                               content=config).status_code == 201
            manifest = json.dumps(image_manifest(config, [])).encode()
            filler = small_volume / "filler"
            with filler.open("wb") as fh, contextlib.suppress(OSError):
                while True:
                    fh.write(bytes(1024 * 1024))
            assert_error(client.put(f"/v2/{repo}/manifests/v1", content=manifest,
                                    headers={"Content-Type": OCI_MANIFEST}), 507, "UNKNOWN")
            filler.unlink()
            assert client.put(f"/v2/{repo}/manifests/v1", content=manifest,
                              headers={"Content-Type": OCI_MANIFEST}).status_code == 201

            subprocess.run(["mount", "-o", "remount,size=200m", str(small_volume)], check=True)
            assert client.patch(location, content=data[first:],
                                headers={"Content-Range": f"{first}-{len(data) - 1}"}).status_code == 202
            assert client.put(location, params={"digest": digest_of(data)}).status_code == 201
            assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data
        assert "Traceback" not in server.log()
    finally:
        server.stop()
