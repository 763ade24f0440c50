"""Seed 004's ES incident, live on IB: it cannot happen again.

The runner's saved state says short 1 ESZ5 (a first session shorted it against one fake
gateway); it restarts against a fake gateway whose account is flat (the short was closed
elsewhere, unbeknown to the bot). The strategy's exit path then asks to BUY 1 under a WAIT
advisory. The start-up reconcile reports POSITION_DESYNC, the BUY is refused with
EXIT_NO_EXPOSURE and ADVISORY_WAIT, the gateway receives no order, and ``backstop replay``
of the live journal says the guardrails would block it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from backstop.cli import main
from backstop.domain.enums import Advice, Intent, Side
from backstop.engine.journal import read_table
from backstop.runners.live.paper import PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, Mode
from backstop.strategies.base import Strategy
from backstop.testing.fake_ibkr import FakeIBKR

MIN = 60_000_000_000
T0 = 1_765_549_800_000_000_000  # 2025-12-12 14:30 UTC (08:30 Chicago), the incident's day
N = 12
SHORT_AT, BUY_AT = 2, 8  # bar indexes of the short entry and of the exit-path BUY


def es_bars() -> pl.DataFrame:
    px = [6890.0 - 0.25 * k for k in range(N)]
    return pl.DataFrame(
        {
            "ts": [T0 + k * MIN for k in range(N)],
            "symbol": ["ESZ5"] * N,
            "open": px,
            "high": [p + 1.0 for p in px],
            "low": [p - 1.0 for p in px],
            "close": [p - 0.25 for p in px],
            "volume": [2000.0] * N,
        }
    )


def _script(bars: pl.DataFrame, **_: Any) -> pl.DataFrame:
    """Short 1 ESZ5 at bar 2; at bar 8 the exit path buys 1 back under a WAIT advisory."""
    rows = []
    for k, side, intent, advice in (
        (SHORT_AT, Side.SELL, Intent.ENTRY, Advice.NONE),
        (BUY_AT, Side.BUY, Intent.EXIT, Advice.WAIT),
    ):
        ts = T0 + k * MIN
        if bars.filter(pl.col("ts") == ts).height:
            rows.append((ts, "ESZ5", int(side), int(intent), 1.0, int(advice), 0.5))
    return pl.DataFrame(
        rows,
        schema={"ts": pl.Int64, "symbol": pl.String, "side": pl.Int8, "intent": pl.Int8,
                "qty": pl.Float64, "advisory": pl.Int8, "advisory_confidence": pl.Float64},
        orient="row",
    )  # fmt: skip


SCRIPT = Strategy("es_exit_path", _script, (), bars_needed=lambda _: ("bars", 1))


def _run(fake: FakeIBKR, run_dir: Path, profile: str | None, steps: int) -> dict[str, Any]:
    return run_paper(
        PaperOptions("ibkr", SCRIPT, {}, ("ESZ5",), profile, Mode.PAPER, run_dir,
                     namespace="es004", fake_url=fake.control_url, port=fake.port,
                     client_id=7, max_steps=steps)
    )  # fmt: skip


def test_the_es_reversal_is_refused_live_and_replays_as_blocked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    with FakeIBKR(es_bars()) as first:  # the session that went short
        _run(first, run, None, SHORT_AT + 3)
        assert first.position("ESZ5")[0] == -1.0
    with FakeIBKR(es_bars(), start=SHORT_AT + 4) as flat:  # restart: the account is flat
        assert flat.position("ESZ5")[0] == 0.0
        summary = _run(flat, run, "post-incident", N)
        assert flat.orders == []  # the gateway received no order at all
        assert flat.bugs == [] and flat.unserved == []
    assert summary["steps"] == N - (SHORT_AT + 3)  # bars 5 to 11: where the first stopped
    reconcile = read_table(run / JOURNAL, "reconcile")
    desync = reconcile.filter(pl.col("kind") == "POSITION_DESYNC")
    assert desync.height == 1
    assert desync.row(0, named=True)["symbol"] == "ESZ5"
    startup = reconcile.filter(
        (pl.col("kind") == "RECONCILED") & (pl.col("reconcile") == desync["reconcile"][0])
    )
    assert startup["action"][0].startswith("start-up reconcile: 1 desynced")  # before deciding
    verdicts = read_table(run / JOURNAL, "verdicts")
    buy = verdicts.filter(pl.col("ts") == T0 + BUY_AT * MIN)
    assert buy.height == 1 and not buy["approved"][0]
    assert {"EXIT_NO_EXPOSURE", "ADVISORY_WAIT"} <= set(buy["reason_codes"][0].to_list())
    capsys.readouterr()
    assert main(["replay", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Guardrails would block trade: yes" in out
    assert "POSITION_DESYNC" in out
