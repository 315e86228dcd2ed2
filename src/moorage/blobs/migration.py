"""Moving an embedded installation (SQLite and a blob directory) to a scale-out one (a server database and an
object store): every blob is copied through the target driver's own upload path and verified against its
digest on the way, then the metadata is copied in one transaction.

Resumable: a blob already under its digest in the target (only verified content is ever put there) is not
copied again, and the database copy either lands whole or not at all, so running the command again after
an interruption finishes the job.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from moorage.blobs.driver import BlobDriver
from moorage.meta import schema
from moorage.meta.store import MetaStore

log = logging.getLogger("moorage.migrate_storage")

_READ_SIZE = 4 * 1024 * 1024
_ROWS_PER_INSERT = 1000
#: Not moved: unfinished uploads live in the source's files, and clients start them again.
SKIPPED_TABLES = frozenset({"uploads"})


@dataclass
class MigrationReport:
    blobs: int = 0
    copied: int = 0
    already_there: int = 0
    bytes_copied: int = 0
    #: Digest -> why it was not copied (missing file, content that does not match its digest).
    failed: dict[str, str] = field(default_factory=dict)
    #: Table -> rows copied; empty when the database was not copied.
    tables: dict[str, int] = field(default_factory=dict)
    database: str = "not copied"

    @property
    def ok(self) -> bool:
        return not self.failed and self.database in ("copied", "already copied")

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "blobs": self.blobs, "copied": self.copied, "already_there": self.already_there,
                "bytes_copied": self.bytes_copied, "failed": self.failed, "database": self.database,
                "tables": self.tables}


def _blob_file(data_dir: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return data_dir / "blobs" / algorithm / hexpart[:2] / hexpart


def copy_blob(source_dir: Path, target: BlobDriver, digest: str, progress: Callable[[int], None]) -> str | None:
    """Copy one blob into ``target`` while hashing it; returns why it failed, or None when it is there."""
    algorithm, _, expected = digest.partition(":")
    try:
        hasher = hashlib.new(algorithm)
    except ValueError:
        return f"unsupported digest algorithm {algorithm}"
    upload_id = str(uuid.uuid4())
    state: bytes | None = None  # known once the bytes are all written: then the upload is dropped without a search
    try:
        writer = target.open_upload(upload_id, 0, None)
        try:
            with open(_blob_file(source_dir, digest), "rb") as fh:
                while chunk := fh.read(_READ_SIZE):
                    hasher.update(chunk)
                    writer.write(chunk)
                    progress(len(chunk))
        except BaseException:
            writer.truncate(0)
            raise
        finally:
            writer.close()
        state = writer.state
        if hasher.hexdigest() != expected:
            return f"the file's content has digest {algorithm}:{hasher.hexdigest()}; run `moorage fsck --repair` " \
                   "on the source, then push the image again"
        target.commit_upload(upload_id, digest, state)
        return None
    except FileNotFoundError:
        return "the blob's file is missing from the source; run `moorage fsck` on the source"
    finally:
        target.discard_upload(upload_id, state)


def copy_blobs(source: MetaStore, source_dir: Path, target: BlobDriver, report: MigrationReport,
               progress: Callable[[int, int], None], parallel: int = 4) -> None:
    with source.read() as conn:
        rows = [(digest, int(size)) for digest, size in conn.execute(
            sa.select(schema.blobs.c.digest, schema.blobs.c.size).order_by(schema.blobs.c.digest))]
    report.blobs = len(rows)
    total = sum(size for _, size in rows)
    done = 0
    progress(0, total)

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    def one(row: tuple[str, int]) -> tuple[str, int, bool, str | None]:
        digest, size = row
        there = target.stat(digest) == size
        return digest, size, there, None if there else copy_blob(source_dir, target, digest, advance)

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="moorage-migrate") as pool:
        for digest, size, there, failure in pool.map(one, rows):
            if there:
                report.already_there += 1
                advance(size)
            elif failure is not None:
                report.failed[digest] = failure
            else:
                report.copied += 1
                report.bytes_copied += size


def copy_database(source: MetaStore, target: MetaStore, report: MigrationReport) -> None:
    """Every table's rows, in one transaction on the target; a target that already holds exactly the source's
    rows is left as it is (a finished earlier run), one that holds anything else is refused."""
    tables = [t for t in schema.metadata.sorted_tables if t.name not in SKIPPED_TABLES]
    present = set(sa.inspect(source.engine).get_table_names())
    tables = [t for t in tables if t.name in present]
    with source.read() as conn:
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables}
    with target.read() as conn:
        held = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables}
    if any(held.values()):
        if held == counts:
            report.database, report.tables = "already copied", counts
            return
        busy = ", ".join(f"{name} ({n})" for name, n in held.items() if n)
        raise TargetNotEmpty(f"the target database already holds rows ({busy}); point database_url at a new, "
                             "empty database")
    with source.read() as read, target.write() as write:
        for table in tables:
            rows = 0
            batch: list[dict[str, object]] = []
            for row in read.execute(sa.select(table)).mappings():
                batch.append(dict(row))
                if len(batch) >= _ROWS_PER_INSERT:
                    write.execute(table.insert(), batch)
                    rows, batch = rows + len(batch), []
            if batch:
                write.execute(table.insert(), batch)
                rows += len(batch)
            report.tables[table.name] = rows
        if not target.is_sqlite:
            _advance_sequences(write, tables)
    report.database = "copied"


def _advance_sequences(conn: sa.Connection, tables: list[sa.Table]) -> None:
    """Rows were inserted with their ids: the id sequences must start past them."""
    for table in tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True or (column.autoincrement == "auto" and isinstance(column.type, sa.Integer)
                                                and len(table.primary_key.columns) == 1):
                sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                                        {"t": table.name, "c": column.name}).scalar()
                if sequence:
                    conn.execute(sa.text(f'SELECT setval(:s, COALESCE((SELECT MAX("{column.name}") FROM '
                                         f'"{table.name}"), 0) + 1, false)'), {"s": sequence})


class TargetNotEmpty(Exception):
    pass
