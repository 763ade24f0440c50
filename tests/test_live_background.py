"""Alerts delivered off the trading loop: order kept, a full queue drops (logged, counted),
a raising sink does not stop the worker, close drains."""

from __future__ import annotations

import logging
import threading

import pytest

from backstop.errors import ConfigError
from backstop.runners.live.alerts import Alert, AlertKind
from backstop.runners.live.background import BackgroundNotifier

TS = 1_780_670_465_120_000_000  # 2026-06-05T14:41:05.120Z


def _alert(i: int) -> Alert:
    return Alert(AlertKind.FILL, TS + i, f"fill {i}")


class _Gate:
    """A sink that holds its first delivery until released (a slow webhook)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.got: list[str] = []

    def notify(self, alert: Alert) -> None:
        self.entered.set()
        assert self.release.wait(30)
        self.got.append(alert.message)


def test_alerts_are_delivered_in_order_and_close_drains() -> None:
    gate = _Gate()
    gate.release.set()
    notifier = BackgroundNotifier(gate)
    for i in range(5):
        notifier.notify(_alert(i))
    assert notifier.close(timeout_s=10) is True
    assert gate.got == ["fill 0", "fill 1", "fill 2", "fill 3", "fill 4"]
    assert (notifier.dropped, notifier.errors) == (0, 0)


def test_a_slow_sink_never_blocks_notify_and_a_full_queue_drops(caplog) -> None:
    gate = _Gate()
    notifier = BackgroundNotifier(gate, maxsize=2)
    try:
        notifier.notify(_alert(0))
        assert gate.entered.wait(10)  # the worker holds alert 0 inside the sink
        with caplog.at_level(logging.WARNING, logger="backstop.alerts"):
            for i in (1, 2, 3):
                notifier.notify(_alert(i))  # returns at once although the sink is stuck
        assert notifier.dropped == 1
        assert [r.getMessage() for r in caplog.records] == [
            "alert FILL at 2026-06-05T14:41:05.120Z dropped: the queue is full (2 waiting) "
            "(1 dropped so far)"
        ]
    finally:
        gate.release.set()
    assert notifier.close(timeout_s=10) is True
    assert gate.got == ["fill 0", "fill 1", "fill 2"]


class _Flaky:
    def __init__(self) -> None:
        self.got: list[str] = []

    def notify(self, alert: Alert) -> None:
        if alert.message == "fill 1":
            raise RuntimeError("sink bug")
        self.got.append(alert.message)


def test_a_raising_sink_is_logged_and_the_next_alert_still_goes(caplog) -> None:
    sink = _Flaky()
    notifier = BackgroundNotifier(sink)
    with caplog.at_level(logging.ERROR, logger="backstop.alerts"):
        for i in range(3):
            notifier.notify(_alert(i))
        assert notifier.close(timeout_s=10) is True
    assert sink.got == ["fill 0", "fill 2"] and notifier.errors == 1
    assert "alert sink _Flaky raised on FILL" in caplog.text and "RuntimeError: sink bug" in (
        caplog.text
    )


def test_notify_after_close_is_dropped_and_said(caplog) -> None:
    gate = _Gate()
    gate.release.set()
    notifier = BackgroundNotifier(gate)
    assert notifier.close(timeout_s=10) is True
    with caplog.at_level(logging.WARNING, logger="backstop.alerts"):
        notifier.notify(_alert(9))
    assert gate.got == [] and notifier.dropped == 1
    assert (
        caplog.records[0]
        .getMessage()
        .endswith("dropped: the notifier is closed (1 dropped so far)")
    )


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ConfigError) as err:
        BackgroundNotifier(_Gate(), maxsize=0)
    assert err.value.key == "alerts.queue_size"
