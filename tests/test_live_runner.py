"""The live runner over a simulated world: the backtest's journal, and restart safety.

The world is the bundled sample's first bars, matched bar time by bar time by
``PortFakeBroker``, which trades whatever it is sent (no reduce-only of its own, like
Alpaca). Two differences the broker forces are stated:

- a live runner hears of an entry's fill only after the bar it filled on, so protective
  legs work from the next bar; the backtest it is compared with says so
  (``legs_live_on_entry_bar=False``);
- a broker without reduce-only (and Alpaca, whose open sell orders hold the shares) needs
  the legs out of the way before an exit goes in: the legs an exit makes redundant are
  cancelled when the exit is sent, not when it fills, so their ``done_ts`` is the exit's
  decision time. Everything else is equal row by row.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest
from fake_port_broker import PortFakeBroker
from live_kit import Crash, CrashingBroker, SimWorld

import backstop
from backstop.engine.brackets import Venue
from backstop.engine.config import BacktestConfig
from backstop.engine.journal import read_table, write_journal
from backstop.engine.profile import RiskProfile
from backstop.runners.live.runner import JOURNAL, LiveRunner, Mode
from backstop.runners.live.session import LiveSession, LiveSetup
from backstop.strategies import get_strategy

PARAMS = {"fast": 5, "slow": 20}
CONFIG = BacktestConfig(legs_live_on_entry_bar=False)
TABLES = ("verdicts", "orders", "fills", "trades", "guard")
IDS = ("trade_cycle_id", "client_order_id", "run_id")


def sample(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    return bars.filter(pl.col("ts").is_in(first.implode())).sort("ts", "symbol")


def runner_for(bars: pl.DataFrame, run_dir: Path, broker, world: SimWorld) -> LiveRunner:  # type: ignore[no-untyped-def]
    symbols = tuple(sorted(bars["symbol"].unique().to_list()))
    setup = LiveSetup(
        get_strategy("sma_cross"), PARAMS, symbols, RiskProfile(), "live1",
        config=CONFIG, venue=Venue(reduce_only=False),
    )  # fmt: skip
    session = LiveSession(setup, broker, 100_000.0)
    return LiveRunner(session, broker, world, run_dir, mode=Mode.PAPER, journal_every_s=0.0)


def journal(path: Path) -> dict[str, pl.DataFrame]:
    return {t: read_table(path, t).drop([c for c in IDS if c in read_table(path, t).columns])
            for t in TABLES}  # fmt: skip


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return sample(400)


@pytest.fixture(scope="module")
def uninterrupted(bars: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run_dir = tmp_path_factory.mktemp("live")
    broker = PortFakeBroker(sorted(bars["symbol"].unique()), reduce_only=False,
                            ticks=dict.fromkeys(bars["symbol"].unique(), 0.01))  # fmt: skip
    world = SimWorld(bars, broker)
    runner = runner_for(bars, run_dir, broker, world)
    runner.start()
    steps = runner.run()
    assert steps == bars["ts"].n_unique()
    return journal(run_dir / JOURNAL), broker


def test_live_journal_equals_the_backtest_row_by_row(bars, uninterrupted, tmp_path) -> None:  # type: ignore[no-untyped-def]
    live, _ = uninterrupted
    ref = backstop.Backtest(bars, "sma_cross", config=CONFIG, **PARAMS).run()
    path = write_journal(ref, tmp_path / "ref.duckdb")
    expected = journal(path)
    assert live["trades"].height > 10
    for table in TABLES:
        if table != "orders":
            assert live[table].equals(expected[table]), table
    a, e = live["orders"], expected["orders"]
    assert a.drop("done_ts").equals(e.drop("done_ts"))
    moved = a.with_columns(backtest_done=e["done_ts"]).filter(
        pl.col("done_ts") != pl.col("backtest_done")
    )
    assert moved.height > 0
    assert set(moved["role"]) <= {"STOP_LOSS", "TAKE_PROFIT", "TRAILING"}
    assert set(moved["status"]) == {"CANCELED"}
    assert all(r == ["LEG_CANCELED_POSITION_CLOSED"] for r in moved["reason_codes"].to_list())
    assert (moved["done_ts"] < moved["backtest_done"]).all()  # freed before the exit filled


@pytest.mark.parametrize("seed", range(6))
def test_a_runner_killed_while_sending_restarts_to_the_same_journal(  # type: ignore[no-untyped-def]
    bars, uninterrupted, tmp_path, seed
) -> None:
    expected, reference = uninterrupted
    rng = random.Random(seed)
    broker = PortFakeBroker(sorted(bars["symbol"].unique()), reduce_only=False,
                            ticks=dict.fromkeys(bars["symbol"].unique(), 0.01))  # fmt: skip
    world = SimWorld(bars, broker)
    crashes = 0
    commands = 0
    for _ in range(200):  # bounded: every life sends at least one command before it dies
        at = rng.randint(1, 12)
        crashing = CrashingBroker(broker, at, after=rng.random() < 0.5)
        runner = runner_for(bars, tmp_path, crashing, world)
        try:
            runner.start()
            runner.run()
        except Crash:
            crashes += 1
            commands += crashing.calls
            continue
        break
    else:
        pytest.fail("the runner never finished")
    assert crashes >= 5
    live = journal(tmp_path / JOURNAL)
    for table in TABLES:
        assert live[table].equals(expected[table]), table
    assert len(broker.orders) == len(reference.orders)  # no order placed twice
    assert broker.held == reference.held


def _fresh(bars: pl.DataFrame, **fake):  # type: ignore[no-untyped-def]
    symbols = sorted(bars["symbol"].unique())
    broker = PortFakeBroker(symbols, reduce_only=False, ticks=dict.fromkeys(symbols, 0.01), **fake)
    return broker, SimWorld(bars, broker)


def test_a_refused_symbol_is_a_journaled_verdict_and_the_others_trade(bars, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broker, world = _fresh(bars, refuse=frozenset({"SYN001"}))
    runner = runner_for(bars, tmp_path, broker, world)
    runner.start()
    runner.run()
    verdicts = read_table(tmp_path / JOURNAL, "verdicts")
    entries = verdicts.filter(pl.col("intent") == "ENTRY")
    refused = entries.filter(pl.col("symbol") == "SYN001")
    assert refused.height > 0 and not refused["approved"].any()
    assert all(r == ["BROKER_REJECTED"] for r in refused["reason_codes"].to_list())
    trades = read_table(tmp_path / JOURNAL, "trades")
    assert set(trades["symbol"]) == {"SYN000", "SYN002"}  # the others went on trading


def test_a_kill_from_outside_flattens_halts_and_survives_a_restart(bars, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from backstop.runners.live.killswitch import KillSwitch

    broker, world = _fresh(bars)
    runner = runner_for(bars, tmp_path, broker, world)
    runner.start()
    runner.run(max_steps=60)
    open_before = {s: q for s, q in broker.held.items() if q}
    assert open_before, "the test needs an open position when the kill comes"
    KillSwitch(tmp_path).request("operator: market halted")
    runner.run()  # acts on the kill before the next bar, then stops
    assert runner.steps == 60
    assert not [o for o in broker.orders.values() if o.working and not o.reduce_only]
    for symbol, qty in open_before.items():  # a market exit of the whole position is out
        exits = [
            o for o in broker.orders.values()
            if o.symbol == symbol and o.working and o.otype.name == "MARKET" and o.reduce_only
        ]  # fmt: skip
        assert sum(o.remaining for o in exits) == abs(qty)
    done = KillSwitch(tmp_path).last()
    assert done is not None and not done.pending
    guard = read_table(tmp_path / JOURNAL, "guard")
    assert "KILL_ACTIVATED" in guard["kind"].to_list()
    again = runner_for(bars, tmp_path, broker, world)  # a restart remembers the halt
    again.start()
    again.run()
    assert all(q == 0.0 for q in broker.held.values())  # flattened at the next open
    verdicts = read_table(tmp_path / JOURNAL, "verdicts")
    entries_after = verdicts.filter(pl.col("intent") == "ENTRY").tail(3)
    assert entries_after.height and not entries_after["approved"].any()
    assert all("KILL_SWITCH_ACTIVE" in r for r in entries_after["reason_codes"].to_list())
