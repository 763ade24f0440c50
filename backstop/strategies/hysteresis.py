"""RSI hysteresis (seed 003's Daily Trend Hysteresis and Hourly Swing).

Seed 003 names the two strategies and how they trade (long only, market orders, 10% of
equity per position, at most 5 positions, no entry where a position is held, no exit where
none is, no bracket: "they have exit logic") but not their signal; their team documents it
as RSI hysteresis, which is what we build: go long when the RSI of the close rises above
``upper`` while flat, go flat when it falls below ``lower``; between the bands nothing
changes (the dead zone that stops the flip-flopping around 50). RSI is Wilder's (smoothing
1/``rsi_period``), computed per symbol and silent until ``rsi_period`` changes are seen.

``daily_trend_hysteresis`` (RSI 28, 55/45) runs on daily bars: its signal is formed at the
daily close (the seed's 16:05 ET run) and its market order fills at the next bar's open (the
next 09:30 ET open). ``hourly_swing`` (RSI 28, 60/40) runs on hourly bars. Sizing is the
profile's: ``--profile equity-runner`` is seed 003's 10% of equity and 5 positions
(``qty=0``); ``qty`` > 0 asks for that many units instead. Entries carry no stop or target
(the seed's option C), so profiles that require protection refuse them, with that reason.
They hold positions for days: their entries are swing trades (``trade_type`` 1), which a
profile's end-of-day close (``exits.eod_minutes_before_close``, seed 002's rule for day
trades) leaves alone.

Like every seed strategy here it keeps a model of its position (``backstop.strategies.book``):
one entry while flat, one exit while long, so the pipeline's duplicate and no-exposure
refusals stay for what really went wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backstop.domain.enums import OrderRole, TradeType
from backstop.errors import ConfigError, check
from backstop.strategies.base import Param, Strategy, register
from backstop.strategies.book import LONG, Lot, Rows, Trade, ny_clock, rsi, symbol_runs


def rsi_hysteresis_intents(
    bars: pl.DataFrame, rsi_period: int, upper: float, lower: float, qty: float
) -> pl.DataFrame:
    """Long entries where RSI rises above ``upper`` while flat, exits where it falls below
    ``lower`` while long (signal exits, reason ``signal``)."""
    value = rsi(bars, int(rsi_period))
    o = bars.get_column("open").to_numpy()
    h = bars.get_column("high").to_numpy()
    lo = bars.get_column("low").to_numpy()
    ts = bars.get_column("ts").to_numpy()
    _, day = ny_clock(bars)
    rows = Rows(bars)
    fields: dict[str, Any] = {"qty": float(qty)} if qty > 0 else {}
    fields["trade_type"] = int(TradeType.SWING)
    for run in symbol_runs(bars):
        trade: Trade | None = None
        for i in run:
            if trade is not None:
                trade.step(i, ts[i], day[i], o[i], h[i], lo[i])
            if np.isnan(value[i]):
                continue
            if trade is not None and trade.open:
                if value[i] < lower:
                    rows.exit(i, LONG, OrderRole.SIGNAL_EXIT)
                    trade.close()
            elif (trade is None or not trade.live) and value[i] > upper:
                rows.entry(i, LONG, otype=0, **fields)
                trade = Trade(LONG, np.nan, np.nan, [Lot(np.nan)])
    return rows.frame()


def _check_bands(params: dict[str, Any]) -> None:
    """The exit band must lie below the entry band, or there is no dead zone."""
    check(
        params["lower"] < params["upper"],
        ConfigError(
            "lower",
            f"must be below upper ({params['lower']} >= {params['upper']}): the bands' gap is "
            "the dead zone that stops flip-flopping",
        ),
    )


def _bars_needed(params: dict[str, Any]) -> tuple[str, int]:
    """The RSI speaks after ``rsi_period`` changes: ``rsi_period + 1`` bars."""
    return "rsi_period", int(params["rsi_period"]) + 1


def _params(upper: float, lower: float) -> tuple[Param, ...]:
    return (
        Param("rsi_period", int, 28, minimum=2, help="RSI length (bars)"),
        Param("upper", float, upper, minimum=0, maximum=100, help="go long above this RSI"),
        Param("lower", float, lower, minimum=0, maximum=100, help="go flat below this RSI"),
        Param("qty", float, 0, minimum=0, help="units per entry; 0: the profile sizes"),
    )


def daily_trend_hysteresis_intents(
    bars: pl.DataFrame, rsi_period: int = 28, upper: float = 55, lower: float = 45, qty: float = 0
) -> pl.DataFrame:
    """Daily Trend Hysteresis: RSI 28 with 55/45 bands on daily bars."""
    return rsi_hysteresis_intents(bars, rsi_period, upper, lower, qty)


def hourly_swing_intents(
    bars: pl.DataFrame, rsi_period: int = 28, upper: float = 60, lower: float = 40, qty: float = 0
) -> pl.DataFrame:
    """Hourly Swing: RSI 28 with 60/40 bands on hourly bars."""
    return rsi_hysteresis_intents(bars, rsi_period, upper, lower, qty)


DAILY_TREND = register(
    Strategy(
        name="daily_trend_hysteresis",
        fn=daily_trend_hysteresis_intents,
        params=_params(55, 45),
        doc=__doc__ or "",
        validate=_check_bands,
        bars_needed=_bars_needed,
    )
)
HOURLY_SWING = register(
    Strategy(
        name="hourly_swing",
        fn=hourly_swing_intents,
        params=_params(60, 40),
        doc=__doc__ or "",
        validate=_check_bands,
        bars_needed=_bars_needed,
    )
)
