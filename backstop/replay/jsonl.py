"""backstop's own JSONL event log (schema ``backstop.events``, version 1): read and write.

Line 1 is a header naming the schema, its version, the logs' time zone and the instruments;
every further line is one event with ``ts`` and ``kind``. EVENTS.md beside this file is the
schema's reference. The header decides how every other line reads, so a bad header (wrong
schema, unsupported version) is an error in both modes; a bad event line is an error in
strict mode and a counted skip in tolerant mode; in safe mode (the default) it is an error
when it holds (or, unreadable, mentions) an order or a fill, else a skip. Blank lines are
ignored (and counted).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backstop.errors import DataError
from backstop.replay.events import KINDS, Event
from backstop.replay.issues import ORDER_KINDS, LineIssues, Mode, mentions_order, read_text
from backstop.replay.timeline import Incident, InstrumentSpec, sort_events
from backstop.replay.times import LocalZone, format_ns, parse_iso_ns
from backstop.replay.values import (
    NUMERIC_FIELDS,
    FieldError,
    build_event,
    event_values,
    field_names,
)

SCHEMA = "backstop.events"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
_HEADER_KEYS = frozenset({"schema", "version", "tz", "instruments", "name"})
_SPEC_KEYS = frozenset({"tick", "multiplier"})


def read_jsonl(path: str | os.PathLike[str], mode: Mode = "safe") -> Incident:
    """Read a JSONL event log into an ``Incident`` named by its header (or the file name)."""
    source = os.fspath(path)
    try:
        lines = read_text(source).splitlines()
    except ValueError as exc:
        raise DataError(str(exc), source=source) from None
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError("empty file: expected a backstop.events header line", source=source)
    header = _header(lines[first], source, first + 1)
    zone = LocalZone(header["tz"])
    issues = LineIssues(source, mode, zone)
    events = []
    ignored = first
    for index in range(first + 1, len(lines)):
        line = lines[index]
        if not line.strip():
            ignored += 1
            continue
        row = index + 1
        event = _event(line, row, issues)
        if event is not None:
            issues.check_order(event.ts, row, line)
            events.append(event)
    return Incident(
        name=header.get("name") or Path(source).stem,
        tz=header["tz"],
        instruments=header["instruments"],
        events=sort_events(events),
        skipped=tuple(issues.skipped),
        warnings=tuple(issues.warnings),
        ignored=ignored,
        inputs=(source,),
    )


def _header(line: str, source: str, row: int) -> dict[str, Any]:
    def bad(problem: str, column: str | None = None) -> DataError:
        return DataError(f"header: {problem}", source=source, row=row, column=column)

    try:
        head = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(head, dict):
        raise bad("expected a JSON object")
    if head.get("schema") != SCHEMA:
        raise bad(f"schema must be {SCHEMA!r}, got {head.get('schema')!r}", "schema")
    version = head.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise bad(
            f"unsupported version {version!r} (this backstop reads {list(SUPPORTED_VERSIONS)})",
            "version",
        )
    unknown = sorted(set(head) - _HEADER_KEYS)
    if unknown:
        raise bad(f"unknown keys {unknown}", unknown[0])
    tz = head.get("tz")
    if not isinstance(tz, str):
        raise bad("tz must be an IANA time zone name", "tz")
    try:
        LocalZone(tz)
    except ValueError as exc:
        raise bad(str(exc), "tz") from None
    name = head.get("name")
    if name is not None and not isinstance(name, str):
        raise bad("name must be a string", "name")
    head["instruments"] = _instruments(head.get("instruments", {}), bad)
    return head


def _instruments(raw: object, bad: Callable[..., DataError]) -> dict[str, InstrumentSpec]:
    if not isinstance(raw, dict):
        raise bad("instruments must be an object of symbol -> {tick, multiplier}", "instruments")
    out: dict[str, InstrumentSpec] = {}
    for symbol, spec in raw.items():
        column = f"instruments.{symbol}"
        if not isinstance(spec, dict) or set(spec) - _SPEC_KEYS:
            raise bad(f"expected an object with keys {sorted(_SPEC_KEYS)}", column)
        values: InstrumentSpec = {}
        for key, value in spec.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise bad(f"{key} must be a number > 0, got {value!r}", f"{column}.{key}")
            values[key] = float(value)
        out[symbol] = values
    return out


def _event(line: str, row: int, issues: LineIssues) -> Event | None:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        issues.fail(
            f"not JSON ({exc.msg} at column {exc.colno})",
            row=row,
            text=line,
            holds_order=mentions_order(line),
        )
        return None
    if not isinstance(obj, dict):
        issues.fail("expected a JSON object", row=row, text=line, holds_order=mentions_order(line))
        return None
    symbol = obj.get("symbol") if isinstance(obj.get("symbol"), str) else None
    kind = obj.get("kind")
    if kind not in KINDS:
        known = ", ".join(KINDS)
        issues.fail(
            f"unknown kind {kind!r} (known: {known})",
            row=row,
            text=line,
            column="kind",
            symbol=symbol,
            holds_order=mentions_order(line),
        )
        return None
    order = kind in ORDER_KINDS
    allowed = field_names(kind)
    for key, value in obj.items():
        if key in ("ts", "kind"):
            continue
        problem = None
        if key not in allowed:
            problem = f"unknown field for kind {kind!r}"
        elif (
            key in NUMERIC_FIELDS
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, int | float))
        ):
            problem = f"must be a JSON number, got {value!r}"
        if problem is not None:
            issues.fail(problem, row=row, text=line, column=key, symbol=symbol, holds_order=order)
            return None
    try:
        ts = _ts(obj.get("ts"))
    except ValueError as exc:
        issues.fail(str(exc), row=row, text=line, column="ts", symbol=symbol, holds_order=order)
        return None
    try:
        return build_event(kind, ts, issues.where(row), obj)
    except FieldError as exc:
        issues.fail(
            exc.problem, row=row, text=line, column=exc.field, symbol=symbol, holds_order=order
        )
        return None


def _ts(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"ts must be int ns or an ISO-8601 string, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return parse_iso_ns(value)
    if value is None:
        raise ValueError("missing")
    raise ValueError(f"ts must be int ns or an ISO-8601 string with offset, got {value!r}")


def write_jsonl(incident: Incident, path: str | os.PathLike[str]) -> None:
    """Write ``incident`` as a version-1 JSONL log that ``read_jsonl`` reads back equal.

    Times are written in the incident's zone with their offset and the shortest exact
    fraction; fields that are ``None`` are left out. Sources, skipped lines and warnings
    are not part of the log (the reader names its own lines as sources).
    """
    zone = LocalZone(incident.tz)
    header = {
        "schema": SCHEMA,
        "version": VERSION,
        "name": incident.name,
        "tz": incident.tz,
        "instruments": {s: dict(spec) for s, spec in sorted(incident.instruments.items())},
    }
    lines = [json.dumps(header, ensure_ascii=False)]
    for e in incident.events:
        record: dict[str, object] = {"ts": format_ns(e.ts, zone), "kind": e.kind}
        record.update(event_values(e))
        lines.append(json.dumps(record, ensure_ascii=False))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
