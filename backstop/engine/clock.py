"""Clocks: where the driver's "now" comes from.

Engine code never reads the wall clock; it asks a ``Clock``. A backtest, a replay and the
step-by-step driver use ``SimClock``, which the drive loop moves to each bar's or event's
time and which never goes backwards. The live runner uses ``LiveClock``, the only place
backstop reads the system time.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from backstop.errors import BackstopError


@runtime_checkable
class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the epoch, UTC."""
        ...


class SimClock:
    """A simulated clock the driver advances; it refuses to go back in time."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        ts_ns = int(ts_ns)
        if ts_ns < self._now:
            raise BackstopError(
                f"simulated clock cannot go back: at {self._now} ns, asked for {ts_ns} ns"
            )
        self._now = ts_ns


class LiveClock:
    """The system clock (UTC nanoseconds): the live runner's, and nothing else's."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.time_ns()
