"""The fake IBKR gateway's handshake and connect answers, with the real ib_async client."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from fake_ibkr_kit import connect, es_tape, flat, wait_disconnected
from ib_async import IB, Future, Stock

from backstop.testing.fake_ibkr import FakeIBKR
from backstop.testing.fake_ibkr.session import Session


@pytest.fixture
def fake():
    f = FakeIBKR(es_tape(flat(30, 6000.0), SYN=flat(30, 100.0)), start=5)
    f.start()
    try:
        yield f
    finally:
        f.stop()


def test_connect_is_fast_and_answers_every_startup_request(fake):
    ib = IB()
    try:
        t0 = time.monotonic()
        ib.connect(fake.host, fake.port, clientId=1, timeout=5, raiseSyncErrors=True)
        elapsed = time.monotonic() - t0
        assert elapsed < 2.0  # no startup request waited for its timeout
        assert ib.isConnected()
        assert ib.managedAccounts() == ["DU1234567"]
        assert ib.client.serverVersion() == 176
        values = {v.tag: v.value for v in ib.accountValues() if v.modelCode == ""}
        assert values["NetLiquidation"] == "1000000.00"
        assert values["AvailableFunds"] == "1000000.00"
        assert ib.positions() == []
        assert ib.openTrades() == []
        summary = {v.tag: v.value for v in ib.accountSummary()}
        assert (summary["NetLiquidation"], summary["BuyingPower"]) == ("1000000.00", "4000000.00")
    finally:
        ib.disconnect()
    assert fake.bugs == [] and fake.unserved == []


def test_connect_sends_the_farm_warnings_a_gateway_sends(fake):
    ib = IB()
    seen: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append(code)
    try:
        ib.connect(fake.host, fake.port, clientId=3, timeout=5)
        ib.reqCurrentTime()  # a round trip: everything sent before it is read
    finally:
        ib.disconnect()
    assert seen == [2104, 2106, 2158]


def test_a_second_session_with_the_same_client_id_is_refused(fake):
    with connect(fake, client_id=7):
        other = IB()
        with pytest.raises((ConnectionError, TimeoutError)):
            other.connect(fake.host, fake.port, clientId=7, timeout=1)
        other.disconnect()
        assert fake.clients == [7]


def test_contract_details_for_es_carry_the_registry_tick_and_multiplier(fake):
    with connect(fake) as ib:
        [cd] = ib.reqContractDetails(Future("ES", "202512", "CME"))
        assert cd.minTick == 0.25
        assert cd.contract.multiplier == "50"
        assert cd.contract.exchange == "CME"
        assert cd.contract.lastTradeDateOrContractMonth == "20251219"
        assert cd.contract.localSymbol == "ESZ5"
        assert cd.contractMonth == "202512"
        assert ib.reqContractDetails(Future("ES", "202512", "GLOBEX")) == []
        assert ib.reqContractDetails(Future("ES", "202603", "CME")) == []
        [stk] = ib.reqContractDetails(Stock("SYN", "SMART", "USD"))
        assert (stk.contract.secType, stk.contract.primaryExchange, stk.minTick) == (
            "STK",
            "NASDAQ",
            0.01,
        )


def test_ids_and_time_come_from_the_gateway_and_the_tape():
    with FakeIBKR(es_tape(flat(5, 6000.0)), first_order_id=500) as fake, connect(fake) as ib:
        # ids and request ids share one counter: connect's account-updates-multi and
        # executions requests took 500 and 501
        assert ib.client.getReqId() == 502
        assert ib.reqCurrentTime().timestamp() == fake.now / 1e9


def test_micro_and_dated_contracts_take_their_specs_from_the_registry():
    tape = es_tape(flat(3, 6000.0), symbol="MESZ5", MNQ=flat(3, 21000.0))
    with FakeIBKR(tape) as fake, connect(fake) as ib:
        [mes] = ib.reqContractDetails(Future("MES", "202512", "CME"))
        assert (mes.minTick, mes.contract.multiplier, mes.contract.localSymbol) == (
            0.25,
            "5",
            "MESZ5",
        )
        [mnq] = ib.reqContractDetails(Future(localSymbol="MNQZ5", exchange="CME"))
        assert (mnq.contract.symbol, mnq.contract.multiplier) == ("MNQ", "2")


def test_stop_closes_the_clients_and_joins_every_thread_and_start_reuses_the_port():
    fake = FakeIBKR(es_tape(flat(5, 6000.0)))
    fake.start()
    port = fake.port
    ib = IB()
    try:
        ib.connect(fake.host, port, clientId=1, timeout=5)
        fake.stop()
        wait_disconnected(ib)
        alive = [t.name for t in threading.enumerate() if t.name.startswith("fake-ibkr")]
        assert alive == []
        fake.start()
        assert fake.port == port
        ib.connect(fake.host, port, clientId=1, timeout=5)
        assert fake.clients == [1]
    finally:
        ib.disconnect()
        fake.stop()


def test_a_client_killed_without_goodbye_frees_its_client_id_for_the_next_connect(fake):
    for _ in range(3):  # a killed client's socket closes; the restart connects at once
        raw = socket.create_connection((fake.host, fake.port), timeout=5)
        raw.sendall(b"API\0" + struct.pack(">I", 9) + b"v157..178")
        raw.recv(64)  # the server version and connection time
        start_api = b"71\x002\x009\x00\x00"
        raw.sendall(struct.pack(">I", len(start_api)) + start_api)
        raw.recv(4096)
        raw.close()
        with connect(fake, client_id=9):
            assert fake.clients == [9]


def test_start_api_lets_a_client_id_in_when_its_old_socket_is_dead_but_not_yet_dropped(fake):
    # the race the test above rarely hits: the old reader has not seen end-of-file yet
    old_end, old_peer = socket.socketpair()
    new_end, new_peer = socket.socketpair()
    try:
        old = Session(old_end, fake.gateway, "old")  # reader never started: nobody drops it
        old.client_id = 9
        fake.gateway.attach(old)
        old_peer.close()  # the old client is killed
        new = Session(new_end, fake.gateway, "new")
        fake.gateway.attach(new)
        fake.gateway.handle(new, ["71", "2", "9", ""])
        assert (new.client_id, old.closed, fake.clients) == (9, True, [9])
        new.close()
    finally:
        for s in (old_peer, new_peer):
            s.close()
