"""Plain-Python reference for the "SMA cross bracket" workload (bench/WORKLOAD.md).

Deliberately independent of ``backstop``: nothing is imported from the engine. It exists to
check the engine's results trade by trade, so every rule is one readable step in a plain loop.

Rules, per symbol, bar by bar (t = 0 .. n-1):

1. A pending entry (cross up at t-1, flat at the end of t-1) fills at open[t] = P.
   Bracket legs: stop = P * (1 - stop_pct), target = P * (1 + target_pct). They are live on
   this entry bar already.
2. While long (including the entry bar), exactly one exit check per bar:
   - a pending signal exit (cross down at t-1 while long) fills at open[t]; the legs are cancelled;
   - else open <= stop   -> stop_loss at open (gap through the stop, worse);
   - else open >= target -> take_profit at open (gap through the target, better);
   - else low <= stop and high >= target -> stop_loss at stop, ambiguous=True (stop first);
   - else low <= stop    -> stop_loss at stop;
   - else high >= target -> take_profit at target.
3. At the close of bar t (after step 2), if bar t+1 exists:
   - flat and fast crosses above slow at t -> schedule an entry at open[t+1];
   - long and fast crosses below slow at t -> schedule a signal exit at open[t+1].
   A signal on the last bar never fills. A cross down while flat and a cross up while long
   do nothing.

Cross up at t: fast[t] > slow[t] and fast[t-1] <= slow[t-1]; cross down: fast[t] < slow[t] and
fast[t-1] >= slow[t-1]; both SMAs must be defined at t-1 and t. SMA(n) at t is the mean of
closes t-n+1 .. t (summed with ``math.fsum``, i.e. exactly rounded) and undefined for t < n-1.

pnl = (exit_price - entry_price) * qty; no commission, no slippage. A position still open at
the end of the data is not a round trip: ``reference_run`` returns it separately.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

STOP_LOSS = "stop_loss"
TAKE_PROFIT = "take_profit"
SIGNAL_EXIT = "signal_exit"


@dataclass(frozen=True)
class RefTrade:
    """One closed round trip (long only)."""

    entry_bar: int
    entry_ts: Any
    entry_price: float
    exit_bar: int
    exit_ts: Any
    exit_price: float
    qty: int
    pnl: float
    exit_reason: str  # "stop_loss" | "take_profit" | "signal_exit"
    ambiguous: bool  # stop and target both touched in the exit bar (stop assumed first)


@dataclass(frozen=True)
class RefOpenPosition:
    """A position still open after the last bar (not a round trip)."""

    entry_bar: int
    entry_ts: Any
    entry_price: float
    qty: int
    stop: float
    target: float


def _to_list(values: Any) -> list[Any]:
    """Plain Python list from a list or a 1-D numpy array (numpy scalars become Python ones)."""
    if hasattr(values, "tolist"):
        return values.tolist()
    return list(values)


def sma(closes: Sequence[float], n: int) -> list[float | None]:
    """Simple moving average; element t is the mean of closes[t-n+1 .. t], None for t < n-1."""
    out: list[float | None] = []
    for t in range(len(closes)):
        if t < n - 1:
            out.append(None)
        else:
            out.append(math.fsum(closes[t - n + 1 : t + 1]) / n)
    return out


def _cross_up(fast: list[float | None], slow: list[float | None], t: int) -> bool:
    if t < 1:
        return False
    f0, s0, f1, s1 = fast[t - 1], slow[t - 1], fast[t], slow[t]
    if f0 is None or s0 is None or f1 is None or s1 is None:
        return False
    return f1 > s1 and f0 <= s0


def _cross_down(fast: list[float | None], slow: list[float | None], t: int) -> bool:
    if t < 1:
        return False
    f0, s0, f1, s1 = fast[t - 1], slow[t - 1], fast[t], slow[t]
    if f0 is None or s0 is None or f1 is None or s1 is None:
        return False
    return f1 < s1 and f0 >= s0


def _bracket_exit(
    o: float, h: float, l: float, stop: float, target: float
) -> tuple[float, str, bool] | None:
    """(exit_price, reason, ambiguous) if a bracket leg fills in this bar, else None."""
    if o <= stop:
        return o, STOP_LOSS, False  # gapped through the stop: fill at the (worse) open
    if o >= target:
        return o, TAKE_PROFIT, False  # gapped through the target: fill at the (better) open
    if l <= stop and h >= target:
        return stop, STOP_LOSS, True  # both touched: conservative, stop first
    if l <= stop:
        return stop, STOP_LOSS, False
    if h >= target:
        return target, TAKE_PROFIT, False
    return None


def reference_run(
    ts: Sequence[Any],
    open_: Sequence[float],
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    *,
    fast: int = 10,
    slow: int = 50,
    stop_pct: float = 0.01,
    target_pct: float = 0.02,
    qty: int = 100,
) -> tuple[list[RefTrade], RefOpenPosition | None]:
    """Closed round trips for ONE symbol, plus the position still open at the end (or None)."""
    ts_l = _to_list(ts)
    o_l = [float(x) for x in _to_list(open_)]
    h_l = [float(x) for x in _to_list(high)]
    l_l = [float(x) for x in _to_list(low)]
    c_l = [float(x) for x in _to_list(close)]
    n = len(ts_l)
    if not (len(o_l) == len(h_l) == len(l_l) == len(c_l) == n):
        raise ValueError("ts, open, high, low, close must have the same length")
    if fast < 1 or slow < 1:
        raise ValueError("SMA lengths must be >= 1")

    fast_sma = sma(c_l, fast)
    slow_sma = sma(c_l, slow)

    trades: list[RefTrade] = []
    position: RefOpenPosition | None = None
    pending_entry = False
    pending_exit = False

    for t in range(n):
        o, h, l = o_l[t], h_l[t], l_l[t]

        # 1. Entry scheduled at the close of bar t-1 fills at this bar's open.
        if pending_entry:
            pending_entry = False
            position = RefOpenPosition(
                entry_bar=t,
                entry_ts=ts_l[t],
                entry_price=o,
                qty=qty,
                stop=o * (1 - stop_pct),
                target=o * (1 + target_pct),
            )

        # 2. Exits while long (the entry bar included).
        if position is not None:
            exit_fill: tuple[float, str, bool] | None
            if pending_exit:
                pending_exit = False
                exit_fill = (o, SIGNAL_EXIT, False)  # market exit at the open; legs cancelled
            else:
                exit_fill = _bracket_exit(o, h, l, position.stop, position.target)
            if exit_fill is not None:
                exit_price, reason, ambiguous = exit_fill
                trades.append(
                    RefTrade(
                        entry_bar=position.entry_bar,
                        entry_ts=position.entry_ts,
                        entry_price=position.entry_price,
                        exit_bar=t,
                        exit_ts=ts_l[t],
                        exit_price=exit_price,
                        qty=qty,
                        pnl=(exit_price - position.entry_price) * qty,
                        exit_reason=reason,
                        ambiguous=ambiguous,
                    )
                )
                position = None

        # 3. Signals at this bar's close; they need a next bar to fill.
        if t + 1 < n:
            if position is None and _cross_up(fast_sma, slow_sma, t):
                pending_entry = True
            elif position is not None and _cross_down(fast_sma, slow_sma, t):
                pending_exit = True

    return trades, position


def reference_trades(
    ts: Sequence[Any],
    open_: Sequence[float],
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    *,
    fast: int = 10,
    slow: int = 50,
    stop_pct: float = 0.01,
    target_pct: float = 0.02,
    qty: int = 100,
) -> list[RefTrade]:
    """Closed round trips for ONE symbol (see ``reference_run`` for the open position)."""
    trades, _ = reference_run(
        ts,
        open_,
        high,
        low,
        close,
        fast=fast,
        slow=slow,
        stop_pct=stop_pct,
        target_pct=target_pct,
        qty=qty,
    )
    return trades


def reference_trades_by_symbol(df: pl.DataFrame, **params: Any) -> dict[Any, list[RefTrade]]:
    """{symbol: closed round trips} from columns ts, symbol, open, high, low, close.

    Each symbol is processed on its own, its bars sorted by ts. ``params`` are passed to
    ``reference_trades`` (fast, slow, stop_pct, target_pct, qty).
    """
    out: dict[Any, list[RefTrade]] = {}
    for symbol in sorted(df["symbol"].unique().to_list()):
        bars = df.filter(pl.col("symbol") == symbol).sort("ts")
        out[symbol] = reference_trades(
            bars["ts"].to_list(),
            bars["open"].to_list(),
            bars["high"].to_list(),
            bars["low"].to_list(),
            bars["close"].to_list(),
            **params,
        )
    return out
