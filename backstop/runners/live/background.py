"""Alerts delivered off the trading loop: a queue and one worker thread in front of a sink.

A webhook that answers slowly (or a host that never answers, up to the sink's timeout) must
not hold up the runner between a signal and its order. ``BackgroundNotifier`` puts each alert
on a bounded queue and returns at once; one daemon thread hands them to the wrapped sink in
order. A full queue (the sink is far behind) drops the alert: that is logged and counted in
``dropped``, never raised. ``close`` waits, bounded, for the queue to drain, so alerts raised
just before the runner stops (a kill switch) still go out.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import cast

from backstop.errors import ConfigError, check
from backstop.runners.live.alerts import LOGGER_NAME, Alert, Notifier, iso_ns

_STOP = object()


class BackgroundNotifier:
    """``notify`` enqueues; a worker thread delivers to ``sink`` in order."""

    def __init__(
        self, sink: Notifier, *, maxsize: int = 256, logger: logging.Logger | None = None
    ) -> None:
        check(
            isinstance(maxsize, int) and not isinstance(maxsize, bool) and maxsize >= 1,
            ConfigError("alerts.queue_size", f"must be an int >= 1, got {maxsize!r}"),
        )
        self.sink = sink
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="backstop-alerts", daemon=True)
        self._worker.start()

    def notify(self, alert: Alert) -> None:
        """Queue ``alert`` for delivery; never blocks, never raises."""
        if self._closed:
            self._drop(alert, "the notifier is closed")
            return
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self._drop(alert, f"the queue is full ({self._queue.maxsize} waiting)")

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop taking alerts and wait up to ``timeout_s`` for those queued to be delivered;
        True when all were (the worker has finished)."""
        if not self._closed:
            self._closed = True
            try:
                self._queue.put(_STOP, timeout=timeout_s)
            except queue.Full:
                return False
        self._worker.join(timeout_s)
        return not self._worker.is_alive()

    def _drop(self, alert: Alert, why: str) -> None:
        self.dropped += 1
        self.logger.warning(
            "alert %s at %s dropped: %s (%d dropped so far)",
            alert.kind.value,
            iso_ns(alert.ts),
            why,
            self.dropped,
        )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            alert = cast(Alert, item)  # only notify() puts anything else here
            try:
                self.sink.notify(alert)
            except Exception:
                self.errors += 1
                self.logger.exception(
                    "alert sink %s raised on %s at %s",
                    type(self.sink).__name__,
                    alert.kind.value,
                    iso_ns(alert.ts),
                )
