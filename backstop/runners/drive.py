"""The one Python drive loop: bars and events in order, through the event driver and a venue.

For each bar the venue matches it (a simulated exchange fills its working orders; a replay
broker delivers the recorded fills up to it), the driver books what happened and supervises
(marks, day roll, kill switch, exit rules), and then the events stamped at that bar are
decided. The step-by-step backtest (``stepwise.py``) and the replay re-run (``replay.py``)
both drive through it; they differ only in the venue and in what happens around a decision
(``decide``). The compiled backtest loop (``backstop.brokers.sim.loop``) fuses the same
order of work for speed, and the parity tests hold the two to the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backstop.engine.driver import PortDriver
from backstop.engine.inputs import BarArrays


@dataclass(slots=True)
class Cursor:
    """How far the input was driven: bars matched and booked, events decided. ``drive``
    moves it forward in place, so it is right even when a step raised."""

    bars_done: int = 0
    events_done: int = 0


def drive(
    venue: Any,
    driver: PortDriver,
    bars: BarArrays,
    events: np.ndarray,
    cursor: Cursor,
    *,
    until_event: int | None = None,
    decide: Callable[[int], None] | None = None,
) -> Cursor:
    """Drive from ``cursor`` until before event ``until_event`` or, with None (or a number
    past the last event), through the last bar and its events; return ``cursor``, moved.

    ``venue`` is a broker that also simulates bars (``on_bar``); ``decide(j)`` decides event
    ``j`` (default: ``driver.on_event``). Each event's ``bar`` is the row after which it is
    decided; rows are non-decreasing.
    """
    a = bars
    if decide is None:

        def decide(j: int) -> None:
            driver.on_event(events[j], j)

    if until_event is not None and until_event >= len(events):
        until_event = None  # past the last event: the remaining bars still run
    stop = len(events) if until_event is None else until_event
    i, j = cursor.bars_done, cursor.events_done
    try:
        while True:
            # the events of the last bar driven come after it was matched and booked
            while j < stop and i > 0 and int(events[j]["bar"]) == i - 1:
                decide(j)
                j += 1
            if (until_event is not None and j >= stop) or i >= a.n:
                break
            s = int(a.sym[i])
            ts = int(a.ts[i])
            o, h, lo, c = (float(x[i]) for x in (a.open, a.high, a.low, a.close))
            driver.bar_started(i)  # the driver answers each fill as the venue reports it
            venue.on_bar(
                i, ts, a.symbols[s], o, h, lo, float(a.volume[i]), int(a.session[i]),
                react=driver.on_broker_events,
            )  # fmt: skip
            driver.on_bar(i, s, ts, h, lo, c)
            i += 1
    finally:
        cursor.bars_done, cursor.events_done = i, j
    return cursor
