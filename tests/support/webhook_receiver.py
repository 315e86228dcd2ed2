"""A webhook receiver for tests: a real HTTP server process on a loopback port that records every POST (headers
and body, one JSON line each) and answers 200, or 500 to the first ``--fail-first`` requests.

Run as ``python -m tests.support.webhook_receiver PORT RECORD_FILE [--fail-first N]``; ``WebhookReceiver``
starts, stops and reads it.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.procs import ManagedProcess, free_port, port_open, wait_until


class WebhookReceiver:
    def __init__(self, directory: Path, port: int | None = None, fail_first: int = 0) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.record = directory / "received.jsonl"
        self.fail_first = fail_first
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        command = [sys.executable, "-m", "tests.support.webhook_receiver", str(self.port), str(self.record),
                   "--fail-first", str(self.fail_first)]
        self.process = ManagedProcess(command, log_path=self.directory / "receiver.log",
                                      cwd=Path(__file__).resolve().parents[2])
        self.process.start()
        wait_until(lambda: port_open("127.0.0.1", self.port), timeout=15, what="the webhook receiver",
                   process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def received(self) -> list[dict[str, Any]]:
        """Every request answered 2xx: ``headers`` (lower-case names), ``body`` (text), ``json`` (parsed)."""
        if not self.record.exists():
            return []
        entries = [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]
        return [e for e in entries if e["status"] == 200]

    def wait_for(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.received()) >= count, timeout=timeout,
                   what=f"{count} webhook deliveries (have {len(self.received())})")
        return self.received()


def _serve(port: int, record: Path, fail_first: int) -> None:
    answered = 0

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal answered
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            answered += 1
            status = 500 if answered <= fail_first else 200
            entry = {"time": time.time(), "status": status, "path": self.path,
                     "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
            try:
                entry["json"] = json.loads(body)
            except ValueError:
                entry["json"] = None
            with record.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:]
    _serve(int(args[0]), Path(args[1]), int(args[3]) if len(args) > 3 else 0)
