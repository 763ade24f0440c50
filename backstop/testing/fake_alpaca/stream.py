"""The ``trade_updates`` websocket: Alpaca's plain-JSON trading stream on a loopback port.

Protocol (what alpaca-py's ``TradingStream`` speaks): the client sends
``{"action":"authenticate","data":{"key_id","secret_key"}}`` and gets
``{"stream":"authorization","data":{"status":"authorized","action":"authenticate"}}``
(``unauthorized`` and a close for empty or wrong keys); it sends
``{"action":"listen","data":{"streams":["trade_updates"]}}`` and gets
``{"stream":"listening","data":{"streams":["trade_updates"]}}``. From then on every market
event is sent as ``{"stream":"trade_updates","data":{...}}`` in the market's order.

As at Alpaca, nothing is replayed: an event that happens while a client is not listening,
or while the outage fault is on, is lost (kept in ``lost`` for tests to inspect). During an
outage new connections are refused with HTTP 503 (mode ``refuse``) or accepted and served
nothing (mode ``silent``).
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from backstop.testing.fake_alpaca import wire
from backstop.testing.fake_alpaca.faults import Faults
from backstop.testing.fake_alpaca.market import Event

POLL_S = 0.01  # how long a connection waits for an event before checking its socket
AUTH_WAIT_S = 10.0  # how long a new connection may take to authenticate
CLOSE_WAIT_S = 1.0  # handshake and closing-handshake limits, so stop() stays short


class StreamHub:
    """Connections listening to ``trade_updates`` and the events delivered (or lost)."""

    def __init__(self, faults: Faults, keys: tuple[str, str] | None) -> None:
        self.faults = faults
        self.keys = keys
        self.lost: list[Event] = []
        self.delivered: list[Event] = []
        self._lock = threading.Lock()
        self._queues: dict[ServerConnection, queue.SimpleQueue[str]] = {}
        self._server: Server | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- delivery (called under the backend lock, in event order) ----------------------

    def deliver(self, events: list[Event]) -> None:
        """Queue ``events`` to every listening connection, or lose them (outage, nobody)."""
        with self._lock:
            listeners = list(self._queues.values())
        if self.faults.outage or not listeners:
            self.lost.extend(events)
            return
        for event in events:
            text = json.dumps(wire.event_json(event))
            for q in listeners:
                q.put(text)
        self.delivered.extend(events)

    def listening(self) -> int:
        """How many connections are authenticated and listening now."""
        with self._lock:
            return len(self._queues)

    def drop_all(self) -> None:
        """Close every stream connection (the client sees its socket drop and reconnects)."""
        with self._lock:
            conns = list(self._queues)
            self._queues.clear()  # nothing more is queued to a connection being dropped
        server = self._server
        if server is not None:
            conns = list({*conns, *server.connections})
        for conn in conns:
            conn.close(code=1001, reason="fake alpaca dropped the stream")

    # ---- listener lifecycle -------------------------------------------------------------

    def start(self, port: int) -> int:
        """Listen on 127.0.0.1:``port`` (0: the OS picks); returns the bound port."""
        sock = socket.create_server(("127.0.0.1", port))
        self._closing.clear()
        self._server = serve(
            self._handle,
            sock=sock,
            process_request=self._gate,
            open_timeout=CLOSE_WAIT_S,
            close_timeout=CLOSE_WAIT_S,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-alpaca-stream", daemon=True
        )
        self._thread.start()
        return int(sock.getsockname()[1])

    def stop(self, timeout: float) -> None:
        """Close the listener and every connection; wait at most ``timeout`` for the thread."""
        server, self._server = self._server, None
        self._closing.set()
        if server is not None:
            server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _gate(self, conn: ServerConnection, request: Any) -> Any:
        if self.faults.outage and self.faults.outage_mode == "refuse":
            return conn.respond(503, "stream outage (fake alpaca)\n")
        return None

    def _authorized(self, msg: dict[str, Any]) -> bool:
        data = msg.get("data") or {}
        key, secret = data.get("key_id") or "", data.get("secret_key") or ""
        if msg.get("action") != "authenticate" or not key or not secret:
            return False
        return self.keys is None or (key, secret) == self.keys

    def _handle(self, conn: ServerConnection) -> None:
        """One connection: authenticate, then serve ``listen`` and queued events until closed."""
        try:
            first = json.loads(conn.recv(timeout=AUTH_WAIT_S))
        except (TimeoutError, ValueError, ConnectionClosed):
            return
        status = "authorized" if self._authorized(first) else "unauthorized"
        reply = {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}
        if status != "authorized":
            reply["data"]["message"] = "access key verification failed"
            conn.send(json.dumps(reply))
            conn.close(code=1008, reason="unauthorized")
            return
        conn.send(json.dumps(reply))
        q: queue.SimpleQueue[str] = queue.SimpleQueue()
        try:
            self._serve(conn, q)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._queues.pop(conn, None)

    def _serve(self, conn: ServerConnection, q: queue.SimpleQueue[str]) -> None:
        while not self._closing.is_set():  # or when the connection closes (client, drop_all)
            try:
                text = q.get(timeout=POLL_S)
                conn.send(text)
                continue
            except queue.Empty:
                pass
            try:
                msg = json.loads(conn.recv(timeout=0))
            except TimeoutError:
                continue
            except ValueError:
                continue
            if msg.get("action") == "listen":
                streams = (msg.get("data") or {}).get("streams") or []
                with self._lock:
                    if "trade_updates" in streams:
                        self._queues[conn] = q
                    else:
                        self._queues.pop(conn, None)
                listening = {"stream": "listening", "data": {"streams": streams}}
                conn.send(json.dumps(listening))
