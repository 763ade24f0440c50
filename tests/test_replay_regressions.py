"""Replays that once reached the opposite conclusion ("the guardrails would not have prevented
the loss") with exit code 0, each rebuilt as an incident folder written here:

1. a broker fill stamped in the same whole second as its order was placed before the order;
2. executions without order ids (or with ids the bot never used) were counted twice, once
   from the broker export and once from the bot's own fill lines;
4. a broker export reaching back before the incident stopped the replay (``[start] ts``) or
   counted the starting position twice.

Every folder has an ``expect.toml`` stating the right conclusion, so ``backstop replay``
exits 0 only when the replay reaches it; the tests also check the key numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backstop.cli import main
from backstop.replay import BrokerFill, BrokerPosition, load_incident

DAY = "2025-12-12"
MT = f"{DAY} {{t}} - mytrader.execution.{{who}} - INFO - {{msg}}"
ES_SPEC = "[instruments.ESZ5]\ntick = 0.25\nmultiplier = 50\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def exit_code(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> int:
    code = main(["replay", str(folder), *args])
    capsys.readouterr()
    return code


def mytrader(*lines: tuple[str, str]) -> str:
    """mytrader log lines at ``HH:MM:SS,mmm`` Chicago time; executor lines name the executor."""
    out = []
    for t, msg in lines:
        who = "ib_executor" if " filled " in msg else "live_trading_manager"
        out.append(MT.format(t=t, who=who, msg=msg))
    return "\n".join(out) + "\n"


def pylog(*lines: tuple[str, str]) -> str:
    """pylogging_kv lines: (``HH:MM:SS,mmm`` naive time of the incident's day, message)."""
    return "\n".join(f"{DAY} {t} INFO bot: {msg}" for t, msg in lines) + "\n"


def jsonl(tz: str, *events: dict[str, object]) -> str:
    head = {"schema": "backstop.events", "version": 1, "tz": tz}
    return "\n".join(json.dumps(e) for e in (head, *events)) + "\n"


def flex(*trades: tuple[str, int, float, str | None]) -> str:
    """A Flex Query with one execution-level ``<Trade>`` per (yyyyMMdd;HHmmss ET, signed qty,
    price, ibOrderID or None)."""
    rows = []
    for k, (stamp, qty, price, order) in enumerate(trades):
        oid = f' ibOrderID="{order}"' if order else ""
        rows.append(
            f'<Trade symbol="ESZ5" dateTime="{stamp}" quantity="{qty}" tradePrice="{price}" '
            f'ibCommission="-2.25" buySell="{"BUY" if qty > 0 else "SELL"}"{oid} '
            f'ibExecID="e.{k}" levelOfDetail="EXECUTION" />'
        )
    body = "\n".join(rows)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<FlexQueryResponse><FlexStatements count="1">'
        f"<FlexStatement><Trades>\n{body}\n</Trades></FlexStatement></FlexStatements>"
        "</FlexQueryResponse>\n"
    )


def statement(*trades: tuple[str, int, float]) -> str:
    """An IBKR Activity Statement's Trades section (no order ids): (``HH:MM:SS`` ET, signed
    qty, price)."""
    rows = [
        "Statement,Header,Field Name,Field Value",
        "Statement,Data,Period,December 12 2025",
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,"
        "T. Price,Comm/Fee,Code",
    ]
    for t, qty, price in trades:
        rows.append(f'Trades,Data,Order,Futures,USD,ESZ5,"{DAY}, {t}",{qty},{price},-2.25,O')
    return "\n".join(rows) + "\n"


def flat_csv(header: str, *rows: str) -> str:
    return "\n".join((header, *rows)) + "\n"


def incident_toml(name: str, tz: str, start: str, *inputs: tuple[str, str]) -> str:
    text = f'name = "{name}"\ntz = "{tz}"\n\n{ES_SPEC}\n{start}\n'
    for path, fmt in inputs:
        text += f'\n[[input]]\npath = "{path}"\nformat = "{fmt}"\n'
        if fmt.startswith("dialect:"):
            text += 'symbol = "ESZ5"\n'
        elif fmt.startswith("ibkr"):
            text += 'timezone = "America/New_York"\n'
    return text


def expect_toml(orders: dict[str, tuple[str, list[str]]], actual: float, guarded: float) -> str:
    text = 'profile = "post-incident"\n'
    for label, (verdict, reasons) in orders.items():
        text += f'\n[orders."{label}"]\nverdict = "{verdict}"\nreasons = {json.dumps(reasons)}\n'
    return text + f"\n[pnl]\nactual = {actual}\nwith_guardrails = {guarded}\n"


def qty_path(out, name: str) -> list[float]:
    return [p["qty"] for p in out.paths[name] if p["ts"] is not None]


# --- 1. a fill stamped in its order's second goes after the order ---------------------------
# The ES reversal, with the exit-path BUY sent and filled inside 08:53:20 (Chicago): the IBKR
# export stamps the execution 09:53:20 ET, i.e. before the order the bot logged at .214. Read
# that way the BUY met a position already +1 (EXIT_SIDE_MISMATCH), the closing SELL was
# "allowed" and "with guardrails" equalled the loss.

ES_START = '[start]\nts = "2025-12-12T08:30:00"\nbot = { ESZ5 = -1 }\nbroker = { ESZ5 = 0 }\n'
ES_EXPECT = expect_toml(
    {
        "14812": ("BLOCKED", ["EXIT_NO_EXPOSURE", "MISSING_PROTECTION"]),
        "15638": ("BLOCKED", ["EXIT_NO_EXPOSURE"]),
    },
    actual=-1700.0,
    guarded=0.0,
)
ES_LOG = mytrader(
    ("08:30:00,004", "Current position: -1 ESZ5"),
    ("08:53:20,100", "Hybrid pipeline emitted SCALP_BUY @ 0.36 confidence (price=6889.75)"),
    (
        "08:53:20,214",
        "_place_exit_order: placing BUY 1 ESZ5 (order_id=14812, stop_loss=None, take_profit=None)",
    ),
    ("08:53:20,402", "Exit order 14812 filled BUY 1 @ 6890.50"),
    ("08:54:00,008", "Current position: 1 ESZ5"),
    ("09:35:04,212", "Hybrid pipeline emitted SCALP_SELL @ 0.40 confidence (price=6857.25)"),
    (
        "09:35:10,102",
        "_place_exit_order: placing SELL 1 ESZ5 (order_id=15638, stop_loss=None, take_profit=None)",
    ),
    ("09:35:22,518", "Exit order 15638 filled SELL 1 @ 6856.50"),
    ("09:36:00,004", "Current position: 0 ESZ5"),
)
BUY_TS = 1_765_551_200_000_000_000  # 08:53:20 CST, the export's whole second
INTENT_TS = BUY_TS + 214_000_000


def assert_es_conclusion(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """The right conclusion: 14812 and 15638 blocked (nothing held), -1,700 vs 0."""
    assert exit_code(folder, capsys) == 0
    main(["replay", str(folder), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    orders = {o["order"]: o for o in report["orders"]}
    assert orders["14812"]["verdict"] == "BLOCKED"
    assert "EXIT_NO_EXPOSURE" in orders["14812"]["reason_codes"]
    assert "EXIT_SIDE_MISMATCH" not in orders["14812"]["reason_codes"]
    assert orders["14812"]["numbers"]["position"] == 0.0
    assert orders["15638"]["verdict"] == "BLOCKED"
    assert orders["15638"]["numbers"]["position"] == 0.0
    assert report["pnl"]["actual"]["gross"] == -1700.0
    assert report["pnl"]["with_guardrails"] == {
        "gross": 0.0,
        "realized": 0.0,
        "unrealized": 0.0,
        "fees": 0.0,
        "net": 0.0,
    }
    assert [p["qty"] for p in report["paths"]["actual"] if p["ts"]] == [1.0, 0.0]
    assert [p["qty"] for p in report["paths"]["with_guardrails"] if p["ts"]] == []
    return report


def test_same_second_flex_fill_follows_its_order_mytrader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write(
        tmp_path / "es",
        {
            "incident.toml": incident_toml(
                "es-same-second",
                "America/Chicago",
                ES_START,
                ("bot.log", "dialect:mytrader"),
                ("ib.xml", "ibkr_flex"),
            ),
            "expect.toml": ES_EXPECT,
            "bot.log": ES_LOG,
            "ib.xml": flex(
                ("20251212;095320", 1, 6890.5, "14812"), ("20251212;103522", -1, 6856.5, "15638")
            ),
        },
    )
    report = assert_es_conclusion(folder, capsys)
    # the bot's own report of the fill (.402) lies inside the export's second: the fill goes
    # there, after the order (.214); the SELL's fill was stamped after its order: untouched
    buy = next(p for p in report["paths"]["actual"] if p["ts"])
    assert buy["ts"] == BUY_TS + 402_000_000
    (rec,) = report["reconciliation"]
    assert (rec["kind"], rec["order"], rec["ts"]) == ("ORDERING_INFERRED", "14812", buy["ts"])
    assert rec["source"] == f"{folder / 'ib.xml'}:3"  # the first <Trade>
    assert "stamped 2025-12-12 08:53:20 to the whole second) placed after its order" in rec["text"]
    assert f"({folder / 'bot.log'}:3 at 2025-12-12 08:53:20.214)" in rec["text"]
    assert any(f.startswith("ORDERING_INFERRED: fill of order 14812") for f in report["findings"])
    assert report["orders"][0]["notes"][0].startswith("fill time inferred: fill of order 14812")
    main(["replay", str(folder)])
    text = capsys.readouterr().out
    assert "FINDING ORDERING_INFERRED: fill of order 14812" in text
    assert "note: fill time inferred" in text
    main(["replay", str(folder), "--format", "md"])
    assert "- ORDERING_INFERRED: fill of order 14812" in capsys.readouterr().out


def test_same_second_statement_fill_without_id_follows_the_order_pylogging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Activity Statement has no order ids and the bot logged no fills: each execution is
    joined to the bot's order by symbol, side, quantity and time, then placed after it."""
    log = pylog(
        ("14:30:00,004", "position symbol=ESZ5 qty=-1"),
        ("14:53:20,100", "signal symbol=ESZ5 side=buy price=6889.75"),
        ("14:53:20,214", "order_intent symbol=ESZ5 side=buy qty=1 path=exit order_id=14812"),
        ("15:35:04,212", "signal symbol=ESZ5 side=sell price=6857.25"),
        ("15:35:10,102", "order_intent symbol=ESZ5 side=sell qty=1 path=exit order_id=15638"),
    )
    folder = write(
        tmp_path / "es",
        {
            "incident.toml": incident_toml(
                "es-statement",
                "America/Chicago",
                ES_START,
                ("bot.log", "dialect:pylogging_kv"),
                ("trades.csv", "ibkr_csv"),
            ),
            "expect.toml": ES_EXPECT,
            "bot.log": log,
            "trades.csv": statement(("09:53:20", 1, 6890.5), ("10:35:22", -1, 6856.5)),
        },
    )
    report = assert_es_conclusion(folder, capsys)
    buy = next(p for p in report["paths"]["actual"] if p["ts"])
    assert buy["ts"] == INTENT_TS + 1  # 1 ns after the order: nothing finer is known
    kinds = [(r["kind"], r["order"]) for r in report["reconciliation"]]
    assert kinds == [  # in time order
        ("FILLS_MATCHED", "14812"),
        ("ORDERING_INFERRED", "14812"),
        ("FILLS_MATCHED", "15638"),
    ]
    assert "fills the bot's order 14812" in report["reconciliation"][0]["text"]
    orders = {o["order"]: o for o in report["orders"]}
    assert orders["14812"]["bot_sent"] == 1.0  # it did reach the broker
    assert report["first_divergence"]["decision"] == "14812"


def test_same_second_flat_csv_fill_follows_its_order_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = jsonl(
        "America/Chicago",
        {"ts": "2025-12-12T08:30:00.004-06:00", "kind": "bot_position", "symbol": "ESZ5",
         "qty": -1},
        {"ts": "2025-12-12T08:53:20.1-06:00", "kind": "signal", "symbol": "ESZ5", "side": 1,
         "price": 6889.75},
        {"ts": "2025-12-12T08:53:20.214-06:00", "kind": "order_intent", "symbol": "ESZ5",
         "side": 1, "path": "exit", "qty": 1, "order_id": "14812"},
        {"ts": "2025-12-12T09:35:04.212-06:00", "kind": "signal", "symbol": "ESZ5", "side": -1,
         "price": 6857.25},
        {"ts": "2025-12-12T09:35:10.102-06:00", "kind": "order_intent", "symbol": "ESZ5",
         "side": -1, "path": "exit", "qty": 1, "order_id": "15638"},
    )  # fmt: skip
    folder = write(
        tmp_path / "es",
        {
            "incident.toml": incident_toml(
                "es-flat",
                "America/Chicago",
                ES_START,
                ("events.jsonl", "jsonl"),
                ("trades.csv", "ibkr_csv"),
            ),
            "expect.toml": ES_EXPECT,
            "events.jsonl": events,
            "trades.csv": flat_csv(
                "Symbol,Date/Time,Quantity,T. Price,Comm/Fee,Order ID",
                "ESZ5,20251212;095320,1,6890.5,-2.25,14812",
                "ESZ5,20251212;103522,-1,6856.5,-2.25,15638",
            ),
        },
    )
    report = assert_es_conclusion(folder, capsys)
    assert [(r["kind"], r["order"]) for r in report["reconciliation"]] == [
        ("ORDERING_INFERRED", "14812")
    ]


# --- 2. executions without a shared order id are counted once -------------------------------
# An ES long of 1 (order 301, protected), then an oversized exit SELL 2 (order 302): the
# broker held 1, so today's reduce-only rule clamps the exit to 1. The bot's own fill lines
# and the broker's executions used to both count: the broker "held 2" and the SELL 2 passed.

LONG_START = '[start]\nts = "2025-12-12T08:30:00"\nbot = { ESZ5 = 0 }\nbroker = { ESZ5 = 0 }\n'
LONG_EXPECT = expect_toml(
    {"301": ("ALLOWED", []), "302": ("MODIFIED", ["EXIT_CLAMPED_REDUCE_ONLY"])},
    actual=37.5,  # +1 @ 6890.25, -2 @ 6895: 237.50 realized, short 1 marked at 6899: -200
    guarded=237.5,  # the clamped SELL 1 fills at 6895 and leaves the book flat
)


def long_log_mytrader(fill_price: str = "6890.25") -> str:
    return mytrader(
        ("08:30:00,004", "Current position: 0 ESZ5"),
        ("08:40:01,100", "Hybrid pipeline emitted SCALP_BUY @ 0.80 confidence (price=6890.00)"),
        (
            "08:40:01,200",
            "_place_entry_order: placing BUY 1 ESZ5 (order_id=301, stop_loss=6886.0, "
            "take_profit=6898.0)",
        ),
        ("08:40:01,650", f"Entry order 301 filled BUY 1 @ {fill_price}"),
        ("08:41:00,004", "Current position: 1 ESZ5"),
        ("08:50:01,100", "Hybrid pipeline emitted SELL @ 0.70 confidence (price=6895.00)"),
        (
            "08:50:01,200",
            "_place_exit_order: placing SELL 2 ESZ5 (order_id=302, stop_loss=None, "
            "take_profit=None)",
        ),
        ("08:50:01,700", "Exit order 302 filled SELL 2 @ 6895.00"),
        ("08:51:00,004", "Current position: -1 ESZ5"),
        ("09:00:01,100", "Hybrid pipeline emitted SELL @ 0.55 confidence (price=6899.00)"),
    )


def assert_long_conclusion(
    folder: Path, capsys: pytest.CaptureFixture[str], actual_path: tuple[float, ...] = (1.0, -1.0)
) -> dict:
    assert exit_code(folder, capsys) == 0
    main(["replay", str(folder), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    orders = {o["order"]: o for o in report["orders"]}
    assert orders["301"]["verdict"] == "ALLOWED"
    assert orders["302"]["verdict"] == "MODIFIED"
    assert orders["302"]["numbers"]["position"] == 1.0  # not 2: each execution counted once
    assert orders["302"]["would_send"] == {"side": "SELL", "qty": 1.0}
    assert [p["qty"] for p in report["paths"]["actual"] if p["ts"]] == list(actual_path)
    assert [p["qty"] for p in report["paths"]["with_guardrails"] if p["ts"]] == [1.0, 0.0]
    actual, guarded = report["pnl"]["actual"], report["pnl"]["with_guardrails"]
    assert (actual["realized"], actual["unrealized"], actual["gross"]) == (237.5, -200.0, 37.5)
    assert (guarded["realized"], guarded["unrealized"], guarded["gross"]) == (237.5, 0.0, 237.5)
    assert report["first_divergence"]["decision"] == "302"
    return report


def test_statement_executions_without_ids_match_the_bots_fills_mytrader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Activity Statement holds no order ids; the bot logged its fills (the entry at a
    price a tick off the broker's): each pair is one execution, priced by the broker."""
    folder = write(
        tmp_path / "long",
        {
            "incident.toml": incident_toml(
                "long-statement",
                "America/Chicago",
                LONG_START,
                ("bot.log", "dialect:mytrader"),
                ("trades.csv", "ibkr_csv"),
            ),
            "expect.toml": LONG_EXPECT,
            "bot.log": long_log_mytrader(fill_price="6890.50"),
            "trades.csv": statement(("09:40:01", 1, 6890.25), ("09:50:01", -2, 6895.0)),
        },
    )
    report = assert_long_conclusion(folder, capsys)
    assert report["pnl"]["actual"]["fees"] == 4.5  # the statement's two commissions, once
    recs = report["reconciliation"]
    # both statement rows were stamped 08:40:01 / 08:50:01, before the orders of that
    # second: placed at the bot's reports (in time order: match, then placement)
    assert [(r["kind"], r["order"]) for r in recs] == [
        ("FILLS_MATCHED", "301"),
        ("ORDERING_INFERRED", "301"),
        ("FILLS_MATCHED", "302"),
        ("ORDERING_INFERRED", "302"),
    ]
    entry = recs[0]
    assert entry["source"] == f"{folder / 'trades.csv'}:4"
    assert f"the fill the bot reported at {folder / 'bot.log'}:4 (order 301)" in entry["text"]
    assert "prices differ, kept the broker's, not 6890.5" in entry["text"]
    assert recs[1]["ts"] == 1_765_550_401_650_000_000  # 08:40:01.650 CST, the bot's report
    assert "FILLS_MATCHED: 2 broker execution(s) without a shared order id" in " ".join(
        report["findings"]
    )


def test_flex_executions_under_the_brokers_own_ids_match_the_bots_fills_pylogging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Flex export names IB's own order ids (90001, 90002), which the bot never logged."""
    log = pylog(
        ("14:30:00,004", "position symbol=ESZ5 qty=0"),
        ("14:40:01,100", "signal symbol=ESZ5 side=buy price=6890.00"),
        (
            "14:40:01,200",
            "order_intent symbol=ESZ5 side=buy qty=1 path=entry order_id=301 stop=6886.0 "
            "target=6898.0",
        ),
        ("14:40:01,650", "fill symbol=ESZ5 side=buy qty=1 price=6890.25 order_id=301"),
        ("14:41:00,004", "position symbol=ESZ5 qty=1"),
        ("14:50:01,100", "signal symbol=ESZ5 side=sell price=6895.00"),
        ("14:50:01,200", "order_intent symbol=ESZ5 side=sell qty=2 path=exit order_id=302"),
        ("14:50:01,700", "fill symbol=ESZ5 side=sell qty=2 price=6895.00 order_id=302"),
        ("14:51:00,004", "position symbol=ESZ5 qty=-1"),
        ("15:00:01,100", "signal symbol=ESZ5 side=sell price=6899.00"),
    )
    folder = write(
        tmp_path / "long",
        {
            "incident.toml": incident_toml(
                "long-flex",
                "America/Chicago",
                LONG_START,
                ("bot.log", "dialect:pylogging_kv"),
                ("ib.xml", "ibkr_flex"),
            ),
            "expect.toml": LONG_EXPECT,
            "bot.log": log,
            "ib.xml": flex(
                ("20251212;094001", 1, 6890.25, "90001"), ("20251212;095001", -2, 6895.0, "90002")
            ),
        },
    )
    report = assert_long_conclusion(folder, capsys)
    recs = report["reconciliation"]
    assert [(r["kind"], r["order"]) for r in recs] == [
        ("FILLS_MATCHED", "301"),
        ("ORDERING_INFERRED", "301"),
        ("FILLS_MATCHED", "302"),
        ("ORDERING_INFERRED", "302"),
    ]
    assert recs[2]["text"].endswith("counted once; the export names order 90002")


def test_flat_csv_executions_without_ids_match_the_bots_fills_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def at(t: str) -> str:
        return f"2025-12-12T{t}-06:00"

    events = jsonl(
        "America/Chicago",
        {"ts": at("08:30:00.004"), "kind": "bot_position", "symbol": "ESZ5", "qty": 0},
        {"ts": at("08:40:01.1"), "kind": "signal", "symbol": "ESZ5", "side": 1, "price": 6890.0},
        {"ts": at("08:40:01.2"), "kind": "order_intent", "symbol": "ESZ5", "side": 1,
         "path": "entry", "qty": 1, "order_id": "301", "stop": 6886.0, "target": 6898.0},
        {"ts": at("08:40:01.65"), "kind": "broker_fill", "symbol": "ESZ5", "side": 1, "qty": 1,
         "price": 6890.25, "order_id": "301"},
        {"ts": at("08:50:01.1"), "kind": "signal", "symbol": "ESZ5", "side": -1, "price": 6895.0},
        {"ts": at("08:50:01.2"), "kind": "order_intent", "symbol": "ESZ5", "side": -1,
         "path": "exit", "qty": 2, "order_id": "302"},
        {"ts": at("08:50:01.7"), "kind": "broker_fill", "symbol": "ESZ5", "side": -1, "qty": 2,
         "price": 6895.0, "order_id": "302"},
        {"ts": at("09:00:01.1"), "kind": "signal", "symbol": "ESZ5", "side": -1, "price": 6899.0},
    )  # fmt: skip
    folder = write(
        tmp_path / "long",
        {
            "incident.toml": incident_toml(
                "long-flat",
                "America/Chicago",
                LONG_START,
                ("events.jsonl", "jsonl"),
                ("trades.csv", "ibkr_csv"),
            ),
            "expect.toml": LONG_EXPECT,
            "events.jsonl": events,
            "trades.csv": flat_csv(
                "Symbol,Date/Time,Quantity,T. Price,Comm/Fee",
                "ESZ5,20251212;094001,1,6890.25,-2.25",
                "ESZ5,20251212;095001,-2,6895,-4.5",
            ),
        },
    )
    report = assert_long_conclusion(folder, capsys)
    assert report["pnl"]["actual"]["fees"] == 6.75
    kinds = [r["kind"] for r in report["reconciliation"]]
    assert kinds == ["FILLS_MATCHED", "ORDERING_INFERRED"] * 2


# --- 4. broker exports that start before the incident ---------------------------------------
# An Alpaca GET /v2/orders?status=all export holds yesterday's BUY 10 AAPL (the position the
# account starts the day with) next to today's oversized exit SELL 20 (the bot believed 20).
# With [start] ts the replay stopped; without it the start position was counted twice
# (stated 10 + yesterday's fill 10 = 20) and the SELL 20 looked allowed.


def alpaca_order(
    oid: str, side: str, qty: int, submitted: str, filled_at: str | None, price: str | None
) -> dict[str, object]:
    return {
        "id": oid,
        "client_order_id": f"bot-{oid}",
        "created_at": submitted,
        "submitted_at": submitted,
        "updated_at": filled_at or submitted,
        "filled_at": filled_at,
        "symbol": "AAPL",
        "qty": str(qty),
        "filled_qty": str(qty if filled_at else 0),
        "filled_avg_price": price,
        "order_class": "simple",
        "type": "market",
        "side": side,
        "status": "filled" if filled_at else "canceled",
        "legs": None,
    }


def bracket(order: dict[str, object], *legs: dict[str, object]) -> dict[str, object]:
    return {**order, "order_class": "bracket", "legs": list(legs)}


ALPACA_EXPORT = json.dumps(
    [  # newest first, as the API returns them; yesterday's entry a bracket, legs nested
        alpaca_order("ord-2", "sell", 20, "2026-06-05T14:00:10.31Z", "2026-06-05T14:00:10.6Z",
                     "205.00"),
        alpaca_order("ord-0", "buy", 5, "2026-06-04T15:00:00Z", None, None),
        bracket(
            alpaca_order("ord-1", "buy", 10, "2026-06-04T14:00:01Z", "2026-06-04T14:00:05.25Z",
                         "200.00"),
            alpaca_order("ord-1-tp", "sell", 10, "2026-06-04T14:00:01Z", None, None),
            alpaca_order("ord-1-sl", "sell", 10, "2026-06-04T14:00:01Z", None, None),
        ),
    ],
    indent=1,
)  # fmt: skip
AAPL_LOG = (
    "2026-06-05 14:00:00,000 INFO bot: position symbol=AAPL qty=20\n"
    "2026-06-05 14:00:10,100 INFO bot: signal symbol=AAPL side=sell intent=exit price=205.00\n"
    "2026-06-05 14:00:10,200 INFO bot: order_intent symbol=AAPL side=sell qty=20 path=exit "
    "order_id=ord-2\n"
    "2026-06-05 15:00:00,000 INFO bot: signal symbol=AAPL side=sell price=204.00\n"
)
AAPL_EXPECT = (
    'profile = "equity-runner"\n\n[orders.ord-2]\nverdict = "MODIFIED"\n'
    'reasons = ["EXIT_CLAMPED_REDUCE_ONLY"]\nqty = 10\n\n'
    "[pnl]\nactual = 10.0\nwith_guardrails = 0.0\n"  # short 10 @ 205 marked 204 vs flat
)


def aapl_folder(tmp_path: Path, start: str, log: tuple[str, str] = ("bot.log", AAPL_LOG)) -> Path:
    fmt = "jsonl" if log[0].endswith(".jsonl") else "dialect:pylogging_kv"
    toml = (
        'name = "aapl-window"\ntz = "UTC"\n\n[instruments.AAPL]\ntick = 0.01\nmultiplier = 1\n\n'
        f'{start}\n[[input]]\npath = "{log[0]}"\nformat = "{fmt}"\n\n'
        '[[input]]\npath = "orders.json"\nformat = "alpaca_orders"\n'
    )
    return write(
        tmp_path / "aapl",
        {
            "incident.toml": toml,
            "expect.toml": AAPL_EXPECT,
            log[0]: log[1],
            "orders.json": ALPACA_EXPORT,
        },
    )


def assert_aapl_conclusion(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """The right conclusion: the broker held 10, the SELL 20 is clamped to 10."""
    assert exit_code(folder, capsys) == 0
    main(["replay", str(folder), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    (order,) = report["orders"]
    assert (order["order"], order["verdict"]) == ("ord-2", "MODIFIED")
    assert order["reason_codes"] == ["EXIT_CLAMPED_REDUCE_ONLY"]
    assert order["numbers"]["position"] == 10.0
    assert order["would_send"] == {"side": "SELL", "qty": 10.0}
    assert report["paths"]["actual"] == [
        {"ts": None, "symbol": "AAPL", "qty": 10.0},
        {"ts": 1_780_668_010_600_000_000, "symbol": "AAPL", "qty": -10.0},
    ]
    assert [p["qty"] for p in report["paths"]["with_guardrails"]] == [10.0, 0.0]
    assert report["pnl"]["actual"]["gross"] == 10.0
    assert report["pnl"]["with_guardrails"]["gross"] == 0.0
    return report


def window_text(report: dict) -> str:
    (finding,) = [f for f in report["findings"] if f.startswith("EXPORT_WINDOW")]
    return finding


def test_export_before_a_stated_start_ts_builds_the_start_pylogging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = '[start]\nts = "2026-06-05T13:30:00Z"\nbot = { AAPL = 20 }\nbroker = { AAPL = 10 }\n'
    folder = aapl_folder(tmp_path, start)
    report = assert_aapl_conclusion(folder, capsys)
    assert window_text(report) == (
        f"EXPORT_WINDOW: 5 record(s) of {folder / 'orders.json'} before the incident's start "
        "(2026-06-05 13:30:00.000) left out of the replay; of them 1 fill(s), from "
        "2026-06-04 14:00:05.250 to 2026-06-04 14:00:05.250, adding up to AAPL +10"
    )
    # the fills before the window agree with [start] broker: nothing else to report
    assert [r["kind"] for r in report["reconciliation"]] == ["EXPORT_WINDOW"]


def test_export_before_the_logs_without_start_ts_counts_the_position_once_pylogging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = aapl_folder(tmp_path, "[start]\nbot = { AAPL = 20 }\nbroker = { AAPL = 10 }\n")
    report = assert_aapl_conclusion(folder, capsys)
    assert "before the incident's start (2026-06-05 14:00:00.000)" in window_text(report)
    inc = load_incident(folder, "strict")
    assert inc.start_ns == 1_780_668_000_000_000_000  # the log's first line, not yesterday
    assert [e.order_id for e in inc.of(BrokerFill)] == ["ord-2"]
    assert [o.order_id for o in inc.orders().values()] == ["ord-2"]  # yesterday's left out


def test_export_before_the_start_builds_an_unstated_start_position_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = jsonl(
        "UTC",
        {"ts": "2026-06-05T14:00:00Z", "kind": "bot_position", "symbol": "AAPL", "qty": 20},
        {"ts": "2026-06-05T14:00:10.1Z", "kind": "signal", "symbol": "AAPL", "side": -1,
         "intent": "exit", "price": 205.0},
        {"ts": "2026-06-05T14:00:10.2Z", "kind": "order_intent", "symbol": "AAPL", "side": -1,
         "path": "exit", "qty": 20, "order_id": "ord-2"},
        {"ts": "2026-06-05T15:00:00Z", "kind": "signal", "symbol": "AAPL", "side": -1,
         "price": 204.0},
    )  # fmt: skip
    folder = aapl_folder(tmp_path, "", log=("events.jsonl", events))
    report = assert_aapl_conclusion(folder, capsys)
    assert "START_POSITION_FROM_FILLS: AAPL: the broker's starting position +10 is built " in (
        " ".join(report["findings"])
    )
    inc = load_incident(folder, "strict")
    (pos,) = inc.of(BrokerPosition)
    assert (pos.ts, pos.qty, pos.source) == (inc.start_ns, 10.0, str(folder / "orders.json"))


def test_a_start_position_the_exports_fills_contradict_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[start] says the broker held 15; yesterday's fills add up to 10: the stated position
    is used (the SELL 20 is clamped to 15) and the difference is a finding."""
    start = '[start]\nts = "2026-06-05T13:30:00Z"\nbroker = { AAPL = 15 }\n'
    folder = aapl_folder(tmp_path, start)
    (folder / "expect.toml").write_text(
        AAPL_EXPECT.replace("qty = 10", "qty = 15").replace("actual = 10.0", "actual = 5.0")
    )
    assert exit_code(folder, capsys) == 0
    main(["replay", str(folder), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["orders"][0]["numbers"]["position"] == 15.0
    assert (
        "START_POSITION_MISMATCH: AAPL: the export's fills before the start add up to +10, "
        "[start] broker states +15; the replay starts from the stated +15"
    ) in report["findings"]


# --- what could not be matched, and clocks that disagree ------------------------------------


def test_unmatched_executions_and_fills_are_kept_and_reported(tmp_path: Path) -> None:
    """The statement shows the entry, and a SELL 1 of no logged order in the second of the
    bot's SELL 2 (which it lacks): nothing pairs them, so both are kept and both reported;
    the broker's SELL 1 goes to the end of its second, after the bot's lines in it."""
    folder = write(
        tmp_path / "long",
        {
            "incident.toml": incident_toml(
                "long-unmatched",
                "America/Chicago",
                LONG_START,
                ("bot.log", "dialect:mytrader"),
                ("trades.csv", "ibkr_csv"),
            ),
            "bot.log": long_log_mytrader(),
            "trades.csv": statement(("09:40:01", 1, 6890.25), ("09:50:01", -1, 6894.0)),
        },
    )
    inc = load_incident(folder, "strict")
    second = 1_765_551_001_000_000_000  # 08:50:01 CST
    fills = [
        (f.order_id, f.side * f.qty, f.ts, f.source.rsplit("/", 1)[1]) for f in inc.of(BrokerFill)
    ]
    assert fills == [
        ("301", 1.0, 1_765_550_401_650_000_000, "trades.csv:4"),
        ("302", -2.0, second + 700_000_000, "bot.log:8"),
        (None, -1.0, second + 999_999_999, "trades.csv:5"),
    ]
    kinds = [(i.kind, i.source.rsplit("/", 1)[1]) for i in inc.inferences]
    assert kinds == [
        ("FILLS_MATCHED", "trades.csv:4"),
        ("ORDERING_INFERRED", "trades.csv:4"),
        ("UNMATCHED_FILLS", "trades.csv:5"),
        ("UNMATCHED_FILLS", "bot.log:8"),
        ("ORDERING_INFERRED", "trades.csv:5"),
    ]
    texts = [i.text for i in inc.inferences]
    assert "(SELL 1 ESZ5 @ 6894 at 2025-12-12 08:50:01.000) matches no order or fill" in texts[2]
    assert texts[3].endswith("has no execution in the broker exports; kept")
    assert texts[4].endswith(
        f"shares its second with {folder / 'bot.log'}:8: placed at the end of that second"
    )


def test_a_fill_stamped_seconds_before_its_order_is_placed_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The export's clock ran 3.2 s behind the bot's: the id still says which order the fill
    belongs to, so it goes after that order and the report names the disagreement."""
    folder = write(
        tmp_path / "es",
        {
            "incident.toml": incident_toml(
                "es-skew",
                "America/Chicago",
                ES_START,
                ("bot.log", "dialect:mytrader"),
                ("ib.xml", "ibkr_flex"),
            ),
            "expect.toml": ES_EXPECT,
            "bot.log": ES_LOG,
            "ib.xml": flex(
                ("20251212;095317", 1, 6890.5, "14812"), ("20251212;103522", -1, 6856.5, "15638")
            ),
        },
    )
    report = assert_es_conclusion(folder, capsys)
    (rec,) = report["reconciliation"]
    assert rec["ts"] == INTENT_TS + 1
    assert rec["text"] == (
        f"fill of order 14812 ({folder / 'ib.xml'}:3) is stamped 3.214 s before its order "
        f"({folder / 'bot.log'}:3): the clocks disagree; placed after the order, at "
        "2025-12-12 08:53:20.214"
    )


def test_export_orders_before_the_start_are_cut_or_kept_by_their_fills(tmp_path: Path) -> None:
    """Yesterday's canceled order is left out (it used to put the start after the first
    event and stop the replay); a limit order resting since yesterday that fills today is
    kept, stamped at the start, and nothing before the start adds to the position."""
    orders = [
        alpaca_order("ord-5", "buy", 3, "2026-06-04T19:00:00Z", "2026-06-05T14:30:00Z", "199.00"),
        alpaca_order("ord-0", "buy", 5, "2026-06-04T15:00:00Z", None, None),
    ]
    folder = aapl_folder(tmp_path, '[start]\nts = "2026-06-05T13:30:00Z"\nbroker = { AAPL = 0 }\n')
    (folder / "orders.json").write_text(json.dumps(orders), encoding="utf-8")
    inc = load_incident(folder, "strict")
    start = 1_780_666_200_000_000_000  # 13:30Z
    trails = inc.orders()
    assert [b.ts for b in trails["ord-5"].broker_orders] == [start]
    assert [f.ts for f in trails["ord-5"].fills] == [start + 3600 * 10**9]
    assert "ord-0" not in trails
    assert [(i.kind, i.text.split(" left out")[0].rsplit(" (", 1)[1]) for i in inc.inferences] == [
        ("EXPORT_WINDOW", "2026-06-05 13:30:00.000)")
    ]
    assert inc.inferences[0].text.startswith(f"1 record(s) of {folder / 'orders.json'} before")
    assert inc.inferences[0].text.endswith("left out of the replay")  # no fills among them
    assert [p.qty for p in inc.of(BrokerPosition)] == [0.0]


def test_two_exports_of_one_account_count_each_execution_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Flex query (with order ids) and the Activity Statement (without) of the same
    account, next to a log that reports its own fills: three records of each execution."""
    folder = write(
        tmp_path / "es",
        {
            "incident.toml": incident_toml(
                "es-two-exports",
                "America/Chicago",
                ES_START,
                ("bot.log", "dialect:mytrader"),
                ("ib.xml", "ibkr_flex"),
                ("trades.csv", "ibkr_csv"),
            ),
            "expect.toml": ES_EXPECT,
            "bot.log": ES_LOG,
            "ib.xml": flex(
                ("20251212;095320", 1, 6890.5, "14812"), ("20251212;103522", -1, 6856.5, "15638")
            ),
            "trades.csv": statement(("09:53:20", 1, 6890.5), ("10:35:22", -1, 6856.5)),
        },
    )
    report = assert_es_conclusion(folder, capsys)
    assert report["pnl"]["actual"]["fees"] == 4.5  # two executions, not four or six
    recs = [(r["kind"], r["source"].rsplit("/", 1)[1]) for r in report["reconciliation"]]
    assert recs == [
        ("FILLS_MATCHED", "trades.csv:4"),
        ("ORDERING_INFERRED", "ib.xml:3"),
        ("FILLS_MATCHED", "trades.csv:5"),
    ]
    assert report["reconciliation"][0]["text"].endswith(
        f"is {folder / 'ib.xml'}:3 of another export: counted once, from that"
    )


# --- executions split differently on the two sides ------------------------------------------


def test_two_flex_executions_of_one_reported_fill_mytrader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IB filled the SELL 2 in two executions (under its own order id); the bot logged one
    fill of 2: the two executions are that fill, counted once."""
    folder = write(
        tmp_path / "long",
        {
            "incident.toml": incident_toml(
                "long-split",
                "America/Chicago",
                LONG_START,
                ("bot.log", "dialect:mytrader"),
                ("ib.xml", "ibkr_flex"),
            ),
            "expect.toml": LONG_EXPECT,
            "bot.log": long_log_mytrader(),
            "ib.xml": flex(
                ("20251212;094001", 1, 6890.25, "90001"),
                ("20251212;095001", -1, 6895.0, "90002"),
                ("20251212;095001", -1, 6895.0, "90002"),
            ),
        },
    )
    report = assert_long_conclusion(folder, capsys, actual_path=(1.0, 0.0, -1.0))
    texts = [r["text"] for r in report["reconciliation"] if r["kind"] == "FILLS_MATCHED"]
    assert len(texts) == 3
    assert (
        f"is one of 2 executions of the fill the bot reported at {folder / 'bot.log'}:8"
        in (texts[1])
    )
    assert report["pnl"]["actual"]["fees"] == 6.75  # three executions at 2.25


def test_one_statement_row_of_two_reported_fills_pylogging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bot logged the SELL 2 as two fills of 1; the statement's Order row sums them."""
    log = pylog(
        ("14:30:00,004", "position symbol=ESZ5 qty=0"),
        ("14:40:01,100", "signal symbol=ESZ5 side=buy price=6890.00"),
        (
            "14:40:01,200",
            "order_intent symbol=ESZ5 side=buy qty=1 path=entry order_id=301 stop=6886.0 "
            "target=6898.0",
        ),
        ("14:40:01,650", "fill symbol=ESZ5 side=buy qty=1 price=6890.25 order_id=301"),
        ("14:50:01,100", "signal symbol=ESZ5 side=sell price=6895.00"),
        ("14:50:01,200", "order_intent symbol=ESZ5 side=sell qty=2 path=exit order_id=302"),
        ("14:50:01,700", "fill symbol=ESZ5 side=sell qty=1 price=6895.00 order_id=302"),
        ("14:50:02,100", "fill symbol=ESZ5 side=sell qty=1 price=6895.00 order_id=302"),
        ("15:00:01,100", "signal symbol=ESZ5 side=sell price=6899.00"),
    )
    folder = write(
        tmp_path / "long",
        {
            "incident.toml": incident_toml(
                "long-summed",
                "America/Chicago",
                LONG_START,
                ("bot.log", "dialect:pylogging_kv"),
                ("trades.csv", "ibkr_csv"),
            ),
            "expect.toml": LONG_EXPECT,
            "bot.log": log,
            "trades.csv": statement(("09:40:01", 1, 6890.25), ("09:50:01", -2, 6895.0)),
        },
    )
    report = assert_long_conclusion(folder, capsys)
    sell = report["reconciliation"][-2]
    assert sell["kind"] == "FILLS_MATCHED" and sell["order"] == "302"
    assert f"is the 2 fills the bot reported, the first at {folder / 'bot.log'}:7" in sell["text"]
    # placed at the first of the bot's two reports, after the order at .200
    assert report["reconciliation"][-1]["ts"] == 1_765_551_001_700_000_000


def test_partial_executions_fill_the_bots_order_without_fill_lines_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No fills in the log, none with ids in the statement: the two executions of 1 each
    fill the bot's SELL 2 (quantity left to fill), not one order each or none."""

    def at(t: str) -> str:
        return f"2025-12-12T{t}-06:00"

    events = jsonl(
        "America/Chicago",
        {"ts": at("08:40:01.1"), "kind": "signal", "symbol": "ESZ5", "side": 1, "price": 6890.0},
        {"ts": at("08:40:01.2"), "kind": "order_intent", "symbol": "ESZ5", "side": 1,
         "path": "entry", "qty": 1, "order_id": "301", "stop": 6886.0, "target": 6898.0},
        {"ts": at("08:50:01.1"), "kind": "signal", "symbol": "ESZ5", "side": -1, "price": 6895.0},
        {"ts": at("08:50:01.2"), "kind": "order_intent", "symbol": "ESZ5", "side": -1,
         "path": "exit", "qty": 2, "order_id": "302"},
        {"ts": at("09:00:01.1"), "kind": "signal", "symbol": "ESZ5", "side": -1, "price": 6899.0},
    )  # fmt: skip
    folder = write(
        tmp_path / "long",
        {
            "incident.toml": incident_toml(
                "long-partials",
                "America/Chicago",
                LONG_START,
                ("events.jsonl", "jsonl"),
                ("trades.csv", "ibkr_csv"),
            ),
            "expect.toml": LONG_EXPECT,
            "events.jsonl": events,
            "trades.csv": statement(
                ("09:40:01", 1, 6890.25), ("09:50:01", -1, 6895.0), ("09:50:03", -1, 6895.0)
            ),
        },
    )
    report = assert_long_conclusion(folder, capsys, actual_path=(1.0, 0.0, -1.0))
    matched = [r["order"] for r in report["reconciliation"] if r["kind"] == "FILLS_MATCHED"]
    assert matched == ["301", "302", "302"]
    assert not [f for f in report["findings"] if f.startswith("UNMATCHED_FILLS")]


def test_a_whole_second_log_gives_an_order_and_its_fill_one_stamp_pylogging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No export at all: the bot's own log stamps whole seconds, so the exit-path BUY and
    its fill share 14:53:20 (UTC). The fill still comes after the order it fills."""
    log = "".join(
        f"2025-12-12 {t} INFO bot: {msg}\n"
        for t, msg in (
            ("14:30:00", "position symbol=ESZ5 qty=-1"),
            ("14:53:20", "signal symbol=ESZ5 side=buy price=6889.75"),
            ("14:53:20", "order_intent symbol=ESZ5 side=buy qty=1 path=exit order_id=14812"),
            ("14:53:20", "fill symbol=ESZ5 side=buy qty=1 price=6890.50 order_id=14812"),
            ("15:35:04", "signal symbol=ESZ5 side=sell price=6857.25"),
            ("15:35:10", "order_intent symbol=ESZ5 side=sell qty=1 path=exit order_id=15638"),
            ("15:35:10", "fill symbol=ESZ5 side=sell qty=1 price=6856.50 order_id=15638"),
        )
    )
    folder = write(
        tmp_path / "es",
        {
            "incident.toml": incident_toml(
                "es-whole-seconds", "America/Chicago", ES_START, ("bot.log", "dialect:pylogging_kv")
            ),
            "expect.toml": ES_EXPECT,
            "bot.log": log,
        },
    )
    report = assert_es_conclusion(folder, capsys)
    assert [(r["kind"], r["order"], r["ts"]) for r in report["reconciliation"]] == [
        ("ORDERING_INFERRED", "14812", BUY_TS + 1),
        ("ORDERING_INFERRED", "15638", 1_765_553_710_000_000_001),
    ]
    assert report["reconciliation"][0]["text"] == (
        f"fill of order 14812 ({folder / 'bot.log'}:4) carries the time stamp of its order "
        f"({folder / 'bot.log'}:3): placed just after it, at 2025-12-12 08:53:20.000"
    )
