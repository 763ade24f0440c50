"""Fault switches a test turns on to make the fake misbehave the way Alpaca can.

Each switch is a plain attribute or counter read by the part of the fake it affects; the
methods of ``FakeAlpaca`` (``fail_next``, ``timeout_after_accept``, ``stream_outage``,
``delay_fills``, ``partial_fills``, ``refuse``, ``restart``) set them and say what each does.
Every counted fault is consumed one request (or order) at a time, so a test knows exactly
which request failed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RefuseRule:
    """Refuse orders for ``symbol`` (any symbol when None), ``count`` of them (None: all).

    ``how`` is ``"403"`` (the submit answers HTTP 403, nothing is created) or ``"rejected"``
    (the submit is accepted, then the order goes to ``rejected`` with a stream event).
    """

    symbol: str | None
    count: int | None
    how: str


@dataclass(slots=True)
class Faults:
    """The switches; all off by default."""

    fail_status: int = 429  # status the next ``fail_count`` requests answer
    fail_count: int = 0
    timeout_after_accept: int = 0  # order submits accepted, then answered 504
    outage: bool = False  # trade_updates: events are lost while True
    outage_mode: str = "refuse"  # "refuse" new stream connections, or accept them "silent"
    delay_bars: int = 0  # orders submitted while > 0 fill this many bars late
    delay_symbol: str | None = None
    partial_fraction: float | None = None  # fill at most this fraction of qty per bar
    partial_qty: float | None = None  # fill at most this many shares per bar
    refuse_rules: list[RefuseRule] | None = None

    def take_failure(self) -> int | None:
        """The status to answer this request with, if a counted failure is pending."""
        if self.fail_count > 0:
            self.fail_count -= 1
            return self.fail_status
        return None

    def take_timeout(self) -> bool:
        """Whether this accepted submit must be answered 504 (consumes one)."""
        if self.timeout_after_accept > 0:
            self.timeout_after_accept -= 1
            return True
        return False

    def take_refusal(self, symbol: str) -> str | None:
        """How to refuse an order for ``symbol`` (``"403"``/``"rejected"``), or None."""
        for rule in self.refuse_rules or []:
            if rule.symbol is not None and rule.symbol != symbol:
                continue
            if rule.count is not None:
                if rule.count <= 0:
                    continue
                rule.count -= 1
            return rule.how
        return None

    def delay_for(self, symbol: str) -> int:
        """Bars an order for ``symbol`` submitted now waits before it may fill."""
        if self.delay_bars > 0 and self.delay_symbol in (None, symbol):
            return self.delay_bars
        return 0

    def max_fill(self, qty: float) -> float | None:
        """Most of an order of ``qty`` that may fill per bar under the partial-fill switch."""
        caps = []
        if self.partial_fraction is not None:
            cap = qty * self.partial_fraction
            # whole-share orders fill in whole shares, at least one per bar
            caps.append(max(1.0, float(int(cap))) if float(qty).is_integer() else cap)
        if self.partial_qty is not None:
            caps.append(self.partial_qty)
        return min(caps) if caps else None
