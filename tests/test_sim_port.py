"""SimExchange behind Broker port v2, on its own: commands in, events out, reactions timed as
in the backtest loop, durable client ids. (The parity tests drive it through the event
driver; these pin the venue's own promises.)"""

from __future__ import annotations

import math

import pytest
from kit import ts_of

from backstop.brokers.sim.exchange import SimExchange
from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderStatus, OrderType, ReasonCode, Side
from backstop.domain.events import Execution, OrderUpdate, OrderUpdateKind
from backstop.domain.instruments import Instrument
from backstop.engine.broker import BrokerPort
from backstop.engine.config import BacktestConfig
from backstop.engine.inputs import instrument_arrays

U = OrderUpdateKind


def bit(code: ReasonCode) -> int:
    return 1 << int(code)


def venue(**config: object) -> SimExchange:
    inst, _ = instrument_arrays(("T",), {"T": Instrument.equity("T")})
    return SimExchange(("T",), inst, BacktestConfig(**config).sim_params(), cash=10_000.0)  # type: ignore[arg-type]


def buy(cid: str, qty: float = 10.0, **kw: object) -> SubmitOrder:
    return SubmitOrder(cid, "T", Side.BUY, qty, ts=ts_of(0), **kw)  # type: ignore[arg-type]


def legs(qty: float, stop: float, target: float) -> SubmitOrder:
    common = {"reduce_only": True, "parent_id": "e", "oco_group": "g", "ts": ts_of(1)}
    tp = SubmitOrder(
        "tp", "T", Side.SELL, qty, OrderType.LIMIT, role=OrderRole.TAKE_PROFIT,
        limit_price=target, **common,
    )  # fmt: skip
    return SubmitOrder(
        "sl", "T", Side.SELL, qty, OrderType.STOP, role=OrderRole.STOP_LOSS, stop_price=stop,
        siblings=(tp,), **common,
    )  # fmt: skip


def kinds(events: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [
        (e.kind.name if isinstance(e, OrderUpdate) else "EXEC", e.client_order_id) for e in events
    ]


def test_commands_in_events_out_with_fees_and_slippage() -> None:
    ex = venue(slippage="ticks", slippage_value=2.0, commission="per_share", commission_rate=0.01)
    assert isinstance(ex, BrokerPort)
    ex.submit(buy("e"))
    ex.submit(buy("e"))  # idempotent by client id: placed once, reported as it stands
    assert kinds(ex.drain_events()) == [("ACCEPTED", "e"), ("ACCEPTED", "e")]
    assert len(ex.open_orders()) == 1
    ex.on_bar(0, ts_of(0), "T", 100.0, 101.0, 99.0, 1e6, 0)
    (fill,) = ex.drain_events()
    assert isinstance(fill, Execution)
    assert (fill.client_order_id, fill.qty, fill.price, fill.leaves_qty) == ("e", 10.0, 100.02, 0)
    assert (fill.fee, round(fill.slippage, 10), fill.ts_event) == (0.1, 0.02, ts_of(0))
    assert ex.order("e").status == OrderStatus.FILLED  # type: ignore[union-attr]
    assert [p.qty for p in ex.positions()] == [10.0]
    assert ex.recent_fills(ts_of(0)) == [fill] and ex.recent_fills(ts_of(1)) == []
    assert ex.account().cash == pytest.approx(10_000.0 - 1000.2 - 0.1)


def test_an_oco_pair_is_native_and_reduce_only_is_the_venues_rule() -> None:
    ex = venue()
    ex.submit(buy("e"))
    ex.on_bar(0, ts_of(0), "T", 100.0, 100.5, 99.5, 1e6, 0)
    ex.submit(legs(10.0, 98.0, 104.0))
    ex.drain_events()
    ex.on_bar(1, ts_of(1), "T", 100.0, 105.0, 97.0, 1e6, 0)  # both touched: stop first
    events = ex.drain_events()
    assert kinds(events) == [("EXEC", "sl"), ("CANCELED", "tp")]
    assert events[1].reasons == bit(ReasonCode.OCO_SIBLING_FILLED)
    ex.submit(SubmitOrder("x", "T", Side.SELL, 5.0, role=OrderRole.SIGNAL_EXIT, reduce_only=True))
    ex.on_bar(2, ts_of(2), "T", 100.0, 100.5, 99.5, 1e6, 0)  # flat: it may not trade
    (_, cancelled) = ex.drain_events()
    assert (cancelled.kind, cancelled.client_order_id) == (U.CANCELED, "x")
    assert cancelled.reasons == bit(ReasonCode.LEG_CANCELED_POSITION_CLOSED)
    assert ex.positions() == []


def test_an_order_sent_at_the_open_print_joins_that_pass_and_later_ones_wait() -> None:
    """The driver reacts to each fill: a leg sent when the entry filled at the open is live
    on that same bar (legs_live_on_entry_bar); one sent after an intrabar fill is not."""
    ex = venue()
    ex.submit(buy("e"))
    sent: list[str] = []

    def react() -> None:
        for e in ex.drain_events():
            if isinstance(e, Execution) and e.client_order_id == "e":
                ex.submit(legs(10.0, 99.0, 101.0))
                sent.append("legs")

    ex.on_bar(0, ts_of(0), "T", 100.0, 100.5, 98.0, 1e6, 0, react=react)
    assert sent == ["legs"]
    assert ex.order("sl").status == OrderStatus.FILLED  # type: ignore[union-attr]
    assert ex.positions() == []
    late = venue()
    late.submit(SubmitOrder("e", "T", Side.BUY, 10.0, OrderType.LIMIT, limit_price=99.5))

    def react_late() -> None:
        for e in late.drain_events():
            if isinstance(e, Execution):
                late.submit(legs(10.0, 99.0, 101.0))

    late.on_bar(0, ts_of(0), "T", 100.0, 100.5, 98.0, 1e6, 0, react=react_late)
    assert late.order("sl").status == OrderStatus.ACCEPTED  # type: ignore[union-attr]
    assert [p.qty for p in late.positions()] == [10.0]


def test_amends_and_trailing_ratchets_are_reported_as_replaced() -> None:
    ex = venue()
    ex.submit(buy("e"))
    ex.on_bar(0, ts_of(0), "T", 100.0, 100.5, 99.5, 1e6, 0)
    trail = SubmitOrder(
        "tr", "T", Side.SELL, 10.0, OrderType.TRAILING_STOP, role=OrderRole.TRAILING,
        stop_price=98.0, trail_percent=0.02, reduce_only=True,
    )  # fmt: skip
    ex.submit(trail)
    ex.drain_events()
    ex.on_bar(1, ts_of(1), "T", 100.0, 103.0, 99.5, 1e6, 0, react=lambda: None)
    (ratchet,) = ex.drain_events()
    assert (ratchet.kind, ratchet.stop_price) == (U.REPLACED, 100.94)  # 103 - 2%
    ex.amend(AmendOrder("tr", qty=6.0, stop_price=101.0, ts=ts_of(1), reasons=7))
    (amended,) = ex.drain_events()
    assert (amended.kind, amended.qty, amended.stop_price, amended.reasons) == (
        U.REPLACED,
        6.0,
        101.0,
        7,
    )
    ex.cancel(CancelOrder("tr", ts_of(1), bit(ReasonCode.KILL_SWITCH_ACTIVE)))
    (gone,) = ex.drain_events()
    assert (gone.kind, gone.reasons) == (U.CANCELED, 7 | bit(ReasonCode.KILL_SWITCH_ACTIVE))
    ex.cancel(CancelOrder("nobody", ts_of(1)))  # an unknown order: nothing happens
    assert ex.drain_events() == [] and ex.open_orders() == []


def test_a_snapshot_keeps_client_ids_and_refuses_undrained_events() -> None:
    ex = venue()
    ex.submit(buy("e", 5.0))
    from backstop.errors import BackstopError

    with pytest.raises(BackstopError, match="1 broker events not drained"):
        ex.snapshot()
    ex.drain_events()
    snap = ex.snapshot()
    again = venue()
    again.restore(snap)
    again.on_bar(0, ts_of(0), "T", 100.0, 100.5, 99.5, 1e6, 0)
    (fill,) = again.drain_events()
    assert (fill.client_order_id, fill.exec_id, fill.qty) == ("e", "S0", 5.0)
    assert again.submit(buy("e")) is None  # a known id: nothing placed, its story retold
    assert kinds(again.drain_events()) == [("ACCEPTED", "e"), ("EXEC", "e")]
    assert [e.exec_id for e in again.recent_fills(0)] == ["S0"]
    assert math.isnan(again.last_price("T"))


def test_a_resent_client_id_reports_the_order_as_it_stands_and_legs_are_refused() -> None:
    """The port's idempotency contract: a restarted runner that sends a decision again learns
    what became of it (accepted, its fills, how it ended); nothing is placed twice."""
    from backstop.errors import ConfigError

    ex = venue()
    ex.submit(buy("e"))
    ex.on_bar(0, ts_of(0), "T", 100.0, 101.0, 99.0, 1e6, 0)
    first = ex.drain_events()
    ex.submit(buy("e"))
    again = ex.drain_events()
    assert kinds(again) == [("ACCEPTED", "e"), ("EXEC", "e")]
    assert again[1] == first[-1]  # the same execution (same id): the mirror books it once
    assert [p.qty for p in ex.positions()] == [10.0]
    ex.submit(buy("x"))
    ex.cancel(CancelOrder("x", ts_of(1), bit(ReasonCode.KILL_SWITCH_ACTIVE)))
    ex.drain_events()
    ex.submit(buy("x"))
    (_, ended) = ex.drain_events()
    assert (ended.kind, ended.reasons) == (U.CANCELED, bit(ReasonCode.KILL_SWITCH_ACTIVE))
    stop = SubmitOrder(
        "b-sl", "T", Side.SELL, 10.0, OrderType.STOP, role=OrderRole.STOP_LOSS, stop_price=95.0,
        reduce_only=True, parent_id="b",
    )  # fmt: skip
    bracket = buy("b", legs=(stop,))
    with pytest.raises(ConfigError, match="no native bracket legs"):
        ex.submit(bracket)
    assert ex.order("b") is None  # refused whole, nothing placed
