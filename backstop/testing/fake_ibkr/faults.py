"""Fault switches a test turns on to make the fake gateway misbehave the way IB can.

``FakeIBKR`` inherits these methods; each says what it does. They act at once (under the
gateway lock) and stay on until switched off; none consults the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from backstop.errors import ConfigError, check
from backstop.testing.fake_ibkr import messages as msg

if TYPE_CHECKING:
    from backstop.testing.fake_alpaca.faults import Faults
    from backstop.testing.fake_ibkr.gateway import Gateway
    from backstop.testing.fake_ibkr.venue import Venue

LOST = "Connectivity between IB and Trader Workstation has been lost."
RESTORED_KEPT = (
    "Connectivity between IB and Trader Workstation has been restored - data maintained."
)
RESTORED_LOST = "Connectivity between IB and Trader Workstation has been restored - data lost."


class FaultSwitches:
    """The fault methods of ``FakeIBKR`` (a mixin: it uses the fake's gateway and venue)."""

    gateway: Gateway
    venue: Venue
    faults: Faults

    if TYPE_CHECKING:  # FakeIBKR provides these; declared here for the type checker only

        def start(self) -> object: ...
        def stop(self, timeout: float = 5.0) -> None: ...
        def drop_clients(self, timeout: float = 5.0) -> None: ...
        def open_listener(self) -> None: ...
        def close_listener(self, timeout: float = 5.0) -> None: ...

    def disconnect(self, outage: bool = False) -> None:
        """Drop every client socket. The listener stays up, unless ``outage=True``: then it
        closes too (connects are refused) until ``end_outage()``. Reports of fills while no
        client is connected are lost; reqExecutions and reqPositions show the fills later."""
        if outage:
            self.close_listener()
        self.drop_clients()

    def end_outage(self) -> None:
        """Listen again, on the same port, after ``disconnect(outage=True)``."""
        self.open_listener()

    def connectivity_lost(self) -> None:
        """Send error 1100 to every client; until ``connectivity_restored`` fill reports
        (execDetails, commission, orderStatus of a fill) are lost, as a client may drop
        them during an outage. Orders still match at the market."""
        with self.gateway.lock:
            self.gateway.connectivity_down = True
            self.gateway.broadcast(msg.error(-1, 1100, LOST))

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """Send 1102 (data maintained) or, ``data_lost=True``, 1101; fill reports flow again."""
        with self.gateway.lock:
            self.gateway.connectivity_down = False
            code, text = (1101, RESTORED_LOST) if data_lost else (1102, RESTORED_KEPT)
            self.gateway.broadcast(msg.error(-1, code, text))

    def restart(self, reissue_from: int = 1) -> None:
        """Gateway restart: the listener and every socket close, then listen again on the same
        port. Orders, fills and positions are kept, but the next session's nextValidId starts
        again at ``reissue_from``: order ids are REISSUED (old ones keep their id and orderRef;
        a new order may get an id an old one had). Untransmitted orders are gone."""
        check(reissue_from >= 1, ConfigError("reissue_from", f"must be >= 1 (got {reissue_from})"))
        self.stop()
        with self.gateway.lock:
            self.venue.epoch += 1
            self.venue.pending.clear()
            self.gateway.next_id = reissue_from
            self.gateway.connectivity_down = False
        self.start()

    def partial_fills(self, qty: float | None = None, fraction: float | None = None) -> None:
        """Orders transmitted from now on fill at most ``qty`` contracts (or ``fraction`` of
        their size, whole units, at least 1) per bar; the rest carries to later bars.
        None, None switches it off."""
        with self.gateway.lock:
            self.faults.partial_qty, self.faults.partial_fraction = qty, fraction

    def delay_fills(self, bars: int, symbol: str | None = None) -> None:
        """Orders transmitted from now on (for ``symbol``, or all) may fill only ``bars`` bars
        later than they would; 0 switches it off."""
        check(bars >= 0, ConfigError("bars", f"must be >= 0 (got {bars})"))
        with self.gateway.lock:
            self.faults.delay_bars, self.faults.delay_symbol = bars, symbol

    def refuse(
        self, symbol: str | None = None, count: int | None = 1, message: str = "refused by a rule"
    ) -> None:
        """Reject the next ``count`` orders (None: all) for ``symbol`` (None: any) with error
        201 ``Order rejected - reason:<message>``; a bracket is rejected whole."""
        with self.gateway.lock:
            self.venue.refusals.append((symbol, count, message))

    def on_place(self, callback: Callable[[str, bool], None] | None) -> None:
        """Call ``callback(orderRef, transmit)`` (in the gateway's thread, before the order
        is held or transmitted) as each new order arrives, e.g. to kill the client between
        the orders of a bracket or an OCA pair; None switches it off."""
        with self.gateway.lock:
            self.venue.on_place = callback

    def open_external_position(self, symbol: str, qty: float, price: float) -> None:
        """A fill outside the bot (signed ``qty`` at ``price``, e.g. a manual TWS order): the
        position moves, reqExecutions shows it (orderId 0, no orderRef), subscribed clients
        get position and portfolio updates."""
        with self.gateway.lock:
            spec = self.venue.specs.get(symbol)
            check(spec is not None, ConfigError("symbol", f"{symbol!r} is not in the tape"))
            assert spec is not None
            self.venue.external_fill(spec, float(qty), float(price))
            self.gateway.deliver()

    def _seed_position(self, symbol: str, qty: float, price: float) -> None:
        """A starting position (no execution): in the account before anyone connects."""
        spec = self.venue.specs.get(symbol)
        check(spec is not None, ConfigError(f"positions[{symbol!r}]", "is not a tape symbol"))
        assert spec is not None
        self.venue.ledger.apply(
            symbol, float(qty), float(price), spec.multiplier, spec.sec_type == "FUT", 0.0
        )
