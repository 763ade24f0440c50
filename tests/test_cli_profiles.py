"""Each preset profile end to end through the CLI on the bundled data: its characteristic
refusals show up in the verdicts, and the journal's verdicts table has the documented columns.

The bundled sample is three synthetic symbols of one-minute bars, continuous (nights and
weekends included), 2020-01-02 09:30 New York onwards. Strategy runs use ``sma_cross``;
profiles whose rules concern signal sources (advisories, target_dollars, source ids) get a
signals file on the same bars.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from backstop.data.calendars import bar_sessions

T0 = "2020-01-02T10:00:00-05:00"  # inside the bundled sample, inside NYSE hours


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backstop.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _json(*args: str, cwd: Path, code: int = 0) -> dict:
    p = _run("backtest", "--json", *args, cwd=cwd)
    assert p.returncode == code, p.stderr
    return json.loads(p.stdout)


def _signals(tmp_path: Path, text: str) -> str:
    path = tmp_path / "signals.csv"
    path.write_text(text)
    return str(path)


def test_micro_futures_constitution_stops_the_third_trade_of_a_day(tmp_path: Path) -> None:
    out = _json("--profile", "micro-futures-constitution", cwd=tmp_path)
    reasons = out["verdicts_by_reason"]
    assert reasons["MAX_TRADES_PER_DAY"] > 0
    assert reasons["SIZE_CAPPED"] > 0  # one contract, whatever the strategy asked
    con = duckdb.connect(str(tmp_path / out["journal"]), read_only=True)
    try:
        entries = con.execute(
            "SELECT ts FROM verdicts WHERE approved AND intent = 'ENTRY'"
        ).fetchnumpy()["ts"]
        columns = [r[0] for r in con.execute("DESCRIBE verdicts").fetchall()]
    finally:
        con.close()
    days = bar_sessions(entries.astype(np.int64), "XNYS").day  # the session day it counts by
    assert np.unique(days, return_counts=True)[1].max() == 2
    for name in ("ts", "trade_cycle_id", "strategy_id", "symbol", "side", "intent", "approved"):
        assert name in columns
    assert "reason_codes" in columns


def test_aggressive_executor_keeps_to_market_hours_and_closes_by_the_end_of_day(
    tmp_path: Path,
) -> None:
    out = _json("--profile", "aggressive-executor", cwd=tmp_path)
    assert out["verdicts_by_reason"]["OUTSIDE_MARKET_HOURS"] > 0
    assert out["verdicts_by_reason"]["EOD_CLOSE_EXIT"] > 0


def test_signal_follower_caps_daily_allocation_and_trades_new_signals_only(
    tmp_path: Path,
) -> None:
    out = _json("--profile", "signal-follower", cwd=tmp_path)
    assert out["verdicts_by_reason"]["DAILY_ALLOCATION_CAP"] > 0
    signals = _signals(
        tmp_path,
        "ts,symbol,side,intent,target_dollars,stop_pct,target_pct,source_id,strategy_id\n"
        f"{T0},SYN000,buy,entry,5000,0.02,0.04,317,kevin\n"
        f"{T0},SYN001,buy,entry,5000,0.02,0.04,317,kevin\n"
        f"{T0},SYN002,buy,entry,5000,,,318,kevin\n",
    )
    out = _json(
        "--profile", "signal-follower", "--signals", signals, "--risk",
        "risk.source_cursor=316", cwd=tmp_path,
    )  # fmt: skip
    assert out["signals"] == 3 and out["approved"] == 1
    assert out["verdicts_by_reason"] == {"STALE_SIGNAL": 1, "MISSING_PROTECTION": 1}


def test_equity_runner_sizes_at_ten_percent_and_refuses_exits_where_nothing_is_held(
    tmp_path: Path,
) -> None:
    signals = _signals(
        tmp_path,
        "ts,symbol,side,intent\n"
        f"{T0},SYN000,buy,entry\n"
        f"{T0},SYN001,sell,exit\n"
        f"{T0},SYN002,sell,exit\n",
    )
    out = _json("--profile", "equity-runner", "--signals", signals, cwd=tmp_path)
    assert out["verdicts_by_reason"] == {"EXIT_NO_EXPOSURE": 2}
    con = duckdb.connect(str(tmp_path / out["journal"]), read_only=True)
    try:
        qty, price = con.execute("SELECT qty, price FROM verdicts WHERE approved").fetchall()[0]
    finally:
        con.close()
    assert qty == int(100_000 * 0.10 / price)


def test_post_incident_blocks_wait_and_unprotected_entries(tmp_path: Path) -> None:
    signals = _signals(
        tmp_path,
        "ts,symbol,side,intent,stop_pct,target_pct,advisory,advisory_confidence,conviction\n"
        f"{T0},SYN000,buy,entry,0.01,0.02,WAIT,50%,36\n"
        f"{T0},SYN001,buy,entry,,,,,\n"
        f"{T0},SYN002,buy,entry,0.01,0.02,WAIT,0.5,95\n",
    )
    out = _json("--profile", "post-incident", "--signals", signals, cwd=tmp_path)
    assert out["verdicts_by_reason"] == {
        "ADVISORY_WAIT": 1,
        "MISSING_PROTECTION": 1,
        "ADVISORY_OVERRIDDEN": 1,
    }
    assert out["approved"] == 1


def test_research_profile_is_the_default(tmp_path: Path) -> None:
    assert _json(cwd=tmp_path)["profile"] == "research"


def test_check_mode_fails_loudly_when_signals_send_no_orders(tmp_path: Path) -> None:
    signals = _signals(tmp_path, f"ts,symbol,side,intent\n{T0},SYN000,sell,exit\n")
    p = _run("backtest", "--signals", signals, "--check", cwd=tmp_path)
    assert p.returncode == 1
    assert "NO_ORDERS_FROM_SIGNALS" in p.stdout and "NO_ORDERS_FROM_SIGNALS" in p.stderr
    out = _json("--signals", signals, cwd=tmp_path)  # without --check: reported, exit 0
    assert out["findings"] == ["NO_ORDERS_FROM_SIGNALS"]
    assert out["signals"] == 1 and out["orders"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[risk]\nmax_positons = 5\n", "risk.max_positons: unknown risk key"),
        ("[risk]\nmax_positions = -1\n", "risk.max_positions: must be in"),
        ("[sizer]\nkind = 'kelly'\n", "sizer.kind: must be one of"),
        ("[entry]\nrequire_protection = 'yes'\n", "entry.require_protection: expected true"),
    ],
)
def test_bad_profiles_name_the_key_and_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(content)
    p = _run("backtest", "--profile", str(path), cwd=tmp_path)
    assert p.returncode == 2
    assert str(path) in p.stderr and message in p.stderr


def test_bad_signal_files_name_the_line_and_column(tmp_path: Path) -> None:
    signals = _signals(tmp_path, f"ts,symbol,side,intent,price\n{T0},SYN000,buy,entry,abc\n")
    p = _run("backtest", "--signals", signals, cwd=tmp_path)
    assert p.returncode == 2
    assert f"{signals}:2" in p.stderr and "column price" in p.stderr
    signals = _signals(tmp_path, f"ts,symbol,side,intent,colour\n{T0},SYN000,buy,entry,red\n")
    p = _run("backtest", "--signals", signals, cwd=tmp_path)
    assert p.returncode == 2 and "column colour: unknown column" in p.stderr


def test_explain_tells_a_cycle_from_signal_to_pnl(tmp_path: Path) -> None:
    out = _json("--journal", str(tmp_path / "run"), cwd=tmp_path)
    con = duckdb.connect(str(tmp_path / out["journal"]), read_only=True)
    try:
        cycle = con.execute("SELECT trade_cycle_id FROM trades LIMIT 1").fetchall()[0][0]
    finally:
        con.close()
    p = _run("explain", str(tmp_path / "run"), cycle, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    text = p.stdout
    assert f"Trade cycle {cycle}" in text
    assert "APPROVED" in text and "round trip" in text and "exit reason" in text
    p = _run("explain", str(tmp_path / "run"), "nope", cwd=tmp_path)
    assert p.returncode == 2 and "no trade cycle 'nope'" in p.stderr
