"""Prices as exact integers when they sit on a decimal grid, so comparisons of sums are exact.

Moving-average crosses compare sums of closes. With prices on a grid (cents, quarter points)
two windows often have exactly equal averages (5 x sum10 == sum50 happened 5 times on a
million cent-priced bars), and float running sums decide such a tie either way depending on
summation order, re-sum period, library version and platform. Summed as integer ticks the
sums are exact, a tie is a tie, and the cross is decided the same way everywhere.

``grid_ticks`` finds the smallest power of ten (up to 10^6) that puts every price on an
integer grid, and returns the prices in those ticks when the averages the strategy forms stay
exact enough in float64 (``|ticks| * fast * slow < 2**50``: two averages of integer sums that
differ do so by more than a float64 rounding step, and equal ones round equally). Prices off
any such grid (synthetic GBM bars) keep the float path: ties there have probability zero.
"""

from __future__ import annotations

import numpy as np

from backstop.engine.core.ahead import kernel

MAX_DECIMALS = 6
# a price is on the grid when price * 10^d is this close to an integer (in ticks): float
# parsing of a decimal price leaves errors around 1e-16 relative, so ~1e-8 ticks at 1e8 ticks
ON_GRID_TOLERANCE = 1e-6
EXACT_LIMIT = float(2**50)


@kernel
def grid_scale_nb(price: np.ndarray, limit: float) -> float:
    """The smallest 10^d (d <= MAX_DECIMALS) putting every price on an integer grid with
    ``|price * 10^d| < limit``; 0.0 when there is none. Stops at the first price off it."""
    scale = 1.0
    for _ in range(MAX_DECIMALS + 1):
        ok = True
        for x in price:
            y = x * scale
            q = np.rint(y)
            if not (abs(y - q) <= ON_GRID_TOLERANCE and abs(q) < limit):
                ok = False
                break
        if ok:
            return scale
        scale *= 10.0
    return 0.0


def grid_ticks(price: np.ndarray, fast: int, slow: int) -> np.ndarray | None:
    """``price`` as int64 ticks of its decimal grid, or None when it has none (see module)."""
    if len(price) == 0:
        return None
    limit = EXACT_LIMIT / (max(int(fast), 1) * max(int(slow), 1))
    scale = grid_scale_nb(np.ascontiguousarray(price, dtype=np.float64), limit)
    if scale == 0.0:
        return None
    return np.rint(price * scale).astype(np.int64)
