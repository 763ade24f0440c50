"""SMA crosses on prices that sit on a decimal grid are decided exactly.

The reference is plain Python over exact rationals (``fractions.Fraction`` of the prices in
cents): a cross up at t is fast[t] > slow[t] after fast[t-1] <= slow[t-1], a cross down
mirrors it, and an exact tie is no cross. Float running sums decide ties either way; the
kernel, summing integer ticks, must equal the reference on every input.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.strategies.sma_cross import (
    PANEL_MIN_SYMBOLS,
    RESUM_EVERY,
    _row_crosses_nb,
    sma_cross_intents,
    sma_cross_rows_nb,
)
from backstop.strategies.ticks import grid_ticks


def reference_crosses(cents: list[int], fast: int, slow: int) -> list[tuple[int, int]]:
    """(index, direction) of every cross of one symbol's closes, in exact arithmetic."""
    out = []
    prev = None
    for i in range(len(cents)):
        if i + 1 < max(fast, slow):
            continue
        f = Fraction(sum(cents[i - fast + 1 : i + 1]), fast)
        s = Fraction(sum(cents[i - slow + 1 : i + 1]), slow)
        if prev is not None:
            pf, ps = prev
            if f > s and pf <= ps:
                out.append((i, 1))
            elif f < s and pf >= ps:
                out.append((i, -1))
        prev = (f, s)
    return out


def _walk(seed: int, n: int, step: int = 3) -> list[int]:
    rng = np.random.default_rng(seed)
    return (10_000 + np.cumsum(rng.integers(-step, step + 1, n))).tolist()


def _kernel_crosses(sym: np.ndarray, close: np.ndarray, n_sym: int, fast: int, slow: int):
    ticks = grid_ticks(close, fast, slow)
    assert ticks is not None
    rows, dirs = sma_cross_rows_nb(sym, ticks, n_sym, fast, slow)
    return list(zip(rows.tolist(), dirs.tolist(), strict=True))


def test_float_sums_misjudge_ties_that_integer_ticks_get_right() -> None:
    """A small-step cent walk: its averages tie exactly many times."""
    cents = _walk(1, 300)
    close = np.array([c / 100 for c in cents])
    sym = np.zeros(len(cents), dtype=np.int32)
    exact = reference_crosses(cents, 5, 10)
    rows, dirs = _row_crosses_nb(sym, close, 1, 5, 10)  # the float path, for contrast
    assert list(zip(rows.tolist(), dirs.tolist(), strict=True)) != exact
    assert _kernel_crosses(sym, close, 1, 5, 10) == exact


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 2 * RESUM_EVERY + 50),
    fast=st.integers(1, 12),
    slow=st.integers(2, 30),
    step=st.integers(1, 4),
    decimals=st.sampled_from([0, 2, 4]),
)
def test_one_symbol_equals_the_exact_reference(seed, n, fast, slow, step, decimals) -> None:
    cents = _walk(seed, n, step)
    close = np.array([c / 10**decimals for c in cents])
    sym = np.zeros(n, dtype=np.int32)
    assert _kernel_crosses(sym, close, 1, fast, slow) == reference_crosses(cents, fast, slow)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sym=st.sampled_from([2, 3, PANEL_MIN_SYMBOLS, PANEL_MIN_SYMBOLS + 3]),
    n=st.integers(1, 300),
    fast=st.integers(1, 8),
    slow=st.integers(2, 20),
)
def test_interleaved_symbols_and_panels_equal_the_reference(seed, n_sym, n, fast, slow) -> None:
    """Rows in (ts, symbol) order: a full panel takes the panel kernel from 8 symbols on."""
    walks = [_walk(seed + k, n) for k in range(n_sym)]
    cents = np.array(walks).T.ravel()  # row t * n_sym + k is symbol k
    close = cents / 100
    sym = np.tile(np.arange(n_sym, dtype=np.int32), n)
    expected = sorted(
        (t * n_sym + k, d) for k in range(n_sym) for t, d in reference_crosses(walks[k], fast, slow)
    )
    assert _kernel_crosses(sym, close, n_sym, fast, slow) == expected


def test_strategy_intents_use_the_exact_path_and_keep_float_paths_off_grid() -> None:
    cents = _walk(7, 400)
    ts = np.arange(len(cents), dtype=np.int64) * 60_000_000_000
    bars = pl.DataFrame({"ts": ts, "symbol": "X", "close": [c / 100 for c in cents]})
    got = sma_cross_intents(bars, fast=5, slow=10)
    expected = reference_crosses(cents, 5, 10)
    assert list(zip(got["bar"].to_list(), got["side"].to_list(), strict=True)) == expected
    # off any decimal grid (or past the exactness bound) the float path is kept
    assert grid_ticks(np.array([100.000098, 99.95192761]), 10, 50) is None
    assert grid_ticks(np.array([1e9]), 10_000, 10_000) is None
    quarter = grid_ticks(np.array([4500.25, 4500.5, 4501.0]), 10, 50)
    assert quarter is not None and quarter.tolist() == [450025, 450050, 450100]
