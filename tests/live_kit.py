"""A simulated world for live-runner tests: a bar tape matched by ``PortFakeBroker``.

``SimWorld.next_bars(after)`` is a runner's bar feed: it moves the market (the fake broker
matches the next bar time) only when asked for a bar time it has not reached, and gives bars
it already matched again to a runner that restarted behind it.
"""

from __future__ import annotations

import polars as pl
from fake_port_broker import PortFakeBroker

from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder


class SimWorld:
    def __init__(self, bars: pl.DataFrame, broker: PortFakeBroker) -> None:
        rows = bars.sort("ts", "symbol").with_row_index("_row")
        self.groups = [g for _, g in rows.group_by("ts", maintain_order=True)]
        self.stamps = [int(g["ts"][0]) for g in self.groups]
        self.broker = broker
        self.matched = -1  # index of the last bar time the market went through

    def next_bars(self, after_ns: int) -> pl.DataFrame | None:
        k = next((j for j, t in enumerate(self.stamps) if t > after_ns), None)
        if k is None:
            return None
        while self.matched < k:
            self.matched += 1
            for r in self.groups[self.matched].iter_rows(named=True):
                self.broker.on_bar(
                    r["_row"], r["ts"], r["symbol"], r["open"], r["high"], r["low"],
                    r["volume"], 0,
                )  # fmt: skip
        return self.groups[k].drop("_row")


class Crash(Exception):
    """The runner process 'died' here."""


class CrashingBroker:
    """A broker whose ``at``-th command raises ``Crash``, before or after it reached the
    broker (``after``): a runner killed while it was sending."""

    def __init__(self, broker: PortFakeBroker, at: int, after: bool) -> None:
        self.broker = broker
        self.at = at
        self.after = after
        self.calls = 0

    def _command(self, send, command) -> None:  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.at and not self.after:
            raise Crash(f"before command {self.at}")
        send(command)
        if self.calls == self.at:
            raise Crash(f"after command {self.at}")

    def submit(self, command: SubmitOrder) -> None:
        self._command(self.broker.submit, command)

    def cancel(self, command: CancelOrder) -> None:
        self._command(self.broker.cancel, command)

    def amend(self, command: AmendOrder) -> None:
        self._command(self.broker.amend, command)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.broker, name)
