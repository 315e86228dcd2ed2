"""An upload's SHA-256 handed from process to process: saved, resumed elsewhere, same digest as hashlib."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys

import pytest

from moorage.core import sha256state


def test_libcrypto_sha256_is_available_here() -> None:
    # Without it uploads still verify, but a chunk landing on another worker re-hashes the prefix.
    assert isinstance(sha256state.new(), sha256state.ResumableSha256)


@pytest.mark.parametrize("cuts", [[0], [1, 63, 64, 65], [4096, 1_000_000], [2_999_999]])
def test_a_state_saved_after_any_chunk_resumes_to_the_same_digest(cuts: list[int]) -> None:
    data = os.urandom(3_000_000)
    hasher = sha256state.new()
    start = 0
    for cut in [*cuts, len(data)]:
        hasher.update(data[start:cut])
        state = sha256state.state_of(hasher)
        assert state is not None and len(state) == sha256state.STATE_SIZE
        hasher = sha256state.new(state)  # what the next worker does with the stored session
        start = cut
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_state_resumes_in_another_process() -> None:
    head, tail = os.urandom(100_000), os.urandom(50_000)
    hasher = sha256state.new()
    hasher.update(head)
    program = ("import pickle, sys; from moorage.core import sha256state; "
               "state, tail = pickle.load(sys.stdin.buffer); h = sha256state.new(state); h.update(tail); "
               "print(h.hexdigest())")
    result = subprocess.run([sys.executable, "-c", program], input=pickle.dumps((hasher.state(), tail)),
                            capture_output=True, check=True)
    assert result.stdout.decode().strip() == hashlib.sha256(head + tail).hexdigest()


def test_hexdigest_does_not_end_the_hash() -> None:
    hasher = sha256state.new()
    hasher.update(b"abc")
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    hasher.update(b"def")
    assert hasher.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_a_state_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="112 bytes"):
        sha256state.new(b"\0" * 10)
