"""Native brackets at submit, end to end: ``backstop paper`` with a strategy whose protective
levels are prices sends each entry with its stop and target attached, through the real
alpaca-py client (``order_class`` bracket) and the real ib_async client (parent and
children by ``parentId``), and journals what the backtest journals on the same bars.

The broker holds the legs until the entry fills and lets them work from that fill on: legs
of an entry filled at the open work for the rest of that bar, as in the backtest's default
(``legs_live_on_entry_bar``), so no fill waits a round trip for its protection. The only
differences: the legs are created with their entry (the backtest places them on the fill),
and, as in the legs-on-fill runs, legs an exit makes redundant are cancelled when the exit
is sent, not when it fills.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import backstop
from backstop.engine.journal import read_table, write_journal
from backstop.runners.live.paper import FAKE_KEYS, PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, Mode
from backstop.strategies.sma_cross import sma_cross_intents
from backstop.testing.fake_alpaca import FakeAlpaca
from backstop.testing.fake_ibkr import FakeIBKR

BARS = 160
TICK = 0.25
SYMBOLS = ("SYN000", "SYN001", "SYN002")


def priced_crosses(bars: pl.DataFrame, fast: int = 5, slow: int = 20) -> pl.DataFrame:
    """sma_cross with its 1 % stop and 2 % target as prices from the signal bar's close."""
    crosses = sma_cross_intents(bars, fast=fast, slow=slow).drop("stop_pct", "target_pct")
    tick = TICK if bars.get_column("symbol")[0] == "MES" else 0.01
    closes = bars.select("ts", "symbol", "close")
    level = (pl.col("close") * (1 - pl.col("side") * pl.lit(0.01)) / tick).round() * tick
    target = (pl.col("close") * (1 + pl.col("side") * pl.lit(0.02)) / tick).round() * tick
    entry = pl.col("intent") == 0
    return (
        crosses.join(closes, on=["ts", "symbol"], how="left")
        .with_columns(
            stop_px=pl.when(entry).then(level).otherwise(None),
            target_px=pl.when(entry).then(target).otherwise(None),
        )
        .drop("close")
    )


def sample(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    return bars.filter(pl.col("ts").is_in(first.implode()))


def mes_bars(stamps: int) -> pl.DataFrame:
    prices = [((pl.col(c) * 50 / TICK).round() * TICK).alias(c) for c in ("open", "high",
              "low", "close")]  # fmt: skip
    return (
        sample(stamps)
        .filter(pl.col("symbol") == "SYN000")
        .with_columns(prices)
        .with_columns(symbol=pl.lit("MES"))
    )


def assert_journal_equals_the_backtest(live: Path, expected: Path) -> pl.DataFrame:
    for name in ("verdicts", "fills", "trades", "guard"):
        assert read_table(live, name).equals(read_table(expected, name)), name
    a, e = read_table(live, "orders"), read_table(expected, "orders")
    assert a["client_order_id"].to_list() == e["client_order_id"].to_list()
    assert a.drop("done_ts", "created_ts").equals(e.drop("done_ts", "created_ts"))
    # the legs went out with their entry, not when it filled (the backtest's moment)
    entry_ts = a.filter(pl.col("role") == "ENTRY").select("trade_cycle_id", sent="created_ts")
    legs = a.join(entry_ts, on="trade_cycle_id").filter(pl.col("role") != "ENTRY")
    legs = legs.filter(pl.col("role").is_in(["STOP_LOSS", "TAKE_PROFIT"]))
    assert legs.height > 0 and (legs["created_ts"] == legs["sent"]).all()
    early = a.with_columns(bt=e["created_ts"]).filter(pl.col("created_ts") != pl.col("bt"))
    assert set(early["role"]) == {"STOP_LOSS", "TAKE_PROFIT"}
    assert (early["created_ts"] < early["bt"]).all()
    moved = a.with_columns(bt=e["done_ts"]).filter(pl.col("done_ts") != pl.col("bt"))
    assert set(moved["role"]) <= {"STOP_LOSS", "TAKE_PROFIT"}
    assert (moved["done_ts"] < moved["bt"]).all()
    return a


def test_alpaca_entries_go_out_as_brackets_and_journal_what_the_backtest_does(
    tmp_path: Path,
) -> None:
    bars = sample(BARS)
    ref = backstop.Backtest(bars, priced_crosses).run()
    expected = write_journal(ref, tmp_path / "ref.duckdb")
    with FakeAlpaca(bars, keys=FAKE_KEYS) as fake:
        summary = run_paper(
            PaperOptions("alpaca-fake", priced_crosses, {}, SYMBOLS, None, Mode.PAPER,
                         tmp_path / "run", namespace=ref.run_id, bars=BARS, fake_url=fake.url)
        )  # fmt: skip
        placed = fake.orders()
        posted = [r for r in fake.requests if r[0] == "POST" and r[1] == "/v2/orders"]
    assert summary["round_trips"] > 3
    orders = assert_journal_equals_the_backtest(tmp_path / "run" / JOURNAL, expected)
    ours = [o for o in placed if o["client_order_id"].startswith("bs-")]
    entries = [o for o in ours if "-E-" in o["client_order_id"]]
    assert entries and all(o["order_class"] == "bracket" for o in entries)
    legs = [o for o in placed if o["order_class"] == "bracket" and o not in entries]
    assert len(legs) == 2 * len(entries)  # each entry's stop and target
    assert not [o for o in placed if o["order_class"] in ("oco", "oto")]  # no pair on a fill
    # one POST per entry and one per exit: no leg was ever placed on its own
    exits = orders.filter(pl.col("role") == "SIGNAL_EXIT").height
    assert len(posted) == len(entries) + exits


def test_ib_entries_go_out_as_parent_and_children_and_journal_what_the_backtest_does(
    tmp_path: Path,
) -> None:
    bars = mes_bars(BARS)
    ref = backstop.Backtest(bars, priced_crosses).run()
    expected = write_journal(ref, tmp_path / "ref.duckdb")
    with FakeIBKR(bars, cash=100_000.0) as fake:
        summary = run_paper(
            PaperOptions("ibkr", priced_crosses, {}, ("MES",), None, Mode.PAPER, tmp_path / "run",
                         namespace=ref.run_id, bars=BARS, fake_url=fake.control_url,
                         port=fake.port)
        )  # fmt: skip
        placed = fake.orders
    assert summary["round_trips"] >= 2
    assert_journal_equals_the_backtest(tmp_path / "run" / JOURNAL, expected)
    parents = {o["order_id"] for o in placed if o["parent_id"] == 0 and o["action"] == "BUY"}
    children = [o for o in placed if o["parent_id"]]
    assert parents and {c["parent_id"] for c in children} == parents
    assert len(children) == 2 * len(parents)
    assert not [o for o in placed if o["oca_group"] and not o["parent_id"]]  # no OCA pair


def test_partly_filled_alpaca_brackets_never_leave_legs_beyond_the_position(
    tmp_path: Path,
) -> None:
    """Every order fills at most 30 % a bar: entries fill over several bars while their legs
    are held, exits come while entries still work. The legs and the exits together never
    sell more than is held (the long-only strategy's position never goes below zero), and
    the session ends with every share the journal holds covered by working legs."""
    bars = sample(BARS)
    symbols = SYMBOLS
    with FakeAlpaca(bars, keys=FAKE_KEYS) as fake:
        fake.partial_fills(fraction=0.3)
        summary = run_paper(
            PaperOptions("alpaca-fake", priced_crosses, {}, symbols, None, Mode.PAPER,
                         tmp_path / "run", bars=BARS, fake_url=fake.url)
        )  # fmt: skip
        events = fake.events
        placed = fake.orders()
    partial = [e for e in events if e.event == "partial_fill"]
    assert summary["round_trips"] >= 3 and len(partial) > 10
    positions = [e.position_qty for e in events if e.position_qty is not None]
    assert positions and min(positions) >= 0.0  # no leg or exit ever sold past flat
    fills = read_table(tmp_path / "run" / JOURNAL, "fills")
    assert fills.height == len([e for e in events if e.event in ("fill", "partial_fill")])
    held = {e.order.symbol: e.position_qty for e in events if e.position_qty is not None}
    for symbol in symbols:
        qty = held.get(symbol) or 0.0
        legs = [o for o in placed if o["symbol"] == symbol and o["status"] in ("new", "held")
                and o["side"] == "sell" and o["order_class"] == "bracket"]  # fmt: skip
        stops = sum(float(o["qty"]) for o in legs if o["type"] == "stop")
        assert stops >= qty, symbol  # what is held is protected
