"""Checking the content store against the metadata store, and quarantining what does not match.

What the registry promises a client is what the database says: a ``blobs`` row means "this content
is here, under this digest", a manifest row means "these bytes, under this digest, and everything
they reference". After a disk incident or a restore from backup those promises can be false, and a
pull fails with a digest error. This walks both stores and names every promise that is broken.

Repairs never delete data: what is wrong moves to ``<data_dir>/quarantine/`` and the rows that
promised it go, in one transaction, so the next push of the image uploads it again (a client asks
HEAD first and skips what the registry claims to have). A manifest that is intact but references
lost content is left in place: only a push of the image can bring that content back.

Safe while the server runs: checks only read, and each repair re-reads its row inside the same kind
of write transaction a request takes. Files younger than ``ORPHAN_GRACE_SECONDS`` that no row names
are left alone, because an upload being committed writes its file a moment before its row.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from moorage.meta.quotas import QuotaModel
from moorage.meta.schema import blobs, manifest_references, manifests, repositories, repository_blobs, tags, uploads
from moorage.meta.store import MetaStore

#: Digest algorithms the registry accepts, with their hex lengths: nothing else can name a stored blob.
ALGORITHMS = {"sha256": 64, "sha512": 128}
#: A file no row names is left alone this long after its last write: an upload being committed
#: renames its file into place and inserts its row right after, and that row may wait on a lock.
ORPHAN_GRACE_SECONDS = 300
_READ_SIZE = 1024 * 1024
_MANIFEST_BATCH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

Progress = Callable[[int, int], None]
Severity = Literal["error", "warning"]


class Kind(StrEnum):
    BLOB_MISSING = "blob_missing"
    BLOB_CORRUPT = "blob_corrupt"
    BLOB_SIZE = "blob_size"
    BLOB_UNREADABLE = "blob_unreadable"
    BLOB_UNVERIFIABLE = "blob_unverifiable"
    ORPHAN_BLOB = "orphan_blob"
    MANIFEST_CORRUPT = "manifest_corrupt"
    MANIFEST_SIZE = "manifest_size"
    BROKEN_IMAGE = "broken_image"
    ORPHAN_UPLOAD = "orphan_upload"
    UPLOAD_FILE_MISSING = "upload_file_missing"
    QUOTA_DRIFT = "quota_drift"


@dataclass
class Problem:
    kind: Kind
    #: What is wrong.
    message: str
    #: What ``--repair`` does (or did) about it, or what the operator has to do.
    action: str
    #: Errors make the store unhealthy; warnings are leftovers the server cleans up on its own.
    severity: Severity = "error"
    digest: str | None = None
    repository: str | None = None
    #: The manifest's digest, for manifest problems and broken images.
    manifest: str | None = None
    tags: list[str] = field(default_factory=list)
    #: The file concerned, relative to the data directory.
    path: str | None = None
    #: Where ``--repair`` put the evidence, relative to the data directory.
    quarantined: str | None = None
    repaired: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": str(self.kind)}


@dataclass
class Counts:
    blobs: int = 0
    blob_bytes: int = 0
    blob_files: int = 0
    manifests: int = 0
    upload_sessions: int = 0
    upload_files: int = 0
    project_quotas: int = 0


@dataclass
class FsckReport:
    data_dir: str
    #: The metadata store's kind ("sqlite", "postgresql"): never its URL, which may hold a password.
    database: str
    repair: bool
    checked: Counts = field(default_factory=Counts)
    problems: list[Problem] = field(default_factory=list)

    @property
    def remaining(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error" and not p.repaired]

    @property
    def repaired(self) -> list[Problem]:
        return [p for p in self.problems if p.repaired]

    @property
    def ok(self) -> bool:
        """Nothing wrong is left: the store was clean, or every error found was repaired."""
        return not self.remaining

    def to_dict(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir, "database": self.database, "repair": self.repair,
                "ok": self.ok, "checked": asdict(self.checked),
                "summary": {"errors": sum(p.severity == "error" for p in self.problems),
                            "warnings": sum(p.severity == "warning" for p in self.problems),
                            "repaired": len(self.repaired), "remaining": len(self.remaining)},
                "problems": [p.to_dict() for p in self.problems]}


def valid_digest(digest: str) -> bool:
    """Whether ``digest`` is one the registry could have stored: only those may become paths."""
    algorithm, _, hexpart = digest.partition(":")
    length = ALGORITHMS.get(algorithm)
    return length is not None and len(hexpart) == length and re.fullmatch(r"[0-9a-f]+", hexpart) is not None


def blob_path(data_dir: Path, digest: str) -> Path:
    """The layout of ``moorage.blobs.filesystem``: ``blobs/<alg>/<2 hex>/<hex>``."""
    algorithm, _, hexpart = digest.partition(":")
    return data_dir / "blobs" / algorithm / hexpart[:2] / hexpart


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _their_tags(names: list[str]) -> str:
    return f"its tag{'' if len(names) == 1 else 's'} {', '.join(names)}"


def _image_name(repository: str, names: list[str], digest: str) -> str:
    return ", ".join(f"{repository}:{t}" for t in names) if names else f"{repository}@{digest}"


# -- what the stores hold ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    path: Path
    digest: str | None
    mtime: float
    size: int


@dataclass(frozen=True)
class _Identity:
    """Which file was checked, so a repair never moves a copy someone committed since."""
    device: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Identity:
        return cls(st.st_dev, st.st_ino)


@dataclass
class _Manifest:
    id: int
    repository: str
    digest: str
    tags: list[str] = field(default_factory=list)
    refs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Snapshot:
    """The database's view, read in an order that makes a concurrent push look consistent: manifests
    before their references, and both before blobs (a manifest is accepted only once its blobs are
    linked, so every blob a seen manifest references is already visible when blobs are read)."""
    repositories: dict[int, str]
    manifests: dict[int, _Manifest]
    manifest_sizes: int
    blob_rows: dict[str, int]
    links: dict[str, set[str]]
    sessions: dict[str, tuple[str, int]]


def _read_snapshot(store: MetaStore) -> _Snapshot:
    with store.read() as conn:
        repos = {rid: name for rid, name in conn.execute(sa.select(repositories.c.id, repositories.c.name))}
        found: dict[int, _Manifest] = {}
        total = 0
        for mid, rid, digest, size in conn.execute(sa.select(manifests.c.id, manifests.c.repository_id,
                                                             manifests.c.digest, manifests.c.size)):
            found[mid] = _Manifest(mid, repos.get(rid, f"<repository {rid}>"), digest)
            total += size
        for mid, digest, kind in conn.execute(sa.select(manifest_references.c.manifest_id,
                                                        manifest_references.c.digest, manifest_references.c.kind)):
            if mid in found:
                found[mid].refs.append((kind, digest))
        for mid, name in conn.execute(sa.select(tags.c.manifest_id, tags.c.name).order_by(tags.c.name)):
            if mid in found:
                found[mid].tags.append(name)
        rows = {digest: size for digest, size in conn.execute(sa.select(blobs.c.digest, blobs.c.size))}
        links: dict[str, set[str]] = defaultdict(set)
        for rid, digest in conn.execute(sa.select(repository_blobs.c.repository_id, repository_blobs.c.digest)):
            links[digest].add(repos.get(rid, f"<repository {rid}>"))
        sessions = {uid: (repo, offset) for uid, repo, offset in
                    conn.execute(sa.select(uploads.c.id, uploads.c.repository, uploads.c.offset))}
    return _Snapshot(repos, found, total, rows, links, sessions)


def _walk_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for directory, _, names in os.walk(root):
        for name in names:
            yield Path(directory) / name


def _digest_of_path(blobs_root: Path, path: Path) -> str | None:
    """The digest a file in the blob store stands for, or None when the layout names none."""
    parts = path.relative_to(blobs_root).parts
    if len(parts) != 3 or parts[1] != parts[2][:2]:
        return None
    digest = f"{parts[0]}:{parts[2]}"
    return digest if valid_digest(digest) else None


def _list_blob_files(data_dir: Path) -> dict[Path, _File]:
    root = data_dir / "blobs"
    files: dict[Path, _File] = {}
    for path in _walk_files(root):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        files[path] = _File(path, _digest_of_path(root, path), st.st_mtime, st.st_size)
    return files


# -- hashing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hashed:
    digest: str
    size: int
    identity: _Identity


def _hash_file(path: Path, algorithm: str, on_bytes: Callable[[int], None]) -> _Hashed:
    hasher = hashlib.new(algorithm)
    buffer = bytearray(_READ_SIZE)
    view = memoryview(buffer)
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file")
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while n := os.readv(fd, [buffer]):
            hasher.update(view[:n])
            size += n
            on_bytes(n)
    finally:
        os.close(fd)
    return _Hashed(f"{algorithm}:{hasher.hexdigest()}", size, _Identity.of(st))


# -- the check --------------------------------------------------------------------------------------


@dataclass
class _BadBlob:
    problem: Problem
    #: Why an image referencing it cannot be pulled ("missing", "corrupt", ...).
    reason: str
    #: Repair quarantines it (missing, truncated, corrupt); unreadable ones are the operator's to fix.
    repairable: bool
    identity: _Identity | None = None


@dataclass
class _BadManifest:
    problem: Problem
    content_digest: str


class _Fsck:
    def __init__(self, store: MetaStore, data_dir: Path, repair: bool, progress: Progress | None,
                 now: float, backend: str) -> None:
        self.store = store
        self.data_dir = data_dir
        self.repair = repair
        self.progress = progress
        self.now = now
        self.report = FsckReport(str(data_dir), backend, repair)
        self.quotas = QuotaModel(store)
        self.bad_blobs: dict[str, _BadBlob] = {}
        self.orphans: list[tuple[_File, Problem]] = []
        self.bad_manifests: dict[int, _BadManifest] = {}
        self.size_fixes: list[tuple[Problem, int, int]] = []
        self.broken: list[tuple[Problem, list[str]]] = []
        self._done = 0
        self._total = 0

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.data_dir))

    def run(self) -> FsckReport:
        # Files first, rows after: a blob committed in between has its row by then, so it is never
        # taken for an orphan.
        files = _list_blob_files(self.data_dir)
        snapshot = _read_snapshot(self.store)
        upload_files = self._list_upload_files()
        counts = self.report.checked
        counts.blobs, counts.blob_files = len(snapshot.blob_rows), len(files)
        counts.blob_bytes = sum(snapshot.blob_rows.values())
        counts.manifests, counts.upload_sessions = len(snapshot.manifests), len(snapshot.sessions)
        counts.upload_files = len(upload_files)

        self._check_blobs(snapshot, counts.blob_bytes + snapshot.manifest_sizes)
        self._check_orphans(files, snapshot)
        self._check_manifests(snapshot)
        self._check_references(snapshot)
        self._check_uploads(snapshot, upload_files)
        if self.repair:
            self._repair(snapshot)
        # After the repairs, which may delete manifests and blob records: the usage counts what they leave.
        self._check_quotas()
        return self.report

    def add(self, problem: Problem) -> Problem:
        self.report.problems.append(problem)
        return problem

    # -- 1. every blob row: content present, size and digest right ---------------------------------
    def _advance(self, n: int) -> None:
        self._done += n
        if self.progress is not None:
            self.progress(self._done, self._total)

    def _check_blobs(self, snapshot: _Snapshot, total: int) -> None:
        self._total = total
        self._advance(0)
        for digest, size in sorted(snapshot.blob_rows.items()):
            before = self._done
            self._check_blob(digest, size, snapshot.links.get(digest, set()))
            # A missing or short file still counts its full size, so the bar ends at 100%.
            self._advance(max(0, before + size - self._done))

    def _check_blob(self, digest: str, size: int, linked: set[str]) -> None:
        where = f"linked into {_plural(len(linked), 'repository')}" if linked else "linked into no repository"
        if not valid_digest(digest):
            self.add(Problem(Kind.BLOB_UNVERIFIABLE, digest=digest,
                             message=f"blob record {digest!r} ({where}) is not a digest moorage can verify "
                                     "(sha256 or sha512 with lowercase hex)",
                             action="left alone: the database row itself is damaged; restore it from a backup"))
            return
        path = blob_path(self.data_dir, digest)
        algorithm = digest.partition(":")[0]
        try:
            hashed = _hash_file(path, algorithm, self._advance)
        except FileNotFoundError:
            self._bad(Problem(Kind.BLOB_MISSING, digest=digest, path=self.rel(path),
                              message=f"blob {digest} ({size} bytes, {where}) has no file in the blob store",
                              action="--repair deletes its record and repository links so the next push "
                                     "uploads it again"), "missing", True)
            return
        except PermissionError as exc:
            self._bad(Problem(Kind.BLOB_UNREADABLE, digest=digest, path=self.rel(path),
                              message=f"blob {digest} ({where}) cannot be read: {exc.strerror}",
                              action="left alone: run fsck as the account the server runs as, or fix the "
                                     "file's permissions"), "unreadable", False)
            return
        except OSError as exc:
            # An I/O error after a disk incident: the bytes are as good as lost.
            try:
                identity: _Identity | None = _Identity.of(path.lstat())
            except OSError:
                identity = None
            self._bad(Problem(Kind.BLOB_CORRUPT, digest=digest, path=self.rel(path),
                              message=f"blob {digest} ({where}) cannot be read: {exc.strerror or exc}",
                              action="--repair moves the file to quarantine and deletes its record and "
                                     "repository links so the next push uploads it again"),
                      "unreadable", True, identity)
            return
        if hashed.digest != digest:
            state = (f"truncated: {hashed.size} of {size} bytes" if hashed.size < size
                     else f"corrupt: its content hashes to {hashed.digest}")
            self._bad(Problem(Kind.BLOB_CORRUPT, digest=digest, path=self.rel(path),
                              message=f"blob {digest} ({where}) is {state}",
                              action="--repair moves the file to quarantine and deletes its record and "
                                     "repository links so the next push uploads it again"),
                      "truncated" if hashed.size < size else "corrupt", True, hashed.identity)
        elif hashed.size != size:
            problem = self.add(Problem(Kind.BLOB_SIZE, digest=digest, path=self.rel(path),
                                       message=f"blob {digest} is intact ({hashed.size} bytes) but its record "
                                               f"says {size} bytes, so clients are told the wrong length",
                                       action=f"--repair sets the recorded size to {hashed.size}"))
            self.size_fixes.append((problem, size, hashed.size))

    def _bad(self, problem: Problem, reason: str, repairable: bool, identity: _Identity | None = None) -> None:
        assert problem.digest is not None
        self.bad_blobs[problem.digest] = _BadBlob(self.add(problem), reason, repairable, identity)

    # -- 2. files no row names ---------------------------------------------------------------------
    def _check_orphans(self, files: dict[Path, _File], snapshot: _Snapshot) -> None:
        for path, found in sorted(files.items()):
            if found.digest is not None and found.digest in snapshot.blob_rows:
                continue
            what = f"file for blob {found.digest}" if found.digest else \
                f"file {self.rel(path)}, which the blob layout does not name,"
            age = self.now - found.mtime
            if age < ORPHAN_GRACE_SECONDS:
                action = (f"left alone: written {max(0, int(age))} s ago, it may be an upload being committed; "
                          f"run fsck again in {int(ORPHAN_GRACE_SECONDS - age) + 1} s")
            else:
                action = "--repair moves it to quarantine"
            problem = self.add(Problem(Kind.ORPHAN_BLOB, digest=found.digest, path=self.rel(path),
                                       message=f"{what} ({found.size} bytes) that no blob record names",
                                       action=action))
            if age >= ORPHAN_GRACE_SECONDS:
                self.orphans.append((found, problem))

    # -- 3. manifests: content, size, references ---------------------------------------------------
    def _check_manifests(self, snapshot: _Snapshot) -> None:
        query = sa.select(manifests.c.id, manifests.c.size, manifests.c.content)
        with self.store.read() as conn:
            rows = conn.execution_options(yield_per=_MANIFEST_BATCH).execute(query)
            for mid, size, content in rows:
                known = snapshot.manifests.get(mid)
                if known is None:
                    continue
                content = bytes(content)
                self._advance(len(content))
                self._check_manifest(known, size, content)

    def _check_manifest(self, manifest: _Manifest, size: int, content: bytes) -> None:
        label = _image_name(manifest.repository, manifest.tags, manifest.digest)
        algorithm = manifest.digest.partition(":")[0]
        if not valid_digest(manifest.digest):
            actual = "an unverifiable digest"
        else:
            actual = f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"
        if actual != manifest.digest:
            tag_note = f"; {_their_tags(manifest.tags)} {'goes' if len(manifest.tags) == 1 else 'go'} with it" \
                if manifest.tags else ""
            problem = self.add(Problem(
                Kind.MANIFEST_CORRUPT, repository=manifest.repository, manifest=manifest.digest,
                tags=list(manifest.tags),
                message=f"manifest {manifest.repository}@{manifest.digest} ({label}): its stored content "
                        f"({len(content)} bytes) hashes to {actual}",
                action="--repair writes the content to quarantine and deletes the manifest"
                       f"{tag_note}; push the image again to restore it"))
            self.bad_manifests[manifest.id] = _BadManifest(problem, actual)
        elif size != len(content):
            problem = self.add(Problem(
                Kind.MANIFEST_SIZE, repository=manifest.repository, manifest=manifest.digest,
                tags=list(manifest.tags),
                message=f"manifest {manifest.repository}@{manifest.digest} is intact ({len(content)} bytes) "
                        f"but its record says {size} bytes",
                action=f"--repair sets the recorded size to {len(content)}"))
            self.size_fixes.append((problem, size, len(content)))

    def _check_references(self, snapshot: _Snapshot) -> None:
        by_repo_digest = {(m.repository, m.digest): m for m in snapshot.manifests.values()}
        reasons: dict[int, list[str]] = {}
        for manifest in snapshot.manifests.values():
            if manifest.id in self.bad_manifests:
                continue
            found: list[str] = []
            for kind, digest in manifest.refs:
                if kind == "manifest":
                    if (manifest.repository, digest) not in by_repo_digest:
                        found.append(f"child manifest {digest} does not exist in {manifest.repository}")
                    continue
                bad = self.bad_blobs.get(digest)
                if bad is not None:
                    found.append(f"blob {digest} is {bad.reason}")
                elif digest not in snapshot.blob_rows:
                    earlier = (self.data_dir / "quarantine" / "blobs" / digest.replace(":", "-")).exists()
                    found.append(f"blob {digest} is not in the store"
                                 + (" (an earlier fsck --repair quarantined it)" if earlier else ""))
                elif manifest.repository not in snapshot.links.get(digest, set()):
                    found.append(f"blob {digest} is not linked into {manifest.repository}")
            if found:
                reasons[manifest.id] = found
        # An index is as broken as its worst child; children sit one or two levels down at most, but
        # nothing stops a longer chain, so go until nothing changes.
        changed = True
        while changed:
            changed = False
            for manifest in snapshot.manifests.values():
                if manifest.id in self.bad_manifests:
                    continue
                for kind, digest in manifest.refs:
                    child = by_repo_digest.get((manifest.repository, digest)) if kind == "manifest" else None
                    if child is None or (child.id not in reasons and child.id not in self.bad_manifests):
                        continue
                    note = f"child manifest {digest} is broken"
                    if note not in reasons.setdefault(manifest.id, []):
                        reasons[manifest.id].append(note)
                        changed = True
        for mid, found in sorted(reasons.items(), key=lambda item: (snapshot.manifests[item[0]].repository,
                                                                    snapshot.manifests[item[0]].digest)):
            manifest = snapshot.manifests[mid]
            label = _image_name(manifest.repository, manifest.tags, manifest.digest)
            bad_refs = [d for k, d in manifest.refs if k == "blob" and d in self.bad_blobs]
            stuck = [d for d in bad_refs if not self.bad_blobs[d].repairable]
            problem = self.add(Problem(
                Kind.BROKEN_IMAGE, repository=manifest.repository, manifest=manifest.digest,
                tags=list(manifest.tags),
                message=f"image {label} (manifest {manifest.digest}) cannot be pulled: " + "; ".join(found),
                action=("make the unreadable blob(s) above readable; the image needs no push" if stuck else
                        "--repair quarantines the bad blobs so the registry asks for them again; then push "
                        "the image again (fsck cannot rebuild content; the manifest is kept)" if bad_refs else
                        "push the image again (fsck cannot rebuild content; the manifest is kept)")))
            self.broken.append((problem, bad_refs))

    # -- 4. uploads ------------------------------------------------------------------------------------
    def _list_upload_files(self) -> dict[str, _File]:
        found: dict[str, _File] = {}
        for path in _walk_files(self.data_dir / "uploads"):
            with contextlib.suppress(FileNotFoundError):
                st = path.lstat()
                found[path.name] = _File(path, None, st.st_mtime, st.st_size)
        return found

    def _check_uploads(self, snapshot: _Snapshot, files: dict[str, _File]) -> None:
        for upload_id, found in sorted(files.items()):
            # A single-request upload writes its file with no session at all, so only old ones count.
            if upload_id in snapshot.sessions or self.now - found.mtime < ORPHAN_GRACE_SECONDS:
                continue
            self.add(Problem(Kind.ORPHAN_UPLOAD, severity="warning", path=self.rel(found.path),
                             message=f"upload data ({found.size} bytes, last written "
                                     f"{int((self.now - found.mtime) // 60)} min ago) that no upload session owns",
                             action="left alone: the server removes abandoned upload data itself"))
        for upload_id, (repository, offset) in sorted(snapshot.sessions.items()):
            # A session that has not received a byte yet has no file: that is normal.
            if offset > 0 and upload_id not in files:
                self.add(Problem(Kind.UPLOAD_FILE_MISSING, severity="warning", repository=repository,
                                 path=self.rel(self.data_dir / "uploads" / upload_id),
                                 message=f"upload session {upload_id} in {repository} acknowledged {offset} bytes "
                                         "but its data file is gone",
                                 action="left alone: the client has to start that upload again; the server "
                                        "purges the session when it expires"))

    # -- 6. every project's usage: what its references add up to ----------------------------------------
    def _check_quotas(self) -> None:
        self.report.checked.project_quotas = len(self.quotas.all())
        for drift in self.quotas.drift(repair=self.repair):
            off = drift.recorded - drift.actual
            problem = self.add(Problem(
                Kind.QUOTA_DRIFT,
                f"project {drift.project}: usage recorded as {drift.recorded} bytes, but its manifests and the "
                f"blobs they reference add up to {drift.actual} bytes ({off:+d}; "
                f"{_plural(drift.digests, 'digest')} counted wrong)",
                action="--repair recounts the project's usage from its references"))
            if self.repair:
                problem.repaired = True
                problem.action = f"repaired: usage recounted from its references ({drift.actual} bytes)"

    # -- repairs ---------------------------------------------------------------------------------------
    def _repair(self, snapshot: _Snapshot) -> None:
        quarantine = _Quarantine(self.data_dir)
        for digest, bad in self.bad_blobs.items():
            if bad.repairable:
                self._repair_blob(quarantine, digest, bad)
        for found, problem in self.orphans:
            self._repair_orphan(quarantine, found, problem)
        for mid, bad_manifest in self.bad_manifests.items():
            self._repair_manifest(quarantine, snapshot.manifests[mid], bad_manifest)
        for problem, recorded, actual in self.size_fixes:
            self._repair_size(problem, recorded, actual)
        for problem, bad_refs in self.broken:
            # Still broken, but now a push mends it: the registry answers 404 to the client's HEAD.
            if any(self.bad_blobs[d].problem.repaired for d in bad_refs):
                problem.action = ("its bad blobs were quarantined and their records deleted: push the image "
                                  "again and the client uploads them (the manifest is kept)")

    def _repair_blob(self, quarantine: _Quarantine, digest: str, bad: _BadBlob) -> None:
        problem = bad.problem
        path = blob_path(self.data_dir, digest)
        moved: Path | None = None
        try:
            with self.store.write() as conn:
                if conn.execute(sa.select(blobs.c.digest).where(blobs.c.digest == digest)).first() is None:
                    problem.action = "nothing done: its record was deleted while fsck ran; run fsck again"
                    return
                links = conn.execute(repository_blobs.delete().where(repository_blobs.c.digest == digest)).rowcount
                conn.execute(blobs.delete().where(blobs.c.digest == digest))
                if os.path.lexists(path):
                    if bad.identity is None or _Identity.of(path.lstat()) != bad.identity:
                        raise _Changed()
                    moved = quarantine.move(path, "blobs", digest.replace(":", "-"))
        except _Changed:
            problem.action = "nothing done: its file was replaced while fsck ran; run fsck again"
            return
        except BaseException:
            if moved is not None:
                quarantine.restore(moved, path)
            raise
        problem.repaired = True
        kept = f"moved the file to {self.rel(moved)}; " if moved else ""
        problem.quarantined = self.rel(moved) if moved else None
        problem.action = (f"repaired: {kept}deleted its record and {_plural(links, 'repository link')}, "
                          "so the next push uploads it again")

    def _repair_orphan(self, quarantine: _Quarantine, found: _File, problem: Problem) -> None:
        try:
            with self.store.write() as conn:
                # Same transaction as an upload's row insert: if the row arrived meanwhile, keep the file.
                if found.digest is not None and conn.execute(
                        sa.select(blobs.c.digest).where(blobs.c.digest == found.digest)).first() is not None:
                    problem.action = "nothing done: a blob record for it appeared while fsck ran"
                    return
                relative = str(found.path.relative_to(self.data_dir / "blobs")).replace("/", "_")
                name = found.digest.replace(":", "-") if found.digest else "unnamed-" + _UNSAFE.sub("_", relative)
                moved = quarantine.move(found.path, "blobs", name)
        except FileNotFoundError:
            problem.action = "nothing done: the file disappeared while fsck ran"
            return
        problem.repaired = True
        problem.quarantined = self.rel(moved)
        problem.action = f"repaired: moved to {self.rel(moved)}"

    def _repair_manifest(self, quarantine: _Quarantine, manifest: _Manifest, bad: _BadManifest) -> None:
        problem = bad.problem
        repo_name = _UNSAFE.sub("_", manifest.repository.replace("/", "_"))
        name = f"{repo_name}@{_UNSAFE.sub('_', manifest.digest.replace(':', '-'))}"
        written: Path | None = None
        try:
            with self.store.write() as conn:
                account = self.quotas.hold(conn, manifest.repository)
                row = conn.execute(sa.select(manifests.c.content).where(manifests.c.id == manifest.id)).first()
                if row is None:
                    problem.action = "nothing done: the manifest was deleted while fsck ran"
                    return
                content = bytes(row[0])
                algorithm = manifest.digest.partition(":")[0]
                if valid_digest(manifest.digest) and \
                        f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}" == manifest.digest:
                    problem.action = "nothing done: the manifest was pushed again while fsck ran and is intact"
                    return
                written = quarantine.write(content, "manifests", name)
                # Its tags and references go with it (ON DELETE CASCADE), and out of its project's usage.
                self.quotas.release(conn, account, manifests.c.id == manifest.id)
                conn.execute(manifests.delete().where(manifests.c.id == manifest.id))
        except BaseException:
            if written is not None:
                written.unlink(missing_ok=True)
            raise
        problem.repaired = True
        problem.quarantined = self.rel(written)
        gone = f" and {_their_tags(manifest.tags)}" if manifest.tags else ""
        problem.action = (f"repaired: content written to {self.rel(written)}; deleted the manifest{gone}; "
                          "push the image again to restore it")

    def _repair_size(self, problem: Problem, recorded: int, actual: int) -> None:
        with self.store.write() as conn:
            if problem.kind == Kind.BLOB_SIZE:
                done = conn.execute(blobs.update().where(blobs.c.digest == problem.digest, blobs.c.size == recorded)
                                    .values(size=actual)).rowcount
            else:
                done = conn.execute(manifests.update().where(
                    manifests.c.digest == problem.manifest, manifests.c.size == recorded,
                    manifests.c.repository_id == sa.select(repositories.c.id)
                    .where(repositories.c.name == problem.repository).scalar_subquery()).values(size=actual)).rowcount
        problem.repaired = done > 0
        problem.action = f"repaired: recorded size set to {actual}" if done else \
            "nothing done: the record changed while fsck ran; run fsck again"


class _Changed(Exception):
    """The file found at repair time is not the one that was checked."""


class _Quarantine:
    """``<data_dir>/quarantine/{blobs,manifests}/``: private to the server's account (0700, files 0600)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "quarantine"

    def _dir(self, kind: str) -> Path:
        for directory in (self.root, self.root / kind):
            directory.mkdir(mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)
        return self.root / kind

    def _free_name(self, kind: str, name: str) -> Path:
        """``name``, or ``name.1``, ``name.2``...: an earlier repair's evidence is never overwritten."""
        directory = self._dir(kind)
        candidate, n = directory / name, 0
        while candidate.exists() or candidate.is_symlink():
            n += 1
            candidate = directory / f"{name}.{n}"
        return candidate

    def move(self, source: Path, kind: str, name: str) -> Path:
        target = self._free_name(kind, name)
        try:
            os.rename(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # The blob store is its own mount: copy, make the copy durable, only then remove the original.
            shutil.copyfile(source, target, follow_symlinks=False)
            _fsync(target)
            os.unlink(source)
        if not target.is_symlink():
            os.chmod(target, 0o600)
        _fsync_dir(target.parent)
        _fsync_dir(source.parent)
        return target

    def restore(self, moved: Path, original: Path) -> None:
        with contextlib.suppress(OSError):
            if not original.exists():
                os.rename(moved, original)

    def write(self, content: bytes, kind: str, name: str) -> Path:
        target = self._free_name(kind, name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(target.parent)
        return target


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def run_fsck(store: MetaStore, data_dir: Path, *, repair: bool = False, progress: Progress | None = None,
             now: float | None = None) -> FsckReport:
    """Check the blob store under ``data_dir`` against ``store``; with ``repair``, quarantine what is wrong.

    ``progress(done, total)`` is called as bytes are hashed (blobs, then manifests).
    """
    backend = store.engine.url.get_backend_name()
    return _Fsck(store, data_dir.absolute(), repair, progress, time.time() if now is None else now, backend).run()
