"""The replay's bad-input corpus: every malformed input is refused loudly or read exactly.

Each case starts from one small, valid scenario folder (a ``pylogging_kv`` bot log and the
Alpaca export of its two orders, P&L +12.50) and breaks one thing. Through the CLI, a refusal
is exit code 2 with exactly one line on stderr naming the file (and line or key) and the
cause, never a traceback; an input that is legitimately readable gives the exact result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from backstop.cli import main
from backstop.errors import ConfigError, DataError
from backstop.replay import load_incident
from backstop.replay.events import BrokerFill

INCIDENT = """\
name = "corpus"
tz = "UTC"

[instruments.AMD]
tick = 0.01
multiplier = 1

[start]
ts = "2026-06-05T14:00:00Z"
broker = { AMD = 0 }
equity = 100000

[[input]]
path = "bot.log"
format = "dialect:pylogging_kv"

[[input]]
path = "alpaca_orders.json"
format = "alpaca_orders"
"""
LOG_LINES = [
    "2026-06-05 14:00:00,000 INFO bot: position symbol=AMD qty=0",
    "2026-06-05 14:05:00,000 INFO bot: signal source_id=s1 strategy_id=k symbol=AMD side=buy "
    "intent=entry confidence=0.7 price=150.0",
    "2026-06-05 14:05:01,000 INFO bot: order_intent order_id=o1 symbol=AMD side=buy path=entry "
    "qty=10 stop=145.0 target=160.0",
    "2026-06-05 14:30:00,000 INFO bot: order_intent order_id=o2 symbol=AMD side=sell path=exit "
    "qty=10",
]
ORDERS = [
    {
        "id": "o1",
        "symbol": "AMD",
        "side": "buy",
        "type": "market",
        "status": "filled",
        "qty": "10",
        "filled_qty": "10",
        "filled_avg_price": "150.10",
        "submitted_at": "2026-06-05T14:05:01.5Z",
        "filled_at": "2026-06-05T14:05:02Z",
    },
    {
        "id": "o2",
        "symbol": "AMD",
        "side": "sell",
        "type": "market",
        "status": "filled",
        "qty": "10",
        "filled_qty": "10",
        "filled_avg_price": "151.35",
        "submitted_at": "2026-06-05T14:30:01Z",
        "filled_at": "2026-06-05T14:30:02Z",
    },
]
EXPECT = """\
profile = "post-incident"

[orders.o1]
verdict = "ALLOWED"

[pnl]
actual = 12.5
"""
JSONL_HEADER = '{"schema": "backstop.events", "version": 1, "tz": "UTC"}'
JSONL_FILL = (
    '{"ts": "2026-06-05T14:05:02Z", "kind": "broker_fill", "symbol": "AMD", "side": "buy", '
    '"qty": 10, "price": 150.1, "order_id": "o1"}'
)
FLEX_TRADE = (
    '<Trade symbol="AMD" dateTime="20260605;100502" quantity="{qty}" tradePrice="150.10" '
    'ibCommission="-1" buySell="{side}" ibOrderID="o1" ibExecID="e1" '
    'levelOfDetail="EXECUTION" />'
)
FLEX = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<FlexQueryResponse>\n<FlexStatements>\n'
    "<FlexStatement>\n<Trades>\n{trades}\n</Trades>\n</FlexStatement>\n</FlexStatements>\n"
    "</FlexQueryResponse>\n"
)
CSV_HEADER = "Symbol,Date/Time,Quantity,T. Price,Comm/Fee,Order ID"
CSV_ROW = "AMD,20260605;100502,10,150.10,-1,o1"


def log(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def with_input(path: str, fmt: str, extra: str = "") -> str:
    """The incident with its export input replaced by ``path`` read as ``fmt``."""
    head = INCIDENT.split('[[input]]\npath = "alpaca_orders.json"')[0]
    return head + f'[[input]]\npath = "{path}"\nformat = "{fmt}"\n{extra}'


def orders(change: Callable[[list[dict]], object]) -> str:
    data = json.loads(json.dumps(ORDERS))
    change(data)
    return json.dumps(data, indent=1)


def scenario(tmp_path: Path, files: dict[str, str | bytes | None]) -> Path:
    """The valid scenario with ``files`` replacing (None: removing) some of its files."""
    folder = tmp_path / "incident"
    folder.mkdir(parents=True)
    base: dict[str, str | bytes | None] = {
        "incident.toml": INCIDENT,
        "bot.log": log(*LOG_LINES),
        "alpaca_orders.json": json.dumps(ORDERS, indent=1),
    }
    base.update(files)
    for name, content in base.items():
        if content is None:
            continue
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["replay", *args])
    out, err = capsys.readouterr()
    return code, out, err


# (case id, files to replace, extra CLI arguments, words the one stderr line must hold;
#  "{dir}" stands for the scenario folder)
REFUSED: list[tuple[str, dict[str, str | bytes | None], list[str], list[str]]] = [
    # incident.toml
    ("toml-missing", {"incident.toml": None}, [], ["incident.toml", "no incident.toml in"]),
    ("toml-syntax", {"incident.toml": "name = \n"}, [], ["incident.toml: (toml):", "line 1"]),
    (
        "toml-unknown-key",
        {"incident.toml": INCIDENT.replace('tz = "UTC"', 'tz = "UTC"\ncolour = "red"')},
        [],
        ["incident.toml: colour: unknown key"],
    ),
    (
        "toml-no-name",
        {"incident.toml": INCIDENT.replace('name = "corpus"\n', "")},
        [],
        ["incident.toml: name: required"],
    ),
    (
        "toml-bad-zone",
        {"incident.toml": INCIDENT.replace('tz = "UTC"', 'tz = "Mars/Olympus"')},
        [],
        ["incident.toml: tz:", "Mars/Olympus"],
    ),
    (
        "toml-no-inputs",
        {"incident.toml": INCIDENT.split("[[input]]")[0]},
        [],
        ["incident.toml: input: needs at least one [[input]] table"],
    ),
    (
        "toml-input-file-missing",
        {"bot.log": None},
        [],
        ["incident.toml: input[0].path: no such file:", "bot.log"],
    ),
    (
        "toml-unknown-format",
        {"incident.toml": INCIDENT.replace('"alpaca_orders"', '"alpaca"')},
        [],
        ["incident.toml: input[1].format: must be one of", "'alpaca'"],
    ),
    (
        "toml-negative-tick",
        {"incident.toml": INCIDENT.replace("tick = 0.01", "tick = -0.01")},
        [],
        ["incident.toml: instruments.AMD.tick: must be > 0"],
    ),
    (
        "toml-bad-start-ts",
        {"incident.toml": INCIDENT.replace("2026-06-05T14:00:00Z", "yesterday")},
        [],
        ["incident.toml: start.ts:", "yesterday"],
    ),
    (
        "toml-start-qty-text",
        {"incident.toml": INCIDENT.replace("AMD = 0", 'AMD = "flat"')},
        [],
        ["incident.toml: start.broker.AMD: must be a number, got 'flat'"],
    ),
    (
        "toml-start-after-first-event",
        {"incident.toml": INCIDENT.replace("14:00:00Z", "14:10:00Z")},
        [],
        ["incident.toml:8: [start] ts is after the first event", "bot.log:1"],
    ),
    (
        "toml-latin1",
        {"incident.toml": INCIDENT.replace("corpus", "caf\u00e9").encode("latin-1")},
        [],
        ["incident.toml: incident.toml: cannot read: not UTF-8 text (byte 0xe9 at offset 11;"],
    ),
    (
        "toml-symbol-on-export",
        {"incident.toml": INCIDENT + 'symbol = "AMD"\n'},
        [],
        ["incident.toml: input[1].symbol: a default symbol string, only for dialect:NAME"],
    ),
    # expect.toml
    ("expect-syntax", {"expect.toml": "profile = \n"}, [], ["expect.toml: expect: not valid TOML"]),
    (
        "expect-unknown-key",
        {"expect.toml": "colour = 1\n" + EXPECT},
        [],
        ["expect.toml: colour: unknown key"],
    ),
    (
        "expect-bad-verdict",
        {"expect.toml": EXPECT.replace('"ALLOWED"', '"OK"')},
        [],
        ["expect.toml: orders.o1.verdict: must be ALLOWED, BLOCKED or MODIFIED"],
    ),
    (
        "expect-unknown-reason",
        {
            "expect.toml": EXPECT.replace(
                'verdict = "ALLOWED"', 'verdict = "ALLOWED"\nreasons = ["NOPE"]'
            )
        },
        [],
        ["expect.toml: orders.o1.reasons: unknown reason code NOPE"],
    ),
    (
        "expect-orders-not-table",
        {"expect.toml": 'orders = ["o1"]\n'},
        [],
        ["expect.toml: orders: must be a table of [orders.ID] tables"],
    ),
    (
        "expect-pnl-text",
        {"expect.toml": EXPECT.replace("actual = 12.5", 'actual = "12.5"')},
        [],
        ["expect.toml: pnl.actual: must be a number, got '12.5'"],
    ),
    (
        "expect-reasons-not-list",
        {"expect.toml": EXPECT.replace('verdict = "ALLOWED"', 'verdict = "ALLOWED"\nreasons = 3')},
        [],
        ["expect.toml: orders.o1.reasons: must be a list of reason codes"],
    ),
    (
        "expect-latin1",
        {"expect.toml": '# caf\u00e9\nprofile = "post-incident"\n'.encode("latin-1")},
        [],
        ["expect.toml: expect: cannot read: not UTF-8 text (byte 0xe9 at offset 5;"],
    ),
    (
        "expect-unknown-profile",
        {"expect.toml": EXPECT.replace("post-incident", "no-such-profile")},
        [],
        ["no-such-profile"],
    ),
    # dialect TOML files
    (
        "dialect-unknown-name",
        {"incident.toml": INCIDENT.replace("dialect:pylogging_kv", "dialect:nope")},
        [],
        ["dialect: no dialect 'nope'"],
    ),
    (
        "dialect-bad-regex",
        {
            "incident.toml": INCIDENT.replace("dialect:pylogging_kv", "dialect:bot.toml"),
            "bot.toml": "[dialect]\nname='b'\ntimezone='UTC'\nline='^(?P<time>\\S+ \\S+) "
            "(?P<message>.*)$'\ntime_format='%Y-%m-%d %H:%M:%S,%f'\n"
            "[[pattern]]\nname='p'\nevent='signal'\nregex='^(?P<side>\\w+'\n",
        },
        [],
        ["bot.toml: pattern[0] (p).regex: bad regex: missing ), unterminated subpattern"],
    ),
    (
        "dialect-no-head",
        {
            "incident.toml": INCIDENT.replace("dialect:pylogging_kv", "dialect:bot.toml"),
            "bot.toml": "[[pattern]]\nname='p'\nevent='signal'\nregex='x'\n",
        },
        [],
        ["bot.toml: dialect: missing [dialect] table"],
    ),
    (
        "dialect-bad-side-word",
        {
            "incident.toml": INCIDENT.replace("dialect:pylogging_kv", "dialect:bot.toml"),
            "bot.toml": "[dialect]\nname='b'\ntimezone='UTC'\nline='^(?P<time>\\S+ \\S+) "
            "(?P<message>.*)$'\ntime_format='%Y-%m-%d %H:%M:%S,%f'\n[sides]\nSHORT = -2\n"
            "[[pattern]]\nname='p'\nevent='bot_position'\n"
            "regex='^book: (?P<side>\\w+) (?P<qty>\\d+) (?P<symbol>\\w+)'\n",
        },
        [],
        ["bot.toml: sides.SHORT: must be 1 (buy/long), -1 (sell/short) or 0 (flat), got -2"],
    ),
    # bot log lines
    (
        "log-truncated-order-word",
        {"bot.log": log(*LOG_LINES[:3], LOG_LINES[3][:43])},
        [],
        ["bot.log:4: unknown message: no pylogging_kv pattern matches", "holds an order"],
    ),
    (
        "log-truncated-order-fields",
        {"bot.log": log(*LOG_LINES[:3], LOG_LINES[3][:70])},
        [],
        ["bot.log:4, symbol AMD, column side: order_intent: missing (the line holds an order"],
    ),
    (
        "log-order-line-cut-in-time",
        {"bot.log": log(*LOG_LINES, "2026-06-05 14:3")},
        ["--strict"],
        ["bot.log:5: line does not match the pylogging_kv line format"],
    ),
    (
        "log-order-bad-qty",
        {"bot.log": log(*LOG_LINES[:3], LOG_LINES[3].replace("qty=10", "qty=1O"))},
        [],
        ["bot.log:4, symbol AMD, column qty: order_intent: not a number: '1O'"],
    ),
    (
        "log-order-bad-side",
        {"bot.log": log(*LOG_LINES[:3], LOG_LINES[3].replace("side=sell", "side=flat"))},
        [],
        ["bot.log:4, symbol AMD, column side: order_intent: not a side: 'flat'"],
    ),
    (
        "log-backwards-strict",
        {"bot.log": log(LOG_LINES[1], LOG_LINES[0], *LOG_LINES[2:])},
        ["--strict"],
        ["bot.log:2: out of order: timestamp", "earlier than line 1"],
    ),
    (
        "log-latin1",
        {
            "bot.log": (log(*LOG_LINES) + "2026-06-05 14:31:00,000 INFO bot: caf\u00e9\n").encode(
                "latin-1"
            )
        },
        [],
        ["bot.log: cannot read: not UTF-8 text (byte 0xe9 at offset 443; save it as UTF-8)"],
    ),
    # JSONL event logs
    (
        "jsonl-bad-schema",
        {
            "incident.toml": with_input("events.jsonl", "jsonl"),
            "events.jsonl": log('{"schema": "other", "version": 1, "tz": "UTC"}', JSONL_FILL),
        },
        [],
        ["events.jsonl:1, column schema: header: schema must be 'backstop.events'"],
    ),
    (
        "jsonl-truncated-fill",
        {
            "incident.toml": with_input("events.jsonl", "jsonl"),
            "events.jsonl": log(JSONL_HEADER, JSONL_FILL[:60]),
        },
        [],
        ["events.jsonl:2: not JSON", "holds an order or a fill"],
    ),
    (
        "jsonl-fill-qty-text",
        {
            "incident.toml": with_input("events.jsonl", "jsonl"),
            "events.jsonl": log(JSONL_HEADER, JSONL_FILL.replace('"qty": 10', '"qty": "10"')),
        },
        [],
        ["events.jsonl:2, symbol AMD, column qty: must be a JSON number, got '10'"],
    ),
    (
        "jsonl-empty",
        {"incident.toml": with_input("events.jsonl", "jsonl"), "events.jsonl": ""},
        [],
        ["events.jsonl: empty file: expected a backstop.events header line"],
    ),
    # Alpaca order exports
    (
        "alpaca-not-json",
        {"alpaca_orders.json": json.dumps(ORDERS, indent=1)[:200]},
        [],
        ["alpaca_orders.json:", "not JSON", "(broker truth)"],
    ),
    (
        "alpaca-empty-file",
        {"alpaca_orders.json": ""},
        [],
        ["alpaca_orders.json:1: not JSON: Expecting value", "(broker truth)"],
    ),
    (
        "alpaca-wrong-shape",
        {"alpaca_orders.json": '{"order": []}'},
        [],
        ["alpaca_orders.json:1: expected a JSON list of orders", "(broker truth)"],
    ),
    (
        "alpaca-missing-price",
        {"alpaca_orders.json": orders(lambda o: o[1].pop("filled_avg_price"))},
        [],
        ["alpaca_orders.json:1, symbol AMD, column [1].filled_avg_price: missing"],
    ),
    (
        "alpaca-overfilled",
        {"alpaca_orders.json": orders(lambda o: o[0].update(filled_qty="12"))},
        [],
        ["alpaca_orders.json:0, symbol AMD, column [0].filled_qty: filled_qty 12 exceeds qty 10"],
    ),
    (
        "alpaca-bad-time",
        {"alpaca_orders.json": orders(lambda o: o[0].update(filled_at="5 June"))},
        [],
        ["alpaca_orders.json:0, symbol AMD, column [0].filled_at:", "5 June"],
    ),
    (
        "alpaca-utf16",
        {"alpaca_orders.json": json.dumps(ORDERS).encode("utf-16")},
        [],
        ["alpaca_orders.json: cannot read: not UTF-8 text (byte 0xff at offset 0;"],
    ),
    # IBKR Flex XML
    (
        "flex-cut-in-half",
        {
            "incident.toml": with_input("flex.xml", "ibkr_flex"),
            "flex.xml": FLEX.format(trades=FLEX_TRADE.format(qty=10, side="BUY"))[:260],
        },
        [],
        ["flex.xml:6: malformed XML", "the rest of the file is unread", "(broker truth)"],
    ),
    (
        "flex-not-flex",
        {"incident.toml": with_input("flex.xml", "ibkr_flex"), "flex.xml": "<Orders />\n"},
        [],
        ["flex.xml: not a Flex query: no FlexQueryResponse element"],
    ),
    (
        "flex-bad-datetime",
        {
            "incident.toml": with_input("flex.xml", "ibkr_flex"),
            "flex.xml": FLEX.format(
                trades=FLEX_TRADE.format(qty=10, side="BUY").replace("20260605;", "June5;")
            ),
        },
        [],
        ["flex.xml:6, symbol AMD, column dateTime: not an IBKR date/time: 'June5;100502'"],
    ),
    (
        "flex-zero-quantity",
        {
            "incident.toml": with_input("flex.xml", "ibkr_flex"),
            "flex.xml": FLEX.format(trades=FLEX_TRADE.format(qty=0, side="BUY")),
        },
        [],
        ["flex.xml:6, symbol AMD, column quantity: quantity is 0"],
    ),
    (
        "flex-side-disagrees",
        {
            "incident.toml": with_input("flex.xml", "ibkr_flex"),
            "flex.xml": FLEX.format(trades=FLEX_TRADE.format(qty=10, side="SELL")),
        },
        [],
        ["flex.xml:6, symbol AMD, column buySell: SELL disagrees with quantity 10"],
    ),
    # IBKR CSV
    (
        "csv-missing-column",
        {
            "incident.toml": with_input("trades.csv", "ibkr_csv"),
            "trades.csv": log("Symbol,Date/Time,Quantity", "AMD,20260605;100502,10"),
        },
        [],
        ["trades.csv:1: missing column (one of ['T. Price'"],
    ),
    (
        "csv-truncated-row",
        {
            "incident.toml": with_input("trades.csv", "ibkr_csv"),
            "trades.csv": log(CSV_HEADER, CSV_ROW[:20]),
        },
        [],
        ["trades.csv:2: 3 cells for 6 columns (truncated row?)", "(broker truth)"],
    ),
    (
        "csv-bad-price",
        {
            "incident.toml": with_input("trades.csv", "ibkr_csv"),
            "trades.csv": log(CSV_HEADER, CSV_ROW.replace("150.10", "15O.10")),
        },
        [],
        ["trades.csv:2, symbol AMD, column T. Price: not a number: '15O.10'"],
    ),
    (
        "csv-empty",
        {"incident.toml": with_input("trades.csv", "ibkr_csv"), "trades.csv": ""},
        [],
        ["trades.csv: no header row: expected IBKR trade columns"],
    ),
    (
        "jsonl-version-2",
        {
            "incident.toml": with_input("events.jsonl", "jsonl"),
            "events.jsonl": log(JSONL_HEADER.replace('"version": 1', '"version": 2'), JSONL_FILL),
        },
        [],
        ["events.jsonl:1, column version: header: unsupported version 2 (this backstop reads [1])"],
    ),
    (
        "log-order-in-dst-gap",
        {
            "incident.toml": INCIDENT.replace(
                'format = "dialect:pylogging_kv"',
                'format = "dialect:pylogging_kv"\ntimezone = "America/New_York"',
            ),
            "bot.log": log(
                LOG_LINES[0], LOG_LINES[3].replace("2026-06-05 14:30", "2026-03-08 02:30")
            ),
        },
        [],
        ["bot.log:2, column time: local time does not exist in America/New_York", "holds an order"],
    ),
    ("toml-empty", {"incident.toml": ""}, [], ["incident.toml: name: required"]),
    (
        "log-hints-a-missing-dialect",
        {
            "incident.toml": INCIDENT.replace('format = "dialect:pylogging_kv"', ""),
            "bot.log": log("# dialect: mine.toml", *LOG_LINES),
        },
        [],
        ["dialect: no dialect", "mine.toml"],
    ),
    (
        "bars-missing-columns",
        {
            "incident.toml": INCIDENT + '\n[[input]]\npath = "bars.csv"\nformat = "bars"\n',
            "bars.csv": "ts,symbol,open\n2026-06-05T14:00:00Z,AMD,150\n",
        },
        [],
        ["bars.csv, column high: missing (and low, close, volume)"],
    ),
    # the command line
    (
        "profile-file-missing",
        {},
        ["--profile", "{dir}/risk.toml"],
        ["profile: no such profile file"],
    ),
    ("plot-missing-folder", {}, ["--plot", "{dir}/nowhere/plot.png"], ["--plot: no such folder"]),
    ("plot-unknown-type", {}, ["--plot", "{dir}/plot.txt"], ["--plot: cannot draw a .txt"]),
    ("unknown-order-id", {}, ["--order-id", "o9"], ["--order-id: no order 'o9' in this incident"]),
]


@pytest.mark.parametrize(
    ("files", "extra", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str | bytes | None],
    extra: list[str],
    words: list[str],
) -> None:
    folder = scenario(tmp_path, files)
    args = [a.replace("{dir}", str(folder)) for a in extra]
    code, out, err = run(capsys, str(folder), *args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("backstop: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert out == ""


def test_missing_path_and_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope"))
    assert code == 2 and err == f"backstop: error: {tmp_path / 'nope'}: no such file or folder\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, str(empty))
    assert code == 2
    assert err == (
        f"backstop: error: {empty / 'incident.toml'}: incident.toml: no incident.toml in {empty}\n"
    )


def test_a_log_no_dialect_recognises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.log"
    path.write_text("dear diary\nnothing traded today\n", encoding="utf-8")
    code, _, err = run(capsys, str(path))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"backstop: error: {path}: no shipped dialect recognises this log")


# ---- inputs that are readable: the exact result -------------------------------------------


def test_the_valid_scenario_reads_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = scenario(tmp_path, {"expect.toml": EXPECT})
    code, out, err = run(capsys, str(folder), "--format", "json")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["pnl"]["actual"] == {
        "gross": 12.5,
        "realized": 12.5,
        "unrealized": 0.0,
        "fees": 0.0,
        "net": 12.5,
    }
    assert [(o["order"], o["verdict"]) for o in d["orders"]] == [
        ("o1", "ALLOWED"),
        ("o2", "ALLOWED"),
    ]
    assert d["skipped_lines"] == 0 and d["skipped"] == []


def test_safe_mode_skips_chatter_and_lists_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chatter = "2026-06-05 14:10:00,000 INFO bot: heartbeat ok"
    folder = scenario(tmp_path, {"bot.log": log(*LOG_LINES[:3], chatter, LOG_LINES[3])})
    code, out, err = run(capsys, str(folder))
    assert code == 0 and err == ""
    assert (
        f"SKIPPED 1 unreadable lines or records (left out of the replay):\n"
        f"  {folder / 'bot.log'}:4: unknown message: no pylogging_kv pattern matches\n"
    ) in out
    assert "actual 12.50 USD | with guardrails 12.50 USD" in out


@pytest.mark.parametrize("fmt", ["text", "md", "json"])
def test_tolerant_mode_names_every_skipped_record_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    folder = scenario(
        tmp_path,
        {
            "bot.log": log(*LOG_LINES[:3], LOG_LINES[3][:43]),
            "alpaca_orders.json": orders(lambda o: o[1].pop("filled_avg_price")),
        },
    )
    code, out, err = run(capsys, str(folder), "--tolerant", "--format", fmt)
    assert code == 0 and err == ""
    log_where = f"{folder / 'bot.log'}:4"
    export_where = f"{folder / 'alpaca_orders.json'}:[1]"
    if fmt == "json":
        d = json.loads(out)
        assert d["skipped_lines"] == 2
        assert [s["source"] for s in d["skipped"]] == [log_where, export_where]
        assert d["skipped"][1]["reason"] == "symbol AMD, column [1].filled_avg_price: missing"
        # the exit's fill was unreadable: the actual P&L holds the open long, marked
        assert d["pnl"]["actual"]["realized"] == 0.0
    else:
        assert f"{log_where}: unknown message: no pylogging_kv pattern matches" in out
        assert f"{export_where}: symbol AMD, column [1].filled_avg_price: missing" in out


def test_flex_cut_in_half_tolerant_keeps_the_trades_before_the_cut(tmp_path: Path) -> None:
    trades = "\n".join(
        FLEX_TRADE.format(qty=q, side=s).replace("100502", t)
        for q, s, t in ((10, "BUY", "100502"), (-10, "SELL", "103002"))
    )
    text = FLEX.format(trades=trades)
    cut = text[: text.index('<Trade symbol="AMD" dateTime="20260605;103002"') + 40]
    folder = scenario(
        tmp_path, {"incident.toml": with_input("flex.xml", "ibkr_flex"), "flex.xml": cut}
    )
    with pytest.raises(DataError, match=r"flex\.xml:7: malformed XML"):
        load_incident(folder)
    inc = load_incident(folder, "tolerant")
    assert [(f.side, f.qty, f.price) for f in inc.of(BrokerFill)] == [(1, 10.0, 150.1)]
    assert [s.source for s in inc.skipped] == [f"{folder / 'flex.xml'}:7"]


def test_empty_bot_log_reads_as_no_decisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = scenario(tmp_path, {"bot.log": ""})
    code, out, err = run(capsys, str(folder), "--format", "json")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["orders"] == [] and d["pnl"]["actual"]["gross"] == 12.5


def test_crlf_and_bom_log_reads_like_the_plain_one(tmp_path: Path) -> None:
    plain = load_incident(scenario(tmp_path / "a", {}), "strict")
    crlf = "\ufeff" + "\r\n".join(LOG_LINES) + "\r\n"
    inc = load_incident(scenario(tmp_path / "b", {"bot.log": crlf}), "strict")
    assert [(e.kind, e.ts) for e in inc.events] == [(e.kind, e.ts) for e in plain.events]


def test_unknown_jsonl_kind_without_order_is_skipped_in_safe_mode(tmp_path: Path) -> None:
    folder = scenario(
        tmp_path,
        {
            "incident.toml": with_input("events.jsonl", "jsonl"),
            "events.jsonl": log(
                JSONL_HEADER, '{"ts": "2026-06-05T14:06:00Z", "kind": "note", "text": "hi"}'
            ),
        },
    )
    inc = load_incident(folder)
    assert [s.reason for s in inc.skipped] == [
        "column kind: unknown kind 'note' (known: bot_position, broker_position, signal, "
        "advisory, order_intent, broker_order, broker_fill, pnl, log_warning, account)"
    ]
    with pytest.raises(DataError, match=r"events\.jsonl:2, column kind: unknown kind 'note'"):
        load_incident(folder, "strict")


def test_bad_incident_toml_is_a_config_error_through_the_api(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {"incident.toml": INCIDENT.replace('tz = "UTC"', "tz = 5")})
    with pytest.raises(ConfigError, match=r"incident\.toml: tz: required, a non-empty string"):
        load_incident(folder)


# ---- as a process: the shell sees one line, or a quiet end of a closed pipe ----------------


def test_subprocess_bad_export_prints_one_line(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {"alpaca_orders.json": "[{"})
    proc = subprocess.run(
        [sys.executable, "-m", "backstop.cli", "replay", str(folder)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert f"{folder / 'alpaca_orders.json'}:1: not JSON" in proc.stderr


def test_subprocess_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {})
    cmd = f"{sys.executable} -m backstop.cli replay {folder} | true; echo rc=${{PIPESTATUS[0]}}"
    proc = subprocess.run(
        ["bash", "-c", cmd],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert proc.stderr == ""
    assert proc.stdout == "rc=141\n"
