"""Alerts: the record, the log sink, the webhook sink against a loopback HTTP server (a
2xx, a 500, a dead port, a server that never answers), the fan-out and the
signals-without-orders alarm."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backstop.errors import ConfigError
from backstop.runners.live.alerts import (
    Alert,
    AlertKind,
    FanOut,
    LogSink,
    SignalsWithoutOrders,
    WebhookSink,
    redact_url,
)

TS = 1_780_670_465_120_000_000  # 2026-06-05T14:41:05.120Z


class _Hook:
    """A loopback webhook receiver: records each POST (path, headers, JSON body) and answers
    with ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[str, dict[str, str], dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                hook.received.append((self.path, dict(self.headers), body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook()
    try:
        yield server
    finally:
        server.close()


def _alert(kind: AlertKind = AlertKind.FILL, **kw) -> Alert:
    base = {
        "message": "bought 100 AAPL @ 187.20",
        "symbol": "AAPL",
        "trade_cycle_id": "c-7",
        "details": {"qty": 100, "price": 187.2},
    }
    base.update(kw)
    return Alert(kind, TS, **base)


def test_alert_is_frozen_and_its_details_cannot_change_after_it_is_built() -> None:
    details = {"qty": 100}
    alert = _alert(details=details)
    details["qty"] = 5
    assert alert.details["qty"] == 100
    with pytest.raises(TypeError):
        alert.details["qty"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        alert.message = "x"  # type: ignore[misc]
    assert alert.as_dict() == {
        "kind": "FILL",
        "ts": TS,
        "time": "2026-06-05T14:41:05.120Z",
        "symbol": "AAPL",
        "trade_cycle_id": "c-7",
        "message": "bought 100 AAPL @ 187.20",
        "details": {"qty": 100},
    }


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"kind": "FILL"}, "alert.kind"),
        ({"ts": 1.5}, "alert.ts"),
        ({"ts": -1}, "alert.ts"),
        ({"message": "  "}, "alert.message"),
        ({"details": {"when": object()}}, "alert.details"),
        ({"details": {"pnl": float("nan")}}, "alert.details"),
    ],
)
def test_bad_alert_fields_are_config_errors_naming_the_field(kw: dict, key: str) -> None:
    args = {"kind": AlertKind.FILL, "ts": TS, "message": "m"} | kw
    with pytest.raises(ConfigError) as err:
        Alert(**args)
    assert err.value.key == key


def test_log_sink_writes_one_line_per_alert_at_the_kinds_level(caplog) -> None:
    sink = LogSink()
    with caplog.at_level(logging.INFO, logger="backstop.alerts"):
        sink.notify(_alert(message="two\nlines"))
        sink.notify(_alert(AlertKind.KILL_SWITCH, message="manual kill", details={}))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.INFO,
            "ALERT FILL 2026-06-05T14:41:05.120Z symbol=AAPL cycle=c-7: two\\nlines "
            '{"price": 187.2, "qty": 100}',
        ),
        (
            logging.ERROR,
            "ALERT KILL_SWITCH 2026-06-05T14:41:05.120Z symbol=AAPL cycle=c-7: manual kill",
        ),
    ]


def test_webhook_posts_the_alert_as_json(hook: _Hook) -> None:
    sink = WebhookSink(f"http://127.0.0.1:{hook.port}/services/T1/B2/tok3n", timeout_s=2)
    sink.notify(_alert(AlertKind.STOP_HIT))
    assert (sink.sent, sink.failed, sink.last_status) == (1, 0, 200)
    [(path, headers, body)] = hook.received
    assert path == "/services/T1/B2/tok3n"
    assert headers["Content-Type"] == "application/json"
    assert body == _alert(AlertKind.STOP_HIT).as_dict()


def test_webhook_credentials_go_in_a_header_and_never_in_the_log(hook: _Hook, caplog) -> None:
    hook.status = 500
    url = f"http://alice:s3cret@127.0.0.1:{hook.port}/hook/p4th?token=q7ery"
    sink = WebhookSink(url, timeout_s=2)
    with caplog.at_level(logging.WARNING, logger="backstop.alerts"):
        sink.notify(_alert())
    [(path, headers, _)] = hook.received
    assert path == "/hook/p4th?token=q7ery"
    assert headers["Authorization"] == "Basic YWxpY2U6czNjcmV0"  # alice:s3cret
    text = caplog.text
    for secret in ("alice", "s3cret", "q7ery", "p4th", "token"):
        assert secret not in text
    assert f"webhook http://127.0.0.1:{hook.port}/...: HTTP 500 (1 failed so far)" in text


def test_webhook_500_is_logged_and_counted_never_raised(hook: _Hook, caplog) -> None:
    hook.status = 500
    sink = WebhookSink(f"http://127.0.0.1:{hook.port}/", timeout_s=2)
    with caplog.at_level(logging.WARNING, logger="backstop.alerts"):
        sink.notify(_alert())
        sink.notify(_alert(AlertKind.DESYNC))
        hook.status = 204
        sink.notify(_alert(AlertKind.ENTRY))
    assert (sink.sent, sink.failed, sink.last_status) == (1, 2, 204)
    assert len(hook.received) == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"alert FILL at 2026-06-05T14:41:05.120Z not delivered to webhook "
        f"http://127.0.0.1:{hook.port}: HTTP 500 (1 failed so far)",
        f"alert DESYNC at 2026-06-05T14:41:05.120Z not delivered to webhook "
        f"http://127.0.0.1:{hook.port}: HTTP 500 (2 failed so far)",
    ]


def test_webhook_redirect_is_a_failed_delivery(hook: _Hook) -> None:
    hook.status = 302
    sink = WebhookSink(f"http://127.0.0.1:{hook.port}/", timeout_s=2)
    sink.notify(_alert())
    assert (sink.sent, sink.failed, sink.last_status) == (0, 1, 302)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_dead_port_is_logged_with_the_connection_error(caplog) -> None:
    port = _dead_port()
    sink = WebhookSink(f"http://127.0.0.1:{port}/x", timeout_s=1)
    with caplog.at_level(logging.WARNING, logger="backstop.alerts"):
        sink.notify(_alert())
    assert (sink.sent, sink.failed) == (0, 1)
    assert sink.last_status == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert (
        caplog.records[0]
        .getMessage()
        .endswith(
            f"webhook http://127.0.0.1:{port}/...: ConnectionRefusedError: [Errno 111] "
            "Connection refused (1 failed so far)"
        )
    )


def test_webhook_that_never_answers_gives_up_after_its_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        sink = WebhookSink(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout_s=0.3)
        sink.notify(_alert())
    assert (sink.sent, sink.failed) == (0, 1)
    assert "timed out" in str(sink.last_status)


@pytest.mark.parametrize(
    ("url", "timeout", "key"),
    [
        ("ftp://example.org/x", 2, "webhook.url"),
        ("not a url", 2, "webhook.url"),
        ("http://127.0.0.1/", 0, "webhook.timeout_s"),
        ("http://127.0.0.1/", 31, "webhook.timeout_s"),
        ("http://127.0.0.1/", float("inf"), "webhook.timeout_s"),
    ],
)
def test_bad_webhook_settings_name_the_key(url: str, timeout: float, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        WebhookSink(url, timeout_s=timeout)
    assert err.value.key == key


def test_redact_url_keeps_scheme_host_and_port_only() -> None:
    assert redact_url("https://u:p@hooks.example.com/services/A/B/C?x=1") == (
        "https://hooks.example.com/..."
    )
    assert redact_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert redact_url("http://[::1]:9/a") == "http://[::1]:9/..."


class _Boom:
    def notify(self, alert: Alert) -> None:
        raise RuntimeError("sink bug")


class _Keep:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_fanout_delivers_to_every_sink_even_after_one_raises(caplog) -> None:
    first, last = _Keep(), _Keep()
    fan = FanOut([first, _Boom(), last])
    with caplog.at_level(logging.ERROR, logger="backstop.alerts"):
        fan.notify(_alert())
    assert first.alerts == last.alerts == [_alert()]
    assert fan.errors == 1
    [record] = caplog.records
    assert record.getMessage() == "alert sink _Boom raised on FILL at 2026-06-05T14:41:05.120Z"
    assert "RuntimeError: sink bug" in caplog.text  # the traceback is kept in the log


def test_fanout_refuses_a_sink_without_notify() -> None:
    with pytest.raises(ConfigError) as err:
        FanOut([_Keep(), object()])  # type: ignore[list-item]
    assert err.value.key == "alerts.sinks"


def test_silent_signals_alarm_raises_once_at_the_threshold_and_rearms_on_an_order() -> None:
    keep = _Keep()
    alarm = SignalsWithoutOrders(keep, threshold=3)
    assert alarm.observe(1, approved=2, orders=0, strategy="kevin") is None
    assert alarm.observe(2, approved=0, orders=0, strategy="kevin") is None
    assert alarm.observe(3, approved=1, orders=0, strategy="other") is None
    alert = alarm.observe(4, approved=1, orders=0, strategy="kevin")
    assert alert is not None and keep.alerts == [alert]
    assert alert.kind is AlertKind.NO_ORDERS_FROM_SIGNALS and alert.ts == 4
    assert alert.message == "3 approved signals of strategy kevin in a row sent no order"
    assert dict(alert.details) == {"strategy": "kevin", "signals": 3, "threshold": 3}
    # still silent: counted, no second alert
    assert alarm.observe(5, approved=5, orders=0, strategy="kevin") is None
    assert alarm.silent("kevin") == 8 and len(keep.alerts) == 1
    # an order re-arms it
    assert alarm.observe(6, approved=1, orders=1, strategy="kevin") is None
    assert alarm.silent("kevin") == 0
    again = alarm.observe(7, approved=4, orders=0, strategy="kevin")
    assert again is not None and again.details["signals"] == 4 and len(keep.alerts) == 2
    assert alarm.silent("other") == 1


def test_numpy_integers_are_taken_as_ints() -> None:
    import numpy as np

    alert = Alert(AlertKind.ENTRY, np.int64(TS), "entry")
    assert type(alert.ts) is int and alert.as_dict()["ts"] == TS
    alarm = SignalsWithoutOrders(_Keep(), threshold=2)
    fired = alarm.observe(TS, approved=np.int64(2), orders=np.int32(0))
    assert fired is not None and fired.details["signals"] == 2
    assert type(fired.details["signals"]) is int


def test_silent_signals_alarm_matches_the_seed_000_replay() -> None:
    """Seed 000: four Kevin signals in a row, zero orders (replays/silent-noop-signals):
    the default threshold is the replay's streak of 3, so the third silent signal alarms."""
    keep = _Keep()
    alarm = SignalsWithoutOrders(keep)
    fired = [alarm.observe(i, approved=1, orders=0, strategy="kevin") for i in range(4)]
    assert [a is not None for a in fired] == [False, False, True, False]


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"approved": -1, "orders": 0}, "alerts.approved"),
        ({"approved": 1, "orders": 0.5}, "alerts.orders"),
        ({"approved": True, "orders": 0}, "alerts.approved"),
    ],
)
def test_silent_signals_alarm_refuses_bad_counts(kw: dict, key: str) -> None:
    alarm = SignalsWithoutOrders(_Keep())
    with pytest.raises(ConfigError) as err:
        alarm.observe(1, **kw)
    assert err.value.key == key
    with pytest.raises(ConfigError) as err:
        SignalsWithoutOrders(_Keep(), threshold=0)
    assert err.value.key == "alerts.silent_signals"
