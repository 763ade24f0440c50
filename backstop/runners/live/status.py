"""The live status line: what a person glancing at the runner's terminal needs, in one line.

A pure renderer: the runner builds a frozen ``StatusSnapshot`` (its positions with quantity,
average price and mark, the working orders, realized and unrealized P&L, the trading state,
the time of the last event, and the snapshot's own time from the runner's clock) and calls
``status_line`` (plain text, for logs and pipes) or ``status_text`` (a ``rich.text.Text``
with the state and P&L coloured, for a terminal). Nothing here reads a clock or a broker.

    2026-06-05 14:41:05Z ACTIVE | AAPL +100 @ 187.20 mark 188.00 (+80.00) | 2 working |
    realized +120.00 unrealized +80.00 | last event 14:41:02Z (3 s ago)

(one line; wrapped here). Positions are listed by symbol, at most ``MAX_POSITIONS`` of
them, then ``+N more``; no position reads ``flat``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backstop.errors import ConfigError, check

if TYPE_CHECKING:
    from rich.text import Text

MAX_POSITIONS = 4
NS = 1_000_000_000
_STATE_STYLE = {"ACTIVE": "bold green", "REDUCING": "bold yellow", "HALTED": "bold red"}


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position: signed quantity, average entry price, last mark, multiplier."""

    symbol: str
    qty: float
    avg_price: float
    mark: float
    multiplier: float = 1.0

    def __post_init__(self) -> None:
        for name in ("qty", "avg_price", "mark", "multiplier"):
            value = getattr(self, name)
            check(
                isinstance(value, int | float) and math.isfinite(value),
                ConfigError(f"status.{name}", f"{self.symbol}: must be a finite number"),
            )

    @property
    def unrealized(self) -> float:
        """Open P&L at the mark."""
        return (self.mark - self.avg_price) * self.qty * self.multiplier


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """What the status line shows. ``ts`` and ``last_event_ts``: ns UTC (None: no event
    yet); ``state``: the trading state (ACTIVE, REDUCING, HALTED, ...)."""

    ts: int
    state: str
    positions: tuple[PositionView, ...]
    working_orders: int
    realized_pnl: float
    unrealized_pnl: float
    last_event_ts: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "positions", tuple(self.positions))
        check(
            isinstance(self.working_orders, numbers.Integral)
            and not isinstance(self.working_orders, bool)
            and self.working_orders >= 0,
            ConfigError("status.working_orders", "must be an int >= 0"),
        )
        object.__setattr__(self, "working_orders", int(self.working_orders))
        for name in ("realized_pnl", "unrealized_pnl"):
            check(
                math.isfinite(getattr(self, name)),
                ConfigError(f"status.{name}", "must be a finite number"),
            )


def _clock(ts: int, date: bool) -> str:
    moment = datetime.fromtimestamp(ts // NS, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ" if date else "%H:%M:%SZ")


def _qty(qty: float) -> str:
    return f"{qty:+,.0f}" if float(qty).is_integer() else f"{qty:+,.4f}".rstrip("0")


def _money(value: float) -> str:
    return f"{value + 0.0:+,.2f}"  # + 0.0: no "-0.00"


def _ago(ns: int) -> str:
    seconds = max(0, ns) // NS
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _segments(snap: StatusSnapshot) -> list[tuple[str, str]]:
    """(text, rich style) pieces of the line, joined by `` | ``."""
    out = [(f"{_clock(snap.ts, True)} ", ""), (snap.state, _STATE_STYLE.get(snap.state, "bold"))]
    held = sorted(snap.positions, key=lambda p: p.symbol)
    if not held:
        out.append((" | flat", ""))
    for pos in held[:MAX_POSITIONS]:
        pnl = pos.unrealized
        out.append(
            (f" | {pos.symbol} {_qty(pos.qty)} @ {pos.avg_price:,.2f} mark {pos.mark:,.2f} ", "")
        )
        out.append((f"({_money(pnl)})", _pnl_style(pnl)))
    if len(held) > MAX_POSITIONS:
        out.append((f" | +{len(held) - MAX_POSITIONS} more", ""))
    out.append((f" | {snap.working_orders} working | realized ", ""))
    out.append((_money(snap.realized_pnl), _pnl_style(snap.realized_pnl)))
    out.append((" unrealized ", ""))
    out.append((_money(snap.unrealized_pnl), _pnl_style(snap.unrealized_pnl)))
    if snap.last_event_ts is None:
        out.append((" | no event yet", ""))
    else:
        age = _ago(snap.ts - snap.last_event_ts)
        out.append((f" | last event {_clock(snap.last_event_ts, False)} ({age})", ""))
    return out


def _pnl_style(value: float) -> str:
    return "green" if value > 0 else "red" if value < 0 else ""


def status_line(snap: StatusSnapshot) -> str:
    """The status as one plain line of text."""
    return "".join(text for text, _ in _segments(snap))


def status_text(snap: StatusSnapshot) -> Text:
    """The same line as a ``rich.text.Text`` (state and P&L coloured) for a terminal."""
    from rich.text import Text

    line = Text(no_wrap=True, overflow="ellipsis")
    for text, style in _segments(snap):
        line.append(text, style=style or None)
    return line
