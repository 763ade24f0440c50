"""A live run's journal replays: ``backstop replay RUN_DIR`` reads a paper session against the
fake Alpaca like any incident.

- A clean session replays under the profile it traded with: today's pipeline decides every
  order as the runner did (no divergence), and the actual P&L is the journal's.
- Every reconcile is journaled (the ``reconcile`` table and RECONCILE rows of ``events``).
- A position opened at the broker outside the runner is a desync the timer reconcile
  journals (mirror against broker quantity, the trading state it moved to), and the replay
  of that run reports it as POSITION_DESYNC.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

import backstop
from backstop.cli import main
from backstop.engine.journal import read_table
from backstop.runners.live.paper import FAKE_KEYS, PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, LiveRunner, Mode
from backstop.testing.fake_alpaca import FakeAlpaca

BARS = 160
PARAMS = {"fast": 5, "slow": 20}


def sample(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    return bars.filter(pl.col("ts").is_in(first.implode()))


def replay_json(run: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    code = main(["replay", str(run), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_a_paper_session_replays_without_divergence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    summary = run_paper(
        PaperOptions("alpaca-fake", "sma_cross", PARAMS, None, None, Mode.PAPER, run, bars=BARS)
    )
    assert summary["round_trips"] > 3
    reconciles = read_table(run / JOURNAL, "reconcile")
    # start-up, then the timer's every 60 bars: each one journaled, all clean here
    assert reconciles["reconcile"].to_list() == [0, 1, 2]
    assert reconciles["action"].to_list() == [
        "start-up reconcile: clean",
        "timer reconcile: clean",
        "timer reconcile: clean",
    ]
    events = read_table(run / JOURNAL, "events").filter(pl.col("kind") == "RECONCILE")
    assert events["role"].to_list() == ["RECONCILED"] * 3

    report = replay_json(run, capsys)
    assert report["first_divergence"] is None
    assert report["profile"] == "research"
    trades = read_table(run / JOURNAL, "trades")
    actual = report["pnl"]["actual"]
    assert actual["realized"] == round(float(trades["pnl"].sum()), 2)
    assert actual["fees"] == round(float(trades["fees"].sum()), 2)
    assert report["pnl"]["with_guardrails"] == actual
    verdicts = read_table(run / JOURNAL, "verdicts").filter(pl.col("source") == "signal")
    assert len(report["orders"]) == verdicts.height
    sent = [o for o in report["orders"] if o["bot_sent"] is not None]
    assert len(sent) == verdicts["approved"].sum()
    assert all(o["verdict"] == "ALLOWED" for o in sent)
    assert not [f for f in report["findings"] if f.startswith(("POSITION_DESYNC", "UNBOOKED"))]

    capsys.readouterr()  # the text report reads the journal file itself too
    assert main(["replay", str(run / JOURNAL)]) == 0
    text = capsys.readouterr().out
    assert "Today's pipeline decides every order as the bot did" in text


def test_a_position_opened_outside_the_runner_replays_as_a_desync(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    placed: list[str] = []
    with FakeAlpaca(sample(BARS), keys=FAKE_KEYS) as fake:
        human = TradingClient(*FAKE_KEYS, url_override=fake.url)

        def meddle(runner: LiveRunner) -> None:
            if runner.steps == 70:  # someone buys by hand between two timer reconciles
                order = human.submit_order(
                    MarketOrderRequest(symbol="SYN001", qty=7, side=OrderSide.BUY,
                                       time_in_force=TimeInForce.DAY, client_order_id="manual-1")
                )  # fmt: skip
                placed.append(str(order.client_order_id))

        run_paper(
            PaperOptions("alpaca-fake", "sma_cross", PARAMS, ("SYN000", "SYN001", "SYN002"),
                         None, Mode.PAPER, run, bars=BARS, fake_url=fake.url, on_step=meddle)
        )  # fmt: skip
    assert placed == ["manual-1"]
    rows = read_table(run / JOURNAL, "reconcile")
    desync = rows.filter(pl.col("kind") == "POSITION_DESYNC")
    assert desync.height == 1
    row = desync.row(0, named=True)
    assert row["symbol"] == "SYN001" and row["reconcile"] == 2
    assert row["broker_qty"] - row["mirror_qty"] == 7.0 == row["qty"]
    assert "DESYNC control, trading state" in row["action"]
    summary = rows.filter((pl.col("kind") == "RECONCILED") & (pl.col("reconcile") == 2))
    assert "1 desynced" in summary["action"][0]

    report = replay_json(run, capsys)
    assert report["desyncs"] == [
        {"ts": row["ts"], "symbol": "SYN001", "bot": row["mirror_qty"],
         "broker": row["broker_qty"], "source": "journal.duckdb:reconcile[3]"}
    ]  # fmt: skip
    assert "POSITION_DESYNC: bot belief differed from the broker 1x" in report["findings"]


class LossyBroker:
    """The port fake with a trade-updates stream that can go deaf: while ``lose`` is on, the
    events it reports are lost (an outage), so only a reconcile can learn of those fills."""

    def __init__(self, broker) -> None:  # type: ignore[no-untyped-def]
        self.broker = broker
        self.lose = False
        self.lost = 0

    def drain_events(self):  # type: ignore[no-untyped-def]
        events = self.broker.drain_events()
        if self.lose:
            self.lost += len(events)
            return []
        return events

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.broker, name)


def test_fills_lost_by_the_stream_are_journaled_as_late_fills_with_their_pnl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fake_port_broker import PortFakeBroker
    from live_kit import SimWorld

    from backstop.engine.brackets import Venue
    from backstop.engine.config import BacktestConfig
    from backstop.engine.profile import RiskProfile
    from backstop.runners.live.session import LiveSession, LiveSetup
    from backstop.strategies import get_strategy

    bars = sample(400).sort("ts", "symbol")
    symbols = tuple(sorted(bars["symbol"].unique().to_list()))
    fake = PortFakeBroker(list(symbols), reduce_only=False, ticks=dict.fromkeys(symbols, 0.01))
    broker = LossyBroker(fake)
    setup = LiveSetup(
        get_strategy("sma_cross"), PARAMS, symbols, RiskProfile(), "lossy",
        config=BacktestConfig(legs_live_on_entry_bar=False), venue=Venue(reduce_only=False),
    )  # fmt: skip
    session = LiveSession(setup, broker, 100_000.0)  # type: ignore[arg-type]
    runner = LiveRunner(session, broker, SimWorld(bars, fake), tmp_path, journal_every_s=0.0,
                        reconcile_every=30)  # type: ignore[arg-type]  # fmt: skip
    runner.start()
    # the stream is deaf from step 61 to 89, while a take-profit leg fills (bar 77)
    for stop, lose in ((60, False), (89, True), (None, False)):
        broker.lose = lose
        runner.run(max_steps=stop)
    assert broker.lost > 0
    rows = read_table(tmp_path / JOURNAL, "reconcile")
    late = rows.filter(pl.col("kind") == "LATE_FILL")
    assert late.height > 0 and set(late["reconcile"]) == {3}  # the timer's, at step 90
    executions = {e.exec_id: e for e in fake.executions}
    orders = read_table(tmp_path / JOURNAL, "orders")
    trades = read_table(tmp_path / JOURNAL, "trades")
    closing = 0
    for r in late.iter_rows(named=True):
        ex = executions[r["exec_id"]]  # the broker's own execution id
        assert (r["client_order_id"], r["symbol"], r["qty"], r["price"], r["fill_ts"]) == (
            ex.client_order_id, ex.symbol, ex.qty, ex.price, ex.ts_event
        )  # fmt: skip
        order = orders.filter(pl.col("client_order_id") == r["client_order_id"])
        assert r["trade_cycle_id"] == order["trade_cycle_id"][0]
        trade = trades.filter(
            (pl.col("symbol") == r["symbol"]) & (pl.col("exit_ts") == r["fill_ts"])
        )
        if trade.height:  # a late fill that closed the round trip realized its P&L
            closing += 1
            assert r["pnl"] == pytest.approx(trade["pnl"][0], abs=1e-6)
        else:
            assert r["pnl"] == 0.0
    assert closing > 0
    summary = rows.filter((pl.col("kind") == "RECONCILED") & (pl.col("reconcile") == 3))
    assert f"{late.height} late fills" in summary["action"][0]

    report = replay_json(tmp_path, capsys)
    unbooked = {(u["ts"], u["price"]): u["realized_pnl"] for u in report["unbooked_fills"]}
    legs = late.filter(pl.col("client_order_id").str.contains("-(SL|TP|TS)-"))
    assert legs.height and len(unbooked) == legs.height  # only what the reconcile booked
    for r in legs.iter_rows(named=True):
        assert unbooked[(r["fill_ts"], r["price"])] == round(r["pnl"], 2)
    assert any(f.startswith("UNBOOKED_BROKER_FILLS") for f in report["findings"])
