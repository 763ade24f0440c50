"""``load_incident``: one log file, a scenario folder or a live run in, one ``Incident`` out.

A live run's directory (``runner.json`` beside ``journal.duckdb``) or its journal file is
read by ``live.py``.

A single file is read by its kind: ``.jsonl``/``.ndjson`` or a ``backstop.events`` header ->
JSONL; ``.xml`` -> IBKR Flex; ``.json`` -> Alpaca orders; ``.csv`` -> IBKR trades; anything
else is a text log, read with the dialect a first line ``# dialect: NAME`` names or, without
one, the shipped dialect that recognises most of its first lines.

A folder holds ``incident.toml`` (see scenario.py) and its inputs. Each input is read on its
own; broker exports are cut to the incident's window (window.py: fills before the start
build the starting position, checked against ``[start] broker``); fills are joined across
sources, by order id or else by symbol, side, quantity, price and time, and placed after the
orders that caused them (crossmatch.py: broker exports are the truth about fills, no
execution is counted twice); the ``[start]`` positions become the first events, and
everything is merged by (ts, input order).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from backstop.errors import DataError
from backstop.replay.alpaca import read_alpaca_orders
from backstop.replay.crossmatch import SECOND_NS, Source, reconcile
from backstop.replay.dialect import load_dialect, shipped_dialects
from backstop.replay.events import AccountSnapshot, BotPosition, BrokerPosition, Event
from backstop.replay.ibkr import DEFAULT_TZ, read_ibkr_csv, read_ibkr_flex
from backstop.replay.issues import Mode, check_mode
from backstop.replay.jsonl import SCHEMA, read_jsonl
from backstop.replay.live import live_journal, read_live_journal
from backstop.replay.scenario import InputSpec, ScenarioSpec, StartSpec, read_scenario
from backstop.replay.textlog import HINT, count_matches, parse_text_log
from backstop.replay.timeline import Incident, merge
from backstop.replay.window import window_export

BROKER_FORMATS = frozenset({"alpaca_orders", "ibkr_flex", "ibkr_csv"})
"""Formats whose fills are broker truth (logs only report them)."""
COARSE_FORMATS = {"ibkr_flex": SECOND_NS, "ibkr_csv": SECOND_NS}
"""Formats that stamp executions to the whole second (their resolution in ns)."""
_SNIFF_LINES = 200


def load_incident(path: str | os.PathLike[str], mode: Mode = "safe") -> Incident:
    """Load a scenario folder (with ``incident.toml``) or a single log/export file."""
    check_mode(mode)
    target = Path(path)
    if live_journal(target) is not None and not (target / "incident.toml").exists():
        return read_live_journal(target)
    if target.is_dir():
        return _load_folder(read_scenario(target), mode)
    if not target.is_file():
        raise DataError("no such file or folder", source=str(target))
    fmt = detect_format(target)
    return read_input(InputSpec(path=target, format=fmt), mode)


def detect_format(path: Path) -> str:
    """Name the input format of one file (``jsonl``, ``dialect:NAME``, ...) from its content."""
    ext = path.suffix.lower()
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    if ext == ".xml":
        return "ibkr_flex"
    if ext == ".csv":
        return "ibkr_csv"
    lines = _head(path)
    first = next((line for line in lines if line.strip()), "")
    if ext == ".json" or first.lstrip().startswith("["):
        return "alpaca_orders"
    try:
        head = json.loads(first)
    except json.JSONDecodeError:
        head = None
    if isinstance(head, dict) and head.get("schema") == SCHEMA:
        return "jsonl"
    hint = HINT.match(lines[0]) if lines else None
    if hint:
        name = hint.group("name")
        local = path.parent / name
        return f"dialect:{local if name.endswith('.toml') else name}"
    return f"dialect:{_best_dialect(path, lines)}"


def _head(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig") as f:
            return [line.rstrip("\r\n") for _, line in zip(range(_SNIFF_LINES), f, strict=False)]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", source=str(path)) from None


def _best_dialect(path: Path, lines: list[str]) -> str:
    content = [line for line in lines if line.strip()]
    scores = {name: count_matches(content, load_dialect(name)) for name in shipped_dialects()}
    best = max(scores, key=lambda n: scores[n], default=None)  # first of equals: sorted names
    if best is None or scores[best] == 0:
        raise DataError(
            "no shipped dialect recognises this log: name one with a first line "
            f"'# dialect: NAME' (shipped: {sorted(scores)}) or a dialect .toml path",
            source=str(path),
        )
    return best


def read_input(spec: InputSpec, mode: Mode = "safe") -> Incident:
    """Read one input file in its declared format (``bars`` files are not events: refused)."""
    path, fmt = spec.path, spec.format
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "jsonl":
        return read_jsonl(path, mode)
    if fmt == "alpaca_orders":
        return read_alpaca_orders(path, mode)
    if fmt == "ibkr_flex":
        return read_ibkr_flex(path, mode, timezone=spec.timezone or DEFAULT_TZ)
    if fmt == "ibkr_csv":
        return read_ibkr_csv(path, mode, timezone=spec.timezone or DEFAULT_TZ)
    if fmt.startswith("dialect:"):
        name = fmt.split(":", 1)[1]
        local = path.parent / name
        dialect = load_dialect(str(local) if name.endswith(".toml") else name)
        return parse_text_log(path, dialect, mode, symbol=spec.symbol, timezone=spec.timezone)
    raise DataError(f"format {fmt!r} holds no events", source=str(path))


def _load_folder(spec: ScenarioSpec, mode: Mode) -> Incident:
    parts: list[tuple[str, Incident]] = []
    bars: list[str] = []
    for item in spec.inputs:
        if item.format == "bars":
            bars.append(str(item.path))
        else:
            fmt = item.format if item.format != "auto" else detect_format(item.path)
            parts.append((fmt, read_input(item, mode)))
    opening: list[Event] = []
    start_ts = _window_start(spec, parts)
    if start_ts is not None:
        stated = spec.start.broker if spec.start is not None else None
        windowed = []
        for fmt, part in parts:
            if fmt in BROKER_FORMATS:
                part, positions = window_export(part, start_ts, stated, spec.tz)
                opening += positions
            windowed.append((fmt, part))
        parts = windowed
    sources = [
        Source(part, fmt in BROKER_FORMATS, COARSE_FORMATS.get(fmt, 0)) for fmt, part in parts
    ]
    timelines = reconcile(sources, spec.tz)
    head = Incident(
        name=spec.name,
        tz=spec.tz,
        instruments=spec.instruments,
        inputs=(str(spec.path),),
        bars=tuple(bars),
    )
    body = merge(head, *timelines)
    if spec.start is not None or opening:
        start = _start_timeline(spec.start, spec.tz, body, start_ts, opening)
        body = merge(head, start, *timelines)
    # what was inferred, in time order (whole-file notes first) for the report to read
    notes = sorted(body.inferences, key=lambda i: (i.ts is not None, i.ts or 0))
    return dataclasses.replace(body, name=spec.name, tz=spec.tz, inferences=tuple(notes))


def _window_start(spec: ScenarioSpec, parts: list[tuple[str, Incident]]) -> int | None:
    """Where the incident starts: ``[start] ts``, else the first event of the bot's logs
    (broker exports may reach further back: window.py); ``None`` with neither."""
    if spec.start is not None and spec.start.ts is not None:
        return spec.start.ts
    firsts = [p.events[0].ts for fmt, p in parts if fmt not in BROKER_FORMATS and p.events]
    return min(firsts, default=None)


def _start_timeline(
    start: StartSpec | None, tz: str, body: Incident, window: int | None, opening: list[Event]
) -> Incident:
    """The start's events: ``[start]`` positions and equity, and the broker positions built
    from an export's fills before the window (``opening``, stamped at the window's start)."""
    if start is None:
        return Incident(name="start", tz=tz, events=tuple(opening))
    first = body.events[0] if body.events else None
    ts = start.ts if start.ts is not None else window
    ts = ts if ts is not None else (first.ts if first is not None else None)
    if ts is None:
        raise DataError("[start] has no ts and the inputs hold no events", source=start.source)
    if first is not None and ts > first.ts:
        raise DataError(
            f"[start] ts is after the first event ({first.source})", source=start.source
        )
    src = start.source
    events: list[Event] = list(opening)
    events += [BotPosition(ts=ts, source=src, symbol=s, qty=q) for s, q in start.bot.items()]
    events += [BrokerPosition(ts=ts, source=src, symbol=s, qty=q) for s, q in start.broker.items()]
    if start.equity is not None:
        events.append(AccountSnapshot(ts=ts, source=src, equity=start.equity, cash=start.cash))
    return Incident(name="start", tz=tz, events=tuple(events))
