"""End-to-end tests of the ``backstop`` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backstop.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_default_run_on_bundled_sample_writes_a_journal(tmp_path: Path) -> None:
    p = _run("backtest", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["bars"] == 60_000 and out["symbols"] == 3
    assert out["data"] == "bundled sample (synthetic)"
    journal = tmp_path / out["journal"]
    con = duckdb.connect(str(journal), read_only=True)
    try:
        n_trades = con.execute("SELECT count(*) FROM trades").fetchall()[0][0]
        n_verdicts = con.execute("SELECT count(*) FROM verdicts").fetchall()[0][0]
        kinds = {r[0] for r in con.execute("SELECT DISTINCT kind FROM events").fetchall()}
    finally:
        con.close()
    assert n_trades == out["round_trips"]
    assert n_verdicts == out["signals"]
    assert {"SIGNAL", "ORDER_SUBMITTED", "FILL", "TRADE_CLOSED"} <= kinds


def test_summary_table_without_json(tmp_path: Path) -> None:
    p = _run("backtest", "--journal", str(tmp_path / "j"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "round trips" in p.stdout and "verdicts by reason" in p.stdout


def test_bad_param_is_one_line_exit_2(tmp_path: Path) -> None:
    p = _run("backtest", "--param", "fast=abc", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == "backstop: error: fast: expected int, got 'abc'"
    assert "Traceback" not in p.stderr


def test_unknown_param_and_strategy_and_option(tmp_path: Path) -> None:
    p = _run("backtest", "--param", "speed=3", cwd=tmp_path)
    assert p.returncode == 2 and "speed: unknown parameter of strategy sma_cross" in p.stderr
    p = _run("backtest", "--strategy", "nope", cwd=tmp_path)
    assert p.returncode == 2 and "unknown strategy 'nope'" in p.stderr
    p = _run("backtest", "--set", "intrabar=guess", cwd=tmp_path)
    assert p.returncode == 2 and "intrabar: must be one of" in p.stderr
    p = _run("backtest", "--bogus", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.count("\n") == 1


def test_bad_bars_name_file_line_and_symbol(tmp_path: Path) -> None:
    csv = tmp_path / "bars.csv"
    csv.write_text(
        "ts,symbol,open,high,low,close,volume\n"
        "2024-01-02T14:30:00+00:00,AAPL,100,101,99,100.5,1000\n"
        "2024-01-02T14:31:00+00:00,AAPL,100,99.5,100.2,100,1000\n"
    )
    p = _run("backtest", "--data", str(csv), cwd=tmp_path)
    assert p.returncode == 2
    assert "bars.csv:3" in p.stderr and "AAPL" in p.stderr and "high" in p.stderr
    assert p.stderr.count("\n") == 1


def test_progress_bar_path_runs_and_reports_every_chunk(monkeypatch, capsys, tmp_path) -> None:
    """Runs over the threshold go through the progress bar: it must see the whole run."""
    import backstop.brokers.sim.backtest as bt
    import backstop.cli as cli
    from backstop.runners.backtest import Backtest

    seen: list[tuple[int, int]] = []
    real_run = Backtest.run

    def spying_run(self, progress=None):
        def spy(done: int, total: int) -> None:
            seen.append((done, total))
            if progress is not None:
                progress(done, total)

        return real_run(self, progress=spy)

    monkeypatch.setattr(cli, "PROGRESS_MIN_BARS", 1)
    monkeypatch.setattr(bt, "CHUNK_ROWS", 25_000)
    monkeypatch.setattr(Backtest, "run", spying_run)
    assert cli.main(["backtest", "--journal", str(tmp_path / "j")]) == 0
    assert "round trips" in capsys.readouterr().out
    assert seen[-1] == (60_000, 60_000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) >= 3


def test_summary_names_a_few_symbols_not_a_hundred() -> None:
    """The human summary names three symbols and counts the rest (W has 100 without a tick
    size); four or fewer are all named. The JSON keeps the whole list."""
    from backstop.cli_summary import few_symbols

    names = [f"SYN{k:03d}" for k in range(100)]
    assert few_symbols(names) == "SYN000, SYN001, SYN002, ... (100 symbols)"
    assert few_symbols(names[:4]) == "SYN000, SYN001, SYN002, SYN003"
    assert few_symbols([]) == ""


def test_the_command_builds_no_datetime_frame(monkeypatch, capsys, tmp_path) -> None:
    """The journal, the summary and the statistics read the int-ns frames; the zone-aware
    frames are for people and cost the command time it never shows (W: several frames of
    hundreds of thousands of rows). Building one here fails the command."""
    import backstop.cli as cli
    import backstop.engine.result as result

    def refuse(frame, zone):
        raise AssertionError(f"the command built a datetime frame ({frame.columns[:2]})")

    monkeypatch.setattr(result, "zoned", refuse)
    assert cli.main(["backtest", "--journal", str(tmp_path / "j"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["round_trips"] > 0 and out["stats"]["trade_count"] == out["round_trips"]
    assert cli.main(["backtest", "--journal", str(tmp_path / "j")]) == 0
    assert "round trips" in capsys.readouterr().out
