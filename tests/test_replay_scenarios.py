"""The three shipped scenario folders load cleanly and say what their postmortems say."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from backstop.data import load_bars
from backstop.replay import (
    AccountSnapshot,
    Advisory,
    BotPosition,
    BrokerFill,
    BrokerOrder,
    LogWarning,
    OrderIntent,
    PnlRecord,
    Signal,
    load_incident,
)
from backstop.replay.times import NS

REPLAYS = Path(__file__).resolve().parent.parent / "replays"
ES = REPLAYS / "es-reversal-2025-12-12"
NOOP = REPLAYS / "silent-noop-signals"
STUB = REPLAYS / "stub-order-functions-2026-01-20"


def local_ns(
    zone: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0
) -> int:
    """UTC ns of a wall time in ``zone``."""
    moment = dt.datetime(y, mo, d, h, mi, s, us, tzinfo=ZoneInfo(zone))
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


def chicago(*args: int) -> int:
    return local_ns("America/Chicago", *args)


@pytest.mark.parametrize("folder", [ES, NOOP, STUB])
def test_scenarios_load_strictly_without_a_skip(folder: Path) -> None:
    inc = load_incident(folder, "strict")
    assert inc.skipped == ()
    assert inc.name == folder.name
    assert [e.ts for e in inc.events] == sorted(e.ts for e in inc.events)
    assert load_incident(folder, "tolerant") == inc


def test_es_reversal_key_facts() -> None:
    inc = load_incident(ES, "strict")
    assert inc.tz == "America/Chicago"
    assert inc.instruments == {"ESZ5": {"multiplier": 50.0, "tick": 0.25}}
    start = chicago(2025, 12, 12, 8, 30, 0)
    assert inc.start_ns == start == 1_765_549_800_000_000_000
    assert inc.bot_position("ESZ5", start) == -1.0
    assert inc.broker_position("ESZ5", start) == 0.0

    orders = inc.orders()
    assert list(orders) == ["14812", "15638"]
    entry, exit_ = orders["14812"], orders["15638"]
    (buy,) = entry.fills
    assert (buy.side, buy.qty, buy.price, buy.fee) == (1, 1.0, 6890.5, 2.25)
    assert buy.ts == chicago(2025, 12, 12, 8, 53, 20) == 1_765_551_200_000_000_000
    (sell,) = exit_.fills
    assert (sell.side, sell.qty, sell.price) == (-1, 1.0, 6856.5)
    assert sell.ts == chicago(2025, 12, 12, 9, 35, 22)
    (intent,) = entry.intents
    assert (intent.path, intent.side, intent.qty, intent.stop, intent.target) == (
        "exit",
        1,
        1.0,
        None,
        None,
    )
    assert intent.ts == chicago(2025, 12, 12, 8, 53, 13, 214000)
    assert exit_.intents[0].ts == chicago(2025, 12, 12, 9, 35, 10, 102000)

    advisories = inc.of(Advisory)
    first = advisories[0]
    assert (first.verdict, first.confidence) == ("WAIT", 0.5)
    assert first.ts == chicago(2025, 12, 12, 8, 53, 13, 208000)
    assert all(a.verdict == "WAIT" for a in advisories) and len(advisories) == 6

    signals = inc.of(Signal)
    assert [(s.label, s.side) for s in signals] == [
        ("SCALP_BUY", 1),
        ("SELL", -1),
        ("SELL", -1),
        ("SELL", -1),
        ("SELL", -1),
        ("SCALP_SELL", -1),
    ]
    assert signals[0].confidence == 0.36 and signals[0].ts == chicago(
        2025, 12, 12, 8, 53, 1, 123000
    )
    assert signals[-1].ts == chicago(2025, 12, 12, 9, 35, 4, 212000)
    assert [s.price for s in signals] == [6889.75, 6884.5, 6876.75, 6868.0, 6861.25, 6857.25]

    # the bot's fills duplicate the IB export: kept once, from the export, with a warning each
    assert len(inc.of(BrokerFill)) == 2
    assert all(f.exec_id for f in inc.of(BrokerFill))
    assert [w.source.rsplit(":", 1)[1] for w in inc.warnings] == ["11", "49"]
    assert sorted(p.amount for p in inc.of(PnlRecord)) == [-1704.5, -592.0]
    gross = (sell.price - buy.price) * inc.instruments["ESZ5"]["multiplier"]
    assert gross == -1700.0

    messages = [w.message for w in inc.of(LogWarning)]
    assert "Telegram alert: SL=None, TP=None" in messages
    assert "No current trade ID for exit logging" in messages
    assert sum("non-positive protective levels" in m for m in messages) == 9
    assert sum("WAIT advisory only - not blocking trade" in m for m in messages) == 2
    # the bot thought it was short until the fill, then long, then flat after the exit
    beliefs = [(b.ts, b.qty) for b in inc.of(BotPosition)]
    assert [q for _, q in beliefs] == [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 0.0]
    assert inc.bot_position("ESZ5", buy.ts) == -1.0
    assert inc.bot_position("ESZ5", sell.ts) == 1.0


def test_silent_noop_key_facts() -> None:
    inc = load_incident(NOOP, "strict")
    signals = inc.of(Signal)
    assert [s.source_id for s in signals] == [f"mention:{i}" for i in range(317, 322)]
    assert {s.strategy_id for s in signals} == {"kevin"}
    assert [(s.symbol, s.side, s.intent, s.price) for s in signals] == [
        ("NVDA", 1, "entry", None),
        ("AAPL", 1, "entry", None),
        ("PLTR", 1, "entry", None),
        ("AMD", 1, "entry", 150.38),
        ("NVDA", -1, "exit", None),
    ]
    skips = [w for w in inc.of(LogWarning) if "qty=0 skip" in w.message]
    assert len(skips) == 4
    (account,) = inc.of(AccountSnapshot)
    assert account.equity == 100_000.0

    orders = inc.orders()
    parent = orders["3f1c9a2e-7d41-4b8e-9c55-0a6f2d7e8b13"]
    (intent,) = parent.intents
    assert (intent.qty, intent.stop, intent.target, intent.path) == (13.0, 142.86, 165.42, "entry")
    assert parent.filled_qty == 13.0 and parent.fills[0].price == 150.42
    assert len(parent.legs) == 2
    stop = orders[parent.legs[1]]
    assert stop.broker_orders[0].order_type == "stop"
    (stop_fill,) = stop.fills
    assert (stop_fill.side, stop_fill.qty, stop_fill.price) == (-1, 13.0, 142.81)
    assert stop_fill.ts == 1_780_685_232_460_218_337  # 18:47:12.460218337Z
    assert stop.intents == ()  # the executor never saw the leg fill: only the broker did
    assert round((stop_fill.price - 150.42) * 13, 2) == -98.93
    simple = [o for o in inc.of(BrokerOrder) if o.symbol == "MSFT"]
    assert [o.client_order_id for o in simple] == ["siggen-20260605-MSFT-1"]


def test_silent_noop_bars_price_every_signal_but_pltr() -> None:
    inc = load_incident(NOOP, "strict")
    (bars_path,) = inc.bars
    bars = load_bars(bars_path)
    assert set(bars["symbol"].unique()) == {"NVDA", "AAPL", "AMD"}
    for signal in inc.of(Signal):
        prior = bars.filter((pl.col("symbol") == signal.symbol) & (pl.col("ts") <= signal.ts))
        if signal.symbol == "PLTR":
            assert prior.height == 0
        else:
            assert prior.height > 0
            assert signal.ts - int(prior["ts"].max()) < 60 * NS  # type: ignore[arg-type]  # the minute bar holding the signal
    amd = bars.filter(pl.col("symbol") == "AMD")
    touched = amd.filter(pl.col("low") <= 142.86)
    assert touched["ts"].to_list() == [1_780_685_220_000_000_000]  # only the 18:47 bar
    assert float(amd["high"].max()) < 165.42  # type: ignore[arg-type]


def test_stub_order_functions_key_facts() -> None:
    inc = load_incident(STUB, "strict")
    signals = inc.of(Signal)
    assert [(s.symbol, s.side) for s in signals] == [
        ("GLD", 1),
        ("META", -1),
        ("AAPL", -1),
        ("QQQ", -1),
        ("SPY", -1),
        ("MSFT", -1),
        ("TSLA", -1),
        ("AMZN", -1),
    ]
    ny = "America/New_York"
    assert signals[0].ts == local_ns(ny, 2026, 1, 20, 16, 5, 2, 101000)
    assert all(
        local_ns(ny, 2026, 1, 20, 16, 5) <= s.ts < local_ns(ny, 2026, 1, 20, 16, 6) for s in signals
    )
    intents = inc.of(OrderIntent)
    assert [(i.symbol, i.path, i.qty) for i in intents] == [
        ("GLD", "entry", None),
        *[(s.symbol, "exit", None) for s in signals[1:]],
    ]
    assert inc.of(BrokerOrder) == () and inc.of(BrokerFill) == ()
    assert inc.of(AccountSnapshot)[0].equity == 100_000.0
    assert all(inc.broker_position(s.symbol) == 0.0 for s in signals)
    bars = load_bars(inc.bars[0])
    assert sorted(bars["symbol"].to_list()) == sorted(s.symbol for s in signals)
    sized = {
        row["symbol"]: int(10_000 // row["close"]) for row in bars.iter_rows(named=True)
    }  # 10% of equity at the close
    assert sized["GLD"] == 24 and all(q > 0 for q in sized.values())
