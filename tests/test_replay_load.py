"""``load_incident``: format detection for single files, incident.toml validation, merging."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backstop.errors import ConfigError, DataError
from backstop.replay import BrokerFill, Signal, detect_format, load_incident

REPLAYS = Path(__file__).resolve().parent.parent / "replays"
ES = REPLAYS / "es-reversal-2025-12-12"


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (ES / "bot.log", "dialect:mytrader"),
        (ES / "ib_executions.xml", "ibkr_flex"),
        (REPLAYS / "silent-noop-signals" / "bridge.log", "dialect:pylogging_kv"),
        (REPLAYS / "silent-noop-signals" / "alpaca_orders.json", "alpaca_orders"),
        (REPLAYS / "stub-order-functions-2026-01-20" / "daily_trend.log", "dialect:magellan"),
    ],
)
def test_detects_the_format_of_single_files(path: Path, fmt: str) -> None:
    assert detect_format(path) == fmt


def test_a_single_log_loads_on_its_own() -> None:
    inc = load_incident(ES / "bot.log", "strict")
    assert inc.name == "bot" and inc.tz == "America/Chicago"
    assert len(inc.of(Signal)) == 6 and len(inc.of(BrokerFill)) == 2  # the bot's own reports


def test_dialect_hint_and_jsonl_header_decide(tmp_path: Path) -> None:
    log = tmp_path / "x.txt"
    log.write_text(
        "# dialect: pylogging_kv\n2026-06-05 14:05:12,402 INFO signal symbol=NVDA side=buy\n",
        encoding="utf-8",
    )
    assert detect_format(log) == "dialect:pylogging_kv"
    assert load_incident(log, "strict").of(Signal)[0].symbol == "NVDA"
    events = tmp_path / "events.log"
    events.write_text('{"schema": "backstop.events", "version": 1, "tz": "UTC"}\n', "utf-8")
    assert detect_format(events) == "jsonl"


def test_no_dialect_recognises_a_foreign_log(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("hello world\nnothing here\n", encoding="utf-8")
    with pytest.raises(DataError, match="no shipped dialect recognises this log"):
        load_incident(log)
    with pytest.raises(DataError, match="no such file or folder"):
        load_incident(tmp_path / "missing.log")


def scenario(tmp_path: Path, toml: str) -> Path:
    folder = tmp_path / "scn"
    folder.mkdir(parents=True)
    shutil.copy(ES / "bot.log", folder / "bot.log")
    shutil.copy(ES / "ib_executions.xml", folder / "ib.xml")
    (folder / "incident.toml").write_text(toml, encoding="utf-8")
    return folder


BASE = """
name = "t"
tz = "America/Chicago"
[[input]]
path = "bot.log"
format = "dialect:mytrader"
"""


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (BASE + "colour = 1\n", "input[0].colour: unknown key"),
        (BASE.replace('name = "t"\n', ""), "name: required"),
        (BASE.replace("America/Chicago", "Mars/Base"), "tz: unknown time zone 'Mars/Base'"),
        (BASE.replace("bot.log", "gone.log"), "input[0].path: no such file"),
        (BASE.replace("dialect:mytrader", "csv"), "input[0].format: must be one of"),
        (BASE + "[instruments.ESZ5]\ntick = 0.25\n", "instruments.ESZ5.multiplier: required"),
        (BASE + "[instruments.ESZ5]\ntick = 0\nmultiplier = 50\n", "instruments.ESZ5.tick"),
        (BASE + "[start]\nbot = { ESZ5 = 'short' }\n", "start.bot.ESZ5: must be a number"),
        (BASE + "[start]\nts = 'yesterday'\n", "start.ts: not an ISO-8601 timestamp"),
        ('name = "t"\ntz = "UTC"\n', "input: needs at least one [[input]] table"),
        (BASE + "symbol = 1\n", "input[0].symbol: a default symbol string"),
    ],
)
def test_incident_toml_mistakes_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    folder = scenario(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_incident(folder)
    assert str(info.value).startswith(f"{folder / 'incident.toml'}: {message}")


def test_folder_without_incident_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no incident\.toml"):
        load_incident(tmp_path)


def test_start_after_the_first_event_is_refused(tmp_path: Path) -> None:
    folder = scenario(tmp_path, BASE + '[start]\nts = "2025-12-12T09:00:00"\nbot = { ESZ5 = -1 }\n')
    with pytest.raises(
        DataError, match=r"incident\.toml:\d+: \[start\] ts is after the first event"
    ):
        load_incident(folder)


def test_start_defaults_to_the_first_event_and_naive_times_use_tz(tmp_path: Path) -> None:
    folder = scenario(tmp_path, BASE + "[start]\nbroker = { ESZ5 = 0 }\nequity = 250000\n")
    inc = load_incident(folder, "strict")
    first_log_event = 1_765_549_800_004_000_000  # 08:30:00.004 CST
    assert inc.events[0].kind == "broker_position" and inc.events[0].ts == first_log_event
    assert inc.events[1].kind == "account"
    folder2 = scenario(
        tmp_path / "b", BASE + "[start]\nts = 2025-12-12T08:00:00\nbot = { ESZ5 = -1 }\n"
    )
    assert load_incident(folder2).start_ns == 1_765_548_000_000_000_000  # 08:00 CST


def test_log_fill_that_differs_from_the_export_is_dropped_with_a_warning(tmp_path: Path) -> None:
    folder = scenario(
        tmp_path,
        BASE + '[[input]]\npath = "ib.xml"\nformat = "ibkr_flex"\n',
    )
    log = folder / "bot.log"
    log.write_text(log.read_text().replace("filled BUY 1 @ 6890.50", "filled BUY 1 @ 6890.75"))
    inc = load_incident(folder, "strict")
    fills = inc.of(BrokerFill)
    assert [(f.order_id, f.price) for f in fills] == [("14812", 6890.5), ("15638", 6856.5)]
    assert "differs from the broker export" in inc.warnings[0].reason
    assert "duplicates" in inc.warnings[1].reason


def test_custom_dialect_file_in_the_folder(tmp_path: Path) -> None:
    folder = scenario(tmp_path, BASE.replace("dialect:mytrader", "dialect:mine.toml"))
    shutil.copy(REPLAYS.parent / "backstop/replay/dialects/mytrader.toml", folder / "mine.toml")
    assert len(load_incident(folder, "strict").of(Signal)) == 6
