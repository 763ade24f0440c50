"""The book's trigger band, the backtest loop's pre-check: a bar of a symbol goes to the
matcher when its low reaches ``band[s, 0]`` or its high reaches ``band[s, 1]``. For any set of
working orders the band must say yes exactly when some order could fill, expire or ratchet on
that bar (ignoring when the order goes live, which only makes it say yes more often: the
matcher then does nothing, as when the event driver runs it on every bar)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from backstop.brokers.sim.book import new_book
from backstop.brokers.sim.matcher import refresh_band_nb
from backstop.engine.core.codes import (
    ACCEPTED,
    CANCELED,
    DAY,
    EXPIRED,
    FILLED,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    STOP,
    STOP_LIMIT,
    TRAILING_STOP,
)

MAX_WORKING = 6
TERMINAL = (FILLED, CANCELED, EXPIRED)


@njit
def _refresh(book, s: int) -> None:
    refresh_band_nb(book, s)


def may_change(order: dict, low: float, high: float) -> bool:
    """The rule, order by order: what the matcher could do to this order on this bar."""
    if order["status"] in TERMINAL:
        return False
    if order["otype"] in (MARKET, TRAILING_STOP) or order["tif"] != GTC:
        return True
    if order["otype"] == LIMIT:
        return low <= order["limit_px"] if order["side"] > 0 else high >= order["limit_px"]
    return high >= order["stop_px"] if order["side"] > 0 else low <= order["stop_px"]


prices = st.floats(90.0, 110.0).map(lambda p: round(p, 2))
orders = st.fixed_dictionaries(
    {
        "otype": st.sampled_from([MARKET, LIMIT, STOP, STOP_LIMIT, TRAILING_STOP]),
        "tif": st.sampled_from([GTC, GTC, GTC, DAY, IOC]),
        "side": st.sampled_from([1, -1]),
        "status": st.sampled_from([ACCEPTED, ACCEPTED, PARTIALLY_FILLED, *TERMINAL]),
        "limit_px": prices,
        "stop_px": prices,
    }
)
bars = st.tuples(prices, st.floats(0.0, 10.0)).map(lambda b: (b[0], round(b[0] + b[1], 2)))


def band_of(working: list[dict]):
    book = new_book(2, MAX_WORKING, 16, 16)
    for k, order in enumerate(working):
        for field, value in order.items():
            book.orders[k][field] = value
        book.orders[k]["sym"] = 1
        book.work[1, k] = k
    book.nwork[1] = len(working)
    _refresh(book, 1)
    return book.band


@settings(max_examples=300, deadline=None)
@given(st.lists(orders, max_size=MAX_WORKING), st.lists(bars, min_size=1, max_size=8))
def test_band_says_yes_exactly_when_an_order_could_change(working, bar_list) -> None:
    band = band_of(working)
    assert band[0, 0] == -math.inf and band[0, 1] == math.inf  # the other symbol: untouched
    for low, high in bar_list:
        touched = low <= band[1, 0] or high >= band[1, 1]
        assert touched == any(may_change(o, low, high) for o in working), (low, high, band[1])


def test_no_working_order_no_bar_reaches_the_band() -> None:
    band = band_of([])
    assert band[1, 0] == -math.inf and band[1, 1] == math.inf


def test_a_bracket_rests_between_its_legs() -> None:
    stop = {"otype": STOP, "tif": GTC, "side": -1, "status": ACCEPTED, "limit_px": np.nan,
            "stop_px": 95.0}  # fmt: skip
    target = {"otype": LIMIT, "tif": GTC, "side": -1, "status": ACCEPTED, "limit_px": 104.0,
              "stop_px": np.nan}  # fmt: skip
    band = band_of([stop, target])
    assert (band[1, 0], band[1, 1]) == (95.0, 104.0)
    # once the stop has filled, the band is not narrowed until the matcher refreshes it, and
    # a refresh then leaves only the target's side
    band = band_of([{**stop, "status": FILLED}, target])
    assert (band[1, 0], band[1, 1]) == (-math.inf, 104.0)


def test_a_market_order_opens_the_band_for_every_bar() -> None:
    market = {"otype": MARKET, "tif": GTC, "side": 1, "status": ACCEPTED, "limit_px": np.nan,
              "stop_px": np.nan}  # fmt: skip
    target = {"otype": LIMIT, "tif": GTC, "side": -1, "status": ACCEPTED, "limit_px": 104.0,
              "stop_px": np.nan}  # fmt: skip
    band = band_of([market, target])
    assert band[1, 0] == math.inf and band[1, 1] == -math.inf
