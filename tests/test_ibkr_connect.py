"""The IBKR adapter's connect path with the real ib_async client on 127.0.0.1: a gateway
that is not there, or that accepts the socket and never answers the handshake, is a
one-line ``BrokerUnavailable`` within the configured bound, and a command sent while
disconnected places nothing and says so."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from backstop.brokers.ibkr import IBKRBroker, IBKRConfig
from backstop.domain.commands import SubmitOrder
from backstop.domain.enums import Side
from backstop.engine.broker import BrokerUnavailable


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening socket that never says a word (a hung gateway)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield server.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hung_gateway_is_unavailable_within_the_connect_timeout(silent_port: int) -> None:
    broker = IBKRBroker(IBKRConfig(port=silent_port, connect_timeout_s=0.4, client_id=3))
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable) as err:
        broker.start()
    assert time.monotonic() - t0 < 3.0
    assert str(err.value) == (
        f"IB gateway 127.0.0.1:{silent_port} (client id 3) not reachable: no answer within 0.4 s"
    )
    assert broker.connected is False


def test_refused_connection_is_unavailable_in_one_line() -> None:
    port = _closed_port()
    broker = IBKRBroker(IBKRConfig(port=port, connect_timeout_s=0.4))
    with pytest.raises(BrokerUnavailable) as err:
        broker.start()
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"IB gateway 127.0.0.1:{port} (client id 1) not reachable: "
        "connection refused (is the API port open?)"
    )


def test_submit_while_disconnected_places_nothing_and_says_so() -> None:
    port = _closed_port()
    broker = IBKRBroker(IBKRConfig(port=port, connect_timeout_s=0.4))
    order = SubmitOrder("bs-r1-1-E-0", "MESZ5", Side.BUY, 1)
    with pytest.raises(BrokerUnavailable, match=r"^submit bs-r1-1-E-0: not connected to the IB"):
        broker.submit(order)
    assert broker.drain_events() == []
