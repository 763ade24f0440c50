"""The SMA-cross kernel keeps one state per symbol, whatever the order of the rows.

The kernel scans rows in engine order and holds a symbol's running sums in locals for as long
as consecutive rows belong to it (the whole file for one symbol), saving them when another
symbol's row comes. Any interleaving, with runs of any length, must give each symbol exactly
the crosses it gives on that symbol's rows alone. Full panels (every symbol at every
timestamp) take a second kernel, which must give the row kernel's crosses exactly.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.strategies.sma_cross import (
    PANEL_MIN_SYMBOLS,
    RESUM_EVERY,
    _panel_crosses_nb,
    _row_crosses_nb,
    is_panel_nb,
    sma_cross_rows_nb,
)


@st.composite
def interleaved_closes(draw):
    n_sym = draw(st.integers(1, 4))
    runs = draw(st.lists(st.tuples(st.integers(0, n_sym - 1), st.integers(1, 40)), max_size=40))
    sym = np.array([s for s, length in runs for _ in range(length)], dtype=np.int32)
    seed = draw(st.integers(0, 2**31 - 1))
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, len(sym))))
    fast = draw(st.integers(1, 12))
    slow = draw(st.integers(1, 12))
    return sym, close, n_sym, fast, slow


@settings(max_examples=80, deadline=None)
@given(interleaved_closes())
def test_crosses_of_interleaved_rows_equal_each_symbol_alone(case) -> None:
    sym, close, n_sym, fast, slow = case
    rows, dirs = sma_cross_rows_nb(sym, close, n_sym, fast, slow)
    for s in range(n_sym):
        own = np.flatnonzero(sym == s)
        alone_rows, alone_dirs = sma_cross_rows_nb(
            np.zeros(len(own), dtype=np.int32), close[own], 1, fast, slow
        )
        mine = sym[rows] == s
        assert np.array_equal(rows[mine], own[alone_rows])
        assert np.array_equal(dirs[mine], alone_dirs)


def test_running_sums_are_recomputed_across_a_symbol_switch() -> None:
    # two symbols alternating in long runs, well past the periodic re-sum
    n = 3 * RESUM_EVERY
    sym = np.repeat(np.array([0, 1, 0, 1], dtype=np.int32), n // 4 + 7)
    close = 100.0 + np.sin(np.arange(len(sym)) / 9.0)
    rows, dirs = sma_cross_rows_nb(sym, close, 2, 5, 20)
    assert len(rows) > 20
    for s in (0, 1):
        own = np.flatnonzero(sym == s)
        alone_rows, alone_dirs = sma_cross_rows_nb(
            np.zeros(len(own), dtype=np.int32), close[own], 1, 5, 20
        )
        mine = sym[rows] == s
        assert np.array_equal(rows[mine], own[alone_rows])
        assert np.array_equal(dirs[mine], alone_dirs)


@st.composite
def panels(draw):
    n_sym = draw(st.integers(1, 12))
    # past the periodic re-sum in a few examples, short panels in most
    n_ts = draw(st.one_of(st.integers(1, 120), st.integers(RESUM_EVERY - 5, RESUM_EVERY + 60)))
    seed = draw(st.integers(0, 2**31 - 1))
    steps = np.random.default_rng(seed).normal(0, 0.01, (n_ts, n_sym))
    close = (100.0 * np.exp(np.cumsum(steps, axis=0))).ravel()
    sym = np.tile(np.arange(n_sym, dtype=np.int32), n_ts)
    return sym, close, n_sym, draw(st.integers(1, 60)), draw(st.integers(1, 60))


@settings(max_examples=60, deadline=None)
@given(panels())
def test_the_panel_kernel_gives_the_row_kernels_crosses(case) -> None:
    sym, close, n_sym, fast, slow = case
    assert is_panel_nb(sym, n_sym)
    rows, dirs = _row_crosses_nb(sym, close, n_sym, fast, slow)
    p_rows, p_dirs = _panel_crosses_nb(close, n_sym, fast, slow)
    assert np.array_equal(p_rows, rows)
    assert np.array_equal(p_dirs, dirs)


def test_only_a_full_panel_of_enough_symbols_takes_the_panel_kernel() -> None:
    n_sym = PANEL_MIN_SYMBOLS
    sym = np.tile(np.arange(n_sym, dtype=np.int32), 300)
    close = 100.0 + np.sin(np.arange(len(sym)) / 7.0) * np.repeat(np.arange(1, 301), n_sym)
    assert is_panel_nb(sym, n_sym)
    assert not is_panel_nb(sym[:-1], n_sym)  # a symbol missing at the last timestamp
    swapped = sym.copy()
    swapped[[8, 9]] = swapped[[9, 8]]
    assert not is_panel_nb(swapped, n_sym)  # rows out of symbol order at one timestamp
    rows, dirs = sma_cross_rows_nb(sym, close, n_sym, 5, 20)
    assert len(rows) > 0
    assert np.array_equal(rows, _row_crosses_nb(sym, close, n_sym, 5, 20)[0])
    assert np.array_equal(dirs, _row_crosses_nb(sym, close, n_sym, 5, 20)[1])
