"""pytest plugin: the ``fast`` marker, and the guard that keeps its promise.

A test marked ``fast`` runs inside the test process and starts no other (no server, no client binary, no
``python -m moorage``): that is what lets ``make test-fast`` finish in seconds. The promise is checked, not
trusted: while a fast test sets up or runs, starting a process raises, naming the test's mistake. Teardown is
left unguarded, because pytest finalises the session's real servers during the last test's teardown, whichever
tier that test belongs to.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

FAST = "fast"

# Audit events (https://docs.python.org/3/library/audit_events.html) that start another program.
_SPAWNS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty", "os.system",
                     "os.spawn", "pty.spawn"})

_state = {"hooked": False, "armed": ""}


def _library_lookup() -> bool:
    """Is the process being started by ``ctypes.util.find_library``? It asks ``ldconfig -p`` (or a compiler)
    where a shared library is, e.g. for moorage.core.heap: a look-up, over at once, not a program the test runs."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__") == "ctypes.util":
            return True
        frame = frame.f_back
    return False


def _refuse_processes(event: str, args: tuple[Any, ...]) -> None:
    if _state["armed"] and event in _SPAWNS and not _library_lookup():
        raise RuntimeError(f"{_state['armed']} is marked `{FAST}` but started a process ({event}: {args[:2]!r}); "
                           "the fast tier runs in-process only (tests.support.inprocess): remove the marker or "
                           "the process")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{FAST}: runs in-process and starts no process (make test-fast)")
    if not _state["hooked"]:  # audit hooks cannot be removed: one per interpreter, armed per test
        sys.addaudithook(_refuse_processes)
        _state["hooked"] = True


def _guarded(item: pytest.Item) -> Generator[None, object, object]:
    if item.get_closest_marker(FAST) is None:
        return (yield)
    _state["armed"] = item.nodeid
    try:
        return (yield)
    finally:
        _state["armed"] = ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))
