"""Nothing under the data directory is readable by another local account.

The database holds password hashes and the token-signing key; the blobs are private images. The data
directories here sit in a parent that every account can traverse (pytest's own temporary root is 0700
and would hide any leak), and ``nobody`` tries to read each file and list each directory.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.conftest import push_blob, push_image
from tests.support.moorage import MoorageServer
from tests.support.procs import require_tool

WARNING = "were readable by other accounts; made them private (0600/0700)"


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A directory any local account may enter, as /srv or /var/lib are."""
    require_tool("runuser", "util-linux")
    parent = Path(tempfile.mkdtemp(prefix="moorage-privacy-", dir="/tmp"))
    parent.chmod(0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent)


def as_nobody(*command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["runuser", "-u", "nobody", "--", *command], capture_output=True, timeout=30)


def tree(root: Path) -> list[Path]:
    """``root`` and every path under it, symlinks included and not followed."""
    found = [root]
    for directory, dirs, files in os.walk(root):
        found += [Path(directory) / name for name in dirs + files]
    return found


def assert_private(root: Path) -> list[Path]:
    """Every file 0600 and directory 0700, and ``nobody`` reads or lists none of them; returns the paths."""
    checked = []
    for path in tree(root):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        expected = 0o700 if stat.S_ISDIR(mode) else 0o600
        assert stat.S_IMODE(mode) == expected, f"{path} is {oct(stat.S_IMODE(mode))}, not {oct(expected)}"
        done = as_nobody("ls", str(path)) if stat.S_ISDIR(mode) else as_nobody("cat", str(path))
        assert done.returncode != 0, f"nobody could read {path}"
        checked.append(path)
    return checked


def assert_nobody_reads_what_is_open(parent: Path) -> None:
    """The control: in the same parent, a file left 0644 is readable by nobody, so the refusals above
    come from the data directory's modes and not from somewhere above it."""
    control = parent / f"control-{uuid.uuid4().hex[:6]}.txt"
    control.write_text("anyone may read this\n")
    control.chmod(0o644)
    done = as_nobody("cat", str(control))
    assert done.returncode == 0 and done.stdout == b"anyone may read this\n", done.stderr


def push_content(server: MoorageServer) -> tuple[str, str, bytes]:
    """An image (blobs and a manifest), and a chunked upload left open; returns (repo, blob digest, blob)."""
    repo = server.project("privacy") + f"/r{uuid.uuid4().hex[:8]}"
    with server.client() as client:
        push_image(client, repo, "v1")
        blob = os.urandom(4096)
        digest = push_blob(client, repo, blob)
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        chunk = client.patch(started.headers["Location"], content=os.urandom(1000),
                             headers={"Content-Type": "application/octet-stream", "Content-Range": "0-999"})
        assert chunk.status_code == 202, chunk.text
    return repo, digest, blob


def test_everything_a_tls_server_writes_is_private(open_parent: Path) -> None:
    data_dir = open_parent / "data"
    server = MoorageServer(data_dir, workers=2, tls=True)
    try:
        server.start()
        push_content(server)
        # While it runs, so SQLite's -wal and -shm files exist too.
        checked = {str(path.relative_to(data_dir)) for path in assert_private(data_dir)}
    finally:
        server.stop()
    expected = {".", "moorage.db", "moorage.db-wal", "moorage.db-shm", "moorage.db.setup-lock", "blobs", "uploads",
                "tls", "tls/ca.key", "tls/ca.crt", "tls/server.key", "tls/server.crt", "tls/server-chain.crt"}
    assert expected <= checked, f"not found, so not checked: {sorted(expected - checked)}"
    assert any(p.startswith("blobs/sha256/") for p in checked) and any(p.startswith("uploads/") for p in checked)
    assert_private(data_dir)  # and after the stop
    assert_nobody_reads_what_is_open(open_parent)


def test_an_old_open_data_dir_is_made_private_at_start(open_parent: Path) -> None:
    data_dir = open_parent / "data"
    server = MoorageServer(data_dir, workers=1)
    server.start()
    try:
        repo, digest, blob = push_content(server)
    finally:
        server.stop()
    # What an older moorage left behind: everything readable by every account.
    loosened = 0
    for path in tree(data_dir):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
            loosened += 1
    # Links out of the tree: their targets are not moorage's to change.
    outside_file, outside_dir = open_parent / "outside.txt", open_parent / "outside-dir"
    outside_file.write_text("not moorage's\n")
    outside_file.chmod(0o644)
    outside_dir.mkdir(mode=0o755)
    (outside_dir / "inside.txt").write_text("not moorage's either\n")
    (outside_dir / "inside.txt").chmod(0o644)
    (data_dir / "link-to-file").symlink_to(outside_file)
    (data_dir / "link-to-dir").symlink_to(outside_dir)

    server.start()
    try:
        warnings = [line for line in server.log().splitlines() if WARNING in line]
        assert warnings == [f"moorage: warning: {loosened} file(s)/dir(s) under {data_dir} {WARNING}"], warnings
        with server.client() as client:
            got = client.get(f"/v2/{repo}/blobs/{digest}")
            assert got.status_code == 200 and got.content == blob
        more = push_content(server)
        assert_private(data_dir)
    finally:
        server.stop()
    assert (data_dir / "blobs" / "sha256" / more[1].split(":")[1][:2] / more[1].split(":")[1]).is_file()
    assert stat.S_IMODE(outside_file.stat().st_mode) == 0o644
    assert stat.S_IMODE(outside_dir.stat().st_mode) == 0o755
    assert stat.S_IMODE((outside_dir / "inside.txt").stat().st_mode) == 0o644
    assert_nobody_reads_what_is_open(open_parent)

    # Once private, a start has nothing to say.
    server.start()
    server.stop()
    assert len([line for line in server.log().splitlines() if WARNING in line]) == 1


def test_init_and_tls_renew_write_private_files(open_parent: Path) -> None:
    """``moorage init`` and ``moorage tls renew`` write keys and certificates without a server running."""
    data_dir = open_parent / "data"
    env = {**os.environ, "MOORAGE_DATA_DIR": str(data_dir)}
    for command in (["init", "--ip", "127.0.0.1"], ["tls", "renew", "--hostname", "registry.example"]):
        done = subprocess.run([sys.executable, "-m", "moorage.cli.main", *command], capture_output=True, env=env,
                              timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        checked = {str(path.relative_to(data_dir)) for path in assert_private(data_dir)}
        assert {"tls/ca.key", "tls/ca.crt", "tls/server.key", "tls/server.crt"} <= checked, checked
    assert_nobody_reads_what_is_open(open_parent)
