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
