"""Sweeps, optimisation, walk-forward splits and ``backstop sweep``."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from backstop import BackstopError, Backtest, ConfigError, sample_bars
from backstop.cli import main
from backstop.engine.plot import plot_heatmap
from backstop.engine.prepare import PreparedBars
from backstop.runners.sweep import grid
from backstop.runners.sweep_io import parse_values
from backstop.runners.walkforward import windows
from backstop.strategies.base import Strategy, get_strategy

GRID = {"fast": [5, 10], "slow": [30, 60]}


@pytest.fixture(scope="module")
def small() -> pl.DataFrame:
    bars = sample_bars()
    return bars.filter(pl.col("ts") < bars["ts"].min() + 3 * 86_400 * 10**9)


@pytest.fixture(scope="module")
def bt(small: pl.DataFrame) -> Backtest:
    return Backtest(small, "sma_cross")


@pytest.fixture(scope="module")
def table(bt: Backtest) -> pl.DataFrame:
    return bt.sweep(processes=1, **GRID)


def test_grid_is_the_product_in_order_given_then_constrained() -> None:
    combos = grid({"fast": range(5, 20, 5), "slow": [10, 20]}, lambda p: p["fast"] < p["slow"])
    assert combos == [
        {"fast": 5, "slow": 10},
        {"fast": 5, "slow": 20},
        {"fast": 10, "slow": 20},
        {"fast": 15, "slow": 20},
    ]
    with pytest.raises(ConfigError, match="constraint: no combination"):
        grid({"fast": [5]}, lambda p: False)


def test_each_row_is_the_direct_run_of_its_combination(
    small: pl.DataFrame, table: pl.DataFrame
) -> None:
    assert table.select("fast", "slow").rows() == [(5, 30), (5, 60), (10, 30), (10, 60)]
    for row in table.iter_rows(named=True):
        direct = Backtest(small, "sma_cross", fast=row["fast"], slow=row["slow"]).run()
        assert row["run_id"] == direct.run_id
        assert row["trade_count"] == direct.trades.height
        assert row["end_equity"] == direct.stats["end_equity"]
        assert row["sharpe"] == direct.stats["sharpe"] or math.isnan(direct.stats["sharpe"])
    assert "verdicts_by_reason" not in table.columns


def test_buy_and_hold_is_computed_once_per_sweep_and_equals_each_direct_run(
    small: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backstop.engine import stats
    from backstop.runners.sweep import job_of, run_one

    calls = []
    real = stats.buy_hold_return_of_arrays
    monkeypatch.setattr(stats, "buy_hold_return_of_arrays", lambda *a: calls.append(1) or real(*a))
    bt = Backtest(PreparedBars.of(small), "sma_cross")
    job = job_of(bt) | {"prepared": bt.prepared}
    rows = [run_one(job, {"fast": f, "slow": 30}) for f in (5, 10, 20)]
    assert len(calls) == 1
    monkeypatch.setattr(stats, "buy_hold_return_of_arrays", real)
    for f, row in zip((5, 10, 20), rows, strict=True):
        direct = Backtest(small, "sma_cross", fast=f, slow=30).run().stats
        assert row["buy_hold_return"] == direct["buy_hold_return"] == job["buy_hold_return"]
        assert row["total_return"] == direct["total_return"]


def test_worker_processes_give_the_same_table_in_the_same_order(
    bt: Backtest, table: pl.DataFrame
) -> None:
    assert bt.sweep(processes=2, **GRID).equals(table)


def test_optimize_returns_the_best_run_and_the_table(bt: Backtest, table: pl.DataFrame) -> None:
    best, out = bt.optimize(
        maximize="total_return",
        constraint=lambda p: p["fast"] < p["slow"],
        processes=1,
        fast=[5, 10, 40],
        slow=[30, 60],
    )
    assert out.select("fast", "slow").rows() == [(5, 30), (5, 60), (10, 30), (10, 60), (40, 60)]
    top = max(out.iter_rows(named=True), key=lambda r: r["total_return"])
    assert (best.params["fast"], best.params["slow"]) == (top["fast"], top["slow"])
    assert best.stats["total_return"] == top["total_return"]
    assert best.run_id == top["run_id"]


def test_optimize_by_a_function_of_the_stats(bt: Backtest) -> None:
    best, out = bt.optimize(maximize=lambda s: -s["trade_count"], processes=1, **GRID)
    assert best.trades.height == min(out["trade_count"])


def test_bad_inputs_are_refused_before_any_run(bt: Backtest) -> None:
    with pytest.raises(ConfigError, match="maximize: unknown statistic 'sharp'"):
        bt.optimize(maximize="sharp", fast=[5])
    with pytest.raises(ConfigError, match="fastt: unknown parameter of strategy sma_cross"):
        bt.sweep(fastt=[5])
    with pytest.raises(ConfigError, match="processes: must be at least 1"):
        bt.sweep(processes=0, fast=[5, 10])


def test_a_strategy_workers_cannot_import_is_refused_with_the_way_out(small) -> None:
    sma = get_strategy("sma_cross")

    def local(bars, **params):
        return sma.fn(bars, **params)

    local.__module__ = "__main__"
    bt = Backtest(small, Strategy("local", local, sma.params))
    with pytest.raises(ConfigError, match="processes: strategy 'local' is defined in __main__"):
        bt.sweep(processes=2, fast=[5, 10])
    assert bt.sweep(processes=1, fast=[5, 10]).height == 2


def test_walk_forward_windows_cut_the_timestamps() -> None:
    ts = np.array([3, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2])  # duplicates: two symbols
    assert windows(ts, 2, 0.5) == [(1, 3, 4, 6), (7, 9, 10, 12)]
    with pytest.raises(ConfigError, match="folds: window 0 has 2 timestamps"):
        windows(ts, 6, 0.5)
    with pytest.raises(ConfigError, match="train_frac"):
        windows(ts, 2, 1.0)


def test_walk_forward_judges_each_train_best_on_its_test_window(
    small: pl.DataFrame, bt: Backtest
) -> None:
    wf = bt.walk_forward(folds=2, train_frac=0.7, maximize="total_return", processes=1, **GRID)
    assert wf["fold"].to_list() == [0, 1]
    assert wf.schema["train_start"] == pl.Datetime("ns", "UTC")
    stamps = wf.with_columns(pl.col("^(train|test)_(start|end)$").cast(pl.Int64))

    def window(lo: int, hi: int) -> PreparedBars:
        return PreparedBars.of(small.filter(pl.col("ts").is_between(lo, hi)))

    for row in stamps.iter_rows(named=True):
        train = window(row["train_start"], row["train_end"])
        runs = [
            Backtest(train, "sma_cross", fast=f, slow=s).run()
            for f in GRID["fast"]
            for s in GRID["slow"]
        ]
        best = max(runs, key=lambda r: r.stats["total_return"])
        assert (row["fast"], row["slow"]) == (best.params["fast"], best.params["slow"])
        assert row["train_total_return"] == best.stats["total_return"]
        test = Backtest(
            window(row["test_start"], row["test_end"]),
            "sma_cross",
            fast=row["fast"],
            slow=row["slow"],
        ).run()
        assert row["test_total_return"] == test.stats["total_return"]
        assert row["test_trades"] == test.trades.height
        assert row["train_end"] < row["test_start"]


def test_heatmap_of_a_sweep(table: pl.DataFrame) -> None:
    fig = plot_heatmap(table, "fast", "slow", "sharpe")
    z = fig.axes[0].get_images()[0].get_array()
    by = {(r["fast"], r["slow"]): r["sharpe"] for r in table.iter_rows(named=True)}
    assert z[0, 0] == pytest.approx(by[(5, 30)]) and z[1, 0] == pytest.approx(by[(5, 60)])
    assert z[0, 1] == pytest.approx(by[(10, 30)])


def test_parse_values_ranges_exclude_the_stop() -> None:
    assert parse_values("fast", "5:50:5") == list(range(5, 50, 5))
    assert parse_values("slow", "50,100,200") == [50, 100, 200]
    assert parse_values("stop_pct", "0.01:0.03:0.01") == pytest.approx([0.01, 0.02])
    with pytest.raises(ConfigError, match="fast: '5:5' holds no values"):
        parse_values("fast", "5:5")


def test_cli_sweep_writes_every_row_to_one_duckdb_file(
    tmp_path: Path, small: pl.DataFrame, table: pl.DataFrame, capsys
) -> None:
    data = tmp_path / "bars.parquet"
    small.write_parquet(data)
    out = tmp_path / "results.duckdb"
    args = ["sweep", "--data", str(data), "--param", "fast=5:15:5", "--param", "slow=30,60"]
    assert main([*args, "--processes", "1", "--out", str(out), "--json"]) == 0
    con = duckdb.connect(str(out), read_only=True)
    rows = pl.from_arrow(con.sql("SELECT * FROM sweep ORDER BY row").to_arrow_table())
    best = con.sql("SELECT fast, slow FROM best").fetchall()
    con.close()
    assert rows.drop("row").equals(table)
    top = max(table.iter_rows(named=True), key=lambda r: r["sharpe"])
    assert best == [(top["fast"], top["slow"])]
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"backstop: error: {out}: exists; pass --force to replace it, or choose --out"
    )
    assert main([*args, "--constraint", "fast<slw"]) == 2
    assert "'slw' is not a swept parameter" in capsys.readouterr().err


def test_pool_reads_every_reply_a_worker_has_sent_at_once() -> None:
    """Two replies already in the pipe come out of one read: none may wait in a buffer the
    selector cannot see (a sweep waited forever for such a reply)."""
    import pickle
    import subprocess
    import sys

    from backstop.runners.pool import _read

    frames = b"".join(
        len(d).to_bytes(8, "little") + d
        for d in (pickle.dumps(("ok", 1, {"x": 1.0})), pickle.dumps(("ok", 0, {"x": 2.0})))
    )
    write = f"import sys; sys.stdout.buffer.write({frames!r}); sys.stdout.flush()"
    proc = subprocess.Popen(
        [sys.executable, "-c", write], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    proc.wait()
    inbox = bytearray()
    assert _read(proc, inbox, [{"fast": 5}, {"fast": 10}]) == [(1, {"x": 1.0}), (0, {"x": 2.0})]
    assert inbox == bytearray()
    with pytest.raises(RuntimeError, match=r"sweep worker exited unexpectedly \(code 0\)"):
        _read(proc, inbox, [])
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.stdout.close()


def test_worker_errors_name_the_combination(small, monkeypatch: pytest.MonkeyPatch) -> None:
    from sweep_strategies import PICKY

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # workers import the module
    bt = Backtest(small, PICKY)
    with pytest.raises(BackstopError, match=r"\{'fast': 7\}: fast: seven is refused"):
        bt.sweep(processes=2, fast=[5, 7, 10])
    with pytest.raises(RuntimeError, match=r"(?s)failed on \{'fast': 9\}.*ZeroDivisionError"):
        bt.sweep(processes=2, fast=[5, 9, 10])
    assert bt.sweep(processes=2, fast=[5, 10]).height == 2
    # the worker is handed the first two combinations at once, so the third runs in the
    # calling process: its refusal and its bug are named the same way
    with pytest.raises(BackstopError, match=r"\{'fast': 7\}: fast: seven is refused"):
        bt.sweep(processes=2, fast=[5, 10, 7])
    with pytest.raises(RuntimeError, match=r"(?s)failed on \{'fast': 9\}.*ZeroDivisionError"):
        bt.sweep(processes=2, fast=[5, 10, 9])
