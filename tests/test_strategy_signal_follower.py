"""Seed 000's signal follower as a runnable configuration (examples/signal-follower).

Kevin's signals (and a second feed, ``generator``) over the bars of the seed-000 incident
day, under the go-live profile: the signal-follower preset with the bridge cursor at 316.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

from backstop.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "signal-follower"
BARS = ROOT / "replays" / "silent-noop-signals" / "bars.csv"


def _run(tmp_path: Path, capsys, signals: Path, *extra: str) -> tuple[int, dict, Path]:
    journal = tmp_path / "j"
    argv = ["backtest", "--data", str(BARS), "--signals", str(signals)]
    argv += ["--profile", str(EXAMPLE / "profile.toml"), "--journal", str(journal)]
    code = main([*argv, "--force", "--json", "--check", *extra])
    return code, json.loads(capsys.readouterr().out), journal / "journal.duckdb"


def _rows(journal: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(journal), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_the_go_live_configuration_follows_signals_with_brackets_sizes_and_attribution(
    tmp_path: Path, capsys
) -> None:
    """seed 000: the cursor refuses mention 316 (handled before go-live); entries are sized
    by the bridge's target_dollars and go out as brackets from their percent legs; exits close
    the whole position as plain orders (the bridge stamps percents on exits too); every trade
    carries its strategy; the $20k-a-day allocation is per strategy (generator's second
    entry, $15k + $6k, is refused; Kevin's later one is not)."""
    code, out, journal = _run(tmp_path, capsys, EXAMPLE / "signals.csv")
    assert code == 0  # --check: no finding
    assert (out["signals"], out["approved"]) == (8, 6)
    assert out["verdicts_by_reason"] == {"STALE_SIGNAL": 1, "DAILY_ALLOCATION_CAP": 1}
    assert {k: v["share"] for k, v in out["order_share"].items()} == {
        "generator": pytest.approx(2 / 3),
        "kevin": 0.8,
    }
    entries = _rows(
        journal,
        "SELECT source_id, qty, price FROM verdicts WHERE approved AND intent = 'ENTRY' "
        "ORDER BY ts",
    )
    dollars = {317: 2000, 318: 1500, 1001: 15000, 320: 2000}
    assert [source for source, _, _ in entries] == [317, 318, 1001, 320]
    for source, qty, price in entries:
        assert qty == math.floor(dollars[source] / price)
    legs = _rows(
        journal,
        "SELECT o.strategy_id, o.symbol, o.role, o.stop_price, o.limit_price, f.price "
        "FROM orders o JOIN orders e ON o.parent_order_id = e.order_id "
        "JOIN fills f ON f.order_id = e.order_id ORDER BY o.order_id",
    )
    assert len(legs) == 8  # a stop and a target for each of the four entries
    pct = {"kevin": (0.05, 0.10), "generator": (0.02, 0.04)}
    for strategy, _, role, stop, limit, fill in legs:
        stop_pct, target_pct = pct[strategy]
        if role == "STOP_LOSS":
            assert stop == pytest.approx(fill * (1 - stop_pct))
        else:
            assert limit == pytest.approx(fill * (1 + target_pct))
    exits = _rows(
        journal,
        "SELECT strategy_id, symbol, order_type, qty FROM orders WHERE role = 'SIGNAL_EXIT' "
        "ORDER BY order_id",
    )
    assert exits == [("generator", "AMD", "MARKET", 100.0), ("kevin", "NVDA", "MARKET", 10.0)]
    exit_legs = _rows(
        journal,
        "SELECT count(*) FROM orders o JOIN orders x ON o.parent_order_id = x.order_id "
        "WHERE x.role = 'SIGNAL_EXIT'",
    )
    assert exit_legs == [(0,)]
    trades = _rows(
        journal, "SELECT strategy_id, symbol, qty, exit_reason FROM trades ORDER BY entry_ts"
    )
    assert trades == [
        ("kevin", "NVDA", 10.0, "signal_exit"),
        ("generator", "AMD", 100.0, "signal_exit"),
        ("kevin", "AMD", 13.0, "stop_loss"),
    ]


def test_the_trades_a_day_cap_acts_per_strategy(tmp_path: Path, capsys) -> None:
    """seed 000's per-strategy cap of trades a day (2 here instead of 10): Kevin's third
    entry of the day is refused while the generator's entry is not counted against it."""
    code, out, _ = _run(
        tmp_path, capsys, EXAMPLE / "signals.csv", "--risk", "risk.max_trades_per_day=2"
    )
    assert code == 0
    assert out["verdicts_by_reason"] == {
        "STALE_SIGNAL": 1,
        "DAILY_ALLOCATION_CAP": 1,
        "MAX_TRADES_PER_DAY": 1,
    }


def test_two_mentions_a_second_apart_both_trade(tmp_path: Path, capsys) -> None:
    """seed 000's go-live log: mention 317 (NVDA, 14:05:12) and 318 (AAPL, 14:05:13) fall in
    one bar; both are newer than the cursor (316) and both trade, although one bar time's
    signals are decided in symbol order (318 on AAPL first)."""
    signals = tmp_path / "signals.csv"
    signals.write_text(
        "ts,symbol,side,intent,target_dollars,stop_pct,target_pct,source_id,strategy_id\n"
        "2026-06-05T14:05:12Z,NVDA,buy,entry,2000,0.05,0.10,317,kevin\n"
        "2026-06-05T14:05:13Z,AAPL,buy,entry,1500,0.05,0.10,318,kevin\n"
    )
    _, out, _ = _run(tmp_path, capsys, signals)
    assert out["approved"] == 2
