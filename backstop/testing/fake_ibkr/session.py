"""One client connection to the fake gateway: handshake, framed reads, serialized writes.

The reader thread blocks in ``recv`` (at most ``IO_TIMEOUT_S`` at a time); ``close()`` shuts
the socket down, which wakes it at once. It ends when the client closes, the fake drops the
connection, or the framing breaks. Each complete
message goes to the gateway's ``handle`` (which takes the server lock). Writes come from any
thread (the reader's answers, ``advance()``'s fills) and are serialized by a lock; a write that
fails or blocks longer than ``IO_TIMEOUT_S`` drops the connection.
"""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
from typing import Any, Protocol

from backstop.testing.fake_ibkr.wire import (
    SERVER_VERSION,
    WireError,
    frame,
    split,
    take_greeting,
    take_message,
)

IO_TIMEOUT_S = 5.0
MAX_MESSAGES_PER_READ = 10_000


class Handler(Protocol):
    """What a session calls on the gateway."""

    def connection_time(self) -> str: ...

    def handle(self, session: Session, fields: list[str]) -> None: ...

    def dropped(self, session: Session) -> None: ...


class Session:
    """A client socket and what the gateway knows about it (client id, subscriptions)."""

    def __init__(self, sock: socket.socket, gateway: Handler, name: str) -> None:
        self.sock = sock
        sock.settimeout(IO_TIMEOUT_S)  # set once: reader and writers share the socket
        self.gateway = gateway
        self.client_id: int | None = None  # set by startApi
        self.positions_sub = False
        self.account_sub = False
        self.bar_subs: dict[int, tuple[str, bool]] = {}  # keepUpToDate: reqId -> (symbol, daily)
        self.closed = False
        self._wlock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start reading."""
        self.thread.start()

    def send(self, fields: list[Any]) -> bool:
        """Write one message; False (and the connection dropped) when it cannot be written."""
        if self.closed:
            return False
        data = frame(fields)
        with self._wlock:
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                pass
        self.close()
        return False

    def looks_closed(self) -> bool:
        """Whether the peer is gone even if the reader has not noticed yet (a client killed a
        moment ago): the socket reads end-of-file, or fails. Never blocks."""
        if self.closed:
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            return bool(readable) and self.sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        """Drop the connection (the client sees the peer close)."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()

    def join(self, timeout: float) -> None:
        """Wait (bounded) for the reader thread to end."""
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def _run(self) -> None:
        buf = bytearray()
        greeted = False
        try:
            while not self._stop.is_set():
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                buf += data
                for _ in range(MAX_MESSAGES_PER_READ):
                    if not greeted:
                        versions = take_greeting(buf)
                        if versions is None:
                            break
                        lo, hi = versions
                        if not lo <= SERVER_VERSION <= hi:
                            raise WireError(f"client versions {lo}..{hi} exclude {SERVER_VERSION}")
                        greeted = True
                        self.send([SERVER_VERSION, self.gateway.connection_time()])
                        continue
                    body = take_message(buf)
                    if body is None:
                        break
                    self.gateway.handle(self, split(body))
        except WireError as exc:
            print(f"fake IBKR gateway: dropping a client: {exc}", file=sys.stderr)
        finally:
            self.close()
            self.gateway.dropped(self)
