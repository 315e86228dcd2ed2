"""SHA-256 whose running state can be saved and resumed in any process.

An upload's chunks may land on any worker or replica; hashlib cannot hand its state over, so each
new process used to hash the acknowledged prefix again from the file. OpenSSL's SHA-256 context is a
small plain structure: saved after each chunk (112 bytes, stored with the upload session), it lets
whichever process receives the next chunk carry on where the last one stopped.

Where libcrypto's SHA-256 functions cannot be loaded, ``new`` falls back to hashlib; such hashers
have no state to save, and a chunk arriving elsewhere re-hashes the prefix as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from typing import Any

STATE_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len as 32-bit words


def _load() -> Any | None:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)  # CDLL releases the GIL around each call, as hashlib does
        init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
    except (OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_void_p], ctypes.c_int
    update.argtypes, update.restype = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int
    final.argtypes, final.restype = [ctypes.c_char_p, ctypes.c_void_p], ctypes.c_int
    return lib


_LIB = _load()


class ResumableSha256:
    """The hashlib interface moorage uses (``update``, ``hexdigest``), plus ``state``."""

    def __init__(self, state: bytes | None = None) -> None:
        assert _LIB is not None
        if state is None:
            self._ctx = ctypes.create_string_buffer(STATE_SIZE)
            _LIB.SHA256_Init(self._ctx)
        else:
            if len(state) != STATE_SIZE:
                raise ValueError(f"a SHA-256 state is {STATE_SIZE} bytes, not {len(state)}")
            self._ctx = ctypes.create_string_buffer(state, STATE_SIZE)

    def update(self, data: bytes) -> None:
        data = data if isinstance(data, bytes) else bytes(data)
        assert _LIB is not None
        _LIB.SHA256_Update(self._ctx, data, len(data))

    def state(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        # Finalising consumes a context: finish a copy, so this one can go on.
        copy = ctypes.create_string_buffer(self._ctx.raw, STATE_SIZE)
        out = ctypes.create_string_buffer(32)
        assert _LIB is not None
        _LIB.SHA256_Final(out, copy)
        return out.raw.hex()


def new(state: bytes | None = None) -> Any:
    """A SHA-256 hasher, resumed from ``state`` when given; None when ``state`` cannot be used here."""
    if _LIB is not None:
        return ResumableSha256(state)
    return hashlib.sha256() if state is None else None


def state_of(hasher: Any) -> bytes | None:
    """What to store with the session so another process can resume ``hasher`` (None: it cannot)."""
    return hasher.state() if isinstance(hasher, ResumableSha256) else None
