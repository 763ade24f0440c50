"""Sweeps on Ray (``backend="ray"``) equal the local process sweep row for row.

A local Ray with 2 CPUs is started by this module and shut down at its end. Skipped, with
the reason, only when ray is not importable (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

import backstop
from backstop import BackstopError, Backtest, ConfigError, sample_bars
from backstop.cli import main
from backstop.runners.ray_pool import check_reachable
from backstop.strategies.base import get_strategy

GRID = {"fast": [5, 10], "slow": [30, 60]}
TESTS = Path(__file__).parent
ROOT = Path(backstop.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[str]:
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    before = os.environ.get("PYTHONPATH")
    # Ray's workers inherit this environment: they import the test strategies from tests/
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), before) if p)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def small() -> pl.DataFrame:
    bars = sample_bars()
    return bars.filter(pl.col("ts") < bars["ts"].min() + 3 * 86_400 * 10**9)


@pytest.fixture(scope="module")
def local(small: pl.DataFrame) -> pl.DataFrame:
    return Backtest(small, "sma_cross").sweep(processes=2, **GRID)


def test_a_ray_sweep_equals_the_process_sweep_row_for_row(
    ray_local: str, small: pl.DataFrame, local: pl.DataFrame
) -> None:
    on_ray = Backtest(small, "sma_cross").sweep(backend="ray", **GRID)
    assert on_ray.select("fast", "slow").rows() == [(5, 30), (5, 60), (10, 30), (10, 60)]
    assert on_ray.equals(local)
    best, table = Backtest(small, "sma_cross").optimize(backend="ray", processes=2, **GRID)
    assert table.equals(local)
    top = max(local.iter_rows(named=True), key=lambda r: r["sharpe"])
    assert best.run_id == top["run_id"]


def test_a_walk_forward_on_ray_equals_the_process_one_row_for_row(
    ray_local: str, small: pl.DataFrame
) -> None:
    import ray

    bt = Backtest(small, "sma_cross")
    kw = {"folds": 2, "train_frac": 0.7, "maximize": "total_return"}
    in_processes = bt.walk_forward(processes=2, **kw, **GRID)
    on_ray = bt.walk_forward(backend="ray", **kw, **GRID)
    assert on_ray.equals(in_processes)
    assert on_ray["fold"].to_list() == [0, 1]
    assert on_ray["train_trades"].to_list() != [0, 0]  # real runs, not empty tables
    # the joined Ray is this process's own (the fixture's): left running, not shut down
    assert ray.is_initialized()
    by_address = bt.walk_forward(backend="ray", address=ray_local, **kw, **GRID)
    assert by_address.equals(in_processes)


def test_a_function_no_worker_can_import_runs_on_ray(ray_local: str, small: pl.DataFrame) -> None:
    def cross(bars: pl.DataFrame, fast: int = 10, slow: int = 30) -> pl.DataFrame:
        return get_strategy("sma_cross").fn(bars, fast=fast, slow=slow)

    on_ray = Backtest(small, cross).sweep(backend="ray", **GRID)  # sent by value (cloudpickle)
    in_process = Backtest(small, cross).sweep(processes=1, **GRID)
    assert on_ray.equals(in_process)
    assert on_ray["trade_count"].to_list() == in_process["trade_count"].to_list() != [0] * 4


def test_ray_actor_errors_name_the_combination(ray_local: str, small: pl.DataFrame) -> None:
    from sweep_strategies import PICKY

    bt = Backtest(small, PICKY)
    with pytest.raises(BackstopError, match=r"\{'fast': 7\}: fast: seven is refused"):
        bt.sweep(backend="ray", fast=[5, 7, 10])
    with pytest.raises(RuntimeError, match=r"(?s)failed on \{'fast': 9\}.*ZeroDivisionError"):
        bt.sweep(backend="ray", fast=[5, 9, 10])


def test_cli_sweep_on_a_ray_cluster_by_address(
    ray_local: str, tmp_path: Path, small: pl.DataFrame, local: pl.DataFrame
) -> None:
    data = tmp_path / "bars.parquet"
    small.write_parquet(data)
    out = tmp_path / "results.duckdb"
    p = subprocess.run(
        [sys.executable, "-m", "backstop.cli", "sweep", "--data", str(data),
         "--param", "fast=5,10", "--param", "slow=30,60", "--backend", "ray",
         "--address", ray_local, "--out", str(out), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    con = duckdb.connect(str(out), read_only=True)
    rows = pl.from_arrow(con.sql("SELECT * FROM sweep ORDER BY row").to_arrow_table())
    con.close()
    assert rows.drop("row").equals(local)


def test_without_ray_the_backend_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, small: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as when not installed
    with pytest.raises(ConfigError, match=r"^backend: ray is not installed; pip install 'backs"):
        Backtest(small, "sma_cross").sweep(backend="ray", **GRID)
    with pytest.raises(ConfigError, match=r"^backend: ray is not installed; pip install 'backs"):
        Backtest(small, "sma_cross").walk_forward(folds=2, backend="ray", **GRID)
    code = main(["sweep", "--param", "fast=5,10", "--backend", "ray"])
    assert code == 2
    assert capsys.readouterr().err == (
        "backstop: error: --backend: ray is not installed; pip install 'backstop[ray]' "
        "(or pip install ray)\n"
    )


def test_an_address_nothing_answers_at_is_one_line_at_once(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: a connection is refused
        p = subprocess.run(
            [sys.executable, "-m", "backstop.cli", "sweep", "--param", "fast=5,10",
             "--backend", "ray", "--address", f"127.0.0.1:{port}", "--out",
             str(tmp_path / "x.duckdb")],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr == (
        f"backstop: error: --address: no Ray cluster answers at 127.0.0.1:{port} (Connection "
        "refused); start one with `ray start --head`, or leave the address out for a local "
        "Ray\n"
    )
    with pytest.raises(ConfigError, match=r"^address: expected HOST:PORT \(or auto\), got 'x'"):
        check_reachable("x")


def test_backend_arguments_are_checked(small: pl.DataFrame, capsys) -> None:
    bt = Backtest(small, "sma_cross")
    with pytest.raises(ConfigError, match=r"^backend: unknown backend 'dask'"):
        bt.sweep(backend="dask", **GRID)
    with pytest.raises(ConfigError, match=r"^address: applies to backend='ray' only"):
        bt.sweep(address="127.0.0.1:6379", **GRID)
    with pytest.raises(ConfigError, match=r"^address: applies to backend='ray' only"):
        bt.walk_forward(folds=2, address="127.0.0.1:6379", **GRID)
    with pytest.raises(ConfigError, match=r"^backend: unknown backend 'dask'"):
        bt.walk_forward(folds=2, backend="dask", **GRID)
    assert main(["sweep", "--param", "fast=5,10", "--address", "127.0.0.1:6379"]) == 2
    assert capsys.readouterr().err == (
        "backstop: error: --address: applies to --backend ray only\n"
    )
