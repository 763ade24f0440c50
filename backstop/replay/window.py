"""The export window: broker exports that start before the incident.

A broker export often holds more than the incident: Alpaca's ``GET /v2/orders?status=all``
returns earlier days' orders, an IBKR statement covers its whole period. The incident starts
at ``[start] ts`` (or, without one, at the first event of the bot's logs); a broker's fills
before that are history, not part of the replay. They are left out of the timeline and build
the starting position instead (the export is assumed to begin flat); its other records
before the start (orders, P&L lines) are left out too:

- where ``[start] broker`` states the symbol's position, the stated one is used and the
  built one is checked against it: a difference is reported (``START_POSITION_MISMATCH``);
- where it does not, the built one becomes the broker's starting position, and the report
  says so (``START_POSITION_FROM_FILLS``).

Either way the report lists what was left out (``EXPORT_WINDOW``), so a position is never
counted twice (once stated, once rebuilt from the same fills) and never silently.
An order submitted before the start that fills inside the window is kept, stamped at the
start (an export's order record is a snapshot: only its fills move positions).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from backstop.replay.events import BrokerFill, BrokerOrder, BrokerPosition, Event
from backstop.replay.timeline import Incident, Inference

_EPS = 1e-9


def local_time(ts: int, tz: str, fraction: bool = True) -> str:
    """``ts`` as local wall time in ``tz``: ``2025-12-12 08:53:20.214`` (ms), for the report."""
    t = datetime.fromtimestamp(ts // 1_000_000_000, tz=UTC).astimezone(ZoneInfo(tz))
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ts % 1_000_000_000 // 1_000_000:03d}" if fraction else text


def signed(qty: float) -> str:
    """A signed quantity as the report writes it: ``+10``, ``-1``, ``0``."""
    return f"{qty:+g}" if qty else "0"


def window_export(
    part: Incident,
    start_ts: int,
    stated: dict[str, float] | None,
    tz: str,
) -> tuple[Incident, list[Event]]:
    """Cut one broker export at ``start_ts``; return it and the starting positions it adds.

    ``stated`` is ``[start] broker`` (``None`` without a ``[start]`` table). The returned
    events are ``BrokerPosition`` records at ``start_ts`` for symbols the stated positions do
    not name; the export's ``inferences`` say what was left out and how it compares.
    """
    if not part.events or part.events[0].ts >= start_ts:
        return part, []
    before = [e for e in part.events if isinstance(e, BrokerFill) and e.ts < start_ts]
    filled_inside = {
        e.order_id for e in part.events if isinstance(e, BrokerFill) and e.ts >= start_ts
    }
    kept: list[Event] = []
    for e in part.events:
        if e.ts >= start_ts:
            kept.append(e)
        elif isinstance(e, BrokerOrder) and e.order_id in filled_inside:
            kept.append(dataclasses.replace(e, ts=start_ts))
    built: dict[str, float] = {}
    for f in before:
        built[f.symbol] = built.get(f.symbol, 0.0) + f.side * f.qty
    name = part.inputs[0] if part.inputs else part.name
    text = (
        f"{len(part.events) - len(kept)} record(s) of {name} before the incident's start "
        f"({local_time(start_ts, tz)}) left out of the replay"
    )
    if before:
        sums = ", ".join(f"{s} {signed(q)}" for s, q in sorted(built.items()))
        text += (
            f"; of them {len(before)} fill(s), from {local_time(before[0].ts, tz)} to "
            f"{local_time(before[-1].ts, tz)}, adding up to {sums}"
        )
    notes = [Inference("EXPORT_WINDOW", None, name, text)]
    positions: list[Event] = []
    for symbol, qty in sorted(built.items()):
        want = None if stated is None else stated.get(symbol)
        if want is None:
            positions.append(BrokerPosition(ts=start_ts, source=name, symbol=symbol, qty=qty))
            notes.append(
                Inference(
                    "START_POSITION_FROM_FILLS",
                    start_ts,
                    name,
                    f"{symbol}: the broker's starting position {signed(qty)} is built from "
                    f"the export's fills before the start ([start] broker does not state it; "
                    "the export is assumed to begin flat)",
                )
            )
        elif abs(want - qty) > _EPS * max(1.0, abs(qty)):
            notes.append(
                Inference(
                    "START_POSITION_MISMATCH",
                    start_ts,
                    name,
                    f"{symbol}: the export's fills before the start add up to {signed(qty)}, "
                    f"[start] broker states {signed(want)}; the replay starts from the stated "
                    f"{signed(want)}",
                )
            )
    cut = dataclasses.replace(part, events=tuple(kept), inferences=part.inferences + tuple(notes))
    return cut, positions
