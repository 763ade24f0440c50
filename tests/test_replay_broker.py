"""ReplayBroker: Broker port v2 over the recorded world until today's decisions differ.

Driven by hand with port commands (as the event driver sends them): the core's order for a
decision the bot took the same way stands for the bot's; recorded fills arrive as its
executions, a bracket leg's fill as the core's working leg of that kind; fills of orders the
core never sent are adopted first; at the first different decision the stand-ins still
working move to the simulated exchange, which holds the recorded position.
"""

from __future__ import annotations

from kit import ts_of

from backstop.domain.commands import SubmitOrder
from backstop.domain.enums import OrderRole, OrderType, Side
from backstop.domain.events import Execution, OrderUpdateKind
from backstop.domain.instruments import Instrument
from backstop.engine.config import BacktestConfig
from backstop.engine.inputs import instrument_arrays
from backstop.replay.decisions import Decision
from backstop.replay.events import BrokerFill, BrokerOrder
from backstop.runners.replay_broker import ReplayBroker

U = OrderUpdateKind


def decision(label: str, side: int, qty: float, intent: str = "entry") -> Decision:
    return Decision(
        label, ts_of(0), "T", side, intent, qty, None, None, None, None, None, None, None,
        "bot", None, label, (side, qty), "log",
    )  # fmt: skip


def broker(fills: list[BrokerFill], orders: list[BrokerOrder]) -> ReplayBroker:
    inst, _ = instrument_arrays(("T",), {"T": Instrument.equity("T")})
    return ReplayBroker(("T",), inst, BacktestConfig().sim_params(), fills, orders, {"T": 0.0})


def legs(qty: float) -> SubmitOrder:
    common = {"reduce_only": True, "parent_id": "c-E", "oco_group": "g", "ts": ts_of(1)}
    tp = SubmitOrder(
        "c-TP", "T", Side.SELL, qty, OrderType.LIMIT, role=OrderRole.TAKE_PROFIT,
        limit_price=104.0, **common,
    )  # fmt: skip
    return SubmitOrder(
        "c-SL", "T", Side.SELL, qty, OrderType.STOP, role=OrderRole.STOP_LOSS, stop_price=98.0,
        siblings=(tp,), **common,
    )  # fmt: skip


def test_recorded_fills_arrive_as_executions_of_the_cores_orders() -> None:
    fills = [
        BrokerFill(ts=ts_of(1), source="x", symbol="T", side=1, qty=10.0, price=100.0,
                   order_id="b1", exec_id="E1"),
        BrokerFill(ts=ts_of(3), source="x", symbol="T", side=-1, qty=10.0, price=98.0,
                   order_id="b2"),
        BrokerFill(ts=ts_of(4), source="x", symbol="T", side=1, qty=2.0, price=97.0,
                   order_id="b9"),
    ]  # fmt: skip
    orders = [BrokerOrder(ts=ts_of(1), source="x", order_id="b2", symbol="T", side=-1,
                          order_type="stop", parent_id="b1")]  # fmt: skip
    rb = broker(fills, orders)
    adopted: list[tuple[str, OrderRole]] = []
    rb.adopt = lambda order, role, cycle: adopted.append((order.client_order_id, role))
    rb.expect(decision("b1", 1, 10.0), ts_of(0))
    rb.submit(SubmitOrder("c-E", "T", Side.BUY, 10.0, ts=ts_of(0)))  # the same as the bot
    rb.settle(ts_of(0))
    assert rb.following and rb.divergence is None
    rb.on_bar(1, ts_of(1), "T", 100.0, 100.5, 99.5, 1e6, 0)
    accepted, fill = rb.drain_events()
    assert (accepted.kind, accepted.client_order_id) == (U.ACCEPTED, "c-E")
    assert isinstance(fill, Execution)
    assert (fill.client_order_id, fill.exec_id, fill.qty, fill.leaves_qty) == ("c-E", "E1", 10, 0)
    rb.submit(legs(10.0))  # protection: stand-ins, never judged against the bot's decision
    assert [e.client_order_id for e in rb.drain_events()] == ["c-SL", "c-TP"]
    rb.on_bar(3, ts_of(3), "T", 99.0, 99.5, 97.5, 1e6, 0)  # the bot's stop leg filled
    (stop,) = rb.drain_events()
    assert (stop.client_order_id, stop.price, stop.leaves_qty) == ("c-SL", 98.0, 0.0)
    rb.on_bar(4, ts_of(4), "T", 97.0, 97.5, 96.5, 1e6, 0)  # an order the core never sent
    (foreign,) = rb.drain_events()
    assert adopted == [(foreign.client_order_id, OrderRole.ENTRY)]
    assert foreign.client_order_id.startswith("bot-b9-")
    assert rb.positions()[0].qty == 2.0


def test_a_different_decision_moves_the_working_stand_ins_to_the_simulator() -> None:
    fills = [BrokerFill(ts=ts_of(1), source="x", symbol="T", side=1, qty=10.0, price=100.0,
                        order_id="b1")]  # fmt: skip
    rb = broker(fills, [])
    rb.expect(decision("b1", 1, 10.0), ts_of(0))
    rb.submit(SubmitOrder("c-E", "T", Side.BUY, 10.0, ts=ts_of(0)))
    rb.settle(ts_of(0))
    rb.on_bar(1, ts_of(1), "T", 100.0, 100.5, 99.5, 1e6, 0)
    rb.submit(legs(10.0))
    rb.drain_events()
    rb.expect(decision("b5", -1, 10.0, "exit"), ts_of(2))
    rb.submit(  # today sends 4 where the bot sent 10: the worlds part here
        SubmitOrder("c-X", "T", Side.SELL, 4.0, role=OrderRole.SIGNAL_EXIT, reduce_only=True,
                    ts=ts_of(2))
    )  # fmt: skip
    rb.settle(ts_of(2))
    assert not rb.following
    assert (rb.divergence.bot, rb.divergence.today) == ("SELL 10", "SELL 4")  # type: ignore[union-attr]
    assert sorted(o.client_order_id for o in rb.open_orders()) == ["c-SL", "c-TP", "c-X"]
    assert [p.qty for p in rb.positions()] == [10.0]  # the simulator holds the recorded 10
    rb.drain_events()
    rb.on_bar(3, ts_of(3), "T", 99.0, 104.5, 99.0, 1e6, 0, react=lambda: None)
    events = rb.drain_events()
    got = [(type(e).__name__, e.client_order_id, e.qty) for e in events]
    # the exit at the open, then the target at its level, clamped by the simulator's
    # reduce-only rule to the 6 left (the core's bracket manager would now cancel the stop)
    assert got == [("Execution", "c-X", 4.0), ("Execution", "c-TP", 6.0)]
    assert rb.positions() == []
    assert [b.origin for b in rb.booked] == ["recorded", "simulated", "simulated"]
