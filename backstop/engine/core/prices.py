"""Price arithmetic the decisions need: a level rounded to the symbol's tick.

Decisions round absolute levels (stops, targets, limits, stop moves) when they are decided;
the simulator's fill rules round levels priced from a fill the same way.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def round_to_tick_nb(price: float, tick: float) -> float:
    """Round a price to the nearest tick; a tick of 0 means unknown (left unrounded)."""
    if tick <= 0.0 or np.isnan(price):
        return price
    return np.round(np.round(price / tick) * tick, 10)
