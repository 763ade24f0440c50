"""The scripted bar path the fake market runs on: bars grouped by timestamp, read-only.

The fake's clock is this tape, never the wall clock: ``FakeAlpaca.advance()`` moves to the
next distinct timestamp and every symbol's bar at that timestamp is delivered at once.
Bars are loaded through ``backstop.data.load_bars_frame``, so they are validated and sorted
exactly as backtest input is (ts as int64 ns UTC, symbol, open, high, low, close, volume).
Calendar days are New York days: a DAY order expires when the tape reaches a later one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from backstop.data import load_bars_frame
from backstop.errors import DataError, check

NEW_YORK = ZoneInfo("America/New_York")

_TIMEFRAMES = {
    60_000_000_000: "1Min",
    300_000_000_000: "5Min",
    900_000_000_000: "15Min",
    3_600_000_000_000: "1Hour",
    86_400_000_000_000: "1Day",
}


@dataclass(frozen=True, slots=True)
class Bar:
    """One symbol's bar: ``ts`` is its open time in ns UTC (Alpaca labels bars by start)."""

    ts: int
    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: float


def ny_day(ts_ns: int) -> dt.date:
    """The New York calendar date of an instant, the day a session belongs to."""
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).astimezone(NEW_YORK).date()


class Tape:
    """Bars by timestamp (for the market) and by symbol (for the data endpoint)."""

    def __init__(self, bars: Any, source: str = "<fake alpaca bars>") -> None:
        frame = load_bars_frame(bars, source)
        check(frame.height > 0, DataError("no bars: the fake needs at least one", source=source))
        self.frame: pl.DataFrame = frame
        ts = frame["ts"].to_numpy()
        self.times: np.ndarray = np.unique(ts)
        self.symbols: tuple[str, ...] = tuple(sorted(frame["symbol"].unique().to_list()))
        self._rows: list[list[Bar]] = [[] for _ in range(len(self.times))]
        self.by_symbol: dict[str, list[Bar]] = {s: [] for s in self.symbols}
        index = np.searchsorted(self.times, ts)
        for k, row in enumerate(frame.iter_rows()):
            bar = Bar(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6])
            self._rows[int(index[k])].append(bar)
            self.by_symbol[bar.symbol].append(bar)
        for group in self._rows:
            group.sort(key=lambda b: b.symbol)
        steps = np.diff(self.times)
        self.interval_ns: int = int(steps.min()) if len(steps) else 60_000_000_000
        self.days: list[dt.date] = [ny_day(int(t)) for t in self.times]

    def __len__(self) -> int:
        return len(self.times)

    def bars_at(self, i: int) -> list[Bar]:
        """Every symbol's bar at timestamp index ``i``, in symbol order."""
        return self._rows[i]

    def timeframe(self) -> str:
        """The tape's bar size as Alpaca names it (``1Min``...), or ``""`` if it has no name."""
        return _TIMEFRAMES.get(self.interval_ns, "")

    def last_close(self, symbol: str, i: int) -> float | None:
        """The close of ``symbol``'s latest bar at or before timestamp index ``i``."""
        bars = self.by_symbol.get(symbol)
        if not bars:
            return None
        k = count_upto(bars, int(self.times[i]))
        return bars[k - 1].close if k else None

    def prev_day_close(self, symbol: str, i: int) -> float | None:
        """The close of ``symbol``'s last bar on a New York day before the day of index ``i``."""
        day = self.days[i]
        j = i
        while j >= 0 and self.days[j] == day:
            j -= 1
        return self.last_close(symbol, j) if j >= 0 else None

    def session_bounds(self, i: int) -> tuple[int, int, int | None]:
        """(first ts of index ``i``'s day, last ts of it + one bar, first ts of the next day)."""
        day = self.days[i]
        lo = i
        while lo > 0 and self.days[lo - 1] == day:
            lo -= 1
        hi = i
        while hi + 1 < len(self.times) and self.days[hi + 1] == day:
            hi += 1
        nxt = int(self.times[hi + 1]) if hi + 1 < len(self.times) else None
        return int(self.times[lo]), int(self.times[hi]) + self.interval_ns, nxt


def count_upto(bars: list[Bar], ts: int) -> int:
    """How many of ``bars`` (ascending ts) are stamped at or before ``ts`` (bisection)."""
    lo, hi = 0, len(bars)
    while lo < hi:
        mid = (lo + hi) // 2
        if bars[mid].ts <= ts:
            lo = mid + 1
        else:
            hi = mid
    return lo
