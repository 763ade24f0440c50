"""The intent columns of partial exits and trade types, as strategies and signal files give them.

``exit_fraction`` (an exit's share of the position, in (0, 1]: seed 003's Bear Trap scales
out 40/30/30) and ``trade_type`` (seed 002: day, swing or scalp; the profile's EOD close is for
day trades) are checked where they come in: a Python table's bad value is a ``ConfigError``
naming the column and row, a signal file's a ``DataError`` naming file, line and column.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from kit import bars, ts_of

from backstop.brokers.sim.backtest import run_backtest
from backstop.cli import main
from backstop.domain.intents import conform_intents
from backstop.errors import ConfigError, DataError
from backstop.strategies.external import read_signals

T0 = "2024-01-02T09:30:00-05:00"


def _table(**columns) -> dict:
    rows = {"ts": [ts_of(0), ts_of(2)], "symbol": ["T", "T"], "side": [1, -1], "intent": [0, 1]}
    return rows | columns


@pytest.mark.parametrize(
    ("columns", "words"),
    [
        ({"exit_fraction": [None, 0.0]}, "intent row 1: must be in (0, 1], got 0.0"),
        ({"exit_fraction": [None, 1.5]}, "intent row 1: must be in (0, 1], got 1.5"),
        ({"exit_fraction": [0.5, None]}, "intent row 0: is for exits only"),
        (
            {"exit_fraction": [None, 0.5], "qty": [10.0, 5.0]},
            "intent row 1: and qty both size this exit: give one",
        ),
    ],
    ids=["zero", "above-one", "on-an-entry", "beside-qty"],
)
def test_a_bad_exit_fraction_is_a_config_error_naming_the_row(columns, words) -> None:
    with pytest.raises(ConfigError) as err:
        conform_intents(pl.DataFrame(_table(**columns)))
    assert err.value.key == "exit_fraction"
    assert words in str(err.value)


def test_trade_types_are_words_or_codes_and_anything_else_is_refused() -> None:
    """seed 002's trade types: ``day``/``swing``/``scalp`` (any case) or 0/1/2; none is day."""
    table = conform_intents(pl.DataFrame(_table(trade_type=["Swing", None])))
    assert table.get_column("trade_type").to_list() == [1, None]
    assert table.schema["trade_type"] == pl.Int8
    with pytest.raises(ConfigError) as err:
        conform_intents(pl.DataFrame(_table(trade_type=["overnight", None])))
    assert err.value.key == "trade_type"
    assert "intent row 0: must be 'day' or 'swing' or 'scalp', got 'overnight'" in str(err.value)
    with pytest.raises(ConfigError, match=r"trade_type: intent row 1: must be 0 \(day\)"):
        conform_intents(pl.DataFrame(_table(trade_type=[0, 5])))


def test_an_exit_fraction_that_rounds_to_no_lot_is_a_refused_verdict() -> None:
    """A 0.4 share of 1 unit is 0.4 of a lot: refused as SIZING_ZERO_QTY and journaled, never
    sent as an order of nothing; the position stays open."""
    frame = bars([(100.0, 100.5, 99.5, 100.0)] * 5)
    table = conform_intents(
        pl.DataFrame(
            {
                "ts": [ts_of(0), ts_of(2)],
                "symbol": ["T", "T"],
                "side": [1, -1],
                "intent": [0, 1],
                "qty": [1.0, None],
                "exit_fraction": [None, 0.4],
            }
        )
    )
    result = run_backtest(frame, table)
    exit_verdict = result.verdicts.filter(pl.col("intent") == "EXIT").row(0, named=True)
    assert (exit_verdict["approved"], exit_verdict["qty"]) == (False, 0.0)
    assert exit_verdict["reason_codes"] == ["SIZING_ZERO_QTY"]
    assert exit_verdict["position"] == 1.0
    assert result.orders.height == 1  # the entry only
    assert result.trades.is_empty()


def _signals(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "signals.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_signal_file_takes_exit_fraction_and_trade_type(tmp_path: Path) -> None:
    path = _signals(
        tmp_path,
        [
            "ts,symbol,side,intent,qty,exit_fraction,trade_type",
            f"{T0},AAPL,buy,entry,10,,swing",
            f"{T0},AAPL,sell,exit,,0.4,",
        ],
    )
    table = read_signals(path)
    assert table.get_column("trade_type").to_list() == [1, None]
    assert table.get_column("exit_fraction").to_list() == [None, 0.4]


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        (f"{T0},AAPL,sell,exit,,1.2,", "exit_fraction", "must be a fraction in (0, 1], got '1.2'"),
        (f"{T0},AAPL,buy,entry,,0.5,", "exit_fraction", "is for exits only"),
        (f"{T0},AAPL,sell,exit,5,0.5,", "exit_fraction", "and qty both size this exit"),
        (f"{T0},AAPL,buy,entry,10,,weekly", "trade_type", "must be one of ['day', 'scalp',"),
    ],
    ids=["above-one", "on-an-entry", "beside-qty", "unknown-type"],
)
def test_a_bad_value_in_a_signal_file_names_its_line_and_column(
    tmp_path: Path, row: str, column: str, words: str
) -> None:
    header = "ts,symbol,side,intent,qty,exit_fraction,trade_type"
    path = _signals(tmp_path, [header, f"{T0},AAPL,buy,entry,10,,day", row])
    with pytest.raises(DataError) as err:
        read_signals(path)
    assert (err.value.source, err.value.row, err.value.column) == (str(path), 3, column)
    assert words in err.value.problem


def test_the_cli_says_a_bad_signal_file_value_in_one_line(tmp_path: Path, capsys) -> None:
    header = "ts,symbol,side,intent,qty,exit_fraction,trade_type"
    path = _signals(tmp_path, [header, f"{T0},AAPL,buy,entry,10,,fortnightly"])
    code = main(["backtest", "--signals", str(path), "--profile", "research"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert f"{path}:2, symbol AAPL, column trade_type: must be one of" in err
