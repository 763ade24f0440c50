"""Strategies as plain functions from the command line (``file.py:fn``, ``module:fn``) and the
intent helpers that make one a few lines (``signal_intents``, ``crossover_intents``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from backstop import Backtest, ConfigError
from backstop.cli import main
from backstop.data import sample_bars
from backstop.strategies import crossover_intents, get_strategy, signal_intents

STRATEGY = '''
import polars as pl
from backstop.strategies import crossover_intents


def sma_lines(bars, fast=5, slow=20, stop_pct=0.01, target_pct=0.02):
    """The SMA cross written with the helper."""
    line = lambda n: pl.col("close").rolling_mean(n).over("symbol")
    return crossover_intents(
        bars, line(fast), line(slow), stop_pct=stop_pct, target_pct=target_pct, qty=100
    )


LEVEL = 3
'''


def _run(tmp_path: Path, capsys, *argv: str) -> tuple[int, Any, str]:
    code = main(["backtest", *argv, "--journal", str(tmp_path / "j"), "--force"])
    captured = capsys.readouterr()
    out = json.loads(captured.out) if code == 0 and "--json" in argv else None
    return code, out, captured.err.strip()


def _write(tmp_path: Path, name: str = "mine.py", text: str = STRATEGY) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cli_runs_a_function_from_a_file_with_params(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path)
    code, out, err = _run(
        tmp_path, capsys, "--strategy", f"{path}:sma_lines", "--param", "fast=8", "--json"
    )
    assert code == 0, err
    assert out["strategy"] == "sma_lines"
    assert out["params"] == {"fast": 8, "slow": 20, "stop_pct": 0.01, "target_pct": 0.02}
    assert out["round_trips"] > 0


def test_cli_runs_a_function_from_a_module(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    _write(tmp_path / "mypkg", "strats.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, by_module, err = _run(tmp_path, capsys, "--strategy", "mypkg.strats:sma_lines", "--json")
    assert code == 0, err
    path = tmp_path / "mypkg" / "strats.py"
    code, by_file, err = _run(tmp_path, capsys, "--strategy", f"{path}:sma_lines", "--json")
    assert code == 0, err
    assert by_module["pnl"] == by_file["pnl"] and by_module["orders"] == by_file["orders"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{dir}/nothere.py:fn", "strategy: {dir}/nothere.py: no such file"),
        (
            "{dir}/mine.py:nope",
            "strategy: {dir}/mine.py has no function 'nope' (functions there: sma_lines)",
        ),
        ("{dir}/mine.py:LEVEL", "strategy: {dir}/mine.py:LEVEL is a int, not a function of bars"),
        ("{dir}/bad.py:fn", "strategy: {dir}/bad.py:3: syntax error: "),
        ("{dir}/needs.py:fn", "strategy: {dir}/needs.py: cannot import what it needs: No module"),
        ("no_such_module_xyz:fn", "strategy: cannot import module 'no_such_module_xyz': No module"),
        ("{dir}/mine.py:", "strategy: '{dir}/mine.py:': expected path/to/file.py:function"),
    ],
    ids=["no-file", "no-function", "not-a-function", "syntax", "import", "no-module", "no-name"],
)
def test_cli_names_file_and_function_it_cannot_load(
    tmp_path: Path, capsys, spec: str, expected: str
) -> None:
    _write(tmp_path)
    _write(tmp_path, "bad.py", "import math\n\ndef fn(bars:\n")
    _write(tmp_path, "needs.py", "import not_installed_pkg_xyz\n")
    code, _, err = _run(tmp_path, capsys, "--strategy", spec.format(dir=tmp_path))
    assert code == 2 and "\n" not in err
    assert err.startswith("backstop: error: " + expected.format(dir=tmp_path)), err


def test_python_api_takes_the_same_spec(tmp_path: Path) -> None:
    path = _write(tmp_path)
    bt = Backtest(sample_bars(), f"{path}:sma_lines", fast=10, slow=50)
    assert bt.strategy.name == "sma_lines" and bt.params["fast"] == 10


# ---- the helpers ----------------------------------------------------------------------------
BARS = pl.DataFrame(
    {
        "ts": [1, 1, 2, 2, 3, 3, 4, 4],
        "symbol": ["A", "B"] * 4,
        "close": [1.0] * 8,
    }
)


def test_crossover_intents_rows_are_exact() -> None:
    fast = [1.0, 5.0, 3.0, 5.0, 3.0, 4.0, 1.0, 6.0]  # A: up at ts 2, down at ts 4; B: down at 3
    slow = [2.0, 4.0, 2.0, 4.0, 2.0, 4.5, 2.0, 4.0]  # B: up again at ts 4
    out = crossover_intents(BARS, pl.Series(fast), np.array(slow), stop_pct=0.01, qty=5)
    assert out.select("ts", "symbol", "side", "intent", "qty", "stop_pct").rows() == [
        (2, "A", 1, 0, 5.0, 0.01),
        (3, "B", -1, 1, None, None),
        (4, "A", -1, 1, None, None),
        (4, "B", 1, 0, 5.0, 0.01),
    ]
    assert out["target_pct"].null_count() == 4


def test_crossover_with_a_level_and_warm_up_nulls() -> None:
    rsi = pl.Series([None, None, 25.0, 40.0, 35.0, 20.0, 31.0, 29.0])
    out = crossover_intents(BARS, rsi, 30)
    # A: None, 25, 35 (up), 31; B: None, 40, 20 (down), 29
    assert out.select("ts", "symbol", "side", "intent").rows() == [
        (3, "A", 1, 0),
        (3, "B", -1, 1),
    ]


def test_signal_intents_puts_the_exit_first_on_a_shared_bar() -> None:
    entries = [False, False, True, False, False, False, False, False]
    exits = [False, False, True, False, False, False, False, True]
    out = signal_intents(BARS, entries, exits, target_pct=0.05)
    assert out.select("ts", "symbol", "intent", "target_pct").rows() == [
        (2, "A", 1, None),
        (2, "A", 0, 0.05),
        (4, "B", 1, None),
    ]


def test_signal_intents_refuses_a_line_of_the_wrong_length() -> None:
    with pytest.raises(ConfigError) as info:
        signal_intents(BARS, [True, False])
    assert str(info.value) == "entries: has 2 values for 8 bars: give one per bar"
    with pytest.raises(ConfigError) as info:
        signal_intents(BARS, "nope")
    assert str(info.value).startswith("entries: no column 'nope' in the bars")
    with pytest.raises(ConfigError) as info:
        signal_intents(BARS, "close", stop_pct=math.nan)
    assert str(info.value) == "stop_pct: must be a fraction >= 0 (0.02 is 2%), got nan"


def test_crossover_of_rolling_means_matches_sma_cross_on_the_sample() -> None:
    bars = sample_bars()
    line = lambda n: pl.col("close").rolling_mean(n).over("symbol")  # noqa: E731
    mine = crossover_intents(bars, line(10), line(50)).select("ts", "symbol", "side", "intent")
    ref = get_strategy("sma_cross").intents(bars, {"fast": 10, "slow": 50})
    ref = ref.select("ts", "symbol", "side", "intent").sort("ts", "symbol", maintain_order=True)
    assert mine.height > 100
    assert mine.rows() == ref.rows()


def test_sweep_of_a_file_strategy_needs_one_process(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path)
    code = main(["sweep", "--strategy", f"{path}:sma_lines", "--param", "fast=5,8"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"backstop: error: --processes: strategy {path}:sma_lines is loaded from a file, which "
        "worker processes cannot import: pass --processes 1 (or name it package.module:fn)"
    )
