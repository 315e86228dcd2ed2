"""Blob pull and blob push at full speed: one thread per stream, a 4 MiB receive buffer, sendfile to push."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from bench.loadgen.common import Phase, emit, fail, file_digest, median, run_threads
from bench.loadgen.http import REDIRECTS, Connection, FileBody, Response, split_location


def get_blob(conn: Connection, repo: str, digest: str, headers: dict[str, str]) -> Response:
    """GET a blob, discarding the bytes and following a redirect (a storage URL) if the server sends one."""
    response = conn.request("GET", f"/v2/{repo}/blobs/{digest}", headers, keep_body=False)
    if response.status in REDIRECTS:
        target, path = split_location(response.header("location"), conn)
        response = target.request("GET", path, keep_body=False)
    return response


def pull(spec: dict[str, Any]) -> None:
    size, streams, headers = spec["size"], spec["streams"], spec.get("headers", {})
    seconds: list[float] = []
    phase = Phase()
    phase.begin()
    for _ in range(spec["repeats"]):
        conns = [Connection(spec["host"], spec["port"]) for _ in range(streams)]
        for conn in conns:
            conn._connect()

        def one(i: int, conns: list[Connection] = conns) -> int:
            response = get_blob(conns[i], spec["repo"], spec["digest"], headers)
            if response.status != 200 or response.body_length != size:
                fail(f"blob GET: HTTP {response.status}, {response.body_length} of {size} bytes")
            return response.body_length

        started = time.perf_counter()
        run_threads(streams, one)
        seconds.append(time.perf_counter() - started)
        for conn in conns:
            conn.close()
    phase.end()
    rates = [streams * size / s / 1e9 for s in seconds]
    emit({"seconds": seconds, "gbps": rates, "gbps_median": median(rates), "bytes_per_run": streams * size}, phase)


def upload(conn: Connection, repo: str, body: FileBody | bytes, digest: str, chunk: int,
           headers: dict[str, str]) -> None:
    """One blob upload: monolithic (``chunk == 0``) or PATCH by PATCH, each chunk with its Content-Range."""
    started = conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers)
    if started.status != 202:
        fail(f"start upload: HTTP {started.status} {started.body[:200]!r}")
    target, location = split_location(started.header("location"), conn)
    if chunk:
        assert isinstance(body, FileBody), "chunked uploads stream from a file"
        position = 0
        while position < body.length:
            length = min(chunk, body.length - position)
            if position == 0:
                part = FileBody(body.path, body.offset, length - len(body.prefix), body.prefix)
            else:
                part = FileBody(body.path, body.offset + position - len(body.prefix), length)
            response = target.request("PATCH", location, {
                **headers, "Content-Type": "application/octet-stream",
                "Content-Range": f"{position}-{position + length - 1}"}, part)
            if response.status != 202:
                fail(f"PATCH chunk at {position}: HTTP {response.status} {response.body[:200]!r}")
            target, location = split_location(response.header("location"), target)
            position += length
        final: bytes | FileBody = b""
    else:
        final = body
    location += ("&" if "?" in location else "?") + f"digest={quote(digest)}"
    response = target.request("PUT", location, {**headers, "Content-Type": "application/octet-stream"}, final)
    if response.status != 201:
        fail(f"finish upload: HTTP {response.status} {response.body[:200]!r}")


def push(spec: dict[str, Any]) -> None:
    size, headers, chunk = spec["size"], spec.get("headers", {}), spec.get("chunk", 0)
    prefixes = [bytes.fromhex(p) for p in spec["prefixes"]]
    bodies = [FileBody(spec["file"], 0, size - len(p), p) for p in prefixes]
    digests = [file_digest(b.prefix, b.path, b.count) for b in bodies]
    seconds: list[float] = []
    phase = Phase()
    phase.begin()
    for body, digest in zip(bodies, digests, strict=True):
        conn = Connection(spec["host"], spec["port"])
        started = time.perf_counter()
        upload(conn, spec["repo"], body, digest, chunk, headers)
        seconds.append(time.perf_counter() - started)
        conn.close()
    phase.end()
    rates = [size / s / 1e9 for s in seconds]
    emit({"seconds": seconds, "gbps": rates, "gbps_median": median(rates), "digests": digests}, phase)
