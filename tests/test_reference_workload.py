"""Hand-checked tests of the plain-Python workload reference (tests/reference_workload.py).

All paths use fast=2, slow=3 and (unless stated) stop_pct=0.01, target_pct=0.02, qty=100.
Every path starts with the same five bars, PREFIX (o, h, l, c):

    bar 0..3: 100 100 100 100   -> closes 100, 100, 100, 100
    bar 4:    100 101 100 101   -> close 101

SMA2 / SMA3 at bar 3: 100 / 100 (equal). At bar 4: 100.5 / 100.333 -> fast > slow and
fast[3] <= slow[3]: CROSS UP at bar 4, so the entry fills at open[5] = 100. Hence
P = 100, stop = 100 * 0.99 = 99.0, target = 100 * 1.02 = 102.0 (both exact in floats).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import polars as pl
import pytest
from reference_workload import (
    RefOpenPosition,
    RefTrade,
    reference_run,
    reference_trades,
    reference_trades_by_symbol,
    sma,
)

MINUTE_NS = 60_000_000_000
SMALL = {"fast": 2, "slow": 3}

Bar = tuple[float, float, float, float]
Columns = tuple[list[int], list[float], list[float], list[float], list[float]]
PREFIX: list[Bar] = [(100, 100, 100, 100)] * 4 + [(100, 101, 100, 101)]


def columns(rows: list[Bar]) -> Columns:
    """ts, open, high, low, close from (o, h, l, c) rows; ts[i] = i minutes in ns."""
    ts = [i * MINUTE_NS for i in range(len(rows))]
    o, h, l, c = (list(col) for col in zip(*rows, strict=True))
    return ts, o, h, l, c


def run(rows: list[Bar], **params: float) -> tuple[list[RefTrade], RefOpenPosition | None]:
    return reference_run(*columns(rows), **{**SMALL, **params})


def trade(
    entry_bar: int,
    entry_price: float,
    exit_bar: int,
    exit_price: float,
    reason: str,
    ambiguous: bool = False,
) -> RefTrade:
    return RefTrade(
        entry_bar=entry_bar,
        entry_ts=entry_bar * MINUTE_NS,
        entry_price=entry_price,
        exit_bar=exit_bar,
        exit_ts=exit_bar * MINUTE_NS,
        exit_price=exit_price,
        qty=100,
        pnl=(exit_price - entry_price) * 100,
        exit_reason=reason,
        ambiguous=ambiguous,
    )


def test_sma_is_undefined_before_the_window_fills() -> None:
    """SMA3 of 1, 2, 3, 4, 5: None, None, (1+2+3)/3 = 2, 3, 4."""
    assert sma([1.0, 2.0, 3.0, 4.0, 5.0], 3) == [None, None, 2.0, 3.0, 4.0]


def test_clean_take_profit() -> None:
    """Entry at open[5] = 100 (stop 99, target 102).

    bar 5: o100 h101   l99.5  c101  -> no leg touched; SMA 101 / 100.667, no cross.
    bar 6: o101 h102.5 l100.5 c102  -> high >= 102: take_profit at 102, pnl +200.
    """
    rows = [*PREFIX, (100, 101, 99.5, 101), (101, 102.5, 100.5, 102)]
    trades, open_pos = run(rows)
    assert trades == [trade(5, 100.0, 6, 102.0, "take_profit")]
    assert trades[0].pnl == 200.0
    assert open_pos is None


def test_clean_stop_and_cross_down_while_flat_does_nothing() -> None:
    """Entry at open[5] = 100 (stop 99, target 102).

    bar 5: o100 h100.5 l99.5 c100.5 -> nothing; SMA 100.75 / 100.5.
    bar 6: o100 h100.2 l98.5 c98.8  -> low <= 99: stop_loss at 99, pnl -100.
           SMA 99.65 / 100.1 is a cross down, but we are flat at the close: ignored.
    bar 7: o98.8 h99 l98.5 c98.9    -> SMA 98.85 / 99.4, no cross up: nothing.
    """
    rows = [*PREFIX, (100, 100.5, 99.5, 100.5), (100, 100.2, 98.5, 98.8), (98.8, 99, 98.5, 98.9)]
    trades, open_pos = run(rows)
    assert trades == [trade(5, 100.0, 6, 99.0, "stop_loss")]
    assert trades[0].pnl == -100.0
    assert open_pos is None


def test_gap_through_stop_fills_at_the_worse_open() -> None:
    """Entry at open[5] = 100 (stop 99).

    bar 6 opens at 98 <= 99: stop_loss at the open 98 (not 99), pnl -200.
    """
    rows = [*PREFIX, (100, 100.5, 99.5, 100.5), (98, 98.5, 97.5, 98)]
    trades, open_pos = run(rows)
    assert trades == [trade(5, 100.0, 6, 98.0, "stop_loss")]
    assert trades[0].pnl == -200.0
    assert open_pos is None


def test_gap_through_target_fills_at_the_better_open() -> None:
    """Entry at open[5] = 100 (target 102).

    bar 6 opens at 103 >= 102: take_profit at the open 103 (not 102), pnl +300.
    """
    rows = [*PREFIX, (100, 101, 99.5, 101), (103, 104, 102.5, 103.5)]
    trades, open_pos = run(rows)
    assert trades == [trade(5, 100.0, 6, 103.0, "take_profit")]
    assert trades[0].pnl == 300.0
    assert open_pos is None


def test_both_legs_touched_in_one_bar_assumes_stop_first() -> None:
    """Entry at open[5] = 100 (stop 99, target 102).

    bar 6: o100 h102.5 l98.5 -> both touched: stop_loss at 99, ambiguous=True, pnl -100.
    """
    rows = [*PREFIX, (100, 100.5, 99.5, 100.5), (100, 102.5, 98.5, 100.5)]
    trades, open_pos = run(rows)
    assert trades == [trade(5, 100.0, 6, 99.0, "stop_loss", ambiguous=True)]
    assert trades[0].ambiguous is True
    assert open_pos is None


def test_signal_exit_fills_at_next_open_and_cancels_the_legs() -> None:
    """Entry at open[5] = 100 (stop 99, target 102).

    bar 5: o100   h101   l99.5 c101 -> SMA 101 / 100.667 (fast above).
    bar 6: o100.5 h101   l99.2 c99  -> no leg touched; SMA 100 / 100.333 and
           fast[5] >= slow[5]: CROSS DOWN while long -> market exit at open[7].
    bar 7: o99.5  h102.5 l98   c100 -> would touch both legs, but the signal exit fills first at
           the open 99.5: signal_exit, not ambiguous, pnl -50. SMA 99.5 / 100: no re-entry.
    """
    rows = [*PREFIX, (100, 101, 99.5, 101), (100.5, 101, 99.2, 99), (99.5, 102.5, 98, 100)]
    trades, open_pos = run(rows)
    assert trades == [trade(5, 100.0, 7, 99.5, "signal_exit")]
    assert trades[0].pnl == -50.0
    assert open_pos is None


def test_cross_down_from_an_exact_tie_triggers_a_signal_exit() -> None:
    """Entry at open[5] = 100 (stop 99, target 102).

    bar 5: o100   h101.8 l99.5 c101.5 -> nothing; SMA 101.25 / 100.833.
    bar 6: o101   h101.5 l100  c100.5 -> nothing; SMA 101 / 101, an exact tie (no cross).
    bar 7: o100.5 h101   l99.5 c100   -> nothing; SMA 100.25 / 100.667 with fast[6] >= slow[6]:
           CROSS DOWN while long -> market exit at open[8].
    bar 8: o100.5 h101   l100  c100.5 -> signal_exit at 100.5, pnl +50; SMA 100.25 / 100.333.
    """
    rows = [
        *PREFIX,
        (100, 101.8, 99.5, 101.5),
        (101, 101.5, 100, 100.5),
        (100.5, 101, 99.5, 100),
        (100.5, 101, 100, 100.5),
    ]
    trades, open_pos = run(rows)
    assert trades == [trade(5, 100.0, 8, 100.5, "signal_exit")]
    assert trades[0].pnl == 50.0
    assert open_pos is None


@pytest.mark.parametrize(
    ("bar5", "exit_price", "reason"),
    [
        ((100, 100.5, 98.5, 99.5), 99.0, "stop_loss"),  # low 98.5 <= 99
        ((100, 102.5, 99.5, 102), 102.0, "take_profit"),  # high 102.5 >= 102
    ],
)
def test_bracket_is_live_on_the_entry_bar(bar5: Bar, exit_price: float, reason: str) -> None:
    """Entry at open[5] = 100 (stop 99, target 102); bar 5 itself touches one leg, so the
    position opens and closes in bar 5 (entry_bar == exit_bar == 5).
    """
    trades, open_pos = run([*PREFIX, bar5])
    assert trades == [trade(5, 100.0, 5, exit_price, reason)]
    assert open_pos is None


def test_reentry_on_cross_up_in_the_same_bar_as_a_stop() -> None:
    """target_pct=0.05. Entry at open[5] = 100: stop 99, target 105.

    bar 5: o100   h101.8 l99.5 c101.5 -> nothing; SMA 101.25 / 100.833.
    bar 6: o101   h101.5 l100  c100.5 -> nothing; SMA (101.5+100.5)/2 = 101 and
           (101+101.5+100.5)/3 = 101: equal, so NOT a cross down.
    bar 7: o100.5 h103.2 l98.5 c103   -> low <= 99: stop_loss at 99 (high < 105, not ambiguous).
           SMA 101.75 / 101.667 with fast[6] <= slow[6]: CROSS UP, flat at the close -> entry.
    bar 8: o103   h103.5 l102.5 c103  -> re-entry at 103: stop 103*0.99, target 103*1.05,
           untouched; data ends, so it is the open position, not a round trip.
    """
    rows = [
        *PREFIX,
        (100, 101.8, 99.5, 101.5),
        (101, 101.5, 100, 100.5),
        (100.5, 103.2, 98.5, 103),
        (103, 103.5, 102.5, 103),
    ]
    trades, open_pos = run(rows, target_pct=0.05)
    assert trades == [trade(5, 100.0, 7, 99.0, "stop_loss")]
    assert open_pos == RefOpenPosition(
        entry_bar=8,
        entry_ts=8 * MINUTE_NS,
        entry_price=103.0,
        qty=100,
        stop=103.0 * (1 - 0.01),
        target=103.0 * (1 + 0.05),
    )


def test_cross_up_while_long_is_ignored() -> None:
    """Same path as the re-entry test, but bar 7's low 100 stays above the stop 99.

    The cross up at bar 7 happens while long: no second entry. Nothing exits, so the
    bar-5 position is still open at the end and there are no round trips.
    """
    rows = [
        *PREFIX,
        (100, 101.8, 99.5, 101.5),
        (101, 101.5, 100, 100.5),
        (100.5, 103.2, 100, 103),
        (103, 103.5, 102.5, 103),
    ]
    trades, open_pos = run(rows, target_pct=0.05)
    assert trades == []
    assert open_pos == RefOpenPosition(5, 5 * MINUTE_NS, 100.0, 100, 99.0, 105.0)


def test_cross_up_on_the_last_bar_never_fills() -> None:
    """PREFIX alone: the cross up is at bar 4, the last bar, so there is no open[5] to fill."""
    trades, open_pos = run(PREFIX)
    assert trades == []
    assert open_pos is None


def test_cross_down_on_the_last_bar_never_fills() -> None:
    """Entry at open[5] = 100. bar 6 (last): c99 gives SMA 100 / 100.333, a cross down while
    long, but there is no open[7]: the position stays open at the end, no round trip.
    """
    rows = [*PREFIX, (100, 101, 99.5, 101), (100.5, 101, 99.2, 99)]
    trades, open_pos = run(rows)
    assert trades == []
    assert open_pos == RefOpenPosition(5, 5 * MINUTE_NS, 100.0, 100, 99.0, 102.0)


def test_numpy_inputs_match_list_inputs() -> None:
    """The clean take-profit path as numpy arrays gives identical trades (Python int ts)."""
    rows = [*PREFIX, (100, 101, 99.5, 101), (101, 102.5, 100.5, 102)]
    ts, o, h, l, c = columns(rows)
    as_np = reference_trades(
        np.array(ts, dtype=np.int64), np.array(o), np.array(h), np.array(l), np.array(c), **SMALL
    )
    assert as_np == reference_trades(ts, o, h, l, c, **SMALL)
    assert as_np == [trade(5, 100.0, 6, 102.0, "take_profit")]
    assert type(as_np[0].entry_ts) is int


def test_by_symbol_processes_each_symbol_alone_sorted_by_ts() -> None:
    """Symbol A follows the clean take-profit path, B the clean stop path; rows interleaved and
    reversed. Each symbol's trades equal its single-symbol run.
    """
    paths: dict[str, list[Bar]] = {
        "A": [*PREFIX, (100, 101, 99.5, 101), (101, 102.5, 100.5, 102)],
        "B": [*PREFIX, (100, 100.5, 99.5, 100.5), (100, 100.2, 98.5, 98.8)],
    }
    records = [
        {"ts": i * MINUTE_NS, "symbol": sym, "open": o, "high": h, "low": l, "close": c}
        for sym, rows in paths.items()
        for i, (o, h, l, c) in enumerate(rows)
    ]
    df = pl.DataFrame(records[::-1], schema_overrides={"ts": pl.Int64})
    assert reference_trades_by_symbol(df, **SMALL) == {
        "A": [trade(5, 100.0, 6, 102.0, "take_profit")],
        "B": [trade(5, 100.0, 6, 99.0, "stop_loss")],
    }


def test_invariants_on_a_random_walk_with_default_params() -> None:
    """Seeded random walk, default workload params (10/50, 1%/2%, 100 shares): structural checks.

    Trades never overlap, each exit price lies inside its exit bar's [low, high], and the price
    matches its reason (bracket fills at the open or at the leg, signal exits at the open).
    """
    rng = random.Random(7)
    n = 5_000
    o, h, l, c = [], [], [], []
    prev = 100.0
    for _ in range(n):
        op = prev * (1 + rng.gauss(0, 0.0002))
        cl = op * (1 + rng.gauss(0, 0.0008))
        o.append(op)
        h.append(max(op, cl) * (1 + abs(rng.gauss(0, 0.0005))))
        l.append(min(op, cl) * (1 - abs(rng.gauss(0, 0.0005))))
        c.append(cl)
        prev = cl
    trades, _ = reference_run(list(range(n)), o, h, l, c)
    assert len(trades) > 5
    for prev_t, next_t in itertools.pairwise(trades):
        assert next_t.entry_bar > prev_t.exit_bar
    for t in trades:
        stop, target = t.entry_price * (1 - 0.01), t.entry_price * (1 + 0.02)
        assert t.entry_price == o[t.entry_bar]
        assert l[t.exit_bar] <= t.exit_price <= h[t.exit_bar]
        assert t.pnl == (t.exit_price - t.entry_price) * 100
        if t.exit_reason == "signal_exit":
            assert t.exit_price == o[t.exit_bar] and t.exit_bar > t.entry_bar
        elif t.exit_reason == "stop_loss":
            assert t.exit_price in (stop, o[t.exit_bar])
            assert t.exit_price <= stop
        else:
            assert t.exit_reason == "take_profit"
            assert t.exit_price in (target, o[t.exit_bar])
            assert t.exit_price >= target
