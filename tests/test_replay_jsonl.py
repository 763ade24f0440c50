"""backstop's JSONL event log: round trip, exact times, and every kind of bad line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from backstop.errors import DataError
from backstop.replay import (
    BrokerFill,
    Incident,
    Signal,
    load_incident,
    read_jsonl,
    write_jsonl,
)

REPLAYS = Path(__file__).resolve().parent.parent / "replays"
HEADER = {
    "schema": "backstop.events",
    "version": 1,
    "tz": "America/Chicago",
    "instruments": {"ESZ5": {"tick": 0.25, "multiplier": 50}},
}
SIGNAL = {
    "ts": "2025-12-12T08:53:01.123-06:00",
    "kind": "signal",
    "symbol": "ESZ5",
    "side": 1,
    "label": "SCALP_BUY",
    "confidence": 0.36,
}
FILL = {
    "ts": 1_765_551_200_000_000_000,
    "kind": "broker_fill",
    "symbol": "ESZ5",
    "side": "buy",
    "qty": 1,
    "price": 6890.5,
    "order_id": "14812",
}


def write(tmp_path: Path, *records: object, raw: tuple[str, ...] = ()) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records] + list(raw)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def without_sources(incident: Incident) -> list[object]:
    return [dataclasses.replace(e, source="") for e in incident.events]


def test_reads_iso_and_ns_times_exactly(tmp_path: Path) -> None:
    nano = {**FILL, "ts": "2026-06-05T18:47:12.460218337Z", "order_id": "x"}
    inc = read_jsonl(write(tmp_path, HEADER, SIGNAL, FILL, nano), "strict")
    assert inc.tz == "America/Chicago"
    assert inc.instruments == {"ESZ5": {"tick": 0.25, "multiplier": 50.0}}
    assert inc.name == "events"
    assert [e.ts for e in inc.events] == [
        1_765_551_181_123_000_000,
        1_765_551_200_000_000_000,
        1_780_685_232_460_218_337,
    ]
    signal, fill, _ = inc.events
    assert isinstance(signal, Signal) and signal.confidence == 0.36
    assert isinstance(fill, BrokerFill) and (fill.side, fill.qty) == (1, 1.0)
    assert signal.source.endswith("events.jsonl:2")


@pytest.mark.parametrize(
    "scenario",
    ["es-reversal-2025-12-12", "silent-noop-signals", "stub-order-functions-2026-01-20"],
)
def test_write_then_read_round_trips_every_event(tmp_path: Path, scenario: str) -> None:
    original = load_incident(REPLAYS / scenario, "strict")
    path = tmp_path / "out.jsonl"
    write_jsonl(original, path)
    again = read_jsonl(path, "strict")
    assert (again.name, again.tz, dict(again.instruments)) == (
        original.name,
        original.tz,
        dict(original.instruments),
    )
    assert without_sources(again) == without_sources(original)
    write_jsonl(again, tmp_path / "twice.jsonl")
    assert (tmp_path / "twice.jsonl").read_bytes() == path.read_bytes()  # deterministic


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("{not json", "not JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("[1, 2]", "expected a JSON object"),
        ({**SIGNAL, "kind": "sigma"}, "symbol ESZ5, column kind: unknown kind 'sigma'"),
        ({**SIGNAL, "side": None}, "symbol ESZ5, column side: missing"),
        ({**SIGNAL, "confidence": "0.36"}, "symbol ESZ5, column confidence: must be a JSON number"),
        ({**SIGNAL, "price": True}, "symbol ESZ5, column price: must be a JSON number, got True"),
        (
            {**SIGNAL, "colour": "red"},
            "symbol ESZ5, column colour: unknown field for kind 'signal'",
        ),
        (
            {**SIGNAL, "ts": "2025-12-12T08:53:01"},
            "symbol ESZ5, column ts: timestamp '2025-12-12T08:53:01' has no UTC offset",
        ),
        ({**SIGNAL, "ts": None}, "symbol ESZ5, column ts: missing"),
        ({**FILL, "qty": -1}, "symbol ESZ5, column qty: must be > 0, got -1"),
        ({**FILL, "price": 1e400}, "symbol ESZ5, column price: not a finite number"),
    ],
)
def test_bad_event_lines_strict_error_and_tolerant_skip(
    tmp_path: Path, record: object, message: str
) -> None:
    path = write(tmp_path, HEADER, SIGNAL, record, FILL)
    with pytest.raises(DataError) as info:
        read_jsonl(path, "strict")
    assert str(info.value).startswith(f"{path}:3")
    assert message in str(info.value)
    inc = read_jsonl(path, "tolerant")
    assert len(inc.events) == 2
    assert [s.source for s in inc.skipped] == [f"{path}:3"]
    assert message in inc.skipped[0].reason


def test_truncated_last_line_is_skipped_in_tolerant_mode(tmp_path: Path) -> None:
    text = json.dumps(FILL)
    path = write(tmp_path, HEADER, SIGNAL, raw=(text[: len(text) // 2],))
    with pytest.raises(DataError, match=r"events\.jsonl:3: not JSON"):
        read_jsonl(path, "strict")
    inc = read_jsonl(path, "tolerant")
    assert len(inc.events) == 1 and len(inc.skipped) == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({**HEADER, "version": 2}, "column version: header: unsupported version 2"),
        ({**HEADER, "schema": "other"}, "column schema: header: schema must be 'backstop.events'"),
        ({**HEADER, "tz": "Nowhere/Land"}, "column tz: header: unknown time zone"),
        ({**HEADER, "extra": 1}, "column extra: header: unknown keys ['extra']"),
        (
            {**HEADER, "instruments": {"ESZ5": {"tick": 0}}},
            "column instruments.ESZ5.tick: header: tick must be a number > 0",
        ),
    ],
)
def test_bad_header_is_an_error_in_both_modes(tmp_path: Path, header: object, message: str) -> None:
    path = write(tmp_path, header, SIGNAL)
    for mode in ("strict", "tolerant"):
        with pytest.raises(DataError) as info:
            read_jsonl(path, mode)  # type: ignore[arg-type]
        assert str(info.value).startswith(f"{path}:1, {message}")


def test_out_of_order_lines(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, FILL, SIGNAL)  # the signal is 19 s before the fill
    with pytest.raises(DataError, match=r"events\.jsonl:3: out of order: timestamp"):
        read_jsonl(path, "strict")
    inc = read_jsonl(path, "tolerant")
    assert [e.kind for e in inc.events] == ["signal", "broker_fill"]
    assert [w.source for w in inc.warnings] == [f"{path}:3"]


def test_empty_file_and_blank_lines(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty file"):
        read_jsonl(empty)
    inc = read_jsonl(write(tmp_path, HEADER, "", SIGNAL, ""), "strict")
    assert len(inc.events) == 1 and inc.ignored == 2
