"""Parity: the numba backtest loop and the Python event driver (through the Broker protocol,
against the simulated exchange) produce the same journal, row by row."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backstop.brokers.sim.backtest import run_backtest
from backstop.brokers.sim.exchange import SimExchange
from backstop.data import gbm_bars
from backstop.engine.broker import BrokerPort
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.inputs import instrument_arrays
from backstop.engine.prepare import PreparedBars
from backstop.engine.profile import RiskProfile
from backstop.runners.stepwise import run_event_driven
from backstop.strategies import get_strategy

FRAMES = ("orders", "fills", "trades", "verdicts", "equity", "guard_events")


def _assert_same(a, b) -> None:
    for name in FRAMES:
        fa, fb = getattr(a, name), getattr(b, name)
        assert fa.height == fb.height, name
        assert fa.equals(fb), f"{name} differ"


@pytest.mark.parametrize(
    "config",
    [
        BacktestConfig(),
        BacktestConfig(
            intrabar="open_proximity",
            slippage="bps",
            slippage_value=2.0,
            commission="per_share",
            commission_rate=0.005,
            commission_min=1.0,
        ),
        BacktestConfig(max_participation=0.02),
    ],
    ids=["defaults", "costs", "volume-cap"],
)
def test_backtest_loop_and_event_driver_agree(config: BacktestConfig) -> None:
    bars = PreparedBars.of(gbm_bars(3_000, 3, seed=4, sigma=0.003))
    intents = get_strategy("sma_cross").intents(
        bars.bars, {"fast": 5, "slow": 20, "stop_pct": 0.004, "target_pct": 0.006}
    )
    fast = run_backtest(bars, intents, config)
    slow = run_event_driven(bars, intents, config)
    assert fast.round_trips > 50
    _assert_same(fast, slow)


def test_parity_with_exits_limits_and_unknown_symbols() -> None:
    bars = PreparedBars.of(gbm_bars(400, 2, seed=8, sigma=0.004))
    ts = bars.bars.get_column("ts").unique().sort().to_list()
    intents = pl.DataFrame(
        {
            "ts": [ts[10], ts[12], ts[30], ts[31], ts[60], ts[61], ts[90], ts[-1] + 1],
            "symbol": ["SYN000", "SYN001", "SYN000", "SYN000", "SYN000", "ZZZ", "SYN000", "SYN001"],
            "side": [1, -1, -1, -1, 1, 1, 1, 1],
            "intent": [0, 0, 1, 1, 0, 0, 0, 0],
            "qty": [10.0, 5.0, None, 3.0, 7.0, 1.0, 4.0, 1.0],
            "stop_pct": [0.01, 0.01, None, None, 0.02, 0.01, None, 0.01],
            "target_pct": [0.02, 0.02, None, None, 0.03, 0.02, None, 0.02],
            "otype": [0, 1, 0, 0, 2, 0, 1, 0],
            "limit_px": [None, 101.0, None, None, None, None, 99.0, None],
            "entry_stop_px": [None, None, None, None, 100.5, None, None, None],
        }
    )
    fast = run_backtest(bars, intents)
    slow = run_event_driven(bars, intents)
    _assert_same(fast, slow)
    assert "STOP" in fast.orders.filter(pl.col("role") == "ENTRY").get_column("order_type")
    reasons = set(fast.verdicts.get_column("reason_codes").explode().drop_nulls().to_list())
    assert {"UNKNOWN_SYMBOL", "NO_BAR_AFTER_SIGNAL"} <= reasons


def test_parity_when_days_roll_between_signals() -> None:
    """A profile that counts trades per day makes the loop track session days. The loop
    skips quiet bars (no event, no reachable order) in a tight inner loop; a day that starts
    on such a bar must still roll there, at its first bar, as the event driver rolls it."""
    bars = PreparedBars.of(gbm_bars(2_400, 2, seed=11, sigma=0.002))
    intents = get_strategy("sma_cross").intents(
        bars.bars, {"fast": 20, "slow": 120, "stop_pct": 0.01, "target_pct": 0.02}
    )
    profile = RiskProfile().with_settings({"risk.max_trades_per_day": 3})
    fast = run_backtest(bars, intents, profile=profile)
    slow = run_event_driven(bars, intents, profile=profile)
    _assert_same(fast, slow)
    _, specs = instrument_arrays(bars.arrays.symbols)
    day = bar_context(bars.bars, bars.arrays, specs, profile).day
    new_day = np.flatnonzero(day > np.maximum.accumulate(np.concatenate(([-1], day[:-1]))))
    started = fast.guard_events_ns.filter(pl.col("kind") == "DAY_STARTED").get_column("ts")
    assert len(new_day) >= 3
    assert started.to_list() == bars.arrays.ts[new_day].tolist()
    signal_rows = set(intents.get_column("bar").to_list())
    assert any(int(r) not in signal_rows for r in new_day[1:])  # a day began on a quiet bar


def test_parity_with_scale_outs_and_trade_types_under_an_eod_close() -> None:
    """Partial exits (``exit_fraction``, seed 003's scale-outs) and per-entry trade types
    (seed 002: the profile's EOD close is for day trades) decided and booked the same way by
    both drivers, over several sessions: each cross-down exit is preceded one bar earlier by
    a 40% scale-out, and entries are day or swing trades at random (seeded). That the swing
    trades are spared is shown by hand in tests/test_broker_parity.py."""
    bars = PreparedBars.of(gbm_bars(2_400, 2, seed=5, sigma=0.002))
    base = get_strategy("sma_cross").intents(
        bars.bars, {"fast": 20, "slow": 120, "stop_pct": 0.05, "target_pct": 0.08}
    )
    rng = np.random.default_rng(7)
    kinds = rng.integers(0, 2, base.height)
    entries = base.filter(pl.col("intent") == 0).with_columns(
        trade_type=pl.Series(kinds[: int((base.get_column("intent") == 0).sum())], dtype=pl.Int8)
    )
    exits = base.filter(pl.col("intent") == 1)
    scale_outs = exits.with_columns(
        ts=pl.col("ts") - 60_000_000_000, bar=None, exit_fraction=pl.lit(0.4)
    )
    table = pl.concat([entries, exits.with_columns(bar=None), scale_outs], how="diagonal")
    table = table.sort("ts", maintain_order=True)
    profile = RiskProfile().with_settings({"exits.eod_minutes_before_close": 5.0})
    fast = run_backtest(bars, table, profile=profile)
    slow = run_event_driven(bars, table, profile=profile)
    _assert_same(fast, slow)
    partial = fast.verdicts.filter(pl.col("approved") & (pl.col("qty") == 40.0))
    assert partial.height > 10
    entry_verdicts = fast.verdicts_ns.filter(pl.col("intent") == "ENTRY")
    types = entry_verdicts.select("trade_cycle_id", "ts", "symbol").join(
        entries.select("ts", "symbol", "trade_type"), on=["ts", "symbol"]
    )
    eod = fast.trades_ns.filter(pl.col("exit_reason") == "eod_close")
    eod_types = eod.join(types, on="trade_cycle_id").get_column("trade_type")
    assert eod.height > 0
    assert eod_types.to_list() == [0] * eod.height  # only day trades are closed at the EOD


def test_sim_exchange_implements_broker_port_v2() -> None:
    from backstop.engine.config import BacktestConfig as C
    from backstop.engine.inputs import instrument_arrays

    inst, _ = instrument_arrays(("A",))
    assert isinstance(SimExchange(("A",), inst, C().sim_params()), BrokerPort)


def test_record_buffers_grow_mid_run_without_losing_a_record() -> None:
    """200 bracketed entries at one bar need 600 orders, more than the loop first allocates
    (2 per event + 64): it must stop, grow its buffers and resume at the same event."""
    symbols = [f"S{k:03d}" for k in range(200)]
    frames = [gbm_bars(6, [s], seed=k) for k, s in enumerate(symbols)]
    bars = PreparedBars.of(pl.concat(frames).sort(["ts", "symbol"]))
    t0 = bars.bars.get_column("ts").min()
    intents = pl.DataFrame(
        {
            "ts": [t0] * len(symbols),
            "symbol": symbols,
            "side": [1] * len(symbols),
            "intent": [0] * len(symbols),
            "qty": [1.0] * len(symbols),
            "stop_pct": [0.5] * len(symbols),
            "target_pct": [0.5] * len(symbols),
        }
    )
    fast = run_backtest(bars, intents, BacktestConfig(max_working=4))
    assert fast.orders.height == 600
    assert fast.verdicts.get_column("approved").all()
    assert fast.fills.height == 200
    _assert_same(fast, run_event_driven(bars, intents, BacktestConfig(max_working=4)))


def test_run_backtest_validates_a_plain_frame() -> None:
    from backstop.errors import DataError

    bad = gbm_bars(10, 1).with_columns(high=pl.col("low") - 1.0)
    intents = pl.DataFrame({"ts": [0], "symbol": ["SYN000"], "side": [1], "intent": [0]})
    with pytest.raises(DataError, match="high"):
        run_backtest(bad, intents)


def test_parity_with_a_strategy_trailing_line() -> None:
    """Stop updates from a price line (0.5% beyond the 5-bar extreme: under the lows for the
    longs of SYN000, over the highs for the shorts of SYN001) move the stop legs the same way
    in both drivers, with tighter levels, looser ones and levels while flat."""
    from backstop.strategies import conform_intents, stop_updates

    bars = PreparedBars.of(gbm_bars(300, 2, seed=3, sigma=0.004))
    frame = bars.bars
    ts = frame.get_column("ts").unique().sort().to_list()
    line = (
        pl.when(pl.col("symbol") == "SYN001")
        .then(pl.col("high").rolling_max(5).over("symbol") * 1.005)
        .otherwise(pl.col("low").rolling_min(5).over("symbol") * 0.995)
    )
    entries = pl.DataFrame(
        {
            "ts": [ts[20], ts[25], ts[150], ts[160]],
            "symbol": ["SYN000", "SYN001", "SYN000", "SYN001"],
            "side": [1, -1, 1, -1],
            "intent": [0, 0, 0, 0],
            "qty": [10.0, 5.0, 7.0, 4.0],
            "stop_pct": [0.02, 0.02, 0.03, 0.03],
            "target_pct": [0.05, 0.05, 0.05, 0.05],
        }
    )
    table = pl.concat([conform_intents(entries), conform_intents(stop_updates(frame, line))]).sort(
        "ts", maintain_order=True
    )
    fast = run_backtest(bars, table)
    slow = run_event_driven(bars, table)
    _assert_same(fast, slow)
    codes = fast.verdicts.filter(pl.col("intent") == "STOP_UPDATE").get_column("reason_codes")
    seen = set(codes.explode().to_list())
    assert {"STOP_MOVED", "STOP_NOT_TIGHTER", "STOP_UPDATE_NO_STOP"} <= seen


def test_a_stop_limit_that_rests_as_a_limit_is_journaled_as_one() -> None:
    """Gapped past its limit at the open, a stop-limit rests as a limit from the next bar:
    the venue reports it (REPLACED with the new type) and the event driver's orders say so,
    as the backtest loop's book does."""
    from kit import bars, entry
    from kit import intents as table_of

    flat = (100.0, 100.5, 99.5, 100.0)
    frame = bars(
        [(100, 101, 99, 100), (102, 102.2, 101.2, 101.8), (100.5, 101.6, 100.2, 101.2), flat]
    )
    row = entry(0, otype=3, entry_stop_px=101.0, limit_px=101.5, stop_pct=0.02)
    table = table_of([{**row, "target_px": 110.0}])
    fast, slow = run_backtest(frame, table), run_event_driven(frame, table)
    _assert_same(fast, slow)
    assert slow.orders.get_column("order_type").to_list() == ["LIMIT", "STOP", "LIMIT"]
    assert slow.fills.get_column("price").to_list()[0] == 100.5
