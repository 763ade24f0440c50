"""``IBKRBroker`` through outages of the loopback fake gateway with the real ib_async
client: a dropped socket with a bracket leg filling meanwhile, IB's connectivity codes
(1100 / 1102), and a gateway restart that reissues order ids. Fills missed meanwhile are
booked once, orders are recognised by ``orderRef``, nothing is placed twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backstop.brokers.ibkr import IBKRBroker
from backstop.domain.enums import ControlAction, OrderStatus
from backstop.domain.events import Execution
from backstop.testing.fake_ibkr import FakeIBKR
from tests.ibkr_kit import MINUTE, SYMBOL, T0, Events, bracket, broker, cid, entry, mes_bars

E, SL, TP = cid(1, "E", 0), cid(1, "SL", 1), cid(1, "TP", 2)
LOST, RESTORED = ControlAction.CONNECTION_LOST, ControlAction.CONNECTION_RESTORED


@pytest.fixture
def fake() -> Iterator[FakeIBKR]:
    with FakeIBKR(mes_bars(), commission=0.62) as f:
        yield f
        assert f.bugs == []


@pytest.fixture
def ib(fake: FakeIBKR) -> Iterator[IBKRBroker]:
    with broker(fake.port) as b:
        yield b


def _entered(fake: FakeIBKR, ib: IBKRBroker) -> Events:
    """A bracket whose entry filled: its two legs work at the gateway."""
    ev = Events(ib)
    ib.submit(bracket(1))
    ev.settle()
    fake.advance()
    ev.settle()
    assert ev.kinds() == [("ACCEPTED", E), ("ACCEPTED", TP), ("ACCEPTED", SL), ("FILL", E)]
    return ev


def test_leg_fill_during_a_disconnect_is_booked_once_after_reconnect(
    fake: FakeIBKR, ib: IBKRBroker
) -> None:
    ev = _entered(fake, ib)
    fake.disconnect(outage=True)
    ev.until(lambda _: not ib.connected)
    fake.advance()  # the take-profit fills while no client is connected: its report is lost
    fake.end_outage()
    ev.until(lambda evs: any(isinstance(e, Execution) and e.client_order_id == TP for e in evs))
    ev.settle()
    assert ev.kinds()[4:] == [("FILL", TP), ("CANCELED", SL)]
    tp = ev.fills()[1]
    assert (tp.price, tp.fee, tp.leaves_qty, tp.ts_event) == (6010.0, 0.62, 0.0, T0 + 2 * MINUTE)
    assert ib.connection_events() == [LOST, RESTORED]
    assert ib.connected
    assert ev.settle() == []
    ib.submit(bracket(1))  # a resend after the outage: recognised, nothing placed
    assert ev.settle() == []
    assert len(fake.orders) == 3
    assert ib.positions() == []


def test_connectivity_lost_and_restored_re_reads_what_was_dropped(
    fake: FakeIBKR, ib: IBKRBroker
) -> None:
    ev = _entered(fake, ib)
    fake.connectivity_lost()
    ev.settle()
    assert ib.connection_events() == [LOST]
    assert not ib.connected
    fake.advance()  # the take-profit fills: its reports are dropped, the stop's cancel is not
    ev.settle()
    assert ev.kinds()[4:] == [("CANCELED", SL)]
    fake.connectivity_restored(data_lost=True)
    ev.settle()
    assert ib.connection_events() == [RESTORED]
    assert ev.kinds()[5:] == [("FILL", TP)]
    assert ev.fills()[1].fee == 0.62
    assert ev.settle() == []


def test_gateway_restart_reissuing_ids_keeps_orders_recognised_by_order_ref(
    fake: FakeIBKR, ib: IBKRBroker
) -> None:
    ev = _entered(fake, ib)
    fake.advance()  # the take-profit fills, the stop is cancelled
    ev.settle()
    assert ev.kinds()[4:] == [("FILL", TP), ("CANCELED", SL)]
    fake.restart(reissue_from=1)  # order ids start again at 1
    seen: list[ControlAction] = []
    ev.until(lambda _: seen.extend(ib.connection_events()) or seen == [LOST, RESTORED])
    ib.submit(bracket(1))  # cycle 1 again, e.g. from a restarted runner: nothing placed
    ib.submit(entry(2))  # a new order gets a reissued id
    ev.settle()
    fake.advance()
    ev.settle()
    refs = [o["order_ref"] for o in fake.orders]
    assert sorted(refs) == sorted([E, TP, SL, cid(2, "E", 0)])
    new = next(o for o in fake.orders if o["order_ref"] == cid(2, "E", 0))
    old_ids = {o["order_id"] for o in fake.orders if o["order_ref"] != cid(2, "E", 0)}
    assert new["order_id"] in old_ids  # the id an old order had: only orderRef tells them apart
    assert ev.kinds()[6:] == [("ACCEPTED", cid(2, "E", 0)), ("FILL", cid(2, "E", 0))]
    order = ib.order(TP)
    assert order is not None and order.status == OrderStatus.FILLED
    assert ib.positions()[0].symbol == SYMBOL


def test_crash_between_the_parent_and_the_last_child_resends_the_whole_bracket(
    fake: FakeIBKR,
) -> None:
    first = broker(fake.port).start()
    # the process dies after the parent and the take-profit went out (transmit=False)
    # and before the stop that transmits them: the gateway holds them untransmitted
    first._client.place(bracket(1), skip=frozenset({SL}))
    first._client.barrier()
    first.close()  # the socket ends: the gateway drops what was never transmitted
    with broker(fake.port) as again:
        ev = Events(again)
        again.submit(bracket(1))
        ev.settle()
        fake.advance()
        ev.settle()
    assert sorted(o["order_ref"] for o in fake.orders) == sorted([E, TP, SL])  # one bracket
    assert ev.kinds() == [("ACCEPTED", E), ("ACCEPTED", TP), ("ACCEPTED", SL), ("FILL", E)]
    assert fake.position(SYMBOL)[0] == 1.0
