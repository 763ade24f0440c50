"""Every figure of ``.stats`` against a hand computation on a small hand-made equity/trade set."""

from __future__ import annotations

import math
import statistics

import numpy as np
import polars as pl
import pytest

from backstop import Backtest, sample_bars
from backstop.data import gbm_bars
from backstop.engine.prepare import PreparedBars
from backstop.engine.stats import (
    buy_hold_return,
    buy_hold_return_of_arrays,
    compute_stats,
    drawdown_periods,
    first_rows,
    format_stat,
    verdicts_by_reason,
)

H = 3_600 * 10**9
DAY = 24 * H
D0 = 1_704_067_200 * 10**9  # 2024-01-01 00:00 UTC
TS = [D0 + 10 * H, D0 + 14 * H, D0 + 16 * H]
TS += [D0 + DAY + 10 * H, D0 + DAY + 14 * H, D0 + DAY + 16 * H]
TS += [D0 + 2 * DAY + 10 * H, D0 + 2 * DAY + 14 * H]
EQ = [1000.0, 1100.0, 990.0, 1045.0, 1100.0, 1210.0, 1028.5, 1150.0]
EXPO = [0.0, 100.0, 100.0, 0.0, 50.0, 50.0, 0.0, 100.0]
CASH = 1000.0

EQUITY = pl.DataFrame({"ts": TS, "equity": EQ, "gross_exposure": EXPO})
TRADES = pl.DataFrame(
    {
        "direction": ["long", "short", "long"],
        "qty": [10.0, 5.0, 2.0],
        "entry_ts": [D0 + 10 * H, D0 + 16 * H, D0 + DAY + 14 * H],
        "entry_price": [100.0, 50.0, 200.0],
        "exit_ts": [D0 + 14 * H, D0 + DAY + 10 * H, D0 + 2 * DAY + 14 * H],
        "exit_price": [110.0, 55.0, 190.0],
        "pnl": [100.0, -25.0, -20.0],
        "fees": [5.0, 1.0, 0.0],
        "net_pnl": [95.0, -26.0, -20.0],
    }
)


@pytest.fixture(scope="module")
def stats() -> dict:
    return compute_stats(EQUITY, TRADES, CASH, buy_hold_return=0.25)


def test_period_equity_and_returns(stats: dict) -> None:
    assert stats["start_ts"] == D0 + 10 * H
    assert stats["end_ts"] == D0 + 2 * DAY + 14 * H
    assert stats["duration_days"] == pytest.approx(2 + 4 / 24)
    assert stats["exposure"] == 5 / 8
    assert stats["start_equity"] == 1000.0
    assert stats["end_equity"] == 1150.0
    assert stats["peak_equity"] == 1210.0
    assert stats["total_return"] == pytest.approx(0.15)
    assert stats["buy_hold_return"] == 0.25
    assert stats["cagr"] == pytest.approx(1.15 ** (365.25 / (2 + 4 / 24)) - 1)


def test_daily_figures(stats: dict) -> None:
    # the last equity of each UTC day: 990, 1210, 1150, against 1000, 990, 1210
    rets = [990 / 1000 - 1, 1210 / 990 - 1, 1150 / 1210 - 1]
    sd = statistics.stdev(rets)
    mean = sum(rets) / 3
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / 3)
    assert stats["annual_return"] == pytest.approx(1.15 ** (252 / 3) - 1)
    assert stats["annual_volatility"] == pytest.approx(sd * math.sqrt(252))
    assert stats["sharpe"] == pytest.approx(mean / sd * math.sqrt(252))
    assert stats["sortino"] == pytest.approx(mean / downside * math.sqrt(252))
    assert stats["calmar"] == pytest.approx((1.15 ** (252 / 3) - 1) / 0.15)


def test_drawdowns(stats: dict) -> None:
    # 1100 -> 990 (-10%) regained at 1100 a day later; 1210 -> 1028.5 (-15%) never regained
    assert stats["max_drawdown"] == pytest.approx(-0.15)
    assert stats["avg_drawdown"] == pytest.approx(-0.125)
    assert stats["drawdown_periods"] == 2
    assert stats["max_drawdown_duration_days"] == pytest.approx(1.0)
    assert stats["avg_drawdown_duration_days"] == pytest.approx((1.0 + 22 / 24) / 2)
    periods = drawdown_periods(EQUITY["ts"].to_numpy(), EQUITY["equity"].to_numpy(), CASH)
    assert [(a, b) for a, b, _ in periods] == [(TS[1], TS[4]), (TS[5], TS[7])]


def test_trade_figures(stats: dict) -> None:
    assert stats["trade_count"] == 3
    assert stats["win_rate"] == pytest.approx(1 / 3)
    assert stats["best_trade"] == pytest.approx(0.10)  # long 100 -> 110
    assert stats["worst_trade"] == pytest.approx(-0.10)  # short 50 -> 55
    assert stats["avg_trade"] == pytest.approx((0.10 - 0.10 - 0.05) / 3)
    assert stats["max_trade_duration_days"] == pytest.approx(1.0)
    assert stats["avg_trade_duration_days"] == pytest.approx((4 + 18 + 24) / 24 / 3)
    assert stats["profit_factor"] == pytest.approx(95 / 46)
    assert stats["expectancy"] == pytest.approx(49 / 3)
    assert stats["sqn"] == pytest.approx(math.sqrt(3) * (49 / 3) / statistics.stdev([95, -26, -20]))


def test_no_trades_and_one_day_are_nan_not_invented() -> None:
    one_day = EQUITY.head(3)
    s = compute_stats(one_day, TRADES.clear(), CASH)
    for key in ("sharpe", "sortino", "annual_return", "annual_volatility", "calmar"):
        assert math.isnan(s[key]), key
    for key in ("win_rate", "best_trade", "avg_trade_duration_days", "expectancy", "sqn"):
        assert math.isnan(s[key]), key
    assert s["trade_count"] == 0
    assert math.isnan(s["buy_hold_return"])


def test_buy_hold_is_the_equal_weighted_mean_over_symbols() -> None:
    bars = pl.DataFrame(
        {
            "ts": [3, 1, 2, 1, 2],
            "symbol": ["A", "A", "A", "B", "B"],
            "close": [12.0, 10.0, 11.0, 40.0, 30.0],
        }
    )
    assert buy_hold_return(bars) == pytest.approx(((12 / 10 - 1) + (30 / 40 - 1)) / 2)


def test_verdicts_by_reason_counts_each_code_in_enum_order() -> None:
    frame = pl.DataFrame(
        {"reason_codes": [["EXIT_NO_EXPOSURE"], [], ["MISSING_PROTECTION", "SIZING_NO_PRICE"]]}
    )
    counts = verdicts_by_reason(frame)
    assert list(counts.items()) == [
        ("SIZING_NO_PRICE", 1),
        ("MISSING_PROTECTION", 1),
        ("EXIT_NO_EXPOSURE", 1),
    ]


def test_format_stat_reads_as_a_person_would() -> None:
    assert format_stat("total_return", 0.0512) == "5.12%"
    assert format_stat("avg_trade_duration_days", 1 + 3 / 24 + 5 / 1440) == "1d 03:05:00"
    assert format_stat("start_ts", D0 + 10 * H) == "2024-01-01 10:00 UTC"
    assert format_stat("sharpe", math.nan) == "n/a"
    assert format_stat("end_equity", 1234.5) == "1,234.50"


@pytest.fixture(scope="module")
def tight():
    return Backtest(sample_bars(), "sma_cross", stop_pct=0.001, target_pct=0.0015).run()


def test_result_stats_keep_old_keys_and_add_backstops_own(tight) -> None:
    s = tight.stats
    old = {"trade_count", "start_equity", "end_equity", "total_return", "cagr", "max_drawdown"}
    old |= {"sharpe", "sortino", "win_rate", "profit_factor", "expectancy", "exposure"}
    assert old <= set(s)
    amb = tight.ambiguity()
    assert amb["ambiguous_round_trips"] > 0
    assert s["ambiguous_exits"] == amb["ambiguous_round_trips"]
    assert (s["pnl_intrabar_low"], s["pnl_intrabar_high"]) == amb["pnl_range"]
    assert s["verdicts_by_reason"] == tight.summary()["verdicts_by_reason"]
    assert s["verdicts_by_reason"] == verdicts_by_reason(tight.verdicts)
    assert s["trade_count"] == tight.trades.height
    assert s["end_equity"] == tight.equity["equity"][-1]


def test_result_buy_hold_from_its_bars(tight) -> None:
    by_symbol = []
    for sym in sorted(set(tight.bars["symbol"].to_list())):
        close = tight.bars.filter(pl.col("symbol") == sym).sort("ts")["close"].to_list()
        by_symbol.append(close[-1] / close[0] - 1)
    assert tight.stats["buy_hold_return"] == pytest.approx(sum(by_symbol) / len(by_symbol))


def test_buy_hold_of_arrays_equals_the_frames_to_the_bit() -> None:
    # 37 symbols of uneven length and start, in engine order: the result's arrays path must
    # give the very float the bars' group-by gives (the journal's run row holds it)
    bars = gbm_bars(300, 37, seed=7).filter((pl.col("ts").hash(3) % 5) != 0)
    prepared = PreparedBars.of(bars.sort("ts", "symbol"))
    a = prepared.arrays
    fast = buy_hold_return_of_arrays(a.sym, a.close, len(a.symbols))
    assert fast == buy_hold_return(prepared.bars)
    assert fast != 0.0 and not math.isnan(fast)
    empty = np.zeros(0, dtype=np.int32)
    assert math.isnan(buy_hold_return_of_arrays(empty, np.zeros(0), 0))


def _periods_by_loop(ts, eq, cash):
    """The obvious loop: walk the curve, open a period below the peak, close it on regaining."""
    peak, peak_t, out, cur = cash, int(ts[0]), [], None
    for t, e in zip(ts.tolist(), eq.tolist(), strict=True):
        if e >= peak:
            if cur is not None:
                out.append((cur[0], t, cur[1]))
                cur = None
            peak, peak_t = e, t
        else:
            d = e / peak - 1.0
            cur = (peak_t, d if cur is None else min(d, cur[1]))
    if cur is not None:
        out.append((cur[0], int(ts[-1]), cur[1]))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_drawdown_periods_equal_the_obvious_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    eq = 1000.0 + np.cumsum(rng.normal(0.02, 1.0, 3000))  # drifting up: many periods
    ts = np.arange(3000, dtype=np.int64) * 60 * 10**9
    got = drawdown_periods(ts, eq, 1000.0)
    assert len(got) > 5
    assert got == _periods_by_loop(ts, eq, 1000.0)


@pytest.mark.parametrize("late", [0, 5_000, 70_000, 99_990])
def test_first_rows_equal_one_pass_over_every_row(late: int) -> None:
    # 30 codes from the first rows, one more starting at row ``late`` and stopping before the
    # end, one that never occurs: the blocks must give what np.minimum.at over all rows gives
    rng = np.random.default_rng(11)
    sym = rng.integers(0, 30, 100_000).astype(np.int32)
    sym[late : late + 7] = 30
    expect = np.full(32, len(sym), dtype=np.int64)
    np.minimum.at(expect, sym, np.arange(len(sym)))
    assert first_rows(sym, 32).tolist() == expect.tolist()
    assert first_rows(sym, 32)[30] == late
    rev = first_rows(sym[::-1], 32)
    assert len(sym) - 1 - rev[30] == late + 6  # the late code's last row, from the end
    assert rev[31] == len(sym)
    assert first_rows(np.zeros(0, dtype=np.int32), 3).tolist() == [0, 0, 0]
