"""Broker parity with costs, limits and futures: the backtest loop, the event driver over the
simulated exchange and the event driver over ``PortFakeBroker`` (plain Python, DESIGN.md's
rules for slippage, commissions, volume caps, DAY/IOC and the intrabar policies) agree row by
row on verdicts, orders with client ids, fills and trades, on random signals and bars.

The random cases are the property tests' (``test_properties.calm_or_wild_cases``: limit and
market entries with DAY, GTC and IOC, every leg shape, exits of any size, every commission,
slippage and intrabar model, volume caps, legs live on the entry bar or not); one symbol of
two is a futures contract (tick 0.25, multiplier 50), so fees by notional and P&L carry the
multiplier.
"""

from __future__ import annotations

import polars as pl
import pytest
from fake_port_broker import Costs, PortFakeBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import bars, entry, split_settings
from test_broker_parity import parity
from test_properties import SYMBOLS, Case, calm_or_wild_cases

from backstop.domain.enums import OrderRole, OrderStatus, ReasonCode
from backstop.domain.instruments import Instrument
from backstop.engine.config import BacktestConfig
from backstop.engine.profile import RiskProfile

DAY_NS = 86_400_000_000_000
FUTURE = Instrument(symbol=SYMBOLS[0], tick_size=0.25, multiplier=50.0, is_future=True)
MIXED = {SYMBOLS[0]: FUTURE, SYMBOLS[1]: Instrument.equity(SYMBOLS[1])}
EQUITIES = {s: Instrument.equity(s) for s in SYMBOLS}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=calm_or_wild_cases(), split=st.floats(0.2, 1.0))
def test_costs_limits_and_futures_agree_row_by_row(case: Case, split: float) -> None:
    sim, profile = split_settings(case.config)
    config = BacktestConfig(**sim)
    frame, rows = next_session_from(case, split)
    for instruments in (EQUITIES, MIXED):
        out = parity(frame, rows, profile, config, instruments)
        fees = sum(f.fee for f in out.broker.fills)
        if config.commission == "zero":
            assert fees == 0.0
        for f in out.broker.fills:
            assert f.slippage >= 0.0
            if config.slippage == "none":
                assert f.slippage == 0.0


def next_session_from(case: Case, split: float) -> tuple[pl.DataFrame, list[dict]]:
    """The case with its bars (and intents) from ``split`` of the way on moved to the next
    day: a new session, where DAY orders left from the first one expire (1.0: one day)."""
    ts = sorted(set(case.bars["ts"].to_list()))
    cut = ts[min(int(split * len(ts)), len(ts) - 1)] if split < 1.0 else None
    if cut is None:
        return case.bars, case.rows
    frame = case.bars.with_columns(
        ts=pl.when(pl.col("ts") >= cut).then(pl.col("ts") + DAY_NS).otherwise(pl.col("ts"))
    )
    rows = [{**r, "ts": r["ts"] + DAY_NS} if r["ts"] >= cut else r for r in case.rows]
    return frame, rows


def _limit_entry(frame, tif: int):  # type: ignore[no-untyped-def]
    """A buy limit at 95 with a bracket, decided at bar 0; touched only on the last bar."""
    rows = [entry(0, otype=1, limit_px=95.0, tif=tif, stop_pct=0.02, target_pct=0.04)]
    return parity(frame, rows, RiskProfile(), BacktestConfig())


def test_ioc_limit_is_cancelled_after_its_first_bar() -> None:
    out = _limit_entry(bars([(100, 101, 99, 100), (100, 101, 99, 100), (94, 95, 93, 94)]), 2)
    (e,) = out.broker.orders
    expired = 1 << int(ReasonCode.ORDER_EXPIRED)
    assert (e.role, e.status, e.reasons, e.filled) == (
        OrderRole.ENTRY,
        OrderStatus.CANCELED,
        expired,
        0.0,
    )


def test_day_limit_expires_at_the_next_session() -> None:
    frame = bars([(100, 101, 99, 100), (100, 101, 99, 100), (94, 95, 93, 94)])
    next_day = frame["ts"].to_list()
    next_day[2] += DAY_NS  # the last bar opens the next session
    out = _limit_entry(frame.with_columns(ts=pl.Series(next_day)), 0)
    (e,) = out.broker.orders
    expired = 1 << int(ReasonCode.ORDER_EXPIRED)
    assert (e.status, e.reasons, e.filled) == (OrderStatus.EXPIRED, expired, 0.0)
    same_day = _limit_entry(frame, 0)  # without the new session it fills at the open 94
    assert [(f.qty, f.price) for f in same_day.broker.fills] == [(100.0, 94.0)]


def test_fees_slippage_and_a_volume_cap_at_the_fake_broker() -> None:
    """Hand-computed: 100 shares bought at the open 100.00 with 5 bps slippage land on
    100.05 (the tick grid, against the buyer); a per-share commission of 0.005 with a 1.00
    minimum costs 1.00; a 10% cap of a 400-share bar fills 40, the rest on later bars."""
    rows = [(100, 101, 99, 100, 400), (100, 101, 99.5, 100, 400), (100, 100.5, 99.5, 100, 400)]
    config = BacktestConfig(
        slippage="bps", slippage_value=5.0, commission="per_share", commission_rate=0.005,
        commission_min=1.0, max_participation=0.1,
    )  # fmt: skip
    rows_in = [entry(0, qty=100.0, stop_pct=0.05, target_pct=0.05)]
    out = parity(bars(rows), rows_in, RiskProfile(), config)
    fills = [(f.qty, f.price, f.fee, round(f.slippage, 10)) for f in out.broker.fills]
    assert fills == [(40.0, 100.05, 1.0, 0.05), (40.0, 100.05, 1.0, 0.05)]
    assert out.positions == {"T": 80.0}
    fake = PortFakeBroker(("T",), costs=Costs(commission="percent", commission_rate=0.001))
    assert fake._commission(2.0, 100.0, 50.0) == pytest.approx(10.0)  # notional x multiplier


def test_a_day_entry_that_expires_on_the_bar_its_stop_fills_ends_expired_everywhere() -> None:
    """Hypothesis found it: a DAY limit entry partly filled under a volume cap expires at the
    next session's first bar, where its stop leg fills at the open. The simulator reported
    the fill before the expiry, so the core asked to cancel the entry's remainder and the
    port's order carried ENTRY_REMAINDER_CANCELED next to ORDER_EXPIRED, unlike the loop's.
    SimExchange now reports a step's events in the order they happened."""
    flat = [(20.0, 20.0, 20.0, 20.0, 100.0)] * 30
    frame = bars(flat + flat[:10], ts=[START + 60_000_000_000 * k for k in range(30)] + START_DAY2)
    rows = [entry(20, qty=100, otype=1, limit_px=20.0, tif=0, stop_pct=0.005, target_pct=0.01)]
    config = BacktestConfig(max_participation=0.1)
    future = {"T": Instrument(symbol="T", tick_size=0.25, multiplier=50.0, is_future=True)}
    out = parity(frame, rows, RiskProfile(), config, future)
    e = next(o for o in out.broker.orders if o.role == OrderRole.ENTRY)
    assert (e.status, e.filled) == (OrderStatus.EXPIRED, 90.0)
    assert e.reasons == 1 << int(ReasonCode.ORDER_EXPIRED)


START = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
START_DAY2 = [START + DAY_NS + 60_000_000_000 * k for k in range(10)]
