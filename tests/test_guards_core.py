"""Decision verdicts of the compiled pipeline: exit guard, entry guard, sizer, journal.

Every signal produces exactly one verdict row, approved or not, with its reason codes, its
trade_cycle_id and its strategy_id; a refused signal sends no order. Entries at bar 0 fill at
bar 1's open (100 on the FLAT bars below), so a position of 100 is held from bar 1 on.
"""

from __future__ import annotations

import re

import polars as pl
import pytest
from kit import (
    bars,
    combine,
    entry,
    exit_,
    fill_rows,
    final_positions,
    order_by_role,
    run,
    ts_of,
)

from backstop.errors import BackstopError

FLAT = (100.0, 101.0, 99.0, 100.0)
FIVE = [FLAT] * 5
T = [ts_of(i) for i in range(5)]


def verdict(result, k: int) -> dict:
    """The k-th verdict row (in decision order)."""
    return result.verdicts_ns.row(k, named=True)


def refused(result, k: int, code: str) -> None:
    v = verdict(result, k)
    assert (v["approved"], v["reason_codes"], v["qty"], v["order_id"]) == (False, [code], 0.0, -1)


# ---- exit guard ----------------------------------------------------------------------------
def test_exit_while_flat_is_refused_and_sends_nothing() -> None:
    r = run(bars(FIVE), [exit_(1)])
    assert len(r.verdicts_ns) == 1
    refused(r, 0, "EXIT_NO_EXPOSURE")
    v = verdict(r, 0)
    assert (v["intent"], v["position"], v["ts"]) == ("EXIT", 0.0, T[1])
    assert r.orders_ns.is_empty()
    assert r.fills_ns.is_empty()


def test_exit_larger_than_the_position_is_clamped() -> None:
    r = run(bars(FIVE), [entry(0), exit_(2, qty=150)])
    v = verdict(r, 1)
    assert (v["approved"], v["reason_codes"], v["qty"], v["side"], v["position"]) == (
        True,
        ["EXIT_CLAMPED_REDUCE_ONLY"],
        100.0,
        "SELL",
        100.0,
    )
    x = order_by_role(r, "SIGNAL_EXIT")
    assert (x["order_id"], x["qty"], x["reduce_only"], x["side"]) == (
        v["order_id"],
        100.0,
        True,
        "SELL",
    )
    assert fill_rows(r)[-1] == (T[3], "SIGNAL_EXIT", "SELL", 100.0, 100.0)
    assert final_positions(r) == {}


def test_exit_on_the_side_that_adds_to_the_position_is_refused() -> None:
    r = run(bars(FIVE), [entry(0), exit_(2, side=1)])
    refused(r, 1, "EXIT_SIDE_MISMATCH")
    assert r.orders_ns["role"].to_list() == ["ENTRY"]
    assert final_positions(r) == {"T": 100.0}


def test_short_exit_is_a_buy_derived_from_the_position() -> None:
    r = run(bars(FIVE), [entry(0, side=-1), exit_(2, side=1)])
    v = verdict(r, 1)
    assert (v["approved"], v["side"], v["qty"], v["position"]) == (True, "BUY", 100.0, -100.0)
    assert final_positions(r) == {}


def test_second_exit_while_the_first_is_working_is_already_closed() -> None:
    r = run(bars(FIVE), [entry(0), exit_(2), exit_(2)])
    assert verdict(r, 1)["approved"] is True
    refused(r, 2, "ALREADY_CLOSED")
    assert r.orders_ns.filter(pl.col("role") == "SIGNAL_EXIT").height == 1
    assert final_positions(r) == {}


def test_second_exit_gets_only_what_the_first_does_not_close() -> None:
    r = run(bars(FIVE), [entry(0), exit_(2, qty=60), exit_(2)])
    assert [verdict(r, k)["qty"] for k in (1, 2)] == [60.0, 40.0]
    assert [verdict(r, k)["reason_codes"] for k in (1, 2)] == [[], []]
    assert [f[3] for f in fill_rows(r)] == [100.0, 60.0, 40.0]
    assert final_positions(r) == {}


def test_partial_signal_exit_resizes_the_bracket_legs() -> None:
    b = bars([FLAT, FLAT, FLAT, FLAT, (99, 100, 94, 96)])
    r = run(b, [entry(0, stop_px=95.0, target_px=110.0), exit_(2, qty=40)])
    tp = order_by_role(r, "TAKE_PROFIT")
    sl = order_by_role(r, "STOP_LOSS")
    assert (sl["qty"], sl["filled_qty"], sl["reason_codes"], sl["status"]) == (
        60.0,
        60.0,
        ["LEG_RESIZED_TO_POSITION"],
        "FILLED",
    )
    assert (tp["qty"], tp["reason_codes"], tp["status"], tp["done_ts"]) == (
        60.0,
        ["LEG_RESIZED_TO_POSITION", "OCO_SIBLING_FILLED"],
        "CANCELED",
        T[4],
    )
    assert fill_rows(r)[1:] == [
        (T[3], "SIGNAL_EXIT", "SELL", 40.0, 100.0),
        (T[4], "STOP_LOSS", "SELL", 60.0, 95.0),
    ]
    assert final_positions(r) == {}


def test_signal_exit_at_the_open_cancels_both_legs() -> None:
    # bar 3 opens at 100 (the exit fills there) and then touches both the stop and the target:
    # neither leg may fill against the flat position.
    b = bars([FLAT, FLAT, FLAT, (100, 106, 94, 100), (100, 107, 93, 100)])
    r = run(b, [entry(0, stop_px=95.0, target_px=105.0), exit_(2)])
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.0),
        (T[3], "SIGNAL_EXIT", "SELL", 100.0, 100.0),
    ]
    for role in ("STOP_LOSS", "TAKE_PROFIT"):
        leg = order_by_role(r, role)
        assert (leg["status"], leg["reason_codes"], leg["done_ts"], leg["filled_qty"]) == (
            "CANCELED",
            ["LEG_CANCELED_POSITION_CLOSED"],
            T[3],
            0.0,
        )
    assert r.trades_ns["exit_reason"].to_list() == ["signal_exit"]
    assert final_positions(r) == {}


# ---- entry guard ---------------------------------------------------------------------------
def test_entry_while_long_is_a_duplicate_position() -> None:
    r = run(bars(FIVE), [entry(0), entry(2)])
    refused(r, 1, "DUPLICATE_POSITION")
    assert verdict(r, 1)["position"] == 100.0
    assert r.orders_ns["role"].to_list() == ["ENTRY"]


def test_entry_while_an_entry_is_working_is_a_duplicate_position() -> None:
    r = run(bars(FIVE), [entry(0, otype=1, limit_px=90.0), entry(2)])
    refused(r, 1, "DUPLICATE_POSITION")
    assert verdict(r, 1)["position"] == 0.0


def test_entry_against_the_position_is_conflicting() -> None:
    r = run(bars(FIVE), [entry(0), entry(2, side=-1)])
    refused(r, 1, "CONFLICTING_POSITION")
    assert final_positions(r) == {"T": 100.0}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stop_px": 101.0},  # long: stop above the price (close of the signal bar, 100)
        {"stop_px": 100.0},  # stop at the price is not protective either
        {"target_px": 99.0},  # long: target below the price
        {"side": -1, "stop_px": 99.0},  # short: stop below
        {"side": -1, "target_px": 101.0},  # short: target above
        {"stop_pct": -0.01},
        {"target_pct": -0.02},
        {"otype": 1, "limit_px": 95.0, "stop_px": 97.0},  # below the mark but above the limit
    ],
)
def test_protection_on_the_wrong_side_is_refused(kwargs) -> None:
    r = run(bars(FIVE), [entry(0, **kwargs)])
    refused(r, 0, "PROTECTION_WRONG_SIDE")
    assert r.orders_ns.is_empty()


def test_protection_on_the_right_side_is_approved() -> None:
    r = run(bars(FIVE), [entry(0, otype=1, limit_px=95.0, stop_px=94.0, target_px=99.0)])
    assert verdict(r, 0)["approved"] is True


@pytest.mark.parametrize(
    ("kwargs", "approved"),
    [
        ({}, False),
        ({"stop_pct": 0.01}, False),
        ({"target_px": 105.0}, False),
        ({"stop_pct": 0.01, "target_pct": 0.02}, True),
        ({"trail_pct": 0.05, "target_px": 105.0}, True),  # a trailing stop is a stop
    ],
)
def test_require_protection_refuses_entries_without_stop_and_target(kwargs, approved) -> None:
    r = run(bars(FIVE), [entry(0, **kwargs)], require_protection=True)
    if approved:
        assert verdict(r, 0)["approved"] is True
        assert verdict(r, 0)["reason_codes"] == []
    else:
        refused(r, 0, "MISSING_PROTECTION")
        assert r.orders_ns.is_empty()


# ---- sizer ---------------------------------------------------------------------------------
def _t_and_late_u():
    """T trades from bar 0; U's bars start at bar 2 (close 50, then opens 52 and 54)."""
    u_bars = bars([(50, 51, 49, 50), (52, 53, 51, 52), (54, 55, 53, 54)], symbol="U", start_ns=T[2])
    return combine(bars(FIVE), u_bars)


def test_pct_equity_sizes_from_the_signal_bar_close() -> None:
    # 10 % of 100 000 at U's close 50 = 200 shares, filled at U's next open 52.
    r = run(_t_and_late_u(), [entry(2, qty=None, symbol="U")], sizer="pct_equity", pct_equity=0.1)
    v = verdict(r, 0)
    assert (v["approved"], v["symbol"], v["qty"], v["price"], v["equity"]) == (
        True,
        "U",
        200.0,
        50.0,
        100_000.0,
    )
    assert r.fills_ns.select("symbol", "ts", "qty", "price").rows() == [("U", T[3], 200.0, 52.0)]


def test_pct_equity_sizes_from_equity_including_open_positions() -> None:
    # Long 100 T from 100; at bar 2 T closes at 120 -> equity 102 000; U at 50 -> 204 shares.
    b = combine(
        bars([FLAT, FLAT, (110, 121, 109, 120), (120, 121, 119, 120), FLAT]),
        bars([(50, 51, 49, 50), (52, 53, 51, 52), (54, 55, 53, 54)], symbol="U", start_ns=T[2]),
    )
    r = run(
        b, [entry(0, qty=100), entry(2, qty=None, symbol="U")], sizer="pct_equity", pct_equity=0.1
    )
    v = verdict(r, 1)
    assert (v["approved"], v["qty"], v["equity"]) == (True, 204.0, 102_000.0)


def test_pct_equity_signal_before_its_symbols_first_bar_is_sized_at_that_bar() -> None:
    # A U signal stamped at bar 0 waits for U's first bar (bar 2) and is sized from its close.
    r = run(
        _t_and_late_u(),
        [entry(0, qty=None, symbol="U")],
        bar_rows=False,
        sizer="pct_equity",
        pct_equity=0.10,
    )
    v = verdict(r, 0)
    assert (v["approved"], v["symbol"], v["qty"], v["price"]) == (True, "U", 200.0, 50.0)
    assert r.fills_ns.select("symbol", "ts", "qty", "price").rows() == [("U", T[3], 200.0, 52.0)]


def test_fixed_sizer_uses_the_configured_qty_when_the_signal_has_none() -> None:
    r = run(bars(FIVE), [entry(0, qty=None)], qty=37)
    assert verdict(r, 0)["qty"] == 37.0
    assert fill_rows(r) == [(T[1], "ENTRY", "BUY", 37.0, 100.0)]


def test_unknown_symbol_is_refused() -> None:
    r = run(bars(FIVE), [entry(0, qty=None, symbol="NOPE")], sizer="pct_equity")
    refused(r, 0, "UNKNOWN_SYMBOL")
    assert r.orders_ns.is_empty()


@pytest.mark.parametrize(
    ("kwargs", "config"),
    [
        ({"qty": None}, {"sizer": "pct_equity", "pct_equity": 0.0001}),  # 10 / 100 = 0.1 share
        ({"qty": 0.5}, {}),  # below one lot
        ({"qty": 0.0}, {}),
    ],
)
def test_quantity_rounding_to_zero_lots_is_refused(kwargs, config) -> None:
    r = run(bars(FIVE), [entry(0, **kwargs)], **config)
    refused(r, 0, "SIZING_ZERO_QTY")
    assert r.orders_ns.is_empty()


def test_signal_after_the_last_bar_is_refused() -> None:
    r = run(bars(FIVE), [entry(7)])
    refused(r, 0, "NO_BAR_AFTER_SIGNAL")
    assert verdict(r, 0)["ts"] == ts_of(7)
    assert r.orders_ns.is_empty()


@pytest.mark.parametrize("row", [entry(7), entry(0, symbol="NOPE")], ids=["after", "unknown"])
def test_refused_signal_verdict_names_its_symbol(row) -> None:
    r = run(bars(FIVE), [row])
    assert verdict(r, 0)["approved"] is False
    assert verdict(r, 0)["symbol"] == row["symbol"]


def test_signal_on_the_last_bar_is_approved_but_never_fills() -> None:
    r = run(bars(FIVE), [entry(4)])
    assert verdict(r, 0)["approved"] is True
    assert order_by_role(r, "ENTRY")["status"] == "ACCEPTED"
    assert r.fills_ns.is_empty()


# ---- working-order limit ------------------------------------------------------------------
def test_filled_entry_does_not_count_against_max_working() -> None:
    r = run(bars(FIVE), [entry(0, stop_px=95.0, target_px=105.0)], max_working=2)
    assert order_by_role(r, "STOP_LOSS")["status"] == "ACCEPTED"
    assert order_by_role(r, "TAKE_PROFIT")["status"] == "ACCEPTED"


def test_order_rejected_for_too_many_working_orders_is_journaled_in_its_verdict() -> None:
    # two legs + one working partial exit fill max_working=3: the second exit is rejected
    rows = [entry(0, stop_px=95.0, target_px=105.0), exit_(2, qty=10), exit_(2, qty=10)]
    r = run(bars(FIVE), rows, max_working=3)
    assert r.orders_ns["status"].to_list()[-1] == "REJECTED"
    assert r.orders_ns["reason_codes"].to_list()[-1] == ["TOO_MANY_WORKING_ORDERS"]
    v = verdict(r, 2)
    assert (v["approved"], v["reason_codes"]) == (False, ["TOO_MANY_WORKING_ORDERS"])


# ---- malformed intents ---------------------------------------------------------------------
def _refused_or_raises(rows, **config) -> None:
    """A malformed intent must be refused by its verdict or raise a BackstopError."""
    try:
        r = run(bars(FIVE), rows, **config)
    except BackstopError:
        return
    v = r.verdicts_ns.filter(pl.col("intent") == "ENTRY").row(-1, named=True)
    assert v["approved"] is False, r.verdicts_ns


def test_negative_trail_pct_is_refused() -> None:
    _refused_or_raises([entry(0, trail_pct=-0.05)])


def test_limit_entry_without_a_limit_price_is_refused() -> None:
    _refused_or_raises([entry(0, otype=1, limit_px=None)])


@pytest.mark.parametrize("side", [0, 2])
def test_entry_side_other_than_plus_or_minus_one_is_refused(side) -> None:
    _refused_or_raises([entry(0, side=side)])


# ---- journal -------------------------------------------------------------------------------
def test_every_verdict_has_a_trade_cycle_id_and_a_strategy_id() -> None:
    rows = [
        entry(0, strategy_id="alpha"),
        exit_(1, strategy_id="beta", side=1),  # refused: side mismatch
        entry(1, strategy_id="beta"),  # refused: duplicate
        exit_(2, strategy_id="alpha"),
        exit_(3, strategy_id="beta"),  # refused: flat after bar 3's open
        entry(9, strategy_id="gamma"),  # refused: no bar after it
        entry(0, symbol="NOPE", strategy_id="gamma"),  # refused: unknown symbol
    ]
    r = run(bars(FIVE), rows)
    v = r.verdicts_ns
    assert v.height == len(rows)
    assert v["trade_cycle_id"].null_count() == 0
    assert v["strategy_id"].null_count() == 0
    assert all(re.fullmatch(rf"{r.run_id}-\d{{7}}", c) for c in v["trade_cycle_id"])
    assert v["trade_cycle_id"].n_unique() == len(rows)
    by_cycle = dict(zip(v["trade_cycle_id"], v["strategy_id"], strict=True))
    # cycle numbers follow the intent table in (ts, row) order
    expected = ["alpha", "gamma", "beta", "beta", "alpha", "beta", "gamma"]
    assert [by_cycle[f"{r.run_id}-{k:07d}"] for k in range(len(rows))] == expected
    assert sorted(v["approved"].to_list()) == [False] * 5 + [True] * 2
    # the orders and fills of a cycle carry its id and strategy
    e = order_by_role(r, "ENTRY")
    assert (e["trade_cycle_id"], e["strategy_id"]) == (f"{r.run_id}-0000000", "alpha")
    x = order_by_role(r, "SIGNAL_EXIT")
    assert (x["trade_cycle_id"], x["strategy_id"]) == (f"{r.run_id}-0000004", "alpha")
    assert r.fills_ns.select("trade_cycle_id", "strategy_id").rows() == [
        (f"{r.run_id}-0000000", "alpha"),
        (f"{r.run_id}-0000004", "alpha"),
    ]
    assert r.trades_ns.select("trade_cycle_id", "strategy_id").rows() == [
        (f"{r.run_id}-0000000", "alpha")
    ]


def test_exits_are_decided_before_entries_at_the_same_bar() -> None:
    # the exit at bar 2 sees the long; the entry at bar 2 still sees it too (the exit has not
    # filled yet), so a same-bar reversal is refused rather than doubling exposure.
    r = run(bars(FIVE), [entry(0), entry(2, side=-1), exit_(2)])
    assert r.verdicts_ns["intent"].to_list() == ["ENTRY", "EXIT", "ENTRY"]
    assert verdict(r, 1)["approved"] is True
    refused(r, 2, "CONFLICTING_POSITION")


def test_summary_counts_verdicts_by_reason() -> None:
    r = run(bars(FIVE), [exit_(0), entry(0), entry(1), entry(2, side=-1)])
    assert r.summary()["verdicts_by_reason"] == {
        "DUPLICATE_POSITION": 1,
        "CONFLICTING_POSITION": 1,
        "EXIT_NO_EXPOSURE": 1,
    }
    assert (r.summary()["signals"], r.summary()["approved"]) == (4, 1)


# ---- attaching intents to bars -------------------------------------------------------------
def test_intent_table_with_only_the_required_columns() -> None:
    table = pl.DataFrame(
        {"ts": [T[0], T[2]], "symbol": ["T", "T"], "side": [1, -1], "intent": [0, 1]}
    )
    r = run(bars(FIVE), table, bar_rows=False, qty=10)
    assert r.verdicts_ns.select("ts", "approved", "qty").rows() == [
        (T[0], True, 10.0),
        (T[2], True, 10.0),
    ]
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 10.0, 100.0),
        (T[3], "SIGNAL_EXIT", "SELL", 10.0, 100.0),
    ]


def test_intent_between_bars_is_decided_at_the_next_bar_close() -> None:
    b = bars([FLAT, FLAT, FLAT, (103, 104, 102, 103), FLAT])
    r = run(b, [entry(T[1] + 30_000_000_000)], bar_rows=False)
    assert verdict(r, 0)["ts"] == T[1] + 30_000_000_000
    assert fill_rows(r) == [(T[3], "ENTRY", "BUY", 100.0, 103.0)]


def test_one_row_without_a_bar_does_not_unhinge_the_others() -> None:
    # one intent stamped between bars sends the whole table down the as-of path
    rows = [entry(0), exit_(T[2] + 30_000_000_000)]
    r = run(bars(FIVE), rows, bar_rows=True)  # row 0 carries its bar row, row 1 has none
    assert r.verdicts_ns.select("approved", "reason_codes").rows() == [(True, []), (True, [])]
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.0),
        (T[4], "SIGNAL_EXIT", "SELL", 100.0, 100.0),
    ]
