"""The Alpaca adapter's settings and keys: keys only from the environment, never in a repr,
a str or an error message."""

from __future__ import annotations

import logging
import socket

import pytest
from fake_alpaca_kit import flat, tape

from backstop.brokers.alpaca import AlpacaBroker, AlpacaConfig, AlpacaKeys
from backstop.brokers.alpaca.client import AlpacaRefused
from backstop.domain.commands import SubmitOrder
from backstop.domain.enums import Side
from backstop.engine.broker import BrokerUnavailable
from backstop.errors import ConfigError
from backstop.testing.fake_alpaca import FakeAlpaca

KEY = "PKTESTKEY1234567890"
SECRET = "s3cr3t-Value-that-must-never-show"


def test_keys_come_from_the_environment_only() -> None:
    keys = AlpacaKeys.from_env({"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET})
    assert (keys.key_id, keys.secret) == (KEY, SECRET)
    with pytest.raises(ConfigError, match="APCA_API_SECRET_KEY: is not set") as err:
        AlpacaKeys.from_env({"APCA_API_KEY_ID": KEY})
    assert err.value.key == "APCA_API_SECRET_KEY"
    with pytest.raises(ConfigError) as err:
        AlpacaKeys.from_env({"APCA_API_KEY_ID": "  ", "APCA_API_SECRET_KEY": SECRET})
    assert err.value.key == "APCA_API_KEY_ID"
    assert SECRET not in str(err.value) and KEY not in str(err.value)


def test_reprs_never_show_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    keys = AlpacaKeys.from_env()
    broker = AlpacaBroker(AlpacaConfig(rest_url="http://127.0.0.1:9"), stream=True)
    for text in (repr(keys), str(keys), repr(broker), str(broker), repr(broker._stream)):
        assert KEY not in text and SECRET not in text
    assert repr(keys) == "AlpacaKeys(APCA_API_KEY_ID=<set>, APCA_API_SECRET_KEY=<set>)"
    assert keys.redact(f"echo {KEY}:{SECRET}") == "echo <redacted>:<redacted>"


def test_bad_settings_name_their_key() -> None:
    with pytest.raises(ConfigError, match="must be a positive number of seconds") as err:
        AlpacaConfig(request_timeout_s=0)
    assert err.value.key == "request_timeout_s"
    with pytest.raises(ConfigError, match="http") as err:
        AlpacaConfig(rest_url="127.0.0.1:8080")
    assert err.value.key == "rest_url"
    with pytest.raises(ConfigError) as err:
        AlpacaConfig(retry_wait_s=-1)
    assert err.value.key == "retry_wait_s"


def test_a_broker_nobody_listens_on_is_unavailable_and_the_error_holds_no_key() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    keys = AlpacaKeys(KEY, SECRET)
    broker = AlpacaBroker(AlpacaConfig(rest_url=f"http://127.0.0.1:{port}"), keys, stream=False)
    cmd = SubmitOrder("bs-r1-1-E-0", "AAPL", Side.BUY, 1)
    with pytest.raises(BrokerUnavailable, match="submit bs-r1-1-E-0: Alpaca cannot be reached"):
        broker.submit(cmd)
    with pytest.raises(BrokerUnavailable) as err:
        broker.account()
    assert KEY not in str(err.value) and SECRET not in str(err.value)
    assert broker.drain_events() == []


def test_keys_never_reach_a_log_line_or_an_error(caplog: pytest.LogCaptureFixture) -> None:
    long_key, long_secret = "PK" + "K" * 38, "S" * 20 + "ecretTail" * 2
    fake = FakeAlpaca(tape(AAPL=flat(3)), keys=(long_key, long_secret))
    with caplog.at_level(logging.DEBUG), fake:
        with broker_with(fake, AlpacaKeys(long_key, long_secret)) as b:
            assert b.wait_connected()
            b.submit(SubmitOrder("bs-r1-1-E-0", "AAPL", Side.BUY, 1))
            fake.advance()
            b.drain_events()
        wrong = broker_with(fake, AlpacaKeys(KEY, SECRET), stream=False)
        with pytest.raises(AlpacaRefused) as err:
            wrong.account()
    assert err.value.status in (401, 403)
    texts = [str(err.value), repr(wrong)]
    # the fake's own server side logs what it receives; only backstop's and the client's count
    texts += [r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")]
    assert any("authentication frame (withheld" in t for t in texts)  # the client's DEBUG line
    for secret in (long_key, long_secret, KEY, SECRET, long_secret[:20], "ecretTail"):
        assert not [t for t in texts if secret in t], secret


def broker_with(fake: FakeAlpaca, keys: AlpacaKeys, *, stream: bool = True) -> AlpacaBroker:
    config = AlpacaConfig(rest_url=fake.url, stream_url=fake.stream_url, retry_wait_s=0.0)
    return AlpacaBroker(config, keys, stream=stream)


def test_endpoint_overrides_come_from_the_environment() -> None:
    plain = AlpacaConfig.from_env(paper=True, environ={})
    assert (plain.rest_url, plain.data_url, plain.stream_url, plain.paper) == (
        None, None, None, True
    )  # fmt: skip
    env = {
        "APCA_API_BASE_URL": "http://127.0.0.1:5000",
        "APCA_API_STREAM_URL": " ws://127.0.0.1:5001/stream ",
    }
    config = AlpacaConfig.from_env(paper=False, environ=env)
    assert (config.rest_url, config.data_url, config.stream_url, config.paper) == (
        "http://127.0.0.1:5000", None, "ws://127.0.0.1:5001/stream", False
    )  # fmt: skip
    with pytest.raises(ConfigError, match="APCA_API_DATA_URL: must be an http") as err:
        AlpacaConfig.from_env(paper=True, environ={"APCA_API_DATA_URL": "127.0.0.1:5000"})
    assert err.value.key == "APCA_API_DATA_URL"
