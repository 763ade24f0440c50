"""The simulated exchange's book: every order, every fill, working orders per symbol, position
truth, as one state struct the matcher's kernels take (``backstop.engine.core.state`` has the
rules for state structs). Only the simulator and the fused backtest loop touch it.
"""

from __future__ import annotations

import numpy as np

from backstop.engine.core import recycle
from backstop.engine.core.ahead import kernel
from backstop.engine.core.records import (
    FILL_DTYPE,
    N_FILLS,
    N_ORDERS,
    ORDER_DTYPE,
    Decisions,
    Portfolio,
    grow_trades,
    grow_verdicts,
    grown,
)
from backstop.engine.core.state import (
    StateStruct,
    StateType,
    borrow_nb,
    define_state_proxy,
    state_type,
)

BOOK_FIELDS = (
    "orders",
    "fills",
    "work",  # int64[n_sym, max_working]: ids of working orders, in id order
    "nwork",  # int64[n_sym]
    "xpos",  # float64[n_sym]: position as the exchange knows it
    "used_vol",  # float64[n_sym]: volume consumed in the current bar
    "ctr",  # int64[8]
    # float64[n_sym, 2]: the symbol's trigger band (low, high). A bar can change the
    # symbol's working orders only if its low <= band[s, 0] or its high >= band[s, 1]
    # (matcher.refresh_band_nb); no working order: (-inf, +inf)
    "band",
)


@state_type
class BookType(StateType):
    pass


class Book(StateStruct):
    """The exchange side: every order, every fill, working orders per symbol, position truth
    (fields ``BOOK_FIELDS``; a StructRef, see ``backstop.engine.core.state``)."""


define_state_proxy(Book, BookType, BOOK_FIELDS)


@kernel
def _make_book(orders, fills, work, nwork, xpos, used_vol, ctr, band):
    return Book(orders, fills, work, nwork, xpos, used_vol, ctr, band)


@kernel
def _set_book_records(b, orders, fills) -> None:
    b.orders = borrow_nb(orders)
    b.fills = borrow_nb(fills)


def new_book(n_sym: int, max_working: int, order_cap: int, fill_cap: int) -> Book:
    """Allocate an empty exchange book."""
    arrays = (
        recycle.zeros(max(order_cap, 16), ORDER_DTYPE),
        recycle.zeros(max(fill_cap, 16), FILL_DTYPE),
        np.full((n_sym, max_working), -1, dtype=np.int64),
        np.zeros(n_sym, dtype=np.int64),
        np.zeros(n_sym, dtype=np.float64),
        np.zeros(n_sym, dtype=np.float64),
        np.zeros(8, dtype=np.int64),
        np.tile(np.array([-np.inf, np.inf]), (n_sym, 1)),
    )
    return Book.build(_make_book, arrays)


def grow_book(book: Book, orders: int, fills: int) -> None:
    """Room for that many more orders and fills, in place (at least doubling a buffer that
    must grow, so growth stays amortised)."""
    new_o = grown(book.orders, int(book.ctr[N_ORDERS]) + orders)
    new_f = grown(book.fills, int(book.ctr[N_FILLS]) + fills)
    if new_o is not None or new_f is not None:
        orders_now = book.orders if new_o is None else new_o
        fills_now = book.fills if new_f is None else new_f
        _set_book_records(book, orders_now, fills_now)
        book.replace_held(orders=orders_now, fills=fills_now)


def ensure_room(
    book: Book, pf: Portfolio, dec: Decisions, orders: int, fills: int, trades: int, verdicts: int
) -> None:
    """Room for that many more records of each kind, in place."""
    grow_book(book, orders, fills)
    grow_trades(pf, trades)
    grow_verdicts(dec, verdicts)
