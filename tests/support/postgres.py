"""A private PostgreSQL cluster for tests: its own data directory, 127.0.0.1 on a free port, stopped by PID."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import psycopg

from tests.support.clients import run
from tests.support.procs import ManagedProcess, ToolMissing, free_port, wait_until

SUPERUSER = "moorage"


def _bin_dir() -> Path:
    """The newest installed server's binaries (Debian keeps them off PATH, under /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise ToolMissing("PostgreSQL is not installed: apt-get install -y postgresql "
                          "(or run scripts/install-test-deps as root)")
    return found[-1].parent


class Postgres:
    """``initdb`` + ``postgres`` in a fresh directory. PostgreSQL refuses to run as root, so under root
    the cluster belongs to the ``postgres`` account the Debian package creates."""

    def __init__(self, log_dir: Path) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.log_path = Path(log_dir) / "postgres.log"
        # Not under pytest's temporary directory: that one is private to root, out of the server's reach.
        self.workdir = Path(tempfile.mkdtemp(prefix="moorage-test-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.process: ManagedProcess | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def start(self) -> Postgres:
        if not self.data.exists():
            run([*self.as_user, self.bin / "initdb", "--pgdata", self.data, "--username", SUPERUSER,
                 "--auth", "trust", "--encoding", "UTF8", "--no-sync"])
        # Durability settings off: a test cluster lives for one run, and fsync would only slow it down.
        self.process = ManagedProcess(
            [*self.as_user, self.bin / "postgres", "-D", self.data, "-h", "127.0.0.1", "-p", str(self.port),
             "-k", self.workdir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            log_path=self.log_path)
        self.process.start()
        wait_until(self._accepts, timeout=30, what=f"PostgreSQL on 127.0.0.1:{self.port}", process=self.process)
        return self

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database,
                               autocommit=True, connect_timeout=2)

    def _accepts(self) -> bool:
        with self.connect() as connection:
            return connection.execute("SELECT 1").fetchone() == (1,)

    def new_database(self, name: str) -> str:
        """Create an empty database; returns its SQLAlchemy URL for ``MOORAGE_DATABASE_URL``."""
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def restart(self) -> None:
        """Stop the server, dropping every client's connection, and start it again on the same data."""
        self.shut_down()
        self.start()

    def shut_down(self) -> None:
        """Stop the server and keep its data (``start`` brings it back)."""
        if self.process is None:
            return
        # SIGINT is PostgreSQL's fast shutdown: connected clients are cut off rather than waited for.
        postmaster = (self.data / "postmaster.pid").read_text().split()[0]
        run([*self.as_user, "kill", "-INT", postmaster])
        wait_until(lambda: self.process is not None and not self.process.alive(), timeout=30,
                   what="PostgreSQL to shut down")
        self.process.stop()
        self.process = None

    def stop(self) -> None:
        try:
            self.shut_down()
        finally:
            if self.process is not None:
                self.process.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)
