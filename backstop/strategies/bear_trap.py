"""Bear Trap (seed 003): buy the reclaim of a -15% crash, and manage the trade actively.

Seed 003 says Bear Trap watches intraday for -15% crash signals and, unlike its siblings, has
active position management (its stop handled by the strategy, option B); its team documents
the entry as a stock down 15% or more that breaks its session low and reclaims it on volume.
Our reading, on intraday bars of the regular session (New York time):

- the day's change is the close against the last close of the previous New York date;
- entry (long, market): the day's change is ``-crash_pct`` or worse, the bar makes a new
  session low (its low below every earlier low of the date) and closes back above the
  previous session low (the reclaim), in the upper ``reclaim_frac`` of its range, on a
  volume at least ``vol_mult`` times the average of the ``vol_lookback`` bars before it;
- its stop leg is the reclaim bar's low (the session low: the trap is sprung if it breaks);
  its first target the middle of the session's range (from the session low to the session
  high so far), or ``reward_risk`` R when that middle is not above the close; its second
  target the session high so far, or as far again beyond the first when that high is not
  above it;
- staged exits (``scale_out=1``, the team's active management): 40% of the position at the
  first close at or past the first target, 30% (half of what is left) at the first close at
  or past the second (70% at once when one close passes both), and the last 30% trailed.
  These are exit rows with ``exit_fraction`` (0.4, 0.5, or 0.7 of what is open), sent as
  market exits at the next open; the entry then carries its stop leg only, since a target
  leg would close everything at once (a profile with ``entry.require_protection`` refuses
  such entries unless its ``entry.target_r`` adds a target). ``scale_out=0``: the entry's
  target leg is the first target and takes the whole position there;
- active management, judged at each close while the modelled trade is open: the stop trails
  ``trail_atr`` average true ranges (``atr_period`` bars, simple mean) under the highest close
  since the entry, moving only up (stop-update rows); the trade is closed (``time_stop``)
  after ``max_hold_minutes``, and (``eod_close``) by ``eod_minute`` New York time (955 =
  15:55): Bear Trap holds nothing overnight, and opens nothing at or after that minute.

Sizing is the profile's (``--profile equity-runner``: 10% of equity, 5 positions; ``qty=0``).
Each scale-out closes its share of the position then open, rounded half-down to the lot: 10
shares go 4 / 3 / 3, 118 go 47 / 35 / 36.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backstop.domain.enums import OrderRole
from backstop.strategies.base import Param, Strategy, register
from backstop.strategies.book import (
    LONG,
    Lot,
    Rows,
    Trade,
    bar_step_ns,
    ny_clock,
    symbol_runs,
)

MINUTE_NS = 60_000_000_000
# exit_fraction of the position open at each stage (40% / 30% / 30% of the entry)
FIRST_SHARE, SECOND_SHARE, BOTH_SHARES = 0.4, 0.5, 0.7


class _Bars:
    """The columns and per-bar lines the rules read."""

    def __init__(self, bars: pl.DataFrame, p: dict[str, Any]) -> None:
        self.open, self.high, self.low, self.close, self.volume = (
            bars.get_column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")
        )
        self.ts = bars.get_column("ts").to_numpy()
        self.minute, self.day = ny_clock(bars)
        prev_close = pl.col("close").shift(1).over("symbol")
        true_range = pl.max_horizontal(
            pl.col("high") - pl.col("low"),
            (pl.col("high") - prev_close).abs(),
            (pl.col("low") - prev_close).abs(),
        )
        lines = bars.select(
            atr=true_range.rolling_mean(int(p["atr_period"])).over("symbol").fill_null(np.nan),
            avg_volume=pl.col("volume")
            .shift(1)
            .rolling_mean(int(p["vol_lookback"]))
            .over("symbol")
            .fill_null(np.nan),
        )
        self.atr = lines.get_column("atr").to_numpy()
        self.avg_volume = lines.get_column("avg_volume").to_numpy()


def bear_trap_intents(bars: pl.DataFrame, **p: Any) -> pl.DataFrame:
    """Reclaim entries after a crash, their trailing stops and their time and EOD exits."""
    x = _Bars(bars, p)
    rows = Rows(bars)
    for run in symbol_runs(bars):
        _walk(run, x, rows, p)
    return rows.frame()


def _walk(run: np.ndarray, x: _Bars, rows: Rows, p: dict[str, Any]) -> None:
    """One symbol in time order: the session's low and high, the previous date's close."""
    step = bar_step_ns(x.ts[run])
    trade: Trade | None = None
    best = np.nan  # highest close since the entry
    targets = (np.nan, np.nan)
    stage = 0  # scale-outs done: 0, 1 (40% out) or 2 (70% out)
    prior_close = np.nan  # last close of the previous New York date
    day, low, high, last = -1, np.nan, np.nan, np.nan
    for i in run:
        if x.day[i] != day:
            prior_close, day, low, high = last, x.day[i], np.inf, -np.inf
        if trade is not None:
            trade.step(i, x.ts[i], x.day[i], x.open[i], x.high[i], x.low[i])
        ends = x.minute[i] + step // MINUTE_NS
        if trade is not None and trade.open:
            best = max(best, x.close[i]) if best == best else x.close[i]
            held = x.ts[i] + step - trade.filled_at
            if ends >= p["eod_minute"]:
                rows.exit(i, LONG, OrderRole.EOD_CLOSE)
                trade.close()
            elif held >= p["max_hold_minutes"] * MINUTE_NS:
                rows.exit(i, LONG, OrderRole.TIME_STOP)
                trade.close()
            else:
                if p["scale_out"]:
                    stage = _scale_out(rows, i, x.close[i], targets, stage)
                if x.atr[i] == x.atr[i]:
                    level = best - p["trail_atr"] * x.atr[i]
                    if level > trade.stop and level < x.close[i]:
                        rows.stop_update(i, level)
                        trade.stop = level
        elif (trade is None or not trade.live) and ends < p["eod_minute"]:
            setup = _setup(x, i, prior_close, low, high, p)
            if setup is not None:
                stop, first, second = setup
                fields = {"qty": float(p["qty"])} if p["qty"] > 0 else {}
                target = np.nan if p["scale_out"] else first
                if target == target:
                    fields["target_px"] = target
                rows.entry(i, LONG, otype=0, stop_px=stop, **fields)
                trade, best = Trade(LONG, stop, target, [Lot(np.nan)]), np.nan
                targets, stage = (first, second), 0
        low, high, last = min(low, x.low[i]), max(high, x.high[i]), x.close[i]


def _scale_out(rows: Rows, i: int, close: float, targets: tuple[float, float], stage: int) -> int:
    """The staged exit a close at or past a target asks for; return the stage reached."""
    first, second = targets
    if stage < 2 and close >= second:
        rows.exit(i, LONG, OrderRole.SIGNAL_EXIT, fraction=SECOND_SHARE if stage else BOTH_SHARES)
        return 2
    if stage == 0 and close >= first:
        rows.exit(i, LONG, OrderRole.SIGNAL_EXIT, fraction=FIRST_SHARE)
        return 1
    return stage


def _setup(
    x: _Bars, i: int, prior_close: float, low: float, high: float, p: dict[str, Any]
) -> tuple[float, float, float] | None:
    """(stop, first target, second target) when bar ``i`` springs the trap; None otherwise."""
    close, bar_low, bar_high = x.close[i], x.low[i], x.high[i]
    if not (prior_close > 0 and np.isfinite(low)):
        return None  # no previous date, or the first bar of the session: nothing to reclaim
    crashed = close / prior_close - 1.0 <= -p["crash_pct"]
    broke_and_reclaimed = bar_low < low < close
    span = bar_high - bar_low
    strong = span > 0 and (close - bar_low) / span >= 1.0 - p["reclaim_frac"]
    loud = x.volume[i] >= p["vol_mult"] * x.avg_volume[i]  # NaN average: False
    if not (crashed and broke_and_reclaimed and strong and loud):
        return None
    stop = float(bar_low)
    top = max(high, bar_high)
    middle = (bar_low + top) / 2.0
    first = middle if middle > close else close + p["reward_risk"] * (close - stop)
    second = top if top > first else first + (first - close)
    return stop, float(first), float(second)


BEAR_TRAP = register(
    Strategy(
        name="bear_trap",
        fn=bear_trap_intents,
        params=(
            Param("crash_pct", float, 0.15, minimum=0.0, maximum=1.0, help="day's drop (0.15)"),
            Param("reclaim_frac", float, 0.5, minimum=0.0, maximum=1.0, help="close in top"),
            Param("vol_lookback", int, 20, minimum=1, help="bars in the volume average"),
            Param("vol_mult", float, 2.0, minimum=0.0, help="volume at least this x average"),
            Param("reward_risk", float, 2.0, minimum=0.1, help="target in R if mid is below"),
            Param("atr_period", int, 14, minimum=1, help="bars in the average true range"),
            Param("trail_atr", float, 2.0, minimum=0.0, help="trail this many ATR under best"),
            Param("max_hold_minutes", float, 30, minimum=1, help="time stop"),
            Param("eod_minute", int, 955, minimum=0, maximum=1439, help="ET minute: all out"),
            Param("qty", float, 0, minimum=0, help="units per entry; 0: the profile sizes"),
            Param("scale_out", int, 1, minimum=0, maximum=1, help="1: 40/30/30 staged exits"),
        ),
        doc=__doc__ or "",
    )
)
