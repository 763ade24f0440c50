"""Seed 001's strategy templates K1-K5, each within the micro-futures constitution.

Seed 001 names the templates (K1 VWAP mean reversion, K2 failed break, K3 sweep, K4
momentum, K5 noise filter, "a meta-strategy"), their interface (detect, plan entry, plan
management, plan exit) and the law they live under: $15 max risk, a 12-tick stop, 2 trades a
day, in-flight exits on thesis invalidation, time and volatility. It does not give their
rules; ours, on one-minute futures bars (sessions by New York date), are:

- **K1 VWAP mean reversion**: the close is ``band_ticks`` or more below the session VWAP
  (typical price weighted by volume, from the date's first bar) and the bar closes up: long,
  target the VWAP. Thesis: none beyond the stop (the distance is the thesis).
- **K2 failed break**: the bar trades above the high of the ``range_bars`` bars before it and
  closes back inside: short, target the range's middle. Thesis: a close back above that high.
- **K3 sweep**: the bar takes out the session's low so far by ``sweep_ticks`` or more (the
  stops resting there) and closes back above it with its close in the top half of its range:
  long, target ``reward_risk`` R (to the tick below). Thesis: a close below the sweep's low.
- **K4 momentum**: the close breaks the high of the ``range_bars`` bars before it on a bar
  whose range is ``impulse_mult`` times their average range, closing in its top third: long,
  target ``reward_risk`` R. Thesis: a close back below the broken high.
- **K5 noise filter**: the meta-strategy: template ``template`` (1-4), its entries kept only
  where Kaufman's efficiency ratio of the last ``er_bars`` closes (net move over the path
  walked) is at least ``min_efficiency``: no entry when the tape is noise.

Every template mirrors its rule for shorts (K2's failed break down is a long, and so on).
Plan entry: a market order at the signal bar's close with a stop at the structure (the bar's
extreme one tick beyond, K1 at ``stop_ticks``) but never more than ``stop_ticks`` ticks
(``tick``: 0.25, MES) from the close, so the constitution's 12-tick and $15 checks pass at
one contract (12 x 0.25 x $5 = $15), and one contract (``qty``; the profile's cap holds it
there). Plan management and exit, judged at each close while the modelled trade is open, in
this order: the thesis (``thesis_invalidation``), a volatility shock: a bar's range at least
``vol_exit_mult`` times the average of the ``vol_lookback`` bars before it (``volatility``),
and time: ``max_hold_bars`` bars held (``time_stop``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from backstop.domain.enums import OrderRole
from backstop.strategies.base import Param, Strategy, register
from backstop.strategies.book import LONG, Lot, Rows, Trade, ny_clock, symbol_runs

K1, K2, K3, K4 = 1, 2, 3, 4


def _lines(bars: pl.DataFrame, p: dict[str, Any]) -> dict[str, np.ndarray]:
    """The per-bar inputs of every template (polars, per symbol and New York date)."""
    _, day = ny_clock(bars)
    n = int(p["range_bars"])
    frame = bars.with_columns(day=pl.Series(day)).with_columns(
        vwap=((pl.col("high") + pl.col("low") + pl.col("close")) / 3 * pl.col("volume"))
        .cum_sum()
        .over("symbol", "day")
        / pl.col("volume").cum_sum().over("symbol", "day"),
        session_low=pl.col("low").cum_min().shift(1).over("symbol", "day"),
        session_high=pl.col("high").cum_max().shift(1).over("symbol", "day"),
        range_high=pl.col("high").shift(1).rolling_max(n).over("symbol"),
        range_low=pl.col("low").shift(1).rolling_min(n).over("symbol"),
        span=pl.col("high") - pl.col("low"),
    )
    frame = frame.with_columns(
        avg_span=pl.col("span").shift(1).rolling_mean(n).over("symbol"),
        vol_span=pl.col("span").shift(1).rolling_mean(int(p["vol_lookback"])).over("symbol"),
        efficiency=(pl.col("close") - pl.col("close").shift(int(p["er_bars"]))).abs().over("symbol")
        / pl.col("close").diff().abs().rolling_sum(int(p["er_bars"])).over("symbol"),
    )
    names = ("open", "high", "low", "close", "ts", "vwap", "session_low", "session_high")
    names += ("range_high", "range_low", "span", "avg_span", "vol_span", "efficiency")
    return {c: frame.get_column(c).fill_null(np.nan).to_numpy() for c in names}


def _setup(k: int, x: dict[str, np.ndarray], i: int, p: dict[str, Any]) -> tuple | None:
    """(side, structural stop, target or NaN, thesis level or NaN) of template ``k`` at bar
    ``i``; None where it does not fire."""
    o, h, lo, c = x["open"][i], x["high"][i], x["low"][i], x["close"][i]
    tick = p["tick"]
    if k == K1:
        gap = (c - x["vwap"][i]) / tick
        if gap <= -p["band_ticks"] and c > o:
            return LONG, np.nan, x["vwap"][i], np.nan
        if gap >= p["band_ticks"] and c < o:
            return -LONG, np.nan, x["vwap"][i], np.nan
        return None
    if k == K2:
        top, bottom = x["range_high"][i], x["range_low"][i]
        middle = (top + bottom) / 2
        if h > top and bottom < c < top:
            return -LONG, h + tick, middle, top
        if lo < bottom and bottom < c < top:
            return LONG, lo - tick, middle, bottom
        return None
    span = x["span"][i]
    if k == K3:
        low, high = x["session_low"][i], x["session_high"][i]
        sweep = p["sweep_ticks"] * tick
        if lo <= low - sweep and c > low and c >= lo + span / 2:
            return LONG, lo - tick, np.nan, lo
        if h >= high + sweep and c < high and c <= h - span / 2:
            return -LONG, h + tick, np.nan, h
        return None
    impulse = span >= p["impulse_mult"] * x["avg_span"][i] and span > 0
    top, bottom = x["range_high"][i], x["range_low"][i]
    if impulse and c > top and c >= h - span / 3:
        return LONG, lo - tick, np.nan, top
    if impulse and c < bottom and c <= lo + span / 3:
        return -LONG, h + tick, np.nan, bottom
    return None


def template_intents(bars: pl.DataFrame, template: int, p: dict[str, Any]) -> pl.DataFrame:
    """Entries and in-flight exits of template ``template`` (with K5's filter when asked)."""
    x = _lines(bars, p)
    rows = Rows(bars)
    _, day = ny_clock(bars)
    tick = p["tick"]
    for run in symbol_runs(bars):
        trade: Trade | None = None
        held, thesis = 0, np.nan
        for i in run:
            if trade is not None:
                trade.step(i, x["ts"][i], day[i], x["open"][i], x["high"][i], x["low"][i])
            if trade is not None and trade.open:
                held += 1
                reason = _exit(trade, thesis, x, i, held, p)
                if reason is not None:
                    rows.exit(i, trade.side, reason)
                    trade.close()
                continue
            if trade is not None and trade.live:
                continue
            setup = _setup(template, x, i, p)
            if setup is None or (p["filter"] and not x["efficiency"][i] >= p["min_efficiency"]):
                continue
            side, structure, goal, level = setup
            close = x["close"][i]
            ticks = p["stop_ticks"]
            if structure == structure:
                ticks = min(max(math.ceil((close - structure) * side / tick - 1e-9), 1), ticks)
            stop = close - side * ticks * tick
            target = close + side * math.floor(p["reward_risk"] * ticks + 1e-9) * tick
            if goal == goal and (goal - close) * side >= tick:
                target = close + side * math.floor((goal - close) * side / tick + 1e-9) * tick
            rows.entry(i, side, otype=0, qty=float(p["qty"]), stop_px=stop, target_px=target)
            trade = Trade(side, stop, target, [Lot(np.nan)])
            held, thesis = 0, level
    return rows.frame()


def _exit(
    trade: Trade, thesis: float, x: dict[str, np.ndarray], i: int, held: int, p: dict
) -> OrderRole | None:
    """The in-flight exit at bar ``i``'s close: thesis, volatility, then time; None: hold."""
    if thesis == thesis and (x["close"][i] - thesis) * trade.side < 0:
        return OrderRole.THESIS_INVALIDATION
    if p["vol_exit_mult"] > 0 and x["span"][i] >= p["vol_exit_mult"] * x["vol_span"][i]:
        return OrderRole.VOLATILITY_EXIT
    if held >= p["max_hold_bars"]:
        return OrderRole.TIME_STOP
    return None


COMMON = (
    Param("tick", float, 0.25, minimum=1e-9, help="price tick (MES 0.25)"),
    Param("stop_ticks", int, 12, minimum=1, help="widest stop in ticks (the constitution)"),
    Param("reward_risk", float, 1.5, minimum=0.1, help="target in R where none is given"),
    Param("range_bars", int, 20, minimum=2, help="bars in the prior range and average range"),
    Param("max_hold_bars", int, 30, minimum=1, help="time exit after this many bars held"),
    Param("vol_exit_mult", float, 3.0, minimum=0.0, help="volatility exit at this x range; 0 off"),
    Param("vol_lookback", int, 14, minimum=1, help="bars in the volatility exit's average"),
    Param("qty", float, 1, minimum=1, help="contracts per entry (the constitution: 1)"),
)
K1_PARAMS = (Param("band_ticks", float, 8, minimum=0.0, help="ticks from VWAP to fade"),)
K3_PARAMS = (Param("sweep_ticks", float, 2, minimum=0.0, help="ticks beyond the session low"),)
K4_PARAMS = (Param("impulse_mult", float, 2.0, minimum=0.0, help="bar range x average range"),)
K5_PARAMS = (
    Param("template", int, K4, minimum=1, maximum=4, help="template to filter (1-4)"),
    Param("er_bars", int, 10, minimum=1, help="closes in the efficiency ratio"),
    Param("min_efficiency", float, 0.3, minimum=0.0, maximum=1.0, help="keep entries above"),
)
_DEFAULTS = {"band_ticks": 8, "sweep_ticks": 2, "impulse_mult": 2.0, "er_bars": 10}


def _runner(template: int | None) -> Any:
    """The strategy function of one template (None: K5, whose template is a parameter)."""

    def run(bars: pl.DataFrame, **params: Any) -> pl.DataFrame:
        p = _DEFAULTS | params | {"filter": template is None}
        p.setdefault("min_efficiency", 0.0)
        return template_intents(bars, int(p.get("template", template or K4)), p)

    return run


def _bars_needed(params: dict[str, Any]) -> tuple[str, int]:
    """The prior range needs ``range_bars`` bars before the signal bar."""
    return "range_bars", int(params["range_bars"]) + 1


for _name, _k, _extra in (
    ("k1_vwap_reversion", K1, K1_PARAMS),
    ("k2_failed_break", K2, ()),
    ("k3_sweep", K3, K3_PARAMS),
    ("k4_momentum", K4, K4_PARAMS),
    ("k5_noise_filter", None, K1_PARAMS + K3_PARAMS + K4_PARAMS + K5_PARAMS),
):
    register(
        Strategy(
            name=_name,
            fn=_runner(_k),
            params=COMMON + _extra,
            doc=__doc__ or "",
            bars_needed=_bars_needed,
        )
    )
