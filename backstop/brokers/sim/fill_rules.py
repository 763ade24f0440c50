"""Fill rules: what price an order gets from one OHLC bar, as small scalar kernels.

Each rule is a named, documented assumption (DESIGN.md, "Fill rules"):

- market      -> the open of the first bar it is live on;
- limit       -> min(open, L) for buys / max(open, L) for sells, once touched;
- stop        -> max(open, S) for buys / min(open, S) for sells, once touched: a gap through
                 the level fills at the open (the worse price);
- stop-limit  -> triggers like a stop; fills at the trigger price when that is within the
                 limit, otherwise rests as a limit from the next bar (no same-bar fill after a
                 gap through the limit: we cannot know the path inside the bar);
- trailing    -> a stop whose level trails the best price seen through the previous bar.

Two phases per bar: ``*_at_open`` answers "does it fill at the open print?", ``*_intrabar``
answers "is its level touched later in the bar?". Prices are NaN when there is no fill.

These kernels are called from other kernels only, so they are compiled without a Python
entry point (``no_cpython_wrapper``): it saves compile time on every first run.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.prices import round_to_tick_nb  # noqa: F401  (used by the matcher)

NAN = np.nan


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def limit_at_open_nb(side: int, limit_px: float, open_: float) -> float:
    """A limit order fills at the open when the open is at or better than its limit."""
    if side > 0:
        return open_ if open_ <= limit_px else NAN
    return open_ if open_ >= limit_px else NAN


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def limit_intrabar_nb(side: int, limit_px: float, high: float, low: float) -> float:
    """A limit order touched inside the bar fills at its limit."""
    if side > 0:
        return limit_px if low <= limit_px else NAN
    return limit_px if high >= limit_px else NAN


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def stop_at_open_nb(side: int, stop_px: float, open_: float) -> float:
    """A stop gapped through at the open fills at the open (worse than its level)."""
    if side > 0:
        return open_ if open_ >= stop_px else NAN
    return open_ if open_ <= stop_px else NAN


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def stop_intrabar_nb(side: int, stop_px: float, high: float, low: float) -> float:
    """A stop touched inside the bar fills at its level."""
    if side > 0:
        return stop_px if high >= stop_px else NAN
    return stop_px if low <= stop_px else NAN


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def stop_touched_nb(side: int, stop_px: float, high: float, low: float) -> bool:
    """Whether a stop level lies inside the bar's range on its trigger side."""
    if side > 0:
        return high >= stop_px
    return low <= stop_px


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def limit_touched_nb(side: int, limit_px: float, high: float, low: float) -> bool:
    """Whether a limit level lies inside the bar's range on its fill side."""
    if side > 0:
        return low <= limit_px
    return high >= limit_px


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def stop_limit_nb(
    side: int, stop_px: float, limit_px: float, open_: float, high: float, low: float
) -> tuple[bool, float]:
    """Return (triggered, fill price or NaN) for a stop-limit order on this bar."""
    if side > 0:
        if high < stop_px:
            return False, NAN
        trigger = open_ if open_ >= stop_px else stop_px
        return True, trigger if trigger <= limit_px else NAN
    if low > stop_px:
        return False, NAN
    trigger = open_ if open_ <= stop_px else stop_px
    return True, trigger if trigger >= limit_px else NAN


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def trailing_level_nb(side: int, water: float, trail_amt: float, trail_pct: float) -> float:
    """The stop level of a trailing stop given the best price seen (its water mark).

    A sell trailing stop (protecting a long) sits ``trail`` below the highest price seen; a buy
    trailing stop sits ``trail`` above the lowest.
    """
    trail = trail_amt if trail_amt > 0 else water * trail_pct
    if side < 0:
        return water - trail
    return water + trail


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def trailing_water_nb(side: int, water: float, high: float, low: float) -> float:
    """Ratchet the water mark with a finished bar: highs for sell stops, lows for buy stops."""
    if side < 0:
        return high if high > water else water
    return low if low < water else water


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def slipped_nb(side: int, price: float, kind: int, value: float, tick: float) -> float:
    """Move a price against the taker by the slippage model (0 none, 1 ticks, 2 bps).

    A bps slippage on an instrument with a known tick lands on the tick grid, rounded
    against the taker (up for buys, down for sells): exchanges print no off-tick prices.
    """
    if kind == 1:
        return price + side * value * tick
    if kind == 2:
        moved = price * (1.0 + side * value * 1e-4)
        if tick > 0.0:
            steps = moved / tick
            steps = np.ceil(steps - 1e-9) if side > 0 else np.floor(steps + 1e-9)
            moved = np.round(steps * tick, 10)
        return moved
    return price


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def commission_nb(
    kind: int, rate: float, minimum: float, qty: float, price: float, mult: float
) -> float:
    """Commission of one fill: 0 zero, 1 per share with minimum, 2 per contract, 3 % notional."""
    if kind == 1:
        fee = rate * qty
        return fee if fee > minimum else minimum
    if kind == 2:
        return rate * qty
    if kind == 3:
        return rate * qty * price * mult
    return 0.0
