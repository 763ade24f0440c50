"""The fake gateway's loopback HTTP control endpoint, for a runner in another process.

``POST /_fake/advance`` delivers the next bar time (as ``FakeIBKR.advance()``) and answers
``{"moved": bool, "now": "<RFC 3339 UTC>"}``, the same shape as the fake Alpaca's, so
``backstop.runners.live.feeds.fake_advance`` can drive either (the headers it sends are
ignored here). ``GET /_fake/state`` answers ``{"now", "remaining"}``. Anything else is 404.
Not part of IB's API: it only exists so a test or demo can move the fake's clock.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class Clock(Protocol):
    """What the control endpoint drives."""

    @property
    def now(self) -> int: ...

    def advance(self, n: int = 1) -> bool: ...

    def remaining(self) -> int: ...


def rfc3339(ts_ns: int) -> str:
    """ns UTC as RFC 3339 text."""
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).isoformat().replace("+00:00", "Z")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlServer:
    """A small HTTP server on 127.0.0.1 (OS-chosen port), started and stopped with the fake."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.port = 0
        self._http: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen (the same port again after a stop)."""
        if self._http is not None:
            return
        self._http = _Server(("127.0.0.1", self.port), _handler(self.clock))
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-ibkr-control",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop serving and join the thread (bounded)."""
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _handler(clock: Clock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 1 << 16))
            if self.path.rstrip("/") == "/_fake/advance":
                moved = clock.advance()
                self._reply(200, {"moved": moved, "now": rfc3339(clock.now)})
            else:
                self._reply(404, {"message": f"not found: POST {self.path}"})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/_fake/state":
                self._reply(200, {"now": rfc3339(clock.now), "remaining": clock.remaining()})
            else:
                self._reply(404, {"message": f"not found: GET {self.path}"})

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests read the answers, not a log

    return Handler
