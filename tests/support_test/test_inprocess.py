"""The fast tier's own machinery: the in-process app leaves the test process as it found it, reports what the
server log check would, and the ``fast`` marker's promise (no process) is enforced."""

from __future__ import annotations

import ctypes.util
import logging
import os
import subprocess
from collections.abc import Callable

import pytest

from tests.support.inprocess import InProcessMoorage

pytestmark = pytest.mark.fast


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_fast_test_may_not_start_a_process() -> None:
    with pytest.raises(RuntimeError, match="marked `fast` but started a process"):
        subprocess.run(["true"], check=True)
    # Asking where a shared library is (ldconfig, under ctypes) is a look-up, not a process of the test's.
    assert ctypes.util.find_library("c")


def test_the_app_leaves_the_umask_and_the_logging_of_the_test_process_alone(
        inprocess_factory: Callable[..., InProcessMoorage]) -> None:
    mask = os.umask(0o022)
    logger = logging.getLogger("moorage")
    before = (list(logger.handlers), logger.propagate)
    try:
        server = inprocess_factory()
        # `moorage serve` makes its own files private; the test process keeps creating other tests' files.
        assert _umask() == 0o022
    finally:
        os.umask(mask)
    assert (server.settings.data_dir / "moorage.db").is_file() and (server.settings.data_dir / "secret.key").is_file()
    # Records still reach pytest (caplog) in this and every later test.
    assert logger.propagate == before[1]
    assert [h for h in logger.handlers if h not in before[0]] == [server._watch]


def test_a_logged_traceback_is_reported_like_the_server_log_check(inprocess: InProcessMoorage) -> None:
    with inprocess.client() as client:
        assert client.get("/v2/").status_code == 200
    assert inprocess.problems() == []
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("moorage.anything").exception("something broke")
    problems = inprocess.problems()
    assert len(problems) == 1
    assert "moorage.anything: something broke" in problems[0] and "ValueError: boom" in problems[0]
    assert inprocess.problems() == [], "each problem is reported once"
