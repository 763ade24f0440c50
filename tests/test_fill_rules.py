"""Fill rules, one five-bar array each (DESIGN.md "Fill rules", CONVENTIONS.md "Fill assumptions").

Reading guide: an intent stamped with bar i's ts is decided at bar i's close, so a market entry
at bar 0 fills at bar 1's open, and its order cannot fill on bar 0 itself. Bar rows are
(open, high, low, close[, volume]). Prices are chosen so that every expected value is exact in
binary floating point; where a model multiplies by a fraction, the expected value is compared
to 1e-9.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from kit import (
    MINUTE_NS,
    bars,
    entry,
    exit_,
    fill_rows,
    final_positions,
    order_by_role,
    run,
    run_exchange,
    ts_of,
)

from backstop.domain.enums import OrderStatus, OrderType
from backstop.domain.instruments import Instrument, lookup

FLAT = (100.0, 101.0, 99.0, 100.0)
T = [ts_of(i) for i in range(5)]
EXACT = 1e-9


# ---- market --------------------------------------------------------------------------------
def test_market_entry_and_exit_fill_at_the_next_bar_open() -> None:
    b = bars(
        [
            FLAT,
            (102, 103, 101, 102),
            (104, 105, 103, 104),
            (106, 107, 105, 106),
            (108, 109, 107, 108),
        ]
    )
    r = run(b, [entry(1), exit_(3)])
    assert fill_rows(r) == [
        (T[2], "ENTRY", "BUY", 100.0, 104.0),
        (T[4], "SIGNAL_EXIT", "SELL", 100.0, 108.0),
    ]
    t = r.trades_ns.row(0, named=True)
    assert (t["entry_ts"], t["exit_ts"], t["pnl"], t["exit_reason"]) == (
        T[2],
        T[4],
        400.0,
        "signal_exit",
    )
    assert order_by_role(r, "ENTRY")["done_ts"] == T[2]


# ---- limit entries -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bar2", "price"),
    [
        ((99.0, 100.0, 97.5, 98.0), 98.0),  # touched inside the bar: fills at L
        ((99.0, 100.0, 98.0, 98.5), 98.0),  # low exactly at L counts as touched
        ((97.0, 98.0, 96.0, 97.0), 97.0),  # opens below L: fills at the (better) open
    ],
)
def test_limit_buy_fills_at_min_of_open_and_limit_once_touched(bar2, price) -> None:
    # bar 0 (the signal bar) trades through 98 but the order is not live yet;
    # bar 1 comes within 0.5 of L without touching it.
    b = bars([(100, 101, 95, 100), (100, 101, 98.5, 99), bar2, FLAT, FLAT])
    r = run(b, [entry(0, otype=1, limit_px=98.0)])
    assert fill_rows(r)[0] == (T[2], "ENTRY", "BUY", 100.0, price)
    assert len(r.fills_ns) == 1
    o = order_by_role(r, "ENTRY")
    assert (o["order_type"], o["status"], o["done_ts"]) == ("LIMIT", "FILLED", T[2])


@pytest.mark.parametrize(
    ("bar2", "price"),
    [
        ((101.0, 102.5, 100.0, 102.0), 102.0),  # touched inside the bar: fills at L
        ((103.0, 104.0, 102.5, 103.0), 103.0),  # opens above L: fills at the (better) open
    ],
)
def test_limit_sell_fills_at_max_of_open_and_limit_once_touched(bar2, price) -> None:
    b = bars([(100, 105, 99, 100), (100, 101.5, 99, 101), bar2, FLAT, FLAT])
    r = run(b, [entry(0, side=-1, otype=1, limit_px=102.0)])
    assert fill_rows(r) == [(T[2], "ENTRY", "SELL", 100.0, price)]


# ---- stops (protective legs: the order builder makes stops only as legs) -------------------
@pytest.mark.parametrize(
    ("bar3", "price"),
    [
        ((102.0, 104.0, 101.0, 103.0), 103.0),  # touched inside the bar: fills at S
        ((105.0, 106.0, 104.0, 105.0), 105.0),  # gaps through S: fills at the (worse) open
    ],
)
def test_stop_buy_fills_at_max_of_open_and_stop(bar3, price) -> None:
    b = bars([FLAT, (100, 102, 99, 101), (101, 102.5, 100, 102), bar3, FLAT])
    r = run(b, [entry(0, side=-1, stop_px=103.0)])
    assert fill_rows(r) == [
        (T[1], "ENTRY", "SELL", 100.0, 100.0),
        (T[3], "STOP_LOSS", "BUY", 100.0, price),
    ]
    assert r.trades_ns["pnl"].to_list() == [100.0 * (100.0 - price)]
    assert r.trades_ns["exit_reason"].to_list() == ["stop_loss"]


@pytest.mark.parametrize(
    ("bar3", "price"),
    [
        ((98.0, 99.0, 96.0, 97.0), 97.0),  # touched inside the bar: fills at S
        ((95.0, 96.0, 94.0, 95.0), 95.0),  # gaps through S: fills at the (worse) open
    ],
)
def test_stop_sell_fills_at_min_of_open_and_stop(bar3, price) -> None:
    b = bars([FLAT, (100, 101, 98, 100), (99, 100, 97.5, 98), bar3, FLAT])
    r = run(b, [entry(0, stop_px=97.0)])
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.0),
        (T[3], "STOP_LOSS", "SELL", 100.0, price),
    ]
    assert r.trades_ns["pnl"].to_list() == [100.0 * (price - 100.0)]


# ---- stop-limit (exchange kernels: the intent table has no stop-limit entry) ---------------
@pytest.mark.parametrize(
    ("side", "stop", "limit", "bar2", "price"),
    [
        (1, 101.0, 101.5, (100.5, 102.0, 100.0, 101.8), 101.0),  # buy: triggered inside, at S
        (1, 101.0, 101.5, (101.25, 102.0, 101.0, 101.8), 101.25),  # buy: gap within limit
        (-1, 99.0, 98.5, (99.5, 100.0, 98.0, 98.2), 99.0),  # sell: triggered inside, at S
        (-1, 99.0, 98.5, (98.75, 99.0, 98.0, 98.2), 98.75),  # sell: gap within limit
    ],
)
def test_stop_limit_triggered_within_its_limit_fills_on_the_trigger_bar(
    side, stop, limit, bar2, price
) -> None:
    rows = [FLAT, (100.0, 100.5, 99.5, 100.0), bar2, FLAT, FLAT]
    orders, fills = run_exchange(
        rows, side=side, otype=OrderType.STOP_LIMIT, stop_px=stop, limit_px=limit
    )
    assert len(fills) == 1
    assert (
        int(fills[0]["bar"]),
        int(fills[0]["ts"]),
        float(fills[0]["price"]),
        float(fills[0]["qty"]),
    ) == (2, T[2], price, 100.0)
    assert int(orders[0]["status"]) == OrderStatus.FILLED


@pytest.mark.parametrize(
    ("side", "stop", "limit", "rows", "price"),
    [
        # buy stop 101 / limit 101.5: bar 2 gaps to 102 (beyond the limit) and dips to 101 in
        # the same bar; it rests as a limit from bar 3, which stays above 101.5, and fills
        # on bar 4 at L.
        (
            1,
            101.0,
            101.5,
            [
                FLAT,
                (100.0, 100.5, 99.5, 100.0),
                (102.0, 103.0, 101.0, 102.5),
                (102.5, 103.0, 102.0, 102.5),
                (102.0, 102.5, 101.0, 101.5),
            ],
            101.5,
        ),
        (
            -1,
            99.0,
            98.5,
            [
                FLAT,
                (100.0, 100.5, 99.5, 100.0),
                (98.0, 99.0, 97.0, 97.5),
                (97.5, 98.0, 97.0, 97.5),
                (98.0, 99.0, 97.5, 98.5),
            ],
            98.5,
        ),
    ],
)
def test_stop_limit_gapped_beyond_its_limit_rests_as_a_limit_and_fills_later_at_l(
    side, stop, limit, rows, price
) -> None:
    orders, fills = run_exchange(
        rows, side=side, otype=OrderType.STOP_LIMIT, stop_px=stop, limit_px=limit
    )
    assert [(int(f["bar"]), float(f["price"])) for f in fills] == [(4, price)]
    assert int(orders[0]["otype"]) == OrderType.LIMIT
    assert int(orders[0]["status"]) == OrderStatus.FILLED


# ---- trailing stop -------------------------------------------------------------------------
def test_trailing_stop_trails_the_highest_high_through_the_previous_bar() -> None:
    # Long at 100 with a 25 % trail: level = 0.75 x highest high seen before the current bar.
    # bar 1 high 120 -> level 90 on bar 2; bar 2 high 128 -> level 96 on bar 3, whose low 97
    # stays above it (had bar 3's own high 200 counted, the level would be 150 and bar 3
    # would fill); bar 3's high 200 -> level 150 on bar 4, touched by its low 140.
    b = bars(
        [FLAT, (100, 120, 99, 110), (110, 128, 100, 120), (120, 200, 97, 150), (160, 170, 140, 145)]
    )
    r = run(b, [entry(0, trail_pct=0.25)])
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.0),
        (T[4], "TRAILING", "SELL", 100.0, 150.0),
    ]
    leg = order_by_role(r, "TRAILING")
    assert (leg["order_type"], leg["status"], leg["done_ts"]) == ("TRAILING_STOP", "FILLED", T[4])
    assert r.trades_ns["exit_reason"].to_list() == ["trailing"]
    assert r.trades_ns["pnl"].to_list() == [5000.0]


def test_trailing_stop_gapped_through_fills_at_the_open() -> None:
    b = bars(
        [FLAT, (100, 120, 99, 110), (110, 128, 100, 120), (120, 130, 97, 125), (90, 95, 85, 92)]
    )
    # levels: bar 2 -> 90, bar 3 -> 96, bar 4 -> 0.75 x 130 = 97.5; bar 4 opens at 90.
    r = run(b, [entry(0, trail_pct=0.25)])
    assert fill_rows(r)[1] == (T[4], "TRAILING", "SELL", 100.0, 90.0)


# ---- brackets: stop and target in one bar --------------------------------------------------
BRACKET_PREFIX = [FLAT, FLAT]  # entry at bar 0 fills at 100 on bar 1; stop 95 / target 105


@pytest.mark.parametrize(
    ("policy", "open2", "role", "price"),
    [
        ("stop_first", 98.0, "STOP_LOSS", 95.0),
        ("stop_first", 104.0, "STOP_LOSS", 95.0),
        ("target_first", 98.0, "TAKE_PROFIT", 105.0),
        ("open_proximity", 98.0, "STOP_LOSS", 95.0),  # 3 from the stop, 7 from the target
        ("open_proximity", 103.0, "TAKE_PROFIT", 105.0),  # 8 from the stop, 2 from the target
        ("open_proximity", 100.0, "STOP_LOSS", 95.0),  # equidistant: the stop (conservative)
    ],
)
def test_both_legs_touched_in_one_bar_follow_the_intrabar_policy(
    policy, open2, role, price
) -> None:
    b = bars([*BRACKET_PREFIX, (open2, 106, 94, 100), FLAT, FLAT])
    r = run(b, [entry(0, stop_px=95.0, target_px=105.0)], intrabar=policy)
    fills = r.fills_ns.sort("fill_id")
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.0),
        (T[2], role, "SELL", 100.0, price),
    ]
    assert fills["ambiguous"].to_list() == [False, True]
    t = r.trades_ns.row(0, named=True)
    assert (t["ambiguous"], t["exit_reason"], t["pnl"]) == (
        True,
        role.lower(),
        100.0 * (price - 100.0),
    )
    prox = 105.0 if abs(open2 - 95.0) > abs(105.0 - open2) else 95.0
    amb = r.ambiguity()
    assert amb["ambiguous_round_trips"] == 1
    assert amb["policy"] == policy
    assert amb["pnl_by_ordering"] == {
        "stop_first": -500.0,
        "target_first": 500.0,
        "open_proximity": 100.0 * (prox - 100.0),
    }
    assert r.summary()["ambiguous_round_trips"] == 1
    other = "TAKE_PROFIT" if role == "STOP_LOSS" else "STOP_LOSS"
    sib = order_by_role(r, other)
    assert (sib["status"], sib["reason_codes"], sib["done_ts"]) == (
        "CANCELED",
        ["OCO_SIBLING_FILLED"],
        T[2],
    )


def test_one_leg_touched_is_not_ambiguous() -> None:
    b = bars([*BRACKET_PREFIX, (101, 106, 100, 104), FLAT, FLAT])
    r = run(b, [entry(0, stop_px=95.0, target_px=105.0)])
    assert fill_rows(r)[1] == (T[2], "TAKE_PROFIT", "SELL", 100.0, 105.0)
    assert r.fills_ns["ambiguous"].to_list() == [False, False]
    assert r.ambiguity()["ambiguous_round_trips"] == 0


# ---- legs on the entry bar -----------------------------------------------------------------
ENTRY_BAR_HITS_STOP = [FLAT, (100, 101, 94, 99), (99, 100, 96, 98), (97, 98, 94, 96), FLAT]


def test_legs_of_an_entry_filled_at_the_open_are_live_on_that_bar() -> None:
    r = run(bars(ENTRY_BAR_HITS_STOP), [entry(0, stop_px=95.0, target_px=110.0)])
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.0),
        (T[1], "STOP_LOSS", "SELL", 100.0, 95.0),
    ]
    assert r.trades_ns["bars_held"].to_list() == [0]


def test_legs_live_on_entry_bar_false_waits_for_the_next_bar() -> None:
    r = run(
        bars(ENTRY_BAR_HITS_STOP),
        [entry(0, stop_px=95.0, target_px=110.0)],
        legs_live_on_entry_bar=False,
    )
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.0),
        (T[3], "STOP_LOSS", "SELL", 100.0, 95.0),
    ]


def test_legs_of_an_entry_filled_inside_the_bar_wait_for_the_next_bar() -> None:
    # The limit entry fills at 99 inside bar 1, whose low 94 is under the stop: the path
    # inside the bar is unknown, so the legs go live on bar 2 (option or not).
    r = run(
        bars(ENTRY_BAR_HITS_STOP), [entry(0, otype=1, limit_px=99.0, stop_px=95.0, target_px=110.0)]
    )
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 99.0),
        (T[3], "STOP_LOSS", "SELL", 100.0, 95.0),
    ]


# ---- OCO -----------------------------------------------------------------------------------
def test_oco_sibling_is_cancelled_at_the_fill_timestamp() -> None:
    b = bars([FLAT, FLAT, (101, 104, 100, 103), (103, 106, 102, 105), FLAT])
    r = run(b, [entry(0, stop_px=95.0, target_px=105.0)])
    tp = order_by_role(r, "TAKE_PROFIT")
    sl = order_by_role(r, "STOP_LOSS")
    entry_id = order_by_role(r, "ENTRY")["order_id"]
    assert (tp["status"], tp["done_ts"], tp["filled_qty"], tp["avg_fill_price"]) == (
        "FILLED",
        T[3],
        100.0,
        105.0,
    )
    assert (sl["status"], sl["reason_codes"], sl["done_ts"], sl["filled_qty"]) == (
        "CANCELED",
        ["OCO_SIBLING_FILLED"],
        T[3],
        0.0,
    )
    assert (tp["oco_sibling_id"], sl["oco_sibling_id"]) == (sl["order_id"], tp["order_id"])
    assert (tp["parent_order_id"], sl["parent_order_id"]) == (entry_id, entry_id)
    assert (
        tp["trade_cycle_id"] == sl["trade_cycle_id"] == order_by_role(r, "ENTRY")["trade_cycle_id"]
    )
    assert (tp["reduce_only"], sl["reduce_only"]) == (True, True)


# ---- gaps through bracket legs -------------------------------------------------------------
@pytest.mark.parametrize(
    ("bar2", "role", "price"),
    [
        ((93.0, 94.0, 92.0, 93.0), "STOP_LOSS", 93.0),  # gap under the stop: worse, at the open
        ((107.0, 108.0, 106.0, 107.0), "TAKE_PROFIT", 107.0),  # gap over the target: the open
    ],
)
def test_gap_through_a_bracket_leg_fills_at_the_open(bar2, role, price) -> None:
    r = run(bars([FLAT, FLAT, bar2, FLAT, FLAT]), [entry(0, stop_px=95.0, target_px=105.0)])
    assert fill_rows(r)[1:] == [(T[2], role, "SELL", 100.0, price)]
    assert r.fills_ns["ambiguous"].to_list() == [False, False]
    assert r.trades_ns["pnl"].to_list() == [100.0 * (price - 100.0)]


# ---- slippage ------------------------------------------------------------------------------
QUARTER = {"T": Instrument(symbol="T", tick_size=0.25)}


@pytest.mark.parametrize(
    ("bar2", "role", "price", "slip"),
    [
        ((99.0, 100.0, 94.0, 96.0), "STOP_LOSS", 94.5, 0.5),  # stop: 2 ticks against
        ((93.0, 94.0, 92.0, 93.0), "STOP_LOSS", 92.5, 0.5),  # stop gapped: the open, slipped
        ((101.0, 106.0, 100.0, 104.0), "TAKE_PROFIT", 105.0, 0.0),  # limit: never slipped
        ((107.0, 108.0, 106.0, 107.0), "TAKE_PROFIT", 107.0, 0.0),  # limit at the open: neither
    ],
)
def test_tick_slippage_moves_market_and_stop_fills_only(bar2, role, price, slip) -> None:
    r = run(
        bars([FLAT, FLAT, bar2, FLAT, FLAT]),
        [entry(0, stop_px=95.0, target_px=105.0)],
        instruments=QUARTER,
        slippage="ticks",
        slippage_value=2,
    )
    f = r.fills_ns.sort("fill_id")
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, 100.5),
        (T[2], role, "SELL", 100.0, price),
    ]
    assert f["slippage"].to_list() == [0.5, slip]


@pytest.mark.parametrize(
    ("bar1", "price"),
    [
        ((100.0, 101.0, 98.0, 99.0), 99.0),  # touched inside the bar: L
        ((98.5, 99.0, 98.0, 98.5), 98.5),  # opens under L: the open
    ],
)
def test_tick_slippage_never_touches_a_limit_entry(bar1, price) -> None:
    r = run(
        bars([FLAT, bar1, FLAT, FLAT, FLAT]),
        [entry(0, otype=1, limit_px=99.0), exit_(2)],
        instruments=QUARTER,
        slippage="ticks",
        slippage_value=2,
    )
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 100.0, price),
        (T[3], "SIGNAL_EXIT", "SELL", 100.0, 99.5),  # market exit: 100 - 2 x 0.25
    ]
    assert r.fills_ns["slippage"].to_list() == [0.0, 0.5]


def test_bps_slippage_on_market_and_stop_not_on_limit() -> None:
    # 10 bps: market buy 100 -> 100.1; stop sell 95 -> 94.905; limit target never moves.
    stop = run(
        bars([FLAT, FLAT, (99, 100, 94, 96), FLAT, FLAT]),
        [entry(0, stop_px=95.0, target_px=105.0)],
        slippage="bps",
        slippage_value=10,
    )
    prices = stop.fills_ns.sort("fill_id")["price"].to_list()
    assert prices == pytest.approx([100.1, 94.905], abs=EXACT)
    assert stop.fills_ns.sort("fill_id")["slippage"].to_list() == pytest.approx(
        [0.1, 0.095], abs=EXACT
    )
    target = run(
        bars([FLAT, FLAT, (101, 106, 100, 104), FLAT, FLAT]),
        [entry(0, stop_px=95.0, target_px=105.0)],
        slippage="bps",
        slippage_value=10,
    )
    assert target.fills_ns.sort("fill_id")["price"].to_list()[1] == 105.0
    assert target.fills_ns.sort("fill_id")["slippage"].to_list()[1] == 0.0


def test_bps_slippage_lands_on_the_tick_grid_against_the_taker() -> None:
    # ES (tick 0.25), 10 bps: market buy at 4000 -> 4004.0 exactly; a stop sell at 3990
    # -> 3986.01 unrounded, rounded DOWN (against the seller) to 3986.0.
    flat, drop, low = (4000, 4001, 3999, 4000), (3995, 3996, 3980, 3985), (3985, 3986, 3984, 3985)
    es = [flat, flat, drop, low, low]
    r = run(
        bars(es, symbol="ES"),
        [entry(0, symbol="ES", qty=1, stop_px=3990.0, target_px=4100.0)],
        slippage="bps",
        slippage_value=10,
    )
    prices = r.fills_ns.sort("fill_id")["price"].to_list()
    assert prices == [4004.0, 3986.0]
    assert all(round(p / 0.25) * 0.25 == p for p in prices)


# ---- commission ----------------------------------------------------------------------------
ROUND_TRIP = [FLAT, FLAT, (104, 105, 103, 104), (108, 109, 107, 108), FLAT]  # 100 -> 108


@pytest.mark.parametrize(
    ("qty", "fee"),
    [(100.0, 1.0), (1000.0, 5.0)],  # 0.005 x 100 = 0.5 -> the minimum 1.0; 0.005 x 1000 = 5
)
def test_per_share_commission_with_minimum(qty, fee) -> None:
    r = run(
        bars(ROUND_TRIP),
        [entry(0, qty=qty), exit_(2)],
        commission="per_share",
        commission_rate=0.005,
        commission_min=1.0,
    )
    assert r.fills_ns.sort("fill_id")["fee"].to_list() == [fee, fee]
    t = r.trades_ns.row(0, named=True)
    assert (t["pnl"], t["fees"], t["net_pnl"]) == (8.0 * qty, 2 * fee, 8.0 * qty - 2 * fee)
    assert r.final_cash == 100_000.0 + 8.0 * qty - 2 * fee
    assert r.equity_ns["equity"][-1] == r.final_cash


def test_percent_commission_is_a_fraction_of_notional() -> None:
    r = run(bars(ROUND_TRIP), [entry(0), exit_(2)], commission="percent", commission_rate=0.001)
    assert r.fills_ns.sort("fill_id")["fee"].to_list() == pytest.approx([10.0, 10.8], abs=EXACT)
    assert r.trades_ns["net_pnl"].to_list() == pytest.approx([800.0 - 20.8], abs=EXACT)


def test_per_contract_commission_on_futures() -> None:
    es = [
        (4000, 4001, 3999, 4000),
        (4000, 4001, 3999, 4000),
        (4004, 4005, 4003, 4004),
        (4008, 4009, 4007, 4008),
        (4008, 4009, 4007, 4008),
    ]  # 4000 -> 4008
    r = run(
        bars(es, symbol="ES"),
        [entry(0, qty=3, symbol="ES"), exit_(2, symbol="ES")],
        commission="per_contract",
        commission_rate=2.25,
    )
    assert r.fills_ns.sort("fill_id")["fee"].to_list() == [6.75, 6.75]
    t = r.trades_ns.row(0, named=True)
    assert (t["pnl"], t["fees"], t["net_pnl"]) == (3 * 8.0 * 50.0, 13.5, 1200.0 - 13.5)


# ---- volume participation ------------------------------------------------------------------
def _participation_bars(n: int) -> pl.DataFrame:
    rows = [
        (100, 101, 99, 100, 1e6),
        (100, 101, 99, 100, 500),
        (101, 102, 100, 101, 300),
        (102, 103, 101, 102, 500),
        (102, 103, 101, 102, 1e6),
    ]
    return bars(rows[:n])


@pytest.mark.parametrize(
    ("n_bars", "filled", "status"),
    [(2, 50.0, "PARTIALLY_FILLED"), (3, 80.0, "PARTIALLY_FILLED"), (5, 100.0, "FILLED")],
)
def test_participation_cap_fills_partially_and_sizes_legs_to_the_filled_qty(
    n_bars, filled, status
) -> None:
    # 10 % of bar volume: 50 on bar 1 (vol 500), 30 on bar 2 (vol 300), the last 20 on bar 3.
    r = run(
        _participation_bars(n_bars),
        [entry(0, stop_px=90.0, target_px=120.0)],
        max_participation=0.1,
    )
    expected = [
        (T[1], "ENTRY", "BUY", 50.0, 100.0),
        (T[2], "ENTRY", "BUY", 30.0, 101.0),
        (T[3], "ENTRY", "BUY", 20.0, 102.0),
    ]
    assert fill_rows(r) == expected[: n_bars - 1]
    e = order_by_role(r, "ENTRY")
    assert (e["status"], e["filled_qty"]) == (status, filled)
    sl = order_by_role(r, "STOP_LOSS")
    tp = order_by_role(r, "TAKE_PROFIT")
    assert (sl["qty"], tp["qty"]) == (filled, filled)
    assert (sl["status"], tp["status"]) == ("ACCEPTED", "ACCEPTED")


def test_participation_cap_final_average_price() -> None:
    r = run(
        _participation_bars(5), [entry(0, stop_px=90.0, target_px=120.0)], max_participation=0.1
    )
    e = order_by_role(r, "ENTRY")
    assert e["avg_fill_price"] == pytest.approx((50 * 100 + 30 * 101 + 20 * 102) / 100, abs=EXACT)
    assert e["done_ts"] == T[3]


def test_entry_remainder_filled_after_its_bracket_closed_is_not_left_unprotected() -> None:
    # bar 1: the limit buy at 100 is touched inside the bar, 10 % of 500 -> 50 shares.
    # bar 2: opens at 106 through the 105 target (TP fills the 50 at the open, the stop is
    # OCO-cancelled), then trades down to 99: the entry's other 50 fill at 100.
    # bars 3-4 fall to 80, far below the 95 stop.
    b = bars(
        [
            (100, 101, 99, 100, 1e6),
            (101, 102, 99.5, 100, 500),
            (106, 107, 99, 100, 5000),
            (90, 91, 80, 85, 5000),
            (85, 86, 80, 82, 5000),
        ]
    )
    r = run(
        b,
        [entry(0, otype=1, limit_px=100.0, stop_px=95.0, target_px=105.0)],
        max_participation=0.1,
    )
    # The bracket exits first; the entry's unfilled 50 are cancelled in the same step, so
    # they can never fill later without protection.
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 50.0, 100.0),
        (T[2], "TAKE_PROFIT", "SELL", 50.0, 106.0),
    ]
    entry_row = r.orders_ns.filter(pl.col("role") == "ENTRY").row(0, named=True)
    assert entry_row["status"] == "CANCELED"
    assert entry_row["filled_qty"] == 50.0
    assert entry_row["done_ts"] == T[2]
    assert entry_row["reason_codes"] == ["ENTRY_REMAINDER_CANCELED"]
    assert final_positions(r) == {}


# ---- time in force -------------------------------------------------------------------------
def _ny(day: int, hh: int, mm: int) -> int:
    """ns UTC of 2024-01-<day> hh:mm UTC."""
    return (1_704_067_200 + (day - 1) * 86_400 + hh * 3600 + mm * 60) * 1_000_000_000


TOUCH = [
    (100, 101, 99, 100),
    (100, 101, 99, 100),
    (100, 101, 99, 100),
    (99, 100, 97, 98),
    (98, 99, 96, 97),
]


@pytest.mark.parametrize(
    ("stamps", "expires"),
    [
        # 15:57-15:59 New York on Jan 2, then 09:30-09:31 on Jan 3: bar 3 is a new session.
        ([_ny(2, 20, 57), _ny(2, 20, 58), _ny(2, 20, 59), _ny(3, 14, 30), _ny(3, 14, 31)], True),
        # 18:57 New York Jan 2 .. 19:31: crosses midnight UTC but not in New York.
        ([_ny(2, 23, 57), _ny(2, 23, 58), _ny(2, 23, 59), _ny(3, 0, 30), _ny(3, 0, 31)], False),
    ],
)
def test_day_limit_expires_at_the_next_new_york_session(stamps, expires) -> None:
    r = run(bars(TOUCH, ts=stamps), [entry(stamps[0], otype=1, limit_px=98.0, tif=0)])
    o = order_by_role(r, "ENTRY")
    if expires:
        assert (o["status"], o["reason_codes"], o["done_ts"]) == (
            "EXPIRED",
            ["ORDER_EXPIRED"],
            stamps[3],
        )
        assert r.fills_ns.is_empty()
    else:
        assert fill_rows(r) == [(stamps[3], "ENTRY", "BUY", 100.0, 98.0)]


def test_gtc_limit_survives_the_session_change() -> None:
    stamps = [_ny(2, 20, 57), _ny(2, 20, 58), _ny(2, 20, 59), _ny(3, 14, 30), _ny(3, 14, 31)]
    r = run(bars(TOUCH, ts=stamps), [entry(stamps[0], otype=1, limit_px=98.0, tif=1)])
    assert fill_rows(r) == [(stamps[3], "ENTRY", "BUY", 100.0, 98.0)]


def test_ioc_limit_is_cancelled_after_its_first_live_bar() -> None:
    r = run(bars(TOUCH), [entry(0, otype=1, limit_px=98.0, tif=2)])
    o = order_by_role(r, "ENTRY")
    assert (o["status"], o["reason_codes"], o["done_ts"]) == ("CANCELED", ["ORDER_EXPIRED"], T[1])
    assert r.fills_ns.is_empty()  # bar 3 touches 98, but the order is gone


def test_ioc_limit_touched_on_its_first_live_bar_fills() -> None:
    r = run(
        bars([FLAT, (99, 100, 97, 98), FLAT, FLAT, FLAT]), [entry(0, otype=1, limit_px=98.0, tif=2)]
    )
    assert fill_rows(r) == [(T[1], "ENTRY", "BUY", 100.0, 98.0)]
    assert order_by_role(r, "ENTRY")["status"] == "FILLED"


# ---- futures -------------------------------------------------------------------------------
def test_es_pct_legs_are_rounded_to_the_tick_and_pnl_uses_the_multiplier() -> None:
    es = lookup("ES")
    assert (es.tick_size, es.multiplier, es.is_future) == (0.25, 50.0, True)
    b = bars(
        [
            (4000, 4002, 3998, 4000),
            (4003, 4010, 3990, 4005),
            (4005, 4050, 4000, 4040),
            (4040, 4090, 4030, 4085),
            (4085, 4090, 4080, 4085),
        ],
        symbol="ES",
    )
    r = run(b, [entry(0, qty=2, symbol="ES", stop_pct=0.01, target_pct=0.02)])
    # 4003 x 0.99 = 3962.97 -> 3963.00; 4003 x 1.02 = 4083.06 -> 4083.00
    assert order_by_role(r, "STOP_LOSS")["stop_price"] == 3963.0
    assert order_by_role(r, "TAKE_PROFIT")["limit_price"] == 4083.0
    assert fill_rows(r) == [
        (T[1], "ENTRY", "BUY", 2.0, 4003.0),
        (T[3], "TAKE_PROFIT", "SELL", 2.0, 4083.0),
    ]
    assert r.trades_ns["pnl"].to_list() == [2 * 80.0 * 50.0]
    assert r.final_cash == 108_000.0
    eq = dict(zip(r.equity_ns["ts"], r.equity_ns["equity"], strict=True))
    assert eq[T[2]] == 100_000.0 + 2 * (4040.0 - 4003.0) * 50.0
    assert eq[T[4]] == 108_000.0


def test_es_open_futures_position_is_marked_with_the_multiplier() -> None:
    b = bars(
        [
            (4000, 4002, 3998, 4000),
            (4003, 4010, 3990, 4005),
            (4005, 4050, 4000, 4040),
            (4040, 4045, 4030, 4035),
            (4035, 4040, 4020, 4025.25),
        ],
        symbol="ES",
    )
    r = run(b, [entry(0, qty=2, symbol="ES")])
    assert r.equity_ns["equity"][-1] == 100_000.0 + 2 * (4025.25 - 4003.0) * 50.0
    assert r.trades_ns.is_empty()
    # futures: no notional changes hands, so cash holds only realized P&L and fees
    assert r.final_cash == 100_000.0


def test_kit_grid_is_one_minute() -> None:
    # the kit's contract that the tests above rely on
    assert [T[i + 1] - T[i] for i in range(4)] == [MINUTE_NS] * 4
    assert np.diff(bars([FLAT] * 5)["ts"].to_numpy()).tolist() == [MINUTE_NS] * 4
    assert bars([FLAT] * 5).schema["ts"] == pl.Int64


def test_es_trailing_stop_fills_on_the_tick_grid() -> None:
    b = bars(
        [
            (4000, 4002, 3998, 4000),
            (4003, 4010, 3990, 4005),  # water 4010 -> level 4010 x 0.99 = 3969.9
            (4005, 4006, 3950, 3960),
            (3960, 3961, 3950, 3955),
            (3955, 3960, 3950, 3955),
        ],
        symbol="ES",
    )
    r = run(b, [entry(0, qty=1, symbol="ES", trail_pct=0.01)])
    f = r.fills_ns.filter(pl.col("role") == "TRAILING")
    assert f["ts"].to_list() == [T[2]]
    price = f["price"][0]
    assert round(price / 0.25) * 0.25 == price


# ---- stop and stop-limit entries -------------------------------------------------------------
def test_buy_stop_entry_triggers_inside_the_bar_and_its_legs_start_next_bar() -> None:
    # T1 high 101 stays under the 102 trigger; T2 trades through it: fill at 102. The entry
    # filled inside the bar, so its legs are live from T3 (T2's low of 100 cannot stop it).
    # T3 opens at 100, below the 100.98 stop: the gap fills the stop at the open.
    r = run(
        bars([FLAT, FLAT, (101, 103, 100, 102), FLAT, FLAT]),
        [entry(0, otype=2, entry_stop_px=102.0, stop_pct=0.01, target_pct=0.05)],
    )
    rows = fill_rows(r)
    assert [row[:4] for row in rows] == [
        (T[2], "ENTRY", "BUY", 100.0),
        (T[3], "STOP_LOSS", "SELL", 100.0),
    ]
    assert rows[0][4] == 102.0
    assert rows[1][4] == 100.0
    legs = r.orders_ns.filter(pl.col("role") == "STOP_LOSS")
    assert legs.get_column("stop_price")[0] == pytest.approx(102.0 * 0.99, abs=EXACT)


def test_buy_stop_entry_gapped_through_fills_at_the_open() -> None:
    r = run(
        bars([FLAT, (104, 105, 103.5, 104), FLAT, FLAT, FLAT]),
        [entry(0, otype=2, entry_stop_px=102.0, stop_px=90.0, target_px=120.0)],
    )
    assert fill_rows(r)[0] == (T[1], "ENTRY", "BUY", 100.0, 104.0)


def test_stop_limit_entry_fills_at_its_trigger_within_the_limit() -> None:
    r = run(
        bars([FLAT, (101, 103, 100.5, 102), FLAT, FLAT, FLAT]),
        [entry(0, otype=3, entry_stop_px=102.0, limit_px=102.5, stop_px=90.0, target_px=120.0)],
    )
    assert fill_rows(r)[0] == (T[1], "ENTRY", "BUY", 100.0, 102.0)


def test_stop_limit_entry_gapping_past_its_limit_rests_as_a_limit() -> None:
    # T1 opens at 104, past the 102.5 limit: no fill on T1; from T2 it is a limit at 102.5,
    # and T2 trades down to 102 -> filled at the limit.
    r = run(
        bars([FLAT, (104, 105, 103.5, 104), (103, 103.5, 102, 103), FLAT, FLAT]),
        [entry(0, otype=3, entry_stop_px=102.0, limit_px=102.5, stop_px=90.0, target_px=120.0)],
    )
    assert fill_rows(r)[0] == (T[2], "ENTRY", "BUY", 100.0, 102.5)
    entry_row = r.orders_ns.filter(pl.col("role") == "ENTRY").row(0, named=True)
    assert entry_row["order_type"] == "LIMIT"


@pytest.mark.parametrize(
    ("fields", "column"),
    [
        ({"otype": 2}, "entry_stop_px"),
        ({"otype": 3, "entry_stop_px": 102.0}, "limit_px"),
        ({"otype": 3, "limit_px": 102.5}, "entry_stop_px"),
    ],
)
def test_stop_entries_without_their_prices_are_refused_at_the_boundary(fields, column) -> None:
    from backstop.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{column}: intent row 0"):
        run(bars([FLAT] * 5), [entry(0, **fields)])
