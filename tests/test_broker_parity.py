"""Broker parity: the same signals through the backtest loop, through the event driver over
the simulated exchange (compiled kernels behind Broker port v2) and through the event driver
over ``PortFakeBroker`` (plain Python, tests/fake_port_broker.py, which implements only the
port) give the same verdicts, orders with client ids, fills, trades and positions.

The fake shares no matching code with the kernels, so agreement checks the kernels against
DESIGN.md's fill rules as written, and checks that the pipeline reads only what the port says
(a live adapter will be just as foreign to it as the fake). Each scenario also asserts the
values the rules give by hand, so a bug common to all three cannot pass unnoticed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl
import pytest
from fake_port_broker import Costs, PortFakeBroker, PortOrder, bit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import bars, combine, entry, exit_, intents, price_paths, ts_of

from backstop.brokers.sim.backtest import run_backtest
from backstop.brokers.sim.exchange import SimExchange
from backstop.domain.commands import CancelOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderStatus, OrderType, ReasonCode, Side
from backstop.domain.events import Execution, OrderUpdate, OrderUpdateKind
from backstop.domain.instruments import Instrument
from backstop.domain.intents import conform_intents
from backstop.domain.orders import client_order_id
from backstop.engine.brackets import Venue
from backstop.engine.broker import BrokerPort
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.core.params import SimParams
from backstop.engine.core.records import N_TRADES, N_VERDICTS, Instruments
from backstop.engine.driver import PortDriver
from backstop.engine.inputs import bar_arrays, event_array, instrument_arrays, session_days
from backstop.engine.prepare import guard_for
from backstop.engine.profile import RiskProfile
from backstop.runners.drive import Cursor
from backstop.runners.drive import drive as drive_loop

R = ReasonCode
INSTRUMENTS = {s: Instrument.equity(s) for s in ("T", "A", "B")}
PROFILE = RiskProfile().with_settings({"entry.require_protection": True, "risk.max_positions": 2})
TRADE_FIELDS = ("cycle", "sym", "side", "qty", "entry_px", "exit_px", "pnl", "exit_role")
FILL_FIELDS = ("order", "cycle", "strategy", "sym", "side", "role", "qty", "price", "ts", "bar")
FLAT = (100.0, 100.5, 99.5, 100.0)  # a bar that touches no bracket of +-2% around 100

BrokerFactory = Callable[[tuple[str, ...], Instruments, SimParams], Any]


# ---- the drive loop (runners/drive.py, the one every Python run uses), broker handed in -----
def drive_port(
    frame: pl.DataFrame,
    table: pl.DataFrame,
    profile: RiskProfile,
    config: BacktestConfig,
    make_broker: BrokerFactory | None = None,
    instruments: dict[str, Instrument] = INSTRUMENTS,
) -> tuple[PortDriver, Any]:
    """The same run through the port driver (commands out, events in, brackets in the core)
    over ``make_broker`` (default ``PortFakeBroker``, which implements only Broker port v2,
    with the config's costs and fill options). Bars carry their session days (DAY orders
    expire at a new session, as ``prepare_run`` gives the loop)."""
    a = bar_arrays(frame.rechunk())
    a = replace(a, session=session_days(frame.rechunk(), config.session_tz))
    inst, specs = instrument_arrays(a.symbols, instruments)
    events, strategies, _ = event_array(conform_intents(table), frame, a.symbols)
    ctx = bar_context(frame, a, specs, profile)
    prm = config.sim_params()
    if make_broker is None:
        ticks = dict(zip(a.symbols, inst.tick.tolist(), strict=True))
        broker = PortFakeBroker(
            a.symbols,
            max_working=prm.max_working,
            ticks=ticks,
            costs=costs_of(config, a.symbols, inst),
        )
    else:
        broker = make_broker(a.symbols, inst, prm)
    guard = guard_for(specs, strategies, profile, config.initial_cash)
    driver = PortDriver(
        broker, a.symbols, inst, prm, config.initial_cash, profile, guard, ctx,
        run_id="parity", venue=Venue(reduce_only=True),
    )  # fmt: skip
    cursor = drive_loop(broker, driver, a, events, Cursor())
    assert cursor.events_done == len(events), "every event was decided"
    return driver, broker


def _port_orders(driver: PortDriver) -> list[tuple[int, int, int, int, float, float, int]]:
    return [
        (o.order_no, o.role, o.side, o.status, o.qty, o.filled, o.reasons)
        for o in driver.mirror.orders.values()
    ]


def costs_of(config: BacktestConfig, symbols: tuple[str, ...], inst: Instruments) -> Costs:
    """The fake's costs and fill options: the config's, by name."""
    return Costs(
        slippage=config.slippage,
        slippage_value=config.slippage_value,
        commission=config.commission,
        commission_rate=config.commission_rate,
        commission_min=config.commission_min,
        max_participation=config.max_participation,
        intrabar=config.intrabar,
        legs_live_on_entry_bar=config.legs_live_on_entry_bar,
        mults=dict(zip(symbols, inst.mult.tolist(), strict=True)),
        lots=dict(zip(symbols, inst.lot.tolist(), strict=True)),
    )


def sim_broker(symbols: tuple[str, ...], inst: Instruments, prm: SimParams) -> SimExchange:
    return SimExchange(symbols, inst, prm)


@dataclass(frozen=True)
class OrderView:
    """One order as the core knows it (mirror: role, status, reasons) joined with what the
    fake broker holds for it (its levels, when it went live, a trailing stop's water)."""

    order_id: int
    symbol: str
    side: int
    role: OrderRole
    status: OrderStatus
    reasons: int
    qty: float
    filled: float
    reduce_only: bool
    otype: OrderType
    stop: float
    limit: float
    live_from: int
    water: float

    @property
    def working(self) -> bool:
        return self.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class PortView:
    """The port driver's run over ``PortFakeBroker``, by the core's order numbers."""

    def __init__(self, driver: PortDriver, fake: PortFakeBroker) -> None:
        self.fake = fake
        self.number = {cid: o.order_no for cid, o in driver.mirror.orders.items()}
        self.orders = [_view(o, fake.orders[cid]) for cid, o in driver.mirror.orders.items()]
        self.fills = list(fake.executions)
        self.log = list(fake.log)

    def open_orders(self, symbol: str) -> list[OrderView]:
        return [o for o in self.orders if o.symbol == symbol and o.working]


def _view(o: Any, p: PortOrder) -> OrderView:
    return OrderView(
        o.order_no, o.symbol, o.side, OrderRole(o.role), OrderStatus(o.status), o.reasons,
        o.qty, o.filled, o.reduce_only, p.otype, p.stop, p.limit, p.live_from, p.water,
    )  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What a run decided and what happened, from the PortFakeBroker side of the parity."""

    verdicts: np.ndarray
    trades: list[dict[str, Any]]
    positions: dict[str, float]
    broker: PortView

    def verdict(self, k: int) -> dict[str, Any]:
        v = self.verdicts[k]
        return {name: v[name].item() for name in self.verdicts.dtype.names}


def _verdicts(driver: PortDriver) -> np.ndarray:
    return driver.dec.verdicts[: int(driver.dec.ctr[N_VERDICTS])].copy()


def _trades(driver: PortDriver) -> list[dict[str, Any]]:
    rows = driver.pf.trades[: int(driver.pf.ctr[N_TRADES])]
    return [{f: r[f].item() for f in TRADE_FIELDS} for r in rows]


def parity(
    frame: pl.DataFrame,
    rows: list[dict[str, Any]],
    profile: RiskProfile = PROFILE,
    config: BacktestConfig | None = None,
    instruments: dict[str, Instrument] = INSTRUMENTS,
) -> Outcome:
    """Run ``rows`` through the backtest loop, the port driver over ``SimExchange`` and over
    ``PortFakeBroker``; assert every record agrees row by row (verdicts, orders with client
    ids, fills, trades, positions); return the fake's run."""
    config = config or BacktestConfig()
    table = intents(rows)
    loop = run_backtest(frame, table, config, instruments=instruments, profile=profile).records
    vs = loop.verdicts
    fs = loop.fills
    loop_trades = [{f: r[f].item() for f in TRADE_FIELDS} for r in loop.trades]
    loop_orders = [
        tuple(o[k].item() for k in ("id", "role", "side", "status", "qty", "filled", "reasons"))
        for o in loop.orders
    ]
    loop_ids = [
        client_order_id("parity", int(o["cycle"]), OrderRole(int(o["role"])), int(o["leg_no"]))
        for o in loop.orders
    ]
    assert len(set(loop_ids)) == len(loop_ids)  # never reused
    held: dict[str, float] = {}
    for r in loop.fills:
        held[str(r["sym"])] = held.get(str(r["sym"]), 0.0) + int(r["side"]) * float(r["qty"])
    out = None
    for make in (sim_broker, None):
        d_port, port = drive_port(frame, table, profile, config, make, instruments)
        where = type(port).__name__
        vp = _verdicts(d_port)
        assert len(vs) == len(vp), (where, len(vs), len(vp))
        for name in vs.dtype.names:
            np.testing.assert_array_equal(vs[name], vp[name], err_msg=f"{where} verdicts.{name}")
        assert _trades(d_port) == loop_trades, where
        assert [[r[k].item() for k in FILL_FIELDS] for r in d_port.fill_records()] == [
            [r[k].item() for k in FILL_FIELDS] for r in fs
        ], where
        assert _port_orders(d_port) == loop_orders, where
        assert list(d_port.mirror.orders) == loop_ids, where  # same client ids, same order
        positions = {s: d_port.mirror.position(s) for s in d_port.symbols}
        by_index = {str(k): positions[s] for k, s in enumerate(d_port.symbols)}
        assert {k: v for k, v in by_index.items() if k in held} == {
            k: pytest.approx(v) for k, v in held.items()
        }, where
        if isinstance(port, PortFakeBroker):
            assert {s: port.held[s] for s in d_port.symbols} == positions
            out = Outcome(vp, _trades(d_port), positions, PortView(d_port, port))
        else:
            assert {p.symbol: p.qty for p in port.positions()} == {
                s: q for s, q in positions.items() if q
            }
    assert out is not None
    return out


def trade(
    cycle: int, side: int, qty: float, entry_px: float, exit_px: float, role: OrderRole, sym=0
) -> dict[str, Any]:
    """A round trip as the portfolio records it (P&L gross, no fees here)."""
    pnl = qty * (exit_px - entry_px) * side
    return {
        "cycle": cycle,
        "sym": sym,
        "side": side,
        "qty": qty,
        "entry_px": entry_px,
        "exit_px": exit_px,
        "pnl": pytest.approx(pnl),
        "exit_role": int(role),
    }


def statuses(view: PortView) -> list[tuple[OrderRole, OrderStatus]]:
    return [(o.role, o.status) for o in view.orders]


# ---- brackets ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "bar2", "role", "exit_px"),
    [
        (1, (100.0, 105.0, 97.0, 99.0), OrderRole.STOP_LOSS, 98.0),  # both touched: stop first
        (1, (101.0, 104.5, 100.5, 104.0), OrderRole.TAKE_PROFIT, 104.0),
        (1, (96.0, 97.0, 95.0, 96.0), OrderRole.STOP_LOSS, 96.0),  # gap through the stop
        (-1, (100.0, 101.0, 95.5, 96.0), OrderRole.TAKE_PROFIT, 96.0),
        (-1, (103.0, 103.5, 101.0, 102.0), OrderRole.STOP_LOSS, 103.0),
    ],
    ids=["long-stop-first", "long-target", "long-gap", "short-target", "short-gap"],
)
def test_bracketed_market_entry_exits_by_its_legs(
    side: int, bar2: tuple[float, ...], role: OrderRole, exit_px: float
) -> None:
    frame = bars([(100, 101, 99, 100), FLAT, bar2, FLAT])
    out = parity(frame, [entry(0, side=side, stop_pct=0.02, target_pct=0.04)])
    v = out.verdict(0)
    assert (v["approved"], v["reasons"], v["entry_order"], v["qty"]) == (True, 0, 0, 100.0)
    assert (v["side"], v["position"], v["equity"]) == (side, 0.0, 100_000.0)
    assert out.trades == [trade(0, side, 100.0, 100.0, exit_px, role)]
    assert out.positions == {"T": 0.0}
    stop, target = out.broker.orders[1], out.broker.orders[2]
    assert (stop.stop, target.limit) == ((98.0, 104.0) if side > 0 else (102.0, 96.0))
    assert stop.live_from == target.live_from == 1  # entry filled at the open: live on bar 1
    winner, loser = (stop, target) if role == OrderRole.STOP_LOSS else (target, stop)
    assert winner.status == OrderStatus.FILLED
    assert (loser.status, loser.reasons) == (OrderStatus.CANCELED, bit(R.OCO_SIBLING_FILLED))
    number = out.broker.number
    kinds = [
        (type(e).__name__, number[e.client_order_id], getattr(e, "kind", None))
        for e in out.broker.log
    ]
    assert kinds == [  # a fill with nothing left is the order's FILLED (leaves_qty 0)
        ("OrderUpdate", 0, OrderUpdateKind.ACCEPTED),
        ("Execution", 0, None),
        ("OrderUpdate", 1, OrderUpdateKind.ACCEPTED),
        ("OrderUpdate", 2, OrderUpdateKind.ACCEPTED),
        ("Execution", winner.order_id, None),
        ("OrderUpdate", loser.order_id, OrderUpdateKind.CANCELED),
    ]
    fills = [e for e in out.broker.log if isinstance(e, Execution)]
    assert [e.leaves_qty for e in fills] == [0.0, 0.0]
    fill_ts = [e.ts_event for e in fills]
    assert fill_ts == [ts_of(1), ts_of(2)]
    assert out.broker.log[-1].ts_event == ts_of(2)  # OCO sibling cancelled at the fill's ts


def test_trailing_stop_ratchets_with_each_finished_bar() -> None:
    frame = bars([(100, 101, 99, 100), (100, 103, 99.5, 102.5), (102, 102.5, 100.5, 101), FLAT])
    out = parity(frame, [entry(0, trail_pct=0.02, target_pct=0.05)])
    leg = out.broker.orders[1]
    assert (leg.role, leg.otype, leg.water) == (OrderRole.TRAILING, OrderType.TRAILING_STOP, 103)
    # 98 at the fill, 103 - 2.06 = 100.94 after bar 1; bar 2's low 100.5 takes it out
    assert out.trades == [trade(0, 1, 100.0, 100.0, 100.94, OrderRole.TRAILING)]


# ---- exits ---------------------------------------------------------------------------------
def test_exit_signal_closes_the_position_and_its_legs_go() -> None:
    frame = bars([(100, 101, 99, 100), FLAT, FLAT, (100.2, 100.5, 99.5, 100), FLAT])
    out = parity(frame, [entry(0, stop_px=95.0, target_px=110.0), exit_(2)])
    e, x = out.verdict(0), out.verdict(1)
    assert (e["stop_px"], e["target_px"], e["risk"]) == (95.0, 110.0, 500.0)
    assert (x["approved"], x["reasons"], x["side"], x["qty"]) == (True, 0, -1, 100.0)
    assert (x["position"], x["entry_order"], x["intent"]) == (100.0, 3, 1)
    assert out.trades == [trade(0, 1, 100.0, 100.0, 100.2, OrderRole.SIGNAL_EXIT)]
    for leg in out.broker.orders[1:3]:  # legs gone once the exit left the position flat
        assert leg.status == OrderStatus.CANCELED
        assert leg.reasons == bit(R.LEG_CANCELED_POSITION_CLOSED)
    assert not out.broker.open_orders("T")


def test_exits_while_flat_are_refused() -> None:
    frame = bars([(100, 101, 99, 100), FLAT, (100, 104.5, 99.5, 104), FLAT])
    rows = [exit_(0), entry(0, stop_pct=0.02, target_pct=0.04), exit_(3, qty=10)]
    out = parity(frame, rows)
    flat = bit(R.EXIT_NO_EXPOSURE) | bit(R.MISSING_PROTECTION)  # as an entry it would be bare
    first, _, last = (out.verdict(k) for k in range(3))
    assert (first["approved"], first["reasons"], first["entry_order"]) == (False, flat, -1)
    assert (last["approved"], last["reasons"], last["qty"]) == (False, flat, 0.0)
    assert out.trades == [trade(1, 1, 100.0, 100.0, 104.0, OrderRole.TAKE_PROFIT)]
    assert len(out.broker.orders) == 3  # the refused exits sent nothing


def test_exit_larger_than_the_position_is_clamped() -> None:
    frame = bars([(100, 101, 99, 100), FLAT, FLAT, (99.5, 100, 99, 99.5), FLAT])
    out = parity(frame, [entry(0, stop_pct=0.02, target_pct=0.04), exit_(2, qty=250)])
    x = out.verdict(1)
    assert (x["approved"], x["reasons"], x["qty"]) == (True, bit(R.EXIT_CLAMPED_REDUCE_ONLY), 100)
    assert out.trades == [trade(0, 1, 100.0, 100.0, 99.5, OrderRole.SIGNAL_EXIT)]


def test_partial_exits_resize_the_legs_then_the_rest_is_already_closing() -> None:
    frame = bars([(100, 101, 99, 100), FLAT, FLAT, (100.5, 101, 100, 100.5), FLAT, FLAT])
    rows = [
        entry(0, stop_pct=0.02, target_pct=0.04),
        exit_(2, qty=40),
        exit_(3),  # the rest: 60
        exit_(3),  # nothing left that is not already being closed
    ]
    out = parity(frame, rows)
    assert [out.verdict(k)["qty"] for k in range(4)] == [100.0, 40.0, 60.0, 0.0]
    assert out.verdict(3)["reasons"] == bit(R.ALREADY_CLOSED)
    stop, target = out.broker.orders[1:3]
    assert stop.qty == target.qty == 60.0  # shrunk to the position after the first exit
    assert stop.reasons & bit(R.LEG_RESIZED_TO_POSITION)
    assert stop.status == target.status == OrderStatus.CANCELED
    # 40 sold at 100.5 (bar 3) and 60 at 100.0 (bar 4): exit price 100.2 on average
    (t,) = out.trades
    assert {**t, "exit_px": pytest.approx(t["exit_px"])} == {
        **trade(0, 1, 100.0, 100.0, 100.2, OrderRole.SIGNAL_EXIT),
        "exit_px": pytest.approx(100.2),
    }


def test_exit_fractions_scale_out_by_lots_of_the_position_left() -> None:
    """Partial exits by ``exit_fraction`` (seed 003's Bear Trap scales out): each closes its
    share of the position still open, rounded half-down to the lot (0.5 x 7 = 3.5 -> 3,
    0.4 x 4 = 1.6 -> 2); a share that rounds to no lot (0.2 x 2) is a refused verdict; the
    legs shrink with each fill; the fills are one trade at their average exit price."""
    rows = [FLAT, FLAT, FLAT, (100.5, 101, 100, 100.5), (100.2, 100.5, 99.8, 100), FLAT]
    frame = bars([*rows, (99.8, 100, 99.5, 99.8), FLAT])
    table = [
        entry(0, qty=7, stop_pct=0.02, target_pct=0.04),
        exit_(2, exit_fraction=0.5),
        exit_(3, exit_fraction=0.4),
        exit_(4, exit_fraction=0.2),
        exit_(5),  # the rest
    ]
    out = parity(frame, table)
    verdicts = [out.verdict(k) for k in range(5)]
    assert [v["qty"] for v in verdicts] == [7.0, 3.0, 2.0, 0.0, 2.0]
    assert [v["position"] for v in verdicts] == [0.0, 7.0, 4.0, 2.0, 2.0]
    assert [v["approved"] for v in verdicts] == [True, True, True, False, True]
    assert verdicts[3]["reasons"] == bit(R.SIZING_ZERO_QTY)
    assert [v["reasons"] for v in verdicts[1:3]] == [0, 0]
    stop, target = out.broker.orders[1:3]
    assert stop.qty == target.qty == 2.0  # shrunk after each scale-out
    assert stop.reasons & bit(R.LEG_RESIZED_TO_POSITION)
    assert stop.status == target.status == OrderStatus.CANCELED
    exits = [o for o in out.broker.orders if o.role == OrderRole.SIGNAL_EXIT]
    assert [(o.qty, o.filled) for o in exits] == [(3.0, 3.0), (2.0, 2.0), (2.0, 2.0)]
    (t,) = out.trades
    exit_px = (3 * 100.5 + 2 * 100.2 + 2 * 99.8) / 7
    assert {**t, "exit_px": pytest.approx(t["exit_px"])} == {
        **trade(0, 1, 7.0, 100.0, exit_px, OrderRole.SIGNAL_EXIT),
        "exit_px": pytest.approx(exit_px),
    }
    assert out.positions == {"T": 0.0}


def test_exit_manager_time_stop_sends_an_exit() -> None:
    rows = [(100, 101, 99, 100), FLAT, (100, 100.5, 99.5, 99.8), (99.9, 100, 99.5, 99.9)]
    frame = bars([*rows, (99.7, 100, 99.5, 99.8)])
    profile = PROFILE.with_settings({"exits.time_stop_minutes": 2.0})
    out = parity(frame, [entry(0, stop_pct=0.02, target_pct=0.04)], profile=profile)
    x = out.verdict(1)  # decided at bar 3's close: 2 minutes in, no progress
    assert (x["event"], x["ts"], x["approved"], x["cycle"]) == (-1, ts_of(3), True, 0)
    assert (x["reasons"], x["side"], x["qty"], x["entry_order"]) == (
        bit(R.TIME_STOP_EXIT),
        -1,
        100.0,
        3,
    )
    assert out.trades == [trade(0, 1, 100.0, 100.0, 99.7, OrderRole.TIME_STOP)]


def test_time_stop_closes_scalp_trades_but_spares_swing_trades() -> None:
    """seed 002: "Time Stop: position open > 2 hours with no progress (day trades)": the
    profile's time stop is for intraday trades, day trades (above) and scalps (A) alike; the
    swing trade (B) entered at the same bar is held. Both drivers send one exit, for A."""
    rows = [(100, 101, 99, 100), FLAT, (100, 100.5, 99.5, 99.8), (99.9, 100, 99.5, 99.9)]
    shape = [*rows, (99.7, 100, 99.5, 99.8)]
    frame = combine(bars(shape, "A"), bars(shape, "B"))
    profile = PROFILE.with_settings({"exits.time_stop_minutes": 2.0})
    out = parity(
        frame,
        [entry(0, symbol=s, stop_pct=0.02, target_pct=0.04, trade_type=t)
         for s, t in (("A", 2), ("B", 1))],
        profile=profile,
    )  # fmt: skip
    exits = [out.verdict(k) for k in range(2, len(out.verdicts))]
    assert [(x["ts"], x["sym"], x["reasons"]) for x in exits] == [
        (ts_of(3), 0, bit(R.TIME_STOP_EXIT))
    ]
    assert out.positions == {"A": 0.0, "B": 100.0}


# ---- entries -------------------------------------------------------------------------------
def test_exit_fractions_at_one_bar_share_out_what_is_not_already_closing() -> None:
    """Two scale-outs decided at one close (seed 003: 40% then 30% of the entry): the second
    is a share of what the first does not already close (0.5 x 60 = 30), so together they
    close 70, and the runner's 30 stays protected by the shrunk legs."""
    frame = bars([FLAT, FLAT, FLAT, (100.5, 101, 100, 100.5), FLAT])
    rows = [
        entry(0, stop_pct=0.02, target_pct=0.04),
        exit_(2, exit_fraction=0.4),
        exit_(2, exit_fraction=0.5),
    ]
    out = parity(frame, rows)
    assert [out.verdict(k)["qty"] for k in range(3)] == [100.0, 40.0, 30.0]
    assert [out.verdict(k)["approved"] for k in range(3)] == [True, True, True]
    assert out.positions == {"T": 30.0}
    stop, target = out.broker.orders[1:3]
    assert (stop.qty, target.qty) == (30.0, 30.0)
    assert stop.status == target.status == OrderStatus.ACCEPTED
    assert out.trades == []


def test_end_of_day_close_spares_the_swing_trade_of_the_same_session() -> None:
    """seed 002: the EOD close is for day trades; a swing trade entered at the same bar in
    another symbol is held through the close. Both drivers send one EOD exit, for A only."""
    close = ts_of(390)  # 16:00 New York
    stamps = [close - (6 - i) * 60_000_000_000 for i in range(6)]  # 15:54 .. 15:59
    frame = combine(bars([FLAT] * 6, "A", ts=stamps), bars([FLAT] * 6, "B", ts=stamps))
    profile = PROFILE.with_settings({"exits.eod_minutes_before_close": 5.0})
    rows = [
        entry(stamps[0], symbol="A", stop_pct=0.02, target_pct=0.04, trade_type=0),
        entry(stamps[0], symbol="B", stop_pct=0.02, target_pct=0.04, trade_type=1),
    ]
    out = parity(frame, rows, profile=profile)
    eod = out.verdict(2)  # the engine's exit, decided at the 15:55 bar's close
    assert (eod["event"], eod["ts"], eod["sym"], eod["reasons"]) == (
        -1,
        stamps[1],
        0,
        bit(R.EOD_CLOSE_EXIT),
    )
    assert len(out.verdicts) == 3  # no exit for B
    assert out.trades == [trade(0, 1, 100.0, 100.0, 100.0, OrderRole.EOD_CLOSE, sym=0)]
    assert out.positions == {"A": 0.0, "B": 100.0}


def test_duplicate_and_conflicting_entries_are_refused() -> None:
    frame = bars([(100, 101, 99, 100), FLAT, FLAT, FLAT])
    rows = [
        entry(0, stop_pct=0.02, target_pct=0.04),
        entry(0, stop_pct=0.02, target_pct=0.04),  # an entry is already working
        entry(2, stop_pct=0.02, target_pct=0.04),  # the position is held
        entry(2, side=-1, stop_pct=0.02, target_pct=0.04),  # against the position
    ]
    out = parity(frame, rows)
    got = [(out.verdict(k)["approved"], out.verdict(k)["reasons"]) for k in range(4)]
    assert got == [
        (True, 0),
        (False, bit(R.DUPLICATE_POSITION)),
        (False, bit(R.DUPLICATE_POSITION)),
        (False, bit(R.CONFLICTING_POSITION)),
    ]
    assert out.positions == {"T": 100.0}
    assert [o.role for o in out.broker.open_orders("T")] == [
        OrderRole.STOP_LOSS,
        OrderRole.TAKE_PROFIT,
    ]


def test_limit_entries_fill_at_the_better_of_open_and_limit() -> None:
    frame = bars(
        [
            (100, 101, 99, 100),
            (100, 100.5, 97.9, 99.2),  # touched inside: fills at 99; legs live from bar 2
            (99.2, 101.5, 99, 101),  # target 100.98
            (101, 101.5, 100.5, 101),
            (98.5, 100.6, 98.4, 100.5),  # gaps under the limit: fills at the open 98.5
            (100.5, 100.6, 100, 100.5),
            FLAT,
        ]
    )
    rows = [
        entry(0, otype=1, limit_px=99.0, stop_pct=0.01, target_pct=0.02),
        entry(3, otype=1, limit_px=99.0, stop_px=95.0, target_pct=0.02),
        entry(6, otype=1, limit_px=90.0, stop_pct=0.01, target_pct=0.02),  # never touched
    ]
    out = parity(frame, rows)
    assert [out.verdict(k)["entry_order"] for k in range(3)] == [0, 3, 6]
    assert out.trades == [
        trade(0, 1, 100.0, 99.0, 100.98, OrderRole.TAKE_PROFIT),
        trade(1, 1, 100.0, 98.5, 100.47, OrderRole.TAKE_PROFIT),  # legs live on the open bar
    ]
    assert out.broker.orders[1].live_from == 2 and out.broker.orders[4].live_from == 4
    (working,) = out.broker.open_orders("T")
    assert (working.order_id, working.role, working.status) == (
        6,
        OrderRole.ENTRY,
        OrderStatus.ACCEPTED,
    )


@pytest.mark.parametrize(
    ("otype", "limit_px", "bar1", "entry_px"),
    [
        (2, None, (100, 100.8, 99.5, 100.5), 101.0),  # not triggered on bar 1; at 101 on bar 2
        (3, 101.5, (102, 102.2, 101.2, 101.8), 100.5),  # gapped past its limit: rests as limit
    ],
    ids=["stop", "stop-limit"],
)
def test_stop_entries(otype: int, limit_px: float | None, bar1: tuple, entry_px: float) -> None:
    frame = bars([(100, 101, 99, 100), bar1, (100.5, 101.6, 100.2, 101.2), FLAT])
    row = entry(0, otype=otype, entry_stop_px=101.0, limit_px=limit_px, stop_pct=0.02)
    out = parity(frame, [{**row, "target_px": 110.0}])
    assert out.verdict(0)["approved"]
    e = out.broker.orders[0]
    assert (e.status, e.filled, e.otype) == (
        OrderStatus.FILLED,
        100.0,
        OrderType.LIMIT if otype == 3 else OrderType.STOP,
    )
    assert out.broker.fills[0].price == entry_px and out.broker.fills[0].ts_event == ts_of(2)
    assert out.positions == {"T": 100.0}


def test_two_symbols_and_max_positions() -> None:
    rows_a = [(100, 101, 99, 100), FLAT, (99, 99.5, 97, 98), FLAT, FLAT]
    frame = combine(bars(rows_a, symbol="A"), bars([FLAT] * 5, symbol="B"))
    profile = PROFILE.with_settings({"risk.max_positions": 1})
    rows = [
        entry(0, symbol="A", stop_pct=0.02, target_pct=0.04),
        entry(1, symbol="B", stop_pct=0.02, target_pct=0.04),  # A is held: one position max
        entry(3, symbol="B", stop_pct=0.02, target_pct=0.04),  # A stopped out on bar 2
    ]
    out = parity(frame, rows, profile=profile)
    got = [(out.verdict(k)["sym"], out.verdict(k)["reasons"]) for k in range(3)]
    assert got == [(0, 0), (1, bit(R.MAX_POSITIONS)), (1, 0)]
    assert out.trades == [trade(0, 1, 100.0, 100.0, 98.0, OrderRole.STOP_LOSS)]
    assert out.positions == {"A": 0.0, "B": 100.0}


def test_manual_kill_cancels_entries_and_flattens() -> None:
    frame = combine(
        bars([(100, 101, 99, 100), FLAT, FLAT, (100.3, 100.5, 99.5, 100), FLAT], symbol="A"),
        bars([FLAT] * 5, symbol="B"),
    )
    rows = [
        entry(0, symbol="A", stop_pct=0.02, target_pct=0.04),
        entry(0, symbol="B", otype=1, limit_px=90.0, stop_pct=0.02, target_pct=0.04),
        {"ts": ts_of(2), "kind": 2, "control": 0},  # manual kill switch
        entry(3, symbol="B", stop_pct=0.02, target_pct=0.04),
    ]
    out = parity(frame, rows)
    kill = out.verdict(2)  # the flatten order the kill switch sent for A
    assert (kill["sym"], kill["event"], kill["reasons"], kill["qty"]) == (
        0,
        -1,
        bit(R.KILL_SWITCH_FLATTEN),
        100.0,
    )
    late = out.verdict(3)
    assert (late["approved"], late["reasons"] & bit(R.KILL_SWITCH_ACTIVE) != 0) == (False, True)
    b_entry = out.broker.orders[1]
    assert b_entry.status == OrderStatus.CANCELED
    assert b_entry.reasons == bit(R.KILL_SWITCH_ACTIVE)
    assert out.trades == [trade(0, 1, 100.0, 100.0, 100.3, OrderRole.KILL_SWITCH)]
    assert out.positions == {"A": 0.0, "B": 0.0}


def test_broker_rejection_refuses_the_verdict() -> None:
    """With two working orders allowed per symbol, the bracket's legs fill the quota: the
    exit signal's order is REJECTED by the broker and its verdict says so."""
    frame = bars([(100, 101, 99, 100), FLAT, FLAT, (99, 99.5, 97.5, 98), FLAT])
    rows = [entry(0, stop_pct=0.02, target_pct=0.04), exit_(2)]
    out = parity(frame, rows, config=BacktestConfig(max_working=2))
    x = out.verdict(1)
    assert (x["approved"], x["reasons"], x["entry_order"]) == (
        False,
        bit(R.TOO_MANY_WORKING_ORDERS),
        3,
    )
    assert out.broker.orders[3].status == OrderStatus.REJECTED
    assert out.trades == [trade(0, 1, 100.0, 100.0, 98.0, OrderRole.STOP_LOSS)]


def test_stop_updates_move_the_leg_at_either_broker() -> None:
    frame = bars([(100, 101, 99, 100), FLAT, (100.2, 101, 100, 100.8), (100.4, 100.5, 99.9, 100)])
    rows = [
        entry(0, stop_pct=0.02, target_pct=0.04),
        {"ts": ts_of(1), "symbol": "T", "kind": 3, "stop_px": 99.0},
        {"ts": ts_of(2), "symbol": "T", "kind": 3, "stop_px": 98.0},  # looser: refused
        {"ts": ts_of(2), "symbol": "T", "kind": 3, "stop_px": 100.1},
    ]
    out = parity(frame, rows)
    got = [(out.verdict(k)["approved"], out.verdict(k)["reasons"]) for k in (1, 2, 3)]
    assert got == [
        (True, bit(R.STOP_MOVED)),
        (False, bit(R.STOP_NOT_TIGHTER)),
        (True, bit(R.STOP_MOVED)),
    ]
    stop = out.broker.orders[1]
    assert (stop.stop, stop.status, stop.reasons & bit(R.STOP_MOVED) != 0) == (
        100.1,
        OrderStatus.FILLED,
        True,
    )
    assert out.trades == [trade(0, 1, 100.0, 100.0, 100.1, OrderRole.STOP_LOSS)]


def test_port_fake_broker_is_a_broker_port_and_refuses_native_brackets() -> None:
    fake = PortFakeBroker(("T",))
    assert isinstance(fake, BrokerPort)
    entry_cmd = SubmitOrder("c-0", "T", Side.BUY, 1.0, ts=ts_of(0))
    leg = SubmitOrder(
        "c-1", "T", Side.SELL, 1.0, OrderType.STOP, role=OrderRole.STOP_LOSS, stop_price=99.0,
        reduce_only=True, parent_id="c-0",
    )  # fmt: skip
    with pytest.raises(NotImplementedError, match="native brackets"):
        fake.submit(SubmitOrder("c-0", "T", Side.BUY, 1.0, legs=(leg,)))
    assert fake.orders == {} and fake.drain_events() == []
    fake.submit(entry_cmd)
    (accepted,) = fake.drain_events()
    assert isinstance(accepted, OrderUpdate) and accepted.kind == OrderUpdateKind.ACCEPTED
    fake.submit(entry_cmd)  # idempotent by client id: a resend places nothing ...
    assert fake.drain_events() == [accepted] and len(fake.orders) == 1  # ... and reports it
    fake.cancel(CancelOrder("c-0", ts_of(0), bit(R.KILL_SWITCH_ACTIVE)))
    fake.on_bar(1, ts_of(1), "T", 100.0, 101.0, 99.0, 1e6, 0)  # a cancelled order never fills
    (cancelled,) = fake.drain_events()
    assert (cancelled.kind, cancelled.reasons) == (
        OrderUpdateKind.CANCELED,
        bit(R.KILL_SWITCH_ACTIVE),
    )
    assert fake.held["T"] == 0.0 and fake.executions == []


# ---- property: random signals on random bars ----------------------------------------------
@st.composite
def signal_rows(draw: st.DrawFn, closes: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Entries (market, limit, stop, stop-limit; percent, absolute or trailing legs), most
    followed by exits of random size and side a few bars later, priced around the close they
    are decided at; in a quarter of the cases one manual kill."""
    rows: list[dict[str, Any]] = []
    symbols = sorted(closes)
    n = len(closes[symbols[0]])
    if draw(st.integers(0, 3)) == 0:
        rows.append({"ts": ts_of(draw(st.integers(0, n - 1))), "kind": 2, "control": 0})
    for _ in range(draw(st.integers(1, 8))):
        symbol = draw(st.sampled_from(symbols))
        b = draw(st.integers(0, n - 1))
        close = closes[symbol][b]
        side = draw(st.sampled_from([1, -1]))
        for _ in range(draw(st.integers(0, 2))):  # a strategy's trailing level, either side
            later = min(b + draw(st.integers(1, 4)), n - 1)
            off = draw(st.sampled_from([-0.02, -0.005, 0.005, 0.02]))
            level = round(closes[symbol][later] * (1 + off), 2)
            rows.append({"ts": ts_of(later), "symbol": symbol, "kind": 3, "stop_px": level})
        for _ in range(draw(st.integers(0, 2))):
            later = min(b + draw(st.integers(1, 4)), n - 1)
            qty = draw(st.sampled_from([None, None, 10.0, 60.0, 250.0]))
            exit_side = -side if draw(st.integers(0, 4)) else side
            rows.append(exit_(later, side=exit_side, qty=qty, symbol=symbol))
        legs = draw(st.sampled_from(["pct", "pct", "abs", "trail", "stop-only"]))
        otype = draw(st.sampled_from([0, 0, 1, 2, 3]))
        px = round(close * draw(st.sampled_from([0.98, 0.995, 1.0, 1.005, 1.02])), 2)
        limit = round(px * (1 + side * 0.005), 2) if otype == 3 else px
        rows.append(
            entry(
                b,
                side=side,
                qty=draw(st.sampled_from([None, 1.0, 100.0])),
                stop_pct=draw(st.sampled_from([0.01, 0.03])) if legs != "abs" else None,
                target_pct=None if legs in ("abs", "stop-only") else 0.02,
                trail_pct=0.02 if legs == "trail" else None,
                stop_px=round(close * (1 - side * 0.03), 2) if legs == "abs" else None,
                target_px=round(close * (1 + side * 0.03), 2) if legs == "abs" else None,
                otype=otype,
                limit_px=limit if otype in (1, 3) else None,
                entry_stop_px=px if otype in (2, 3) else None,
                symbol=symbol,
                strategy_id=draw(st.sampled_from(["s1", "s2"])),
            )
        )
    rows.sort(key=lambda r: r["ts"])
    return rows


PROFILES = (
    PROFILE,
    PROFILE.with_settings({"risk.max_positions": 1, "exits.time_stop_minutes": 3.0}),
    RiskProfile().with_settings({"kill.flatten": False}),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_signals_give_the_same_verdicts(data: st.DataObject) -> None:
    n = data.draw(st.integers(4, 14), label="bars")
    symbols = ("A", "B")[: data.draw(st.integers(1, 2), label="symbols")]
    ohlc = {s: data.draw(price_paths(n), label=f"bars {s}") for s in symbols}
    frame = combine(*(bars(rows, symbol=s) for s, rows in ohlc.items()))
    rows = data.draw(signal_rows({s: [r[3] for r in p] for s, p in ohlc.items()}), label="rows")
    profile = data.draw(st.sampled_from(PROFILES), label="profile")
    config = BacktestConfig(max_working=data.draw(st.sampled_from([3, 8]), label="max_working"))
    out = parity(frame, rows, profile=profile, config=config)
    assert len(out.verdicts) >= sum(1 for r in rows if r.get("kind") != 2)
    for o in out.broker.orders:  # a stop only ever moved towards the price
        if o.reasons & bit(R.STOP_MOVED):
            assert o.role in (OrderRole.STOP_LOSS, OrderRole.TRAILING)
    for o in out.broker.orders:  # nothing reduce-only is left working on a flat symbol
        if o.working and o.reduce_only:
            assert out.positions[o.symbol] != 0.0
    assert all(math.isfinite(f.price) for f in out.broker.fills)


@pytest.mark.parametrize(("quotes", "price"), [({"T": 50.0}, 50.0), ({}, None)])
def test_sizer_falls_back_to_the_broker_quote(quotes: dict, price: float | None) -> None:
    """A signal with no price for a symbol no bar has marked yet (live: the first signal
    before the first bar) is sized from the broker's quote; without one, SIZING_NO_PRICE."""
    frame = bars([(100, 101, 99, 100), FLAT])
    a = bar_arrays(frame.rechunk())
    inst, specs = instrument_arrays(a.symbols, INSTRUMENTS)
    table = conform_intents(intents([entry(0, qty=None, stop_pct=0.02, target_pct=0.04)]))
    events, strategies, _ = event_array(table, frame, a.symbols)
    profile = PROFILE.with_settings({"sizer.kind": "pct_equity", "sizer.pct_equity": 0.1})
    ctx = bar_context(frame, a, specs, profile)
    config = BacktestConfig()
    broker = PortFakeBroker(a.symbols, quotes=quotes)
    guard = guard_for(specs, strategies, profile, config.initial_cash)
    driver = PortDriver(
        broker, a.symbols, inst, config.sim_params(), config.initial_cash, profile, guard, ctx,
        run_id="quote",
    )  # fmt: skip
    driver.on_event(events[0], 0)  # before any bar: no mark for T
    v = _verdicts(driver)[0]
    if price is None:
        assert (bool(v["approved"]), int(v["reasons"])) == (False, bit(R.SIZING_NO_PRICE))
        assert broker.orders == {}
    else:
        assert (bool(v["approved"]), int(v["reasons"]), float(v["price"])) == (True, 0, price)
        assert float(v["qty"]) == 200.0  # 10% of 100,000 at the quote of 50
        assert math.isnan(driver.pf.mark[0])  # the portfolio still marks at bars only
