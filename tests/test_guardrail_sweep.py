"""Guardrail sweeps: risk keys over the shipped incidents and a small backtest at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from backstop import cli
from backstop.data import SAMPLE_BARS_PATH
from backstop.engine.profile import RiskProfile
from backstop.errors import ConfigError
from backstop.runners.backtest import Backtest
from backstop.runners.guardrails import best_guardrails, guardrail_sweep, parse_risk_grid

REPLAYS = Path(__file__).resolve().parent.parent / "replays"
INCIDENTS = ("es-reversal-2025-12-12", "silent-noop-signals", "stub-order-functions-2026-01-20")
MAX_LOSS = "entry.max_loss_per_trade"


@pytest.fixture(scope="module")
def table():
    return guardrail_sweep(
        REPLAYS, SAMPLE_BARS_PATH, risk={MAX_LOSS: [20, 100, "off"]}, profile="research"
    )


def test_one_row_per_setting_with_every_incident_and_the_backtest(table) -> None:
    assert table.height == 3
    assert table.get_column(MAX_LOSS).to_list() == [20.0, 100.0, None]
    assert table.get_column("incidents_total").to_list() == [3, 3, 3]
    for name in INCIDENTS:
        assert f"{name}:blocked" in table.columns and f"{name}:pnl" in table.columns
    # the damaging orders are exits while flat (reduce-only, always on) and an entry with no
    # price: blocked whatever the loss cap; only the priced Kevin entries' P&L depends on it
    assert table.get_column("blocks_all").to_list() == [True, True, True]
    assert table.get_column("silent-noop-signals:pnl").to_list() == [0.0, -104.48, -104.48]
    assert table.get_column("es-reversal-2025-12-12:pnl").to_list() == [0.0, 0.0, 0.0]


def test_backtest_columns_are_the_runs_under_each_profile(table) -> None:
    base = RiskProfile.load("research")
    for row in table.iter_rows(named=True):
        settings = {} if row[MAX_LOSS] is None else {MAX_LOSS: row[MAX_LOSS]}
        result = Backtest(SAMPLE_BARS_PATH, profile=base.with_settings(settings)).run()
        assert row["backtest_pnl"] == result.pnl
        assert row["backtest_round_trips"] == result.round_trips
        assert row["backtest_refused"] == int((~result.verdicts["approved"]).sum())
    reference = Backtest(SAMPLE_BARS_PATH, profile=base).run().pnl
    assert table.get_column("backtest_cost").to_list() == [
        reference - p for p in table.get_column("backtest_pnl").to_list()
    ]
    refused = table.get_column("backtest_refused").to_list()
    assert refused[0] > refused[1] > refused[2]
    assert table.row(2, named=True)["backtest_cost"] == 0.0


def test_best_row_blocks_most_incidents_at_the_least_cost(table) -> None:
    best = best_guardrails(table)
    top = max(table.get_column("backtest_pnl").to_list())
    assert best["incidents_blocked"] == 3 and best["backtest_pnl"] == top


def test_an_incident_left_unblocked_is_named_in_its_column(tmp_path: Path) -> None:
    """Mark mention:317 (allowed today) as an order that must be blocked: only a loss cap
    small enough to refuse it blocks the incident."""
    case = tmp_path / "kevin"
    shutil.copytree(REPLAYS / "silent-noop-signals", case)
    (case / "expect.toml").write_text(
        'profile = "signal-follower"\n[orders."mention:317"]\nverdict = "BLOCKED"\n'
    )
    out = guardrail_sweep(
        [case, REPLAYS / INCIDENTS[0]],
        SAMPLE_BARS_PATH,
        risk={MAX_LOSS: [20, "off"]},
        profile="research",
    )
    assert out.get_column("kevin:blocked").to_list() == [True, False]
    assert out.get_column("incidents_blocked").to_list() == [2, 1]
    assert out.get_column("blocks_all").to_list() == [True, False]


def test_bad_grids_and_incidents_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"entry\.max_loss: unknown risk key"):
        parse_risk_grid(["entry.max_loss=1,2"])
    with pytest.raises(ConfigError, match="'off' applies only to limits that are off"):
        parse_risk_grid(["advisory.block_on_wait=true,off"])
    with pytest.raises(ConfigError, match=r"sizer\.qty: given twice"):
        parse_risk_grid(["sizer.qty=1", "sizer.qty=2"])
    assert parse_risk_grid(["advisory.block_on_wait=true,false", f"{MAX_LOSS}=5,off"]) == {
        "advisory.block_on_wait": [True, False],
        MAX_LOSS: [5.0, "off"],
    }
    case = tmp_path / "quiet"
    shutil.copytree(REPLAYS / "stub-order-functions-2026-01-20", case)
    (case / "expect.toml").write_text('profile = "equity-runner"\n')
    with pytest.raises(ConfigError, match="no order expected BLOCKED, nothing to block"):
        guardrail_sweep(case, SAMPLE_BARS_PATH, risk={MAX_LOSS: [5]})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: no incident folders inside"):
        guardrail_sweep(tmp_path / "empty", SAMPLE_BARS_PATH, risk={MAX_LOSS: [5]})


def test_cli_writes_one_duckdb_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "g.duckdb"
    argv = ["sweep", "--guardrails", "--incidents", str(REPLAYS), "--profile", "research"]
    argv += ["--risk-grid", f"{MAX_LOSS}=20,off", "--out", str(out), "--json"]
    assert cli.main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["combinations"] == 2 and payload["best"]["incidents_blocked"] == 3
    con = duckdb.connect(str(out), read_only=True)
    try:
        rows = con.sql(f'SELECT row, "{MAX_LOSS}", incidents_blocked FROM sweep').fetchall()
        meta = con.sql("SELECT kind, incidents FROM meta").fetchall()[0]
    finally:
        con.close()
    assert rows == [(0, 20.0, 3), (1, None, 3)]
    assert json.loads(meta[0]) == "guardrails"
    assert json.loads(meta[1]) == list(INCIDENTS)


def test_cli_refuses_strategy_grids_with_guardrails(capsys) -> None:
    argv = ["sweep", "--guardrails", "--param", "fast=5,10", "--risk-grid", f"{MAX_LOSS}=5"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--param: does not apply to --guardrails" in err
