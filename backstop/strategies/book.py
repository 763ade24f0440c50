"""What the seed strategies share: a per-symbol walk over the bars and a model of their trade.

The seed systems' exits (seed 002's momentum exhaustion, cloud flip, time stop and end-of-day
close; seed 003's hysteresis exit; seed 001's time and thesis exits) depend on the trade being
open, so these strategies walk each symbol's bars in time order and keep a *model* of their own
trade: a market entry decided at bar t fills at bar t+1's open (the engine's fill rule), a limit
entry fills on the first later bar that touches its price and (``tif`` day) expires with the
New York date of the first bar it could fill on, its stop and target legs act from the fill
bar on when it filled at the open and from the next bar otherwise (stop first when one bar
touches both: the engine's defaults), a scale-in's add is a good-till-cancelled limit that a
leg leaving nothing open cancels, and an exit decided at bar k leaves the model flat from bar
k+1. The pipeline still decides what is sent: an entry it refuses (a guard, the sizer)
leaves the model believing in a trade that is not there, and the exits it then asks for are
refused as ``EXIT_NO_EXPOSURE`` and journaled, never sent. A strategy never sees a position.

``Rows`` collects intent rows with the columns they fill; ``symbol_runs`` yields the row
numbers of each symbol in time order (symbols sorted by name: deterministic);
``ny_clock`` gives each bar's New York wall-clock minute and date, which the seeds' session
rules (15:55 ET, "down 15% on the day") are written in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from backstop.domain.enums import EventKind, OrderRole

NEW_YORK = "America/New_York"
LONG = 1
SHORT = -1
FLAT, PENDING, OPEN = 0, 1, 2
LEG_NONE, LEG_STOP, LEG_TARGET = 0, 1, 2

_COLUMNS: dict[str, pl.DataType] = {
    "bar": pl.Int64(),
    "ts": pl.Int64(),
    "symbol": pl.String(),
    "side": pl.Int8(),
    "intent": pl.Int8(),
    "kind": pl.Int8(),
    "qty": pl.Float64(),
    "otype": pl.Int8(),
    "limit_px": pl.Float64(),
    "tif": pl.Int8(),
    "stop_px": pl.Float64(),
    "target_px": pl.Float64(),
    "conviction": pl.Float64(),
    "scale_in_pct": pl.Float64(),
    "exit_reason": pl.Int8(),
    "exit_fraction": pl.Float64(),
    "trade_type": pl.Int8(),
}


class Rows:
    """Intent rows as they are decided, turned into one frame in (ts, symbol, order) order."""

    def __init__(self, bars: pl.DataFrame) -> None:
        self._ts = bars.get_column("ts").to_numpy()
        self._symbol = bars.get_column("symbol").to_list()
        self._rows: list[dict[str, Any]] = []

    def _base(self, i: int, side: int, intent: int) -> dict[str, Any]:
        return {
            "bar": int(i),
            "ts": int(self._ts[i]),
            "symbol": self._symbol[i],
            "side": int(side),
            "intent": int(intent),
        }

    def entry(self, i: int, side: int, **fields: Any) -> None:
        """An entry decided at bar row ``i`` (``fields``: qty, otype, limit_px, stop_px, ...)."""
        self._rows.append(self._base(i, side, 0) | fields)

    def exit(
        self,
        i: int,
        side: int,
        reason: OrderRole,
        qty: float | None = None,
        fraction: float | None = None,
    ) -> None:
        """An exit of the ``side`` position (the order sells a long) for ``reason``: all of
        it, ``qty`` units, or a ``fraction`` of what is open (a scale-out)."""
        row = self._base(i, -side, 1) | {"exit_reason": int(reason)}
        if qty is not None:
            row["qty"] = float(qty)
        if fraction is not None:
            row["exit_fraction"] = float(fraction)
        self._rows.append(row)

    def stop_update(self, i: int, level: float) -> None:
        """Move the symbol's working stop leg to ``level`` (the pipeline only tightens)."""
        self._rows.append(
            self._base(i, 1, 0) | {"kind": int(EventKind.STOP_UPDATE), "stop_px": float(level)}
        )

    def frame(self) -> pl.DataFrame:
        """The rows decided so far, sorted by bar row (stable: decision order within a bar)."""
        if not self._rows:
            return pl.DataFrame(schema=_COLUMNS)
        out = pl.DataFrame(self._rows, schema=_COLUMNS)
        return out.sort("bar", maintain_order=True)


class Lot:
    """One entry order of the modelled trade and what became of it."""

    __slots__ = ("day_order", "legs_from", "limit", "price", "session", "state")

    def __init__(self, limit: float, day_order: bool = False) -> None:
        self.state = PENDING
        self.limit = limit  # NaN: a market order
        self.day_order = day_order  # tif day: lives in the New York date of its first live bar
        self.session = -1
        self.price = np.nan
        self.legs_from = 0


class Trade:
    """A strategy's model of its own trade in one symbol (see the module docstring).

    ``lots`` are its entry orders: the entry and, for a scale-in, the add (a good-till-
    cancelled limit). Both share the stop and target levels. ``step`` plays one bar; the
    trade is over when no lot is open or pending: a leg that leaves nothing open cancels a
    waiting add, as the engine does, and a strategy exit ends everything.
    """

    def __init__(self, side: int, stop: float, target: float, lots: list[Lot]) -> None:
        self.side = side
        self.stop = stop
        self.target = target
        self.lots = lots
        self.filled_at = -1  # ts of the first fill
        self.entry_px = np.nan  # price of the first fill

    @property
    def open(self) -> bool:
        """Whether any lot is filled and not yet closed."""
        return any(lot.state == OPEN for lot in self.lots)

    @property
    def live(self) -> bool:
        """Whether the trade still holds or waits for anything."""
        return any(lot.state in (PENDING, OPEN) for lot in self.lots)

    def step(self, i: int, ts: int, day: int, o: float, h: float, lo: float) -> None:
        """Play bar ``i`` as the engine does: its open print, then the bar's range.

        Each phase goes through the orders oldest first: at the open, entries fill (market,
        or a limit the open is through) and then armed legs the open is through; inside the
        bar, waiting limits (older than the legs, which are made at a fill) and then the legs.
        A leg that leaves nothing open cancels whatever entry still waits.
        """
        side = self.side
        waiting = []
        for lot in self.lots:
            if lot.state != PENDING:
                continue
            if lot.day_order and lot.session < 0:
                lot.session = day
            if lot.day_order and day != lot.session:
                lot.state = FLAT  # a day order expires with its first live bar's date
            elif lot.limit != lot.limit or (o - lot.limit) * side <= 0:
                self._fill(lot, ts, o, i)  # market, or a limit the open is through
            else:
                waiting.append(lot)
        if self._legs(i, o, o) or not waiting:
            self._legs(i, lo, h)
            return
        for lot in waiting:
            if limit_touched(side, lo, h, lot.limit):
                self._fill(lot, ts, lot.limit, i + 1)
        self._legs(i, lo, h)

    def _legs(self, i: int, lo: float, h: float) -> bool:
        """Close the armed lots whose stop or target ``lo``..``h`` reaches; True when that
        left nothing open (and so cancelled every waiting entry)."""
        was_open = self.open
        for lot in self.lots:
            armed = lot.state == OPEN and i >= lot.legs_from
            if armed and leg_hit(self.side, lo, h, self.stop, self.target) != LEG_NONE:
                lot.state = FLAT
        if was_open and not self.open:
            self.close()
            return True
        return False

    def _fill(self, lot: Lot, ts: int, price: float, legs_from: int) -> None:
        lot.state, lot.price, lot.legs_from = OPEN, price, legs_from
        if self.filled_at < 0:
            self.filled_at, self.entry_px = ts, price

    def close(self) -> None:
        """The strategy exited (or a leg left nothing open): nothing is held or waits."""
        for lot in self.lots:
            lot.state = FLAT


def symbol_runs(bars: pl.DataFrame) -> Iterator[np.ndarray]:
    """Row numbers of each symbol's bars in time order, symbols in name order."""
    sym = bars.get_column("symbol").to_numpy()
    for name in sorted(set(sym.tolist())):
        yield np.flatnonzero(sym == name)


def ny_clock(bars: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(minute of the New York day, New York date as days since 1970) of each bar's ts."""
    local = pl.from_epoch(bars.get_column("ts"), time_unit="ns").dt.convert_time_zone(NEW_YORK)
    frame = pl.DataFrame({"t": local}).select(
        minute=pl.col("t").dt.hour().cast(pl.Int64) * 60 + pl.col("t").dt.minute(),
        day=pl.col("t").dt.date().cast(pl.Int64),
    )
    return frame.get_column("minute").to_numpy(), frame.get_column("day").to_numpy()


def bar_step_ns(ts: np.ndarray) -> int:
    """The most common spacing of one symbol's bars (its bar length), 0 with one bar."""
    if len(ts) < 2:
        return 0
    gaps = np.diff(ts)
    gaps = gaps[gaps > 0]
    if not len(gaps):
        return 0
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[np.argmax(counts)])  # ties: the shortest (np.unique sorts)


def leg_hit(side: int, low: float, high: float, stop: float, target: float) -> int:
    """Which protective leg a bar touches: stop first when it touches both (NaN: no leg)."""
    if side == LONG:
        if stop == stop and low <= stop:
            return LEG_STOP
        if target == target and high >= target:
            return LEG_TARGET
    else:
        if stop == stop and high >= stop:
            return LEG_STOP
        if target == target and low <= target:
            return LEG_TARGET
    return LEG_NONE


def limit_touched(side: int, low: float, high: float, limit: float) -> bool:
    """Whether a bar trades through a limit entry's price (a buy's at or below it)."""
    return low <= limit if side == LONG else high >= limit


def ema(bars: pl.DataFrame, span: int) -> np.ndarray:
    """The close's exponential average of ``span`` bars per symbol (alpha 2/(span+1))."""
    return (
        bars.select(pl.col("close").ewm_mean(span=span, adjust=False).over("symbol"))
        .to_series()
        .to_numpy()
    )


def rsi(bars: pl.DataFrame, period: int) -> np.ndarray:
    """Wilder's RSI of the close per symbol (NaN until ``period`` changes are seen).

    Average gain and loss are Wilder's smoothing (alpha 1/period) of the close-to-close
    changes; RSI is 100 when there were no losses, 50 when the close never moved.
    """
    change = pl.col("close").diff().over("symbol")
    frame = bars.select(
        gain=change.clip(lower_bound=0.0).ewm_mean(alpha=1.0 / period, adjust=False).over("symbol"),
        loss=(-change)
        .clip(lower_bound=0.0)
        .ewm_mean(alpha=1.0 / period, adjust=False)
        .over("symbol"),
        n=pl.int_range(pl.len()).over("symbol"),
    )
    gain = frame.get_column("gain").to_numpy()
    loss = frame.get_column("loss").to_numpy()
    n = frame.get_column("n").to_numpy()
    total = gain + loss
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(total > 0, 100.0 * gain / total, 50.0)
    value[n < period] = np.nan
    return value
