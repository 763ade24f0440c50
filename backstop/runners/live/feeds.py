"""Bar feeds for the live runner: bars from the broker's market data, one bar time a step.

``BrokerBarFeed`` asks the broker's data API for bars after the runner's last bar time and
hands over the first complete bar time (every symbol's bar at it). When none has closed yet
it either moves a simulated market on (``advance``: the loopback fake's clock, which only
moves when the runner has finished the bar before) or, against a real broker, polls until
one closes, returning an empty frame at each ``wait_s`` so the runner can act on a kill and
book fills between bars.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Protocol

import polars as pl

from backstop.errors import BackstopError

MINUTE_NS = 60_000_000_000


class BarSource(Protocol):
    def bars(
        self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int | None = None
    ) -> pl.DataFrame: ...


class BrokerBarFeed:
    """See the module doc. ``advance()`` returns False when the simulated market has no
    more bars (the feed then ends)."""

    def __init__(
        self,
        source: BarSource,
        symbols: tuple[str, ...],
        timeframe: str = "1Min",
        *,
        advance: Callable[[], bool] | None = None,
        wait_s: float = 5.0,
        poll_s: float = 1.0,
        lookback_ns: int = 0,
    ) -> None:
        self.source = source
        self.symbols = tuple(sorted(symbols))
        self.timeframe = timeframe
        self.advance = advance
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.lookback_ns = lookback_ns

    def next_bars(self, after_ns: int) -> pl.DataFrame | None:
        deadline = time.monotonic() + self.wait_s
        for _ in range(1_000_000):  # bounded: each round either advances, polls or returns
            start = max(after_ns + 1, 0)
            frame = self.source.bars(list(self.symbols), self.timeframe, start)
            ready = self._first_complete(frame, after_ns)
            if ready is not None:
                return ready
            if self.advance is not None:
                if not self.advance():
                    return None
                continue
            if time.monotonic() >= deadline:
                return frame.clear()
            time.sleep(self.poll_s)
        raise BackstopError("bar feed: no bar after a million polls")

    def _first_complete(self, frame: pl.DataFrame, after_ns: int) -> pl.DataFrame | None:
        frame = frame.filter(pl.col("ts") > after_ns)
        if frame.is_empty():
            return None
        first = frame.get_column("ts").min()
        group = frame.filter(pl.col("ts") == first)
        if group.get_column("symbol").n_unique() < len(self.symbols):
            later = frame.filter(pl.col("ts") > first)
            if later.is_empty():
                return None  # the other symbols' bars at this time are not out yet
        return group.sort("symbol")


def fake_advance(url: str, keys: tuple[str, str]) -> Callable[[], bool]:
    """The loopback fake's clock control over HTTP (``POST /_fake/advance``), for a runner
    in another process than the fake; ``keys`` are the fake's (not a real account's)."""
    headers = {"APCA-API-KEY-ID": keys[0], "APCA-API-SECRET-KEY": keys[1]}

    def advance() -> bool:
        request = urllib.request.Request(
            f"{url}/_fake/advance", data=b"{}", method="POST", headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bool(json.loads(answer.read())["moved"])

    return advance
