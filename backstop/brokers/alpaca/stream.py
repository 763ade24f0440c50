"""The trade-updates stream: alpaca-py's ``TradingStream`` in its own daemon thread.

Each update is parsed here and put on a thread-safe queue (one that cannot be read is
queued as its error, never only logged). The stream counts the connections it completes:
events sent while the socket was down are lost, so every new connection (the first one
included: nothing was listening before it) tells the adapter to re-read the orders over
REST. ``stop()`` closes the socket at once and joins the thread within a bound.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

from alpaca.trading.stream import TradingStream

from backstop.brokers.alpaca import parsing
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys
from backstop.brokers.alpaca.parsing import StreamUpdate
from backstop.errors import BackstopError


class _RedactKeys(logging.Filter):
    """Blank the keys out of the websockets library's debug lines: at DEBUG it logs every
    frame it sends, the authentication frame (with the secret) included."""

    def __init__(self, keys: AlpacaKeys) -> None:
        super().__init__()
        self._keys = keys

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = self._keys.redact(text)
        if "authenticate" in clean:  # long frames are logged cut: a secret's half is no match
            clean = "authentication frame (withheld: it holds the keys)"
        if clean != text:
            record.msg, record.args = clean, ()
        return True


WEBSOCKETS_LOGGER = "websockets.client"


class _Stream(TradingStream):
    """alpaca-py's stream, counting each connection it completes (auth and listen sent)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connects = 0

    async def _start_ws(self) -> None:
        await super()._start_ws()
        self.connects += 1


class TradeStream:
    """The trade-updates stream in its own daemon thread, feeding a thread-safe queue."""

    def __init__(self, config: AlpacaConfig, keys: AlpacaKeys, clock_ns: Callable[[], int]) -> None:
        self._config = config
        self._clock_ns = clock_ns
        self._stream = _Stream(
            keys.key_id,
            keys.secret,
            paper=config.paper,
            raw_data=True,
            url_override=config.stream_url,
        )
        self._stream._reconnect_min_backoff = config.reconnect_min_s
        self._stream._reconnect_max_backoff = max(config.reconnect_max_s, config.reconnect_min_s)
        self._stream.subscribe_trade_updates(self._on_update)
        self._redact = _RedactKeys(keys)
        self.queue: queue.Queue[tuple[StreamUpdate | Exception, int]] = queue.Queue()
        self.received = 0  # updates heard so far (only the stream's thread counts)
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"TradeStream(connects={self.connects})"

    @property
    def connects(self) -> int:
        """Connections completed so far: each one after the first is a reconnect."""
        return self._stream.connects

    async def _on_update(self, message: dict[str, Any]) -> None:
        """Parse one raw message here (not in alpaca-py, which would only log a message
        its model refuses): one that cannot be read is queued as the error it raised, and
        ``AlpacaBroker.drain_events`` raises it."""
        try:
            item: StreamUpdate | Exception = parsing.stream_update_json(message.get("data") or {})
        except (ValueError, TypeError, KeyError) as err:  # pydantic's errors are ValueErrors
            item = err
        self.queue.put((item, self._clock_ns()))
        self.received += 1

    def start(self) -> None:
        """Start the stream's thread (it connects, and reconnects by itself)."""
        if self._thread is None:
            logging.getLogger(WEBSOCKETS_LOGGER).addFilter(self._redact)
            self._thread = threading.Thread(
                target=self._stream.run, name="alpaca-trade-updates", daemon=True
            )
            self._thread.start()

    def wait_connected(self, connects: int = 1, timeout_s: float = 10.0) -> bool:
        """Wait until ``connects`` connections were made; False when the time ran out."""
        deadline = time.monotonic() + timeout_s
        while self.connects < connects:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Stop the stream and join its thread within ``stop_timeout_s``: the socket is
        closed at once rather than waiting for alpaca-py's 5-second poll."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop = self._stream._loop
        deadline = time.monotonic() + self._config.stop_timeout_s
        while loop is None and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)  # the thread has not made its loop yet
            loop = self._stream._loop
        if loop is not None and loop.is_running():
            for coro in (self._stream.stop_ws(), self._stream.close()):
                future = asyncio.run_coroutine_threadsafe(coro, loop)
                try:
                    future.result(timeout=max(0.1, deadline - time.monotonic()))
                except (TimeoutError, RuntimeError, futures.CancelledError):
                    future.cancel()  # the loop may end while we ask: the join decides
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
        if not thread.is_alive():
            logging.getLogger(WEBSOCKETS_LOGGER).removeFilter(self._redact)
        else:
            raise BackstopError(
                f"the Alpaca trade-updates thread did not stop in {self._config.stop_timeout_s} s"
            )
