"""``FakeIBKR``: the loopback fake TWS gateway a test or a demo starts.

The real ib_async client talks to it unpatched::

    with FakeIBKR(bars) as fake:
        ib = IB()
        ib.connect(fake.host, fake.port, clientId=1, timeout=5)
        ...
        fake.advance()  # the next bar of every symbol: orders match, reports go out

The clock is the bar tape (``fake.now``), never the wall clock; orders fill only when
``advance()`` brings a bar. Fault switches are the methods in ``faults.py``'s mixin, each
saying what it does. A loopback HTTP control endpoint (``control_url``) offers
``POST /_fake/advance`` for a runner in another process, as the fake Alpaca does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from backstop.domain.instruments import Instrument
from backstop.errors import ConfigError, check
from backstop.testing.fake_alpaca.faults import Faults
from backstop.testing.fake_alpaca.market import Market
from backstop.testing.fake_alpaca.tape import Tape, ny_day
from backstop.testing.fake_ibkr.contracts import Spec, make_spec
from backstop.testing.fake_ibkr.control import ControlServer
from backstop.testing.fake_ibkr.faults import FaultSwitches
from backstop.testing.fake_ibkr.gateway import Gateway
from backstop.testing.fake_ibkr.session import Session
from backstop.testing.fake_ibkr.venue import IB_STATUS, Venue

STOP_TIMEOUT_S = 5.0
ACCEPT_POLL_S = 0.05


class FakeIBKR(FaultSwitches):
    """A fake IB account and exchange behind a TWS API socket on 127.0.0.1, bar by bar.

    ``bars``: a polars or pandas frame (ts, symbol, OHLCV; default: the bundled sample).
    ``instruments``: overrides for backstop's instrument registry (tick, multiplier).
    ``start``: timestamps already delivered when it starts (at least 1). ``cash``: starting
    cash. ``account``: the one managed account. ``first_order_id``: the first nextValidId.
    ``positions``: starting positions, ``{symbol: (qty, price)}``. ``commission``: per
    contract (or share) of each fill. ``port``: 0 lets the OS pick.
    """

    def __init__(
        self,
        bars: Any = None,
        *,
        instruments: dict[str, Instrument] | None = None,
        start: int = 1,
        cash: float = 1_000_000.0,
        account: str = "DU1234567",
        first_order_id: int = 1,
        positions: dict[str, tuple[float, float]] | None = None,
        commission: float = 0.0,
        port: int = 0,
    ) -> None:
        check(bool(account), ConfigError("account", "must be a non-empty account code"))
        check(
            first_order_id >= 1,
            ConfigError("first_order_id", f"must be >= 1 (got {first_order_id})"),
        )
        if bars is None:
            from backstop.data import sample_bars

            bars = sample_bars()
        tape = Tape(bars, "<fake ibkr bars>")
        self.faults = Faults()
        market = Market(tape, cash=cash, start=start, faults=self.faults)
        first_day = ny_day(int(tape.times[0]))
        specs: dict[str, Spec] = {s: make_spec(s, first_day, instruments) for s in tape.symbols}
        self.venue = Venue(market, specs, account, cash)
        self.venue.commission = float(commission)
        self.gateway = Gateway(self.venue, first_order_id)
        self.host = "127.0.0.1"
        self.port = port
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._control = ControlServer(self)
        for symbol, (qty, price) in sorted((positions or {}).items()):
            self._seed_position(symbol, qty, price)

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeIBKR:
        """Listen (the same port again after ``stop``); returns once the socket listens."""
        self.open_listener()
        self._control.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Close the listener and every client socket; join the threads (bounded)."""
        self.close_listener(timeout)
        self.drop_clients(timeout)
        self._control.stop(timeout)

    def open_listener(self) -> None:
        """Listen for clients on ``port`` (0: the OS picks one, kept from then on)."""
        if self._listener is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        sock.settimeout(ACCEPT_POLL_S)
        self.port = int(sock.getsockname()[1])
        self._listener = sock
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept, args=(sock,), name="fake-ibkr-accept", daemon=True
        )
        self._accept_thread.start()

    def close_listener(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop accepting (new connections are refused); connected clients stay."""
        self._stopping.set()
        sock, self._listener = self._listener, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
            self._accept_thread = None

    def __enter__(self) -> FakeIBKR:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, sock: socket.socket) -> None:
        n = 0
        while not self._stopping.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            n += 1
            session = Session(conn, self.gateway, f"fake-ibkr-client-{n}")
            self.gateway.attach(session)
            session.start()

    def drop_clients(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Close every client socket (the listener stays); join their threads (bounded)."""
        with self.gateway.lock:
            sessions = list(self.gateway.sessions)
        for s in sessions:
            s.close()
        for s in sessions:
            s.join(timeout)

    @property
    def control_url(self) -> str:
        """Base URL of the HTTP control endpoint (``POST /_fake/advance``)."""
        return f"http://127.0.0.1:{self._control.port}"

    # ---- the clock ----------------------------------------------------------------------

    @property
    def now(self) -> int:
        """The market clock: ns UTC of the latest delivered bar."""
        return self.venue.market.now

    def advance(self, n: int = 1) -> bool:
        """Deliver the next ``n`` timestamps' bars; False when the tape ran out first."""
        for _ in range(n):
            with self.gateway.lock:
                moved = self.venue.market.advance()
                self.venue.drain()
                self.gateway.deliver()
                if moved:
                    self.gateway.push_bars()
            if not moved:
                return False
        return True

    def remaining(self) -> int:
        """Timestamps still to deliver."""
        m = self.venue.market
        return len(m.tape) - 1 - m.index

    # ---- what a test inspects -----------------------------------------------------------

    @property
    def orders(self) -> list[dict[str, Any]]:
        """Every order transmitted to the market, and every rejected one, oldest first
        (untransmitted orders are not in it)."""
        with self.gateway.lock:
            out = []
            for o in self.venue.orders.values():
                fo = o.fo
                out.append(
                    {
                        "order_id": o.order_id,
                        "client_id": o.client_id,
                        "perm_id": o.perm_id,
                        "epoch": o.epoch,
                        "order_ref": o.order_ref,
                        "symbol": o.spec.tape_symbol,
                        "action": o.action,
                        "qty": o.total_qty,
                        "type": o.order_type,
                        "lmt_price": o.lmt_price,
                        "aux_price": o.aux_price,
                        "tif": o.tif,
                        "oca_group": o.oca_group,
                        "oca_type": o.oca_type,
                        "parent_id": o.parent_id,
                        "status": "Cancelled" if fo is None else IB_STATUS[fo.status],
                        "filled": 0.0 if fo is None else fo.filled_qty,
                        "avg_price": None if fo is None else fo.filled_avg_price,
                    }
                )
            return out

    @property
    def executions(self) -> list[dict[str, Any]]:
        """Every fill, in order: exec id, order id, perm id, orderRef, side, shares, price."""
        with self.gateway.lock:
            return [
                {
                    "exec_id": e.exec_id,
                    "order_id": e.order_id,
                    "perm_id": e.perm_id,
                    "client_id": e.client_id,
                    "order_ref": e.order_ref,
                    "symbol": e.spec.tape_symbol,
                    "side": e.side,
                    "shares": e.shares,
                    "price": e.price,
                    "ts": e.ts,
                }
                for e in self.venue.executions
            ]

    def position(self, symbol: str) -> tuple[float, float]:
        """(signed qty, IB avgCost = average price x multiplier) of a tape symbol."""
        with self.gateway.lock:
            h = self.venue.ledger.holdings.get(symbol)
            if h is None or h.qty == 0:
                return 0.0, 0.0
            return h.qty, h.avg * self.venue.specs[symbol].multiplier

    @property
    def bugs(self) -> list[str]:
        """Tracebacks of exceptions inside the fake's handlers (each also printed)."""
        with self.gateway.lock:
            return list(self.gateway.bugs)

    @property
    def unserved(self) -> list[str]:
        """Messages the fake answered with 'not served' (error 321), in order."""
        with self.gateway.lock:
            return list(self.gateway.unserved)

    @property
    def clients(self) -> list[int]:
        """Client ids of the sessions connected now (after their startApi)."""
        with self.gateway.lock:
            return [s.client_id for s in self.gateway.sessions if s.client_id is not None]
