"""The portfolio's list of symbols holding a position, which ``equity_nb`` walks instead of
every symbol: after any sequence of fills (opening, adding, reducing, closing, crossing zero)
it names exactly the symbols with a position, ascending, and equity is what a scan of every
symbol gives."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.engine.core.portfolio import apply_fill_nb, equity_nb
from backstop.engine.core.records import FILL_DTYPE, N_HELD, new_portfolio

N_SYM = 5
FUTURES = np.array([False, True, False, False, True])
MULT = np.array([1.0, 50.0, 1.0, 1.0, 5.0])


def scanned_equity(pf) -> float:
    """Cash plus every symbol's position, marked as the module doc says (the old full scan)."""
    total = float(pf.acct[0])
    for s in range(N_SYM):
        q = pf.pos[s]
        if q == 0.0:
            continue
        m = pf.avg[s] if math.isnan(pf.mark[s]) else pf.mark[s]
        if pf.is_future[s]:
            total += q * (m - pf.avg[s]) * pf.mult[s]
        else:
            total += q * m * pf.mult[s]
    return total


steps = st.lists(
    st.tuples(
        st.integers(0, N_SYM - 1),  # symbol
        st.sampled_from([1, -1]),  # side
        st.sampled_from([1.0, 2.0, 3.0, 5.0]),  # qty
        st.floats(10.0, 200.0),  # price
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps)
def test_held_symbols_and_equity_follow_every_fill(steps) -> None:
    pf = new_portfolio(N_SYM, 100_000.0, 64, MULT, FUTURES)
    fill = np.zeros(1, dtype=FILL_DTYPE)
    for s, side, qty, price in steps:
        fill["sym"], fill["side"], fill["qty"], fill["price"] = s, side, qty, price
        apply_fill_nb(pf, fill[0])
        pf.mark[s] = price * 1.01
        n = int(pf.ctr[N_HELD])
        assert pf.held[:n].tolist() == [k for k in range(N_SYM) if pf.pos[k] != 0.0]
        assert equity_nb(pf) == scanned_equity(pf)  # same additions in the same order
