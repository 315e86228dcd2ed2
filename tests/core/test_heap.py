"""After a burst of large buffers, a worker hands the freed memory back instead of keeping it."""

from __future__ import annotations

import pytest

from moorage.core import heap

pytestmark = pytest.mark.fast


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_freed_buffers_go_back_to_the_os() -> None:
    if heap._malloc_trim is None:
        pytest.skip("this C library has no malloc_trim")
    burst = [bytes(2000) for _ in range(50_000)]  # ~100 MB in malloc-sized pieces
    pinned = bytes(2000)  # allocated last, it keeps the heap from shrinking on its own
    del burst
    held = _resident_bytes()
    heap.release_free_memory()
    assert held - _resident_bytes() > 50 * 1024 * 1024
    del pinned
