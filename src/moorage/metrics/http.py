"""Counts every HTTP request: by route template (never the raw path, whose repository names and digests
would make a series per image), method and status; latency, requests in flight, bytes in and out; and the
registry's own counts that a request's route and status tell (a manifest GET answered 200 is a pull).

Kept cheap for the hot paths (blob and manifest GETs): a request adds to plain numbers of its process
(``Tallies``), which reach the metrics once a second.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moorage.metrics import instruments as m

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_MANIFEST = "/v2/{name:repository}/manifests/{reference}"
_UPLOAD_STARTS = ("/v2/{name:repository}/blobs/uploads/", "/v2/{name:repository}/blobs/uploads")
#: The registry's counts a (route, method, status) stands for.
_ALSO: dict[tuple[str, str, int], tuple[Any, ...]] = {
    (_MANIFEST, "GET", 200): (m.PULLS,), (_MANIFEST, "PUT", 201): (m.PUSHES,),
    **{(route, "POST", 202): (m.UPLOAD_SESSIONS,) for route in _UPLOAD_STARTS},
    ("/service/token", "GET", 200): (m.TOKENS_ISSUED,), ("/service/token", "POST", 200): (m.TOKENS_ISSUED,),
}
#: The latency histogram's upper bounds (its last bucket, +Inf, takes the rest).
_BOUNDS = m.LATENCY_BUCKETS


@dataclass(slots=True)
class _Tally:
    """What requests of one (route, method, status) added since the last flush, in plain numbers."""

    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS) + 1))


class Tallies:
    """This process's request counts between flushes. Updating a prometheus_client value costs ~3 µs (a lock
    and a write to the shared memory map in multiprocess mode), six of them per request ~17 µs: a fifth of
    a manifest GET. Plain integers cost well under a microsecond; a flush a second moves them into the
    metrics, which a scrape (every 15 s or more) cannot tell from counting each request at once."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str, int], _Tally] = {}
        self.in_flight = 0
        self.auth_failures = 0
        self._children: dict[tuple[str, str, int], tuple[Any, ...]] = {}

    def flush(self) -> None:
        m.HTTP_IN_FLIGHT.set(self.in_flight)
        if self.auth_failures:
            m.AUTH_FAILURES.inc(self.auth_failures)
            self.auth_failures = 0
        for key, tally in self.by_key.items():
            if not tally.requests:
                continue
            requests, latency, bytes_in, bytes_out, also = self._children.get(key) or self._child(key)
            requests.inc(tally.requests)
            # prometheus_client has no "observe n values at once"; its buckets and sum are the histogram's
            # own counters (stable across its releases), so a flush adds to them directly.
            for index, count in enumerate(tally.buckets):
                if count:
                    latency._buckets[index].inc(count)
            latency._sum.inc(tally.seconds)
            if tally.bytes_in:
                bytes_in.inc(tally.bytes_in)
            if tally.bytes_out:
                bytes_out.inc(tally.bytes_out)
            for counter in also:
                counter.inc(tally.requests)
            self.by_key[key] = _Tally()

    def _child(self, key: tuple[str, str, int]) -> tuple[Any, ...]:
        route, method, status = key
        made = (m.HTTP_REQUESTS.labels(route, method, str(status)), m.HTTP_LATENCY.labels(route, method),
                m.HTTP_BYTES_IN.labels(route), m.HTTP_BYTES_OUT.labels(route), _ALSO.get(key, ()))
        # Bounded: routes are templates, methods a handful, statuses a few dozen.
        self._children[key] = made
        return made


#: The one per process; ``moorage.background`` flushes it every second and at shutdown.
TALLIES = Tallies()
FLUSH_SECONDS = 1.0


async def flush_periodically() -> None:
    try:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            TALLIES.flush()
    finally:
        TALLIES.flush()


# By the route's identity (routes live as long as the app, and Starlette's define __eq__, so none hashes).
_TEMPLATES: dict[tuple[int, str], str] = {}


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/api/v2.0`` + the API's own for the mounted API), or
    ``unmatched``."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    key = (id(route), scope.get("root_path", ""))
    found = _TEMPLATES.get(key)
    if found is None:
        path = getattr(route, "path", None)
        if path is None:
            found = "unmatched"
        elif getattr(route, "routes", None) is not None:  # a Mount whose app matched nothing of its own
            found = f"{path}/unmatched"
        else:
            found = f"{key[1]}{path}"
        _TEMPLATES[key] = found  # bounded: one per route and mount point
    return found


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method: str = scope["method"]
        status = 0
        sent = 0
        sized = method == "HEAD"  # a HEAD's Content-Length describes a body it does not send
        received = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent, sized
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                if not sized:
                    for name, value in message.get("headers", ()):
                        if name == b"content-length":
                            sent, sized = int(value), True
                            break
            elif kind == "http.response.body" and not sized:
                sent += len(message.get("body", b""))
            await send(message)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        tallies = TALLIES
        tallies.in_flight += 1
        try:
            await self.app(scope, counting_receive if method in _BODY_METHODS else receive, counting_send)
        finally:
            tallies.in_flight -= 1
            seconds = time.perf_counter() - start
            key = (route_template(scope), method, status)
            tally = tallies.by_key.get(key)
            if tally is None:
                tally = tallies.by_key[key] = _Tally()
            tally.requests += 1
            tally.seconds += seconds
            tally.buckets[bisect_left(_BOUNDS, seconds)] += 1
            tally.bytes_in += received
            tally.bytes_out += sent
            if status == 401 and any(name == b"authorization" for name, _ in scope["headers"]):
                tallies.auth_failures += 1
