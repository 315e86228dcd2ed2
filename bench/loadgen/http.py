"""A deliberately small HTTP/1.1 client over raw sockets, fast enough to feed 2 GB/s.

Bodies we only measure are read with ``recv_into`` into one large reusable buffer and thrown away, and
bodies we send come from files via ``sendfile``, so the client costs little more than the kernel's copy.
httpx or http.client would allocate a bytes object per read and cap a Python client well below that.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RECV_BUFFER = 4 * 1024 * 1024
HEADER_LIMIT = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ProtocolError(RuntimeError):
    """The peer closed the connection or sent something that is not HTTP/1.1."""


@dataclass
class FileBody:
    """``count`` bytes of ``path`` from ``offset``, preceded by ``prefix`` (which makes each blob unique)."""

    path: str
    offset: int
    count: int
    prefix: bytes = b""

    @property
    def length(self) -> int:
        return len(self.prefix) + self.count


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    body_length: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


class Connection:
    """One keep-alive connection to ``host:port``; reconnects transparently when the server closed it."""

    def __init__(self, host: str, port: int, buffer_size: int = RECV_BUFFER, timeout: float = 300.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._buffer = bytearray(buffer_size)
        self._view = memoryview(self._buffer)
        self._pending = b""
        self._sock: socket.socket | None = None

    @classmethod
    def for_url(cls, url: str, **kwargs: float | int) -> Connection:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._pending = b""

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
        return self._sock

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | FileBody | None = None, keep_body: bool = True) -> Response:
        """Send one request and read its response; ``keep_body=False`` counts the body's bytes and drops them.

        A request on a reused connection that fails before any response byte arrives is retried once on a
        fresh connection: servers may close idle keep-alive connections at any moment.
        """
        reused = self._sock is not None
        try:
            return self._exchange(method, path, headers or {}, body, keep_body)
        except (ConnectionError, ProtocolError) as exc:
            self.close()
            if not reused or getattr(exc, "partial", False):
                raise
            return self._exchange(method, path, headers or {}, body, keep_body)

    def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes | FileBody | None,
                  keep_body: bool) -> Response:
        sock = self._connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        length = len(body) if isinstance(body, bytes) else body.length if body is not None else 0
        if body is not None or method in ("PUT", "POST", "PATCH"):
            lines.append(f"Content-Length: {length}")
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, FileBody):
            sock.sendall(head + body.prefix)
            with open(body.path, "rb") as fh:
                # socket.sendfile, not os.sendfile: it copes with the socket's timeout (non-blocking) mode.
                if sock.sendfile(fh, body.offset, body.count) != body.count:
                    raise ProtocolError(f"{body.path} is shorter than {body.offset + body.count} bytes")
        else:
            sock.sendall(head + (body or b""))
        return self._read_response(method, keep_body)

    def _recv(self) -> bytes:
        assert self._sock is not None
        n = self._sock.recv_into(self._buffer, HEADER_LIMIT)
        return bytes(self._view[:n])

    def _read_response(self, method: str, keep_body: bool) -> Response:
        data = self._pending
        self._pending = b""
        while b"\r\n\r\n" not in data:
            chunk = self._recv()
            if not chunk:
                raise ProtocolError("connection closed before a response")
            data += chunk
            if len(data) > HEADER_LIMIT:
                raise ProtocolError("response headers too large")
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(status_line.split(" ", 2)[1])
        except (IndexError, ValueError) as exc:
            raise ProtocolError(f"not an HTTP status line: {status_line!r}") from exc
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        response = Response(status, headers)
        if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
            self._pending = rest
            return response
        if headers.get("transfer-encoding", "").lower() == "chunked":
            self._read_chunked(response, rest, keep_body)
        elif "content-length" in headers:
            self._read_exact(response, int(headers["content-length"]), rest, keep_body)
        else:
            self._read_to_eof(response, rest, keep_body)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def _read_exact(self, response: Response, length: int, rest: bytes, keep_body: bool) -> None:
        kept = [rest[:length]] if keep_body else []
        self._pending = rest[length:]
        remaining = length - min(len(rest), length)
        sock = self._sock
        assert sock is not None
        view, size = self._view, len(self._buffer)
        while remaining:
            n = sock.recv_into(view, min(remaining, size))
            if n == 0:
                error = ProtocolError(f"connection closed with {remaining} body bytes missing")
                error.partial = True  # type: ignore[attr-defined]
                raise error
            if keep_body:
                kept.append(bytes(view[:n]))
            remaining -= n
        response.body_length = length
        response.body = b"".join(kept)

    def _read_to_eof(self, response: Response, rest: bytes, keep_body: bool) -> None:
        sock = self._sock
        assert sock is not None
        kept, total = [rest], len(rest)
        while n := sock.recv_into(self._view):
            total += n
            if keep_body:
                kept.append(bytes(self._view[:n]))
        response.body_length = total
        response.body = b"".join(kept) if keep_body else b""
        self.close()

    def _read_chunked(self, response: Response, rest: bytes, keep_body: bool) -> None:
        """Chunked bodies are only small API responses here, so simplicity beats speed."""
        data, kept, total = rest, [], 0
        while True:
            while b"\r\n" not in data:
                data += self._more()
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += self._more()
            if size == 0:
                # Trailers (none expected) end with an empty line.
                while not data.startswith(b"\r\n") and b"\r\n\r\n" not in data:
                    data += self._more()
                self._pending = data.partition(b"\r\n")[2] if data.startswith(b"\r\n") else \
                    data.partition(b"\r\n\r\n")[2]
                break
            if keep_body:
                kept.append(data[:size])
            total += size
            data = data[size + 2:]
        response.body_length = total
        response.body = b"".join(kept)

    def _more(self) -> bytes:
        chunk = self._recv()
        if not chunk:
            raise ProtocolError("connection closed inside a chunked body")
        return chunk


def split_location(location: str, current: Connection) -> tuple[Connection, str]:
    """Where a ``Location`` header points: the same connection for a relative URL, a new one otherwise."""
    parts = urlsplit(location)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if not parts.netloc or (parts.hostname == current.host and (parts.port or 80) == current.port):
        return current, path
    return Connection(parts.hostname or current.host, parts.port or 80), path
