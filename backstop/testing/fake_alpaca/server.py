"""``FakeAlpaca``: the loopback fake Alpaca server a test or the keyless demo starts.

REST (trading v2 and stock bars) on one port, the ``trade_updates`` websocket on a second,
both bound to 127.0.0.1 on ports the OS picks. Point the real alpaca-py clients at it::

    with FakeAlpaca(bars) as fake:
        trading = TradingClient(fake.key_id, fake.secret_key, url_override=fake.url)
        data = StockHistoricalDataClient(fake.key_id, fake.secret_key, url_override=fake.url)
        stream = TradingStream(fake.key_id, fake.secret_key, url_override=fake.stream_url)
        ...
        fake.advance()  # the next bar of every symbol: orders match, events stream out

The clock is the bar tape (``fake.now``), never the wall clock; orders fill only when
``advance()`` brings a bar. The fault switches are methods below, each saying what it does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from backstop.errors import ConfigError, check
from backstop.testing.fake_alpaca import wire
from backstop.testing.fake_alpaca.faults import Faults, RefuseRule
from backstop.testing.fake_alpaca.market import Event, Market
from backstop.testing.fake_alpaca.rest import Backend, make_handler
from backstop.testing.fake_alpaca.stream import StreamHub
from backstop.testing.fake_alpaca.tape import Tape

STOP_TIMEOUT_S = 5.0


class _HTTPServer(ThreadingHTTPServer):
    """Threading HTTP server that can cut its open connections when it stops."""

    daemon_threads = True  # a handler ends with its one request (HTTP/1.0), or its timeout
    allow_reuse_address = True  # a restart binds the same port again at once

    def __init__(self, address: tuple[str, int], handler: type) -> None:
        super().__init__(address, handler)
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        with self._live_lock:
            self._live.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self._live_lock:
            self._live.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        """Shut down every accepted connection: a handler blocked reading one returns."""
        with self._live_lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)


class FakeAlpaca:
    """A fake Alpaca account and exchange on loopback, driven bar by bar.

    ``bars``: a polars or pandas frame with ts, symbol, open, high, low, close, volume
    (default: the bundled sample). ``start``: how many timestamps are already delivered when
    it starts (at least 1, so ``now`` is always a bar's time). ``keys``: the only
    (key id, secret) accepted; by default any non-empty pair is. ``cash``: starting cash;
    ``multiplier``: margin multiplier of the buying-power check. ``tick_check``: refuse
    sub-penny limit and stop prices as Alpaca does (off by default: scripted bars such as the
    bundled sample are not on a cent grid).
    """

    def __init__(
        self,
        bars: Any = None,
        *,
        start: int = 1,
        cash: float = 100_000.0,
        multiplier: float = 2.0,
        tick_check: bool = False,
        keys: tuple[str, str] | None = None,
    ) -> None:
        if bars is None:
            from backstop.data import sample_bars

            bars = sample_bars()
        self.faults = Faults()
        self.market = Market(
            Tape(bars),
            cash=cash,
            start=start,
            multiplier=multiplier,
            tick_check=tick_check,
            faults=self.faults,
        )
        self.key_id, self.secret_key = keys if keys is not None else ("fake-key", "fake-secret")
        self.hub = StreamHub(self.faults, keys)
        self.backend = Backend(self.market, self.faults, keys, self._publish)
        self._published = 0
        self._http: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.port = 0
        self.stream_port = 0

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeAlpaca:
        """Start listening (same ports again after ``go_down``); returns at once."""
        if self._http is not None:
            return self
        self._http = _HTTPServer(("127.0.0.1", self.port), make_handler(self.backend))
        self.port = int(self._http.server_address[1])
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-alpaca-rest",
            daemon=True,
        )
        self._http_thread.start()
        self.stream_port = self.hub.start(self.stream_port)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Close both listeners and every connection; join the threads (bounded)."""
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
            http.cut_connections()
        if self._http_thread is not None:
            self._http_thread.join(timeout)
            self._http_thread = None
        self.hub.stop(timeout)

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for ``TradingClient`` / ``StockHistoricalDataClient`` ``url_override``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        """URL for ``TradingStream(url_override=...)``."""
        return f"ws://127.0.0.1:{self.stream_port}/stream"

    # ---- the clock ----------------------------------------------------------------------

    @property
    def now(self) -> int:
        """The market clock: ns UTC of the latest delivered bar."""
        return self.market.now

    @property
    def now_text(self) -> str:
        """The clock as RFC 3339 text."""
        return str(wire.rfc3339(self.market.now))

    def advance(self, n: int = 1) -> bool:
        """Deliver the next ``n`` timestamps' bars; False when the tape ran out first."""
        for _ in range(n):
            with self.backend.lock:
                moved = self.market.advance()
                self._publish()
            if not moved:
                return False
        return True

    def remaining(self) -> int:
        """Timestamps still to deliver."""
        return len(self.market.tape) - 1 - self.market.index

    def _publish(self) -> None:
        """Hand events not yet published to the stream (called under the backend lock)."""
        events = self.market.events[self._published :]
        self._published = len(self.market.events)
        if events:
            self.hub.deliver(events)

    # ---- what a test inspects -----------------------------------------------------------

    def orders(self) -> list[dict[str, Any]]:
        """Every order the fake holds (legs included, not nested), oldest first, as JSON."""
        with self.backend.lock:
            return [wire.order_json(o) for o in self.market.orders.values()]

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request answered, in order."""
        with self.backend.lock:
            return list(self.backend.log)

    @property
    def bugs(self) -> list[str]:
        """Exceptions the fake's own routes raised (each answered 500, traceback on stderr)."""
        with self.backend.lock:
            return list(self.backend.bugs)

    @property
    def events(self) -> list[Event]:
        """Every trade update the market produced, in order (delivered or not)."""
        with self.backend.lock:
            return list(self.market.events)

    @property
    def lost_events(self) -> list[Event]:
        """Trade updates nobody received (outage, or no client listening)."""
        with self.backend.lock:
            return list(self.hub.lost)

    # ---- fault switches -----------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 429) -> None:
        """Answer the next ``n`` authenticated requests with ``status`` (429: rate limited)
        before they reach the market; alpaca-py retries 429 and 504 by itself."""
        with self.backend.lock:
            self.faults.fail_count, self.faults.fail_status = n, status

    def timeout_after_accept(self, n: int = 1) -> None:
        """Accept the next ``n`` order submits, then answer each 504: the order exists, the
        client thinks it failed; alpaca-py's retry then gets 422 client_order_id not unique."""
        with self.backend.lock:
            self.faults.timeout_after_accept = n

    def stream_outage(self, mode: str = "refuse") -> None:
        """Drop every stream connection and start an outage: events are lost until
        ``end_outage()``; new connections are refused (503) or, ``mode="silent"``, accepted
        and served nothing."""
        check(
            mode in ("refuse", "silent"),
            ConfigError("mode", f"must be 'refuse' or 'silent' (got {mode!r})"),
        )
        with self.backend.lock:
            self.faults.outage, self.faults.outage_mode = True, mode
        self.hub.drop_all()

    def end_outage(self) -> None:
        """End the outage: events flow again to connections listening from now on."""
        with self.backend.lock:
            self.faults.outage = False

    def drop_stream(self) -> None:
        """Close every stream connection once (no outage: the client may reconnect at once)."""
        self.hub.drop_all()

    def delay_fills(self, bars: int, symbol: str | None = None) -> None:
        """Orders submitted from now on (for ``symbol``, or all) may fill only ``bars`` bars
        later than they would; 0 turns it off."""
        with self.backend.lock:
            self.faults.delay_bars, self.faults.delay_symbol = bars, symbol

    def partial_fills(self, fraction: float | None = None, qty: float | None = None) -> None:
        """Orders submitted from now on fill at most ``fraction`` of their qty (whole shares,
        at least 1) or ``qty`` shares per bar; the rest carries to later bars. None, None: off."""
        with self.backend.lock:
            self.faults.partial_fraction, self.faults.partial_qty = fraction, qty

    def refuse(self, symbol: str | None = None, count: int | None = 1, how: str = "403") -> None:
        """Refuse the next ``count`` orders (None: all) for ``symbol`` (None: any): ``how="403"``
        answers the submit 403 40310000; ``how="rejected"`` accepts it, then rejects it with
        a ``rejected`` stream event."""
        check(
            how in ("403", "rejected"),
            ConfigError("how", f"must be '403' or 'rejected' (got {how!r})"),
        )
        with self.backend.lock:
            rules = self.faults.refuse_rules or []
            rules.append(RefuseRule(symbol, count, how))
            self.faults.refuse_rules = rules

    def go_down(self) -> None:
        """Stop both listeners (a crash or deploy at Alpaca): clients get connection errors.
        Orders, positions and the clock are kept; events meanwhile are lost."""
        self.stop()

    def come_up(self) -> None:
        """Listen again on the same two ports after ``go_down``."""
        self.start()

    def restart(self) -> None:
        """``go_down()`` then ``come_up()``."""
        self.go_down()
        self.come_up()
