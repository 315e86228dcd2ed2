"""Processes for tests: free loopback ports, polling with a deadline, and servers stopped by their PID."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

LOG_TAIL_CHARS = 4000


class ToolMissing(RuntimeError):
    """A binary a test needs is not installed; the message names the Debian package that provides it.

    Deliberately an error rather than a skip: CI must install the tool, not silently test less.
    """


T = TypeVar("T")


class _Server(Protocol):
    def start(self) -> object: ...

    def stop(self) -> object: ...


S = TypeVar("S", bound=_Server)


def or_fail(make: Callable[[], T]) -> T:
    """Turn ToolMissing into a plain failure whose message is just the install hint."""
    try:
        return make()
    except ToolMissing as missing:
        pytest.fail(str(missing), pytrace=False)


def running(make: Callable[[], S]) -> Iterator[S]:
    """The body of a server fixture: build the server (a missing tool fails with its install hint),
    start it, hand it to the tests, and stop it by PID afterwards whatever happened."""
    server = or_fail(make)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def require_tool(binary: str, package: str) -> str:
    """Absolute path of ``binary``, or ToolMissing naming ``package`` (and the script that installs it)."""
    path = shutil.which(binary) or next(
        (str(p) for d in ("/usr/sbin", "/sbin", "/usr/local/sbin") if (p := Path(d) / binary).exists()), None)
    if path is None:
        raise ToolMissing(f"`{binary}` is not installed: apt-get install -y {package} "
                          f"(or run scripts/install-test-deps as root)")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now on ``host`` (the kernel picks it, so parallel runs do not clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    if not path.exists():
        return "<no log>"
    data = path.read_bytes()[-chars:]
    return data.decode(errors="replace")


def group_members(pgid: int) -> list[int]:
    """PIDs whose process group is ``pgid`` (read from /proc, field 5 of /proc/PID/stat)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


class ManagedProcess:
    """A long-running command (a server) with its output in a log file, stopped by its PID.

    The child gets its own session so that a Ctrl-C on the test run does not reach it half-way, and so
    that helpers it forks (e.g. shims) can be found by its process-group id when it is stopped.
    """

    def __init__(self, command: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.command = [str(part) for part in command]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._popen.pid

    @property
    def name(self) -> str:
        return Path(self.command[0]).name

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> ManagedProcess:
        if self.alive():
            raise RuntimeError(f"{self.name} is already running as pid {self.pid}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start: {' '.join(self.command)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                           start_new_session=True)
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the PID, SIGKILL it after ``timeout`` seconds; then reap anything left in its process group."""
        if self._popen is None:
            return None
        popen, pgid = self._popen, self._popen.pid
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=timeout)
        # Helpers the server forked into its (own) process group must not outlive the test. While any member
        # is alive the kernel cannot hand the group id to another process, so these PIDs are ours.
        for member in group_members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
        return popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return tail(self.log_path, chars)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first (from /proc/self/mountinfo, field 5)."""
    root = Path(path).resolve()
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # mountinfo escapes space, tab, newline and backslash as octal.
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_under(path: Path) -> None:
    """Unmount what a daemon left mounted in its work dir (podman keeps its overlay dir bind-mounted), so
    pytest can delete old temporary directories."""
    for point in mounts_under(path):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(point)], capture_output=True)


class WaitTimeout(AssertionError):
    """Raised by wait_until; an AssertionError so pytest shows it as a plain test failure."""


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               process: ManagedProcess | None = None, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Gives up after ``timeout`` seconds, or at once if ``process`` died meanwhile (its log tail is then
    in the message, which is usually the only clue why a server did not come up).
    """
    deadline = time.monotonic() + timeout
    delay = interval
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as error:  # a predicate that raises has simply not become true yet
            last_error = error
        if process is not None and process.returncode is not None:
            raise WaitTimeout(f"{process.name} (pid {process.pid}) exited with status {process.returncode} "
                              f"while waiting for {what}; log {process.log_path}:\n{process.log_tail()}")
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else ""
            logs = f"\nlog {process.log_path}:\n{process.log_tail()}" if process is not None else ""
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what}{detail}{logs}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
