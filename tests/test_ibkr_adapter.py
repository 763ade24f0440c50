"""``IBKRBroker`` against the loopback fake TWS gateway (``FakeIBKR``) with the real
ib_async client, nothing patched: native brackets, OCA exits, amend, cancel, idempotent
resubmits, refusals, contract checks, positions and the account."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest

from backstop.brokers.ibkr import IBKRBroker, IBKRConfig
from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderStatus, Side
from backstop.domain.events import Account, BrokerPosition, Execution, OrderUpdate
from backstop.domain.events import OrderUpdateKind as K
from backstop.domain.instruments import Instrument
from backstop.engine.clock import SimClock
from backstop.errors import ConfigError
from backstop.testing.fake_ibkr import FakeIBKR
from tests.ibkr_kit import (
    MINUTE,
    SYMBOL,
    T0,
    Events,
    bracket,
    broker,
    cid,
    mes_bars,
    stop_leg,
    target_leg,
)

E, SL, TP = cid(1, "E", 0), cid(1, "SL", 1), cid(1, "TP", 2)


@pytest.fixture
def fake() -> Iterator[FakeIBKR]:
    with FakeIBKR(mes_bars(), commission=0.62) as f:
        yield f
        assert f.bugs == []


@pytest.fixture
def ib(fake: FakeIBKR) -> Iterator[IBKRBroker]:
    with broker(fake.port) as b:
        yield b


def test_bracket_parent_fills_then_take_profit_cancels_the_stop(
    fake: FakeIBKR, ib: IBKRBroker
) -> None:
    ev = Events(ib)
    ib.submit(bracket(1))
    ev.settle()
    assert ev.kinds() == [("ACCEPTED", E), ("ACCEPTED", TP), ("ACCEPTED", SL)]
    sent = {o["order_ref"]: o for o in fake.orders}
    assert sorted(sent) == sorted([E, TP, SL])
    parent = sent[E]["order_id"]
    assert (sent[TP]["parent_id"], sent[SL]["parent_id"], sent[E]["parent_id"]) == (
        parent, parent, 0,
    )  # fmt: skip
    assert (sent[TP]["type"], sent[TP]["lmt_price"]) == ("LMT", 6010.0)
    assert (sent[SL]["type"], sent[SL]["aux_price"]) == ("STP", 5990.0)

    fake.advance()  # the entry's bar: the market order fills at its open
    ev.settle()
    assert ev.all[3:] == [
        Execution(E, ev.fills()[0].exec_id, SYMBOL, Side.BUY, 1.0, 6000.25, 0.62, 0.0,
                  T0 + MINUTE, 0, str(sent[E]["perm_id"])),
    ]  # fmt: skip
    working = ib.open_orders()
    assert [(o.client_order_id, o.parent_id, o.status) for o in working] == [
        (TP, E, OrderStatus.ACCEPTED),
        (SL, E, OrderStatus.ACCEPTED),
    ]
    assert ib.positions() == [BrokerPosition(SYMBOL, 1.0, 6000.25)]

    fake.advance()  # reaches 6011: the take-profit fills, IB cancels the stop
    ev.settle()
    assert ev.kinds()[4:] == [("FILL", TP), ("CANCELED", SL)]
    tp_fill = ev.fills()[1]
    assert (tp_fill.price, tp_fill.qty, tp_fill.fee, tp_fill.leaves_qty, tp_fill.ts_event) == (
        6010.0, 1.0, 0.62, 0.0, T0 + 2 * MINUTE,
    )  # fmt: skip
    assert ib.positions() == []
    assert ib.open_orders() == []
    assert ev.settle() == []  # nothing is reported twice
    assert [f.client_order_id for f in ib.recent_fills(T0)] == [E, TP]
    order = ib.order(SL)
    assert order is not None and order.status == OrderStatus.CANCELED


def test_resubmit_places_nothing_and_a_new_session_reports_the_order_as_it_stands(
    fake: FakeIBKR, ib: IBKRBroker
) -> None:
    ev = Events(ib)
    ib.submit(bracket(1))
    ev.settle()
    fake.advance()
    ev.settle()
    ib.submit(bracket(1))  # the same decision sent again
    assert ev.settle() == []
    assert len(fake.orders) == 3
    ib.close()

    with broker(fake.port) as again:  # a restarted runner: a new session, same client id
        ev2 = Events(again)
        again.submit(bracket(1))
        ev2.settle()
        assert len(fake.orders) == 3
        assert sorted(ev2.kinds()) == sorted(
            [("ACCEPTED", E), ("FILL", E), ("ACCEPTED", TP), ("ACCEPTED", SL)]
        )
        assert ev2.fills()[0].exec_id == ev.fills()[0].exec_id  # the mirror books it once


def test_oca_exit_pair_and_amend_and_cancel(fake: FakeIBKR, ib: IBKRBroker) -> None:
    ev = Events(ib)
    ib.submit(SubmitOrder(cid(1, "E", 0), SYMBOL, Side.BUY, 2, trade_cycle_id=1))
    fake.advance()
    ev.settle()
    target = target_leg(1, 6010.0, qty=2, n=8, oco_group="oco-1")
    stop = stop_leg(1, 5990.0, qty=2, n=7, oco_group="oco-1")
    pair = SubmitOrder(**{**{k: getattr(target, k) for k in SubmitOrder.__slots__},
                          "siblings": (stop,)})  # fmt: skip
    ib.submit(pair)
    ev.settle()
    sent = {o["order_ref"]: o for o in fake.orders}
    tp, sl = cid(1, "TP", 8), cid(1, "SL", 7)
    assert [(sent[c]["oca_group"], sent[c]["oca_type"]) for c in (tp, sl)] == [
        ("oco-1", 3), ("oco-1", 3),
    ]  # fmt: skip

    ib.amend(AmendOrder(sl, stop_price=5995.75))
    ev.settle()
    assert ev.all[-1] == OrderUpdate(
        K.REPLACED, sl, 0, 0, str(sent[sl]["perm_id"]), qty=2.0, stop_price=5995.75
    )
    again = {o["order_ref"]: o for o in fake.orders}
    assert (again[sl]["order_id"], again[sl]["aux_price"]) == (sent[sl]["order_id"], 5995.75)
    assert len(fake.orders) == 3  # amended in place: no new order

    ib.cancel(CancelOrder(tp))
    ev.settle()
    assert ev.updates()[-1] == ("CANCELED", tp)
    assert [o.client_order_id for o in ib.open_orders()] == [sl]


def test_refusal_201_is_one_rejected_event_per_order_with_ibs_text(
    fake: FakeIBKR, ib: IBKRBroker
) -> None:
    fake.refuse(SYMBOL, count=1, message="OCA group already filled")
    ev = Events(ib)
    ib.submit(bracket(1))
    ev.settle()
    ev.settle()
    rejected = [e for e in ev.all if isinstance(e, OrderUpdate)]
    assert sorted(e.client_order_id for e in rejected) == sorted([E, TP, SL])
    assert {e.kind for e in rejected} == {K.REJECTED}
    assert {e.message for e in rejected} == {
        "IB 201: Order rejected - reason:OCA group already filled"
    }


def test_tick_or_multiplier_mismatch_is_refused_before_any_order(fake: FakeIBKR) -> None:
    wrong = {SYMBOL: Instrument(SYMBOL, 0.25, multiplier=50.0, is_future=True)}
    b = broker(fake.port, instruments=wrong)
    with pytest.raises(ConfigError) as err:
        b.start()
    b.close()
    assert err.value.key == SYMBOL
    assert "IB's multiplier is 5 but backstop's instrument says 50" in str(err.value)
    assert fake.orders == []


def test_bars_and_last_price_come_from_ibs_history_up_to_the_fakes_clock(
    fake: FakeIBKR, ib: IBKRBroker
) -> None:
    fake.advance()
    frame = ib.bars([SYMBOL], "1Min", T0)
    assert frame.rows() == [
        (T0, SYMBOL, 6000.0, 6001.0, 5999.0, 6000.0, 100.0),
        (T0 + MINUTE, SYMBOL, 6000.25, 6003.0, 5999.5, 6002.0, 100.0),
    ]
    assert ib.bars([SYMBOL], "1Min", T0 + 1).height == 1
    assert ib.last_price(SYMBOL) == 6002.0


def test_positions_per_unit_price_and_account(fake: FakeIBKR, ib: IBKRBroker) -> None:
    fake.open_external_position(SYMBOL, -2, 6004.5)  # a manual TWS order, not ours
    assert fake.position(SYMBOL) == (-2.0, 6004.5 * 5)
    assert ib.positions() == [BrokerPosition(SYMBOL, -2.0, 6004.5)]
    account = ib.account()
    assert isinstance(account, Account) and account.cash > 0
    fills = ib.recent_fills(T0)
    assert [(f.qty, f.price, f.side) for f in fills] == [(2.0, 6004.5, Side.SELL)]
    assert fills[0].client_order_id.startswith("ib-")  # no orderRef: never adopted


def test_partial_fills_report_what_is_left(fake: FakeIBKR, ib: IBKRBroker) -> None:
    fake.partial_fills(qty=1)
    ev = Events(ib)
    ib.submit(SubmitOrder(E, SYMBOL, Side.BUY, 2, trade_cycle_id=1))
    fake.advance()
    ev.settle()
    [first] = ev.fills()
    assert (first.qty, first.leaves_qty, first.price) == (1.0, 1.0, 6000.25)
    [working] = ib.open_orders()
    assert (working.status, working.filled_qty, working.remaining) == (
        OrderStatus.PARTIALLY_FILLED, 1.0, 1.0,
    )  # fmt: skip
    fake.advance()
    ev.settle()
    assert [(f.qty, f.leaves_qty) for f in ev.fills()] == [(1.0, 1.0), (1.0, 0.0)]
    assert ib.positions()[0].qty == 2.0
    assert ib.open_orders() == []


def test_a_futures_root_is_the_one_contract_ib_finds_and_names_the_position() -> None:
    bars = mes_bars().with_columns(pl.lit("MES").alias("symbol"))
    with FakeIBKR(bars) as fake:
        config = IBKRConfig(port=fake.port, max_requests_per_s=0)
        with IBKRBroker(config, clock=SimClock(0), symbols=["MES"]) as ib:
            spec = ib.contract("MES")
            assert (spec.tick, spec.multiplier, spec.is_future) == (0.25, 5.0, True)
            ib.submit(SubmitOrder(E, "MES", Side.BUY, 1))
            fake.advance()
            ib.refresh()
            assert ib.drain_events()[-1].symbol == "MES"  # type: ignore[union-attr]
            assert ib.positions() == [BrokerPosition("MES", 1.0, 6000.25)]
        with IBKRBroker(config) as unaware:  # no symbols given: IB's local symbol names it
            assert unaware.positions() == [BrokerPosition("MESZ5", 1.0, 6000.25)]
