"""Broker exports: Alpaca nested orders, IBKR Flex XML and IBKR trade CSVs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backstop.errors import DataError
from backstop.replay import (
    BrokerFill,
    BrokerOrder,
    PnlRecord,
    read_alpaca_orders,
    read_ibkr_csv,
    read_ibkr_flex,
)

REPLAYS = Path(__file__).resolve().parent.parent / "replays"
ALPACA = REPLAYS / "silent-noop-signals" / "alpaca_orders.json"
FLEX = REPLAYS / "es-reversal-2025-12-12" / "ib_executions.xml"


def alpaca_orders() -> list[dict[str, object]]:
    return json.loads(ALPACA.read_text(encoding="utf-8"))


def dump(tmp_path: Path, orders: object, name: str = "orders.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(orders, indent=2), encoding="utf-8")
    return path


# --- Alpaca -----------------------------------------------------------------------------


def test_alpaca_bracket_orders_legs_and_fills() -> None:
    inc = read_alpaca_orders(ALPACA, "strict")
    orders = inc.of(BrokerOrder)
    assert len(orders) == 4 and len(inc.of(BrokerFill)) == 3
    trails = inc.orders()
    parent = trails["3f1c9a2e-7d41-4b8e-9c55-0a6f2d7e8b13"]
    assert parent.legs == (
        "8d2b4f61-0c3e-4a97-b1d8-5e7a9c0f2d44",
        "c47e0a9b-6f15-4d2c-a3b8-91e5d0f7c266",
    )
    stop = trails["c47e0a9b-6f15-4d2c-a3b8-91e5d0f7c266"]
    (leg,) = stop.broker_orders
    assert (leg.order_type, leg.status, leg.stop_price, leg.side) == ("stop", "filled", 142.86, -1)
    (fill,) = stop.fills
    assert (fill.qty, fill.price, fill.side) == (13.0, 142.81, -1)
    assert fill.ts == 1_780_685_232_460_218_337  # 2026-06-05T18:47:12.460218337Z, to the ns
    assert fill.source == f"{ALPACA}:[0].legs[1]"
    take_profit = trails["8d2b4f61-0c3e-4a97-b1d8-5e7a9c0f2d44"]
    assert take_profit.fills == () and take_profit.broker_orders[0].status == "canceled"
    assert [e.ts for e in inc.events] == sorted(e.ts for e in inc.events)


def test_alpaca_bad_leg_value_names_the_json_path(tmp_path: Path) -> None:
    orders = alpaca_orders()
    orders[0]["legs"][1]["filled_avg_price"] = "abc"  # type: ignore[index]
    path = dump(tmp_path, orders)
    with pytest.raises(DataError) as info:
        read_alpaca_orders(path, "strict")
    assert str(info.value) == (
        f"{path}:0, symbol AMD, column [0].legs[1].filled_avg_price: not a number: 'abc'"
    )
    inc = read_alpaca_orders(path, "tolerant")
    assert [s.source for s in inc.skipped] == [f"{path}:[0].legs[1]"]
    assert len(inc.of(BrokerOrder)) == 3  # only the bad leg is left out
    assert len(inc.of(BrokerFill)) == 2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("side", "up", "column [1].side: not a side: 'up'"),
        ("submitted_at", None, None),  # falls back to created_at
        ("filled_qty", "0", "column [1].filled_qty: status is filled but filled_qty is 0"),
        ("filled_qty", "9", "column [1].filled_qty: filled_qty 9 exceeds qty 5"),
        ("filled_at", "2026-06-05 13:45", "column [1].filled_at: timestamp"),
        ("symbol", None, "column [1].symbol: missing"),
    ],
)
def test_alpaca_field_errors(tmp_path: Path, key: str, value: object, message: str | None) -> None:
    orders = alpaca_orders()
    orders[1][key] = value
    path = dump(tmp_path, orders)
    if message is None:
        inc = read_alpaca_orders(path, "strict")
        assert inc.of(BrokerOrder)[0].ts == 1_780_667_102_118_206_000  # created_at
        return
    with pytest.raises(DataError) as info:
        read_alpaca_orders(path, "strict")
    assert str(info.value).startswith(f"{path}:1")
    assert message in str(info.value)


def test_alpaca_missing_times(tmp_path: Path) -> None:
    orders = alpaca_orders()
    orders[1]["submitted_at"] = None
    orders[1]["created_at"] = None
    with pytest.raises(DataError, match=r"column \[1\]\.submitted_at: missing"):
        read_alpaca_orders(dump(tmp_path, orders), "strict")


def test_alpaca_bad_json_and_empty_export(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text('[\n  {"id": "a",\n  "symbol": }\n]\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_alpaca_orders(path, "strict")
    assert str(info.value) == f"{path}:3: not JSON: Expecting value (column 13)"
    inc = read_alpaca_orders(path, "tolerant")
    assert inc.events == () and len(inc.skipped) == 1
    assert read_alpaca_orders(dump(tmp_path, [], "empty.json"), "strict").events == ()
    with pytest.raises(DataError, match="expected a JSON list of orders"):
        read_alpaca_orders(dump(tmp_path, {"id": 1}, "obj.json"), "strict")


# --- IBKR Flex ----------------------------------------------------------------------------


FLEX_HEAD = (
    '<FlexQueryResponse queryName="t" type="AF">\n<FlexStatements count="1">\n'
    '<FlexStatement accountId="U1">\n<Trades>\n'
)
FLEX_TAIL = "</Trades>\n</FlexStatement>\n</FlexStatements>\n</FlexQueryResponse>\n"


def trade(**attrs: str) -> str:
    base = {
        "symbol": "ESZ5",
        "dateTime": "20251212;095320",
        "quantity": "1",
        "tradePrice": "6890.5",
        "ibCommission": "-2.25",
        "buySell": "BUY",
        "ibOrderID": "14812",
        "ibExecID": "e1",
        "levelOfDetail": "EXECUTION",
    }
    base.update(attrs)
    return "<Trade " + " ".join(f'{k}="{v}"' for k, v in base.items() if v != "-") + " />\n"


def flex(tmp_path: Path, *rows: str, tail: str = FLEX_TAIL) -> Path:
    path = tmp_path / "flex.xml"
    path.write_text(FLEX_HEAD + "".join(rows) + tail, encoding="utf-8")
    return path


def test_flex_scenario_executions() -> None:
    inc = read_ibkr_flex(FLEX, "strict")
    fills = inc.of(BrokerFill)
    # 09:53:20 and 10:35:22 US/Eastern = 14:53:20Z and 15:35:22Z (08:53:20 / 09:35:22 CT)
    assert [(f.ts, f.order_id, f.side, f.qty, f.price, f.fee) for f in fills] == [
        (1_765_551_200_000_000_000, "14812", 1, 1.0, 6890.5, 2.25),
        (1_765_553_722_000_000_000, "15638", -1, 1.0, 6856.5, 2.25),
    ]
    assert [f.source for f in fills] == [f"{FLEX}:10", f"{FLEX}:11"]
    (pnl,) = inc.of(PnlRecord)
    assert (pnl.amount, pnl.symbol) == (-1704.5, "ESZ5")


def test_flex_missing_attribute_strict_and_tolerant(tmp_path: Path) -> None:
    path = flex(tmp_path, trade(), trade(tradePrice="-", ibExecID="e2"), trade(ibExecID="e3"))
    with pytest.raises(DataError) as info:
        read_ibkr_flex(path, "strict")
    assert str(info.value) == f"{path}:6, symbol ESZ5, column tradePrice: missing"
    inc = read_ibkr_flex(path, "tolerant")
    assert [f.exec_id for f in inc.of(BrokerFill)] == ["e1", "e3"]
    assert [s.source for s in inc.skipped] == [f"{path}:6"]
    assert inc.skipped[0].text.startswith('<Trade symbol="ESZ5"')


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"quantity": "1x"}, "column quantity: not a number: '1x'"),
        ({"quantity": "0"}, "column quantity: quantity is 0"),
        ({"buySell": "SELL"}, "column buySell: SELL disagrees with quantity 1"),
        ({"dateTime": "2025/12/12 09:53"}, "column dateTime: not an IBKR date/time"),
        ({"dateTime": "20251312;095320"}, "column dateTime: month must be in 1..12"),
    ],
)
def test_flex_bad_values(tmp_path: Path, attrs: dict[str, str], message: str) -> None:
    path = flex(tmp_path, trade(**attrs))
    with pytest.raises(DataError) as info:
        read_ibkr_flex(path, "strict")
    assert str(info.value).startswith(f"{path}:5, symbol ESZ5, {message}")


def test_flex_truncated_xml_keeps_what_was_read(tmp_path: Path) -> None:
    path = flex(tmp_path, trade(), '<Trade symbol="ESZ5" dateTi', tail="")
    with pytest.raises(DataError, match=r"flex\.xml:6: malformed XML"):
        read_ibkr_flex(path, "strict")
    inc = read_ibkr_flex(path, "tolerant")
    assert len(inc.of(BrokerFill)) == 1
    assert len(inc.skipped) == 1 and "rest of the file is unread" in inc.skipped[0].reason


def test_flex_other_detail_levels_times_and_timezone(tmp_path: Path) -> None:
    path = flex(
        tmp_path,
        trade(levelOfDetail="ORDER"),
        trade(dateTime="-", tradeDate="20251212", tradeTime="095320", levelOfDetail="-"),
        trade(dateTime="2025-12-12, 09:53:21"),
    )
    inc = read_ibkr_flex(path, "strict")
    assert inc.ignored == 1
    assert [f.ts for f in inc.of(BrokerFill)] == [
        1_765_551_200_000_000_000,
        1_765_551_201_000_000_000,
    ]
    chicago = read_ibkr_flex(path, "strict", timezone="America/Chicago")
    assert chicago.of(BrokerFill)[0].ts == 1_765_551_200_000_000_000 + 3600 * 10**9


def test_not_a_flex_query(tmp_path: Path) -> None:
    path = tmp_path / "x.xml"
    path.write_text("<Other/>", encoding="utf-8")
    with pytest.raises(DataError, match="not a Flex query"):
        read_ibkr_flex(path)


# --- IBKR CSV ---------------------------------------------------------------------------


FLAT = (
    "Symbol,Date/Time,Quantity,T. Price,Comm/Fee,Realized P/L,Order ID,Code\n"
    'ESZ5,"2025-12-12, 09:53:20",1,6890.5,-2.25,0,14812,O\n'
    'ESZ5,"2025-12-12, 10:35:22",-1,6856.5,-2.25,-1704.5,15638,C\n'
)


def test_flat_csv_fills_and_pnl(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(FLAT, encoding="utf-8")
    inc = read_ibkr_csv(path, "strict")
    fills = inc.of(BrokerFill)
    assert [(f.ts, f.side, f.qty, f.price, f.fee, f.order_id) for f in fills] == [
        (1_765_551_200_000_000_000, 1, 1.0, 6890.5, 2.25, "14812"),
        (1_765_553_722_000_000_000, -1, 1.0, 6856.5, 2.25, "15638"),
    ]
    assert [p.amount for p in inc.of(PnlRecord)] == [-1704.5]
    assert fills[1].source == f"{path}:3"


def test_statement_csv_reads_only_trade_rows(tmp_path: Path) -> None:
    text = (
        "Statement,Header,Field Name,Field Value\n"
        'Statement,Data,Period,"December 12, 2025"\n'
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,"
        "T. Price,C. Price,Proceeds,Comm/Fee,Basis,Realized P/L,MTM P/L,Code\n"
        'Trades,Data,Order,Futures,USD,ESZ5,"2025-12-12, 09:53:20",1,6890.5,6862.25,'
        "-344525,-2.25,344527.25,0,-1412.5,O\n"
        'Trades,Data,Order,Futures,USD,ESZ5,"2025-12-12, 10:35:22",-1,6856.5,6862.25,'
        "342825,-2.25,-344527.25,-1704.5,-287.5,C\n"
        "Trades,SubTotal,,Futures,USD,ESZ5,,0,,,-1700,-4.5,,-1704.5,-1700,\n"
        "Trades,Total,,Futures,USD,,,,,,-1700,-4.5,,-1704.5,-1700,\n"
    )
    path = tmp_path / "statement.csv"
    path.write_text(text, encoding="utf-8")
    inc = read_ibkr_csv(path, "strict")
    assert [(f.side, f.price) for f in inc.of(BrokerFill)] == [(1, 6890.5), (-1, 6856.5)]
    assert [p.amount for p in inc.of(PnlRecord)] == [-1704.5]
    assert inc.ignored == 4  # two Statement rows, SubTotal, Total


def test_csv_truncated_row_and_bad_number(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(
        FLAT
        + 'ESZ5,"2025-12-12, 10:40:00",1\n'
        + FLAT.splitlines()[1].replace("6890.5", "68x0.5")
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as info:
        read_ibkr_csv(path, "strict")
    assert str(info.value) == f"{path}:4: 3 cells for 8 columns (truncated row?)"
    inc = read_ibkr_csv(path, "tolerant")
    assert [s.source for s in inc.skipped] == [f"{path}:4", f"{path}:5"]
    assert inc.skipped[1].reason == "symbol ESZ5, column T. Price: not a number: '68x0.5'"
    assert len(inc.of(BrokerFill)) == 2


def test_csv_without_the_needed_columns(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("Symbol,When,Qty\nESZ5,x,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"trades\.csv:1: missing column \(one of \['Date/Time'"):
        read_ibkr_csv(path)
