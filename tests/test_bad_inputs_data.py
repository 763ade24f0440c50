"""Bad-input corpus for bars, signals, parameters, options and profiles (CLI and Python API).

Every case either is refused precisely (the CLI: exit code 2 and one stderr line naming the
file:line, column or key and the cause; the Python API: the exact ``BackstopError`` subclass
with its message) or runs and gives the correct answer. None may print a traceback, and none
may succeed with a wrong answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pytest

from backstop import Backtest, BacktestConfig, ConfigError, DataError, run_backtest
from backstop.cli import main
from backstop.data import normalize_bars
from backstop.engine.profile import RiskProfile
from backstop.strategies import get_strategy, latest_intents, stop_updates

T0 = 1_577_975_400_000_000_000  # 2020-01-02T14:30:00Z
MINUTE = 60_000_000_000
HEADER = "ts,symbol,open,high,low,close,volume"
SIG_HEADER = "ts,symbol,side,intent"


def bar_lines(n: int = 40, symbol: str = "AAPL", unit: int = 1) -> list[str]:
    """``n`` valid one-minute bars (a zig-zag, so SMA crosses happen), ts in ns // ``unit``."""
    out = []
    for i in range(n):
        close = 100.0 + (i % 10 if (i // 10) % 2 == 0 else 10 - i % 10)
        ts = (T0 + i * MINUTE) // unit
        out.append(f"{ts},{symbol},{close},{close + 1},{close - 1},{close},1000")
    return out


def bars_frame(n: int = 40) -> pl.DataFrame:
    """The same bars as ``bar_lines`` as a polars frame (ts int ns)."""
    rows = [line.split(",") for line in bar_lines(n)]
    return pl.DataFrame(
        {
            "ts": [int(r[0]) for r in rows],
            "symbol": [r[1] for r in rows],
            **{
                name: [float(r[k]) for r in rows]
                for k, name in enumerate(HEADER.split(","))
                if k > 1
            },
        }
    )


def csv_text(lines: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def replace_line(lines: list[str], index: int, text: str) -> list[str]:
    out = list(lines)
    out[index] = text
    return out


# --- files the cases write -----------------------------------------------------------------


def _parquet(frame: pl.DataFrame) -> Callable[[Path], None]:
    return lambda path: frame.write_parquet(path)


def _duckdb(frame: pl.DataFrame | None, table: str = "bars") -> Callable[[Path], None]:
    def write(path: Path) -> None:
        con = duckdb.connect(str(path))
        try:
            if frame is not None:
                con.register("src", frame.to_arrow())
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM src")
        finally:
            con.close()

    return write


def _frame_with(**columns: Any) -> pl.DataFrame:
    return bars_frame().with_columns(**columns)


def _flags(flag: str, values: list[str]) -> list[str]:
    """``--param a=1 --param b=2`` from ``["a=1", "b=2"]``."""
    return [part for value in values for part in (flag, value)]


SIG_JSON = '{"ts": "2020-01-02T14:31:00Z", "symbol": "AAPL", "side": "buy", "intent": "entry"}\n'


@dataclass(frozen=True)
class Case:
    """One CLI run: files to write, the arguments, and the pieces the error line must hold."""

    name: str
    files: dict[str, Any]
    argv: list[str]
    expect: list[str] = field(default_factory=list)


GOOD = csv_text(bar_lines())
LATIN = (csv_text(bar_lines(3)) + "1577975580000000000,Caf\xe9,100,101,99,100,1000\n").encode(
    "latin-1"
)
SIG_LATIN = (
    SIG_HEADER + "\n2020-01-02T14:31:00Z,AAPL,buy,entry\n2020-01-02T14:32:00Z,Caf\xe9,buy,entry\n"
).encode("latin-1")

CLI_CASES = [
    # ---- bars: CSV
    Case(
        "csv-text-price",
        {
            "bars.csv": csv_text(
                replace_line(bar_lines(), 1, f"{T0 + MINUTE},AAPL,abc,101,99,100,1")
            )
        },
        ["--data", "bars.csv"],
        ["bars.csv:3, symbol AAPL, column open: 'abc' is not a number"],
    ),
    Case(
        "csv-negative-price",
        {
            "bars.csv": csv_text(
                replace_line(bar_lines(), 2, f"{T0 + 2 * MINUTE},AAPL,-1,101,-2,100,1")
            )
        },
        ["--data", "bars.csv"],
        ["bars.csv:4, symbol AAPL: open -1.0 is not positive"],
    ),
    Case(
        "csv-high-below-low",
        {"bars.csv": csv_text(replace_line(bar_lines(), 0, f"{T0},AAPL,100,99,101,100,1"))},
        ["--data", "bars.csv"],
        ["bars.csv:2, symbol AAPL: high 99.0 < low 101.0"],
    ),
    Case(
        "csv-duplicate-ts",
        {"bars.csv": csv_text(replace_line(bar_lines(), 1, bar_lines()[0]))},
        ["--data", "bars.csv"],
        ["bars.csv:3, symbol AAPL: duplicate ts 2020-01-02T14:30:00Z"],
    ),
    Case(
        "csv-unsorted-ts",
        {"bars.csv": csv_text([bar_lines()[1], bar_lines()[0], *bar_lines()[2:]])},
        ["--data", "bars.csv"],
        ["bars.csv:3, symbol AAPL: timestamps not sorted"],
    ),
    Case(
        "csv-missing-volume",
        {"bars.csv": csv_text([ln.rsplit(",", 1)[0] for ln in bar_lines()], HEADER[:-7])},
        ["--data", "bars.csv"],
        ["bars.csv, column volume: missing"],
    ),
    Case(
        "csv-semicolon",
        {
            "bars.csv": csv_text(
                [ln.replace(",", ";") for ln in bar_lines()], HEADER.replace(",", ";")
            )
        },
        ["--data", "bars.csv"],
        ["bars.csv:1: the header", "semicolon-separated"],
    ),
    Case(
        "csv-tab",
        {
            "bars.csv": csv_text(
                [ln.replace(",", "\t") for ln in bar_lines()], HEADER.replace(",", "\t")
            )
        },
        ["--data", "bars.csv"],
        ["bars.csv:1:", "tab-separated"],
    ),
    Case(
        "csv-latin1",
        {"bars.csv": LATIN},
        ["--data", "bars.csv"],
        ["bars.csv:5: byte 0xe9 at character 24 is not UTF-8 text"],
    ),
    Case(
        "csv-one-row",
        {"bars.csv": csv_text(bar_lines(1))},
        ["--data", "bars.csv"],
        ["bars.csv: only 1 bar: a backtest needs at least 2"],
    ),
    Case(
        "csv-header-only",
        {"bars.csv": HEADER + "\n"},
        ["--data", "bars.csv"],
        ["bars.csv: no bars"],
    ),
    Case("csv-empty", {"bars.csv": ""}, ["--data", "bars.csv"], ["bars.csv: empty file"]),
    Case(
        "csv-naive-iso",
        {
            "bars.csv": csv_text(
                replace_line(bar_lines(), 0, "2020-01-02T14:30:00,AAPL,100,101,99,100,1")
            )
        },
        ["--data", "bars.csv"],
        ["bars.csv:2, symbol AAPL, column ts: '2020-01-02T14:30:00' has no UTC offset"],
    ),
    Case(
        "csv-iso-past-2262",
        {"bars.csv": csv_text(["2300-01-02T14:30:00Z,AAPL,100,101,99,100,1"] * 2)},
        ["--data", "bars.csv"],
        ["bars.csv:2, symbol AAPL, column ts: '2300-01-02T14:30:00Z' is outside the int64"],
    ),
    Case(
        "csv-seconds-past-2262",
        {
            "bars.csv": csv_text(
                [f"{20_000_000_000 + 60 * i},AAPL,100,101,99,100,1" for i in range(3)]
            )
        },
        ["--data", "bars.csv"],
        ["bars.csv:2, symbol AAPL, column ts: 20000000000 read as seconds is outside the int64"],
    ),
    Case(
        "csv-mixed-units",
        {
            "bars.csv": csv_text(
                [
                    f"{T0 // 10**6},AAPL,100,101,99,100,1",
                    f"{T0 // 10**9 + 60},AAPL,100,101,99,100,1",
                ]
            )
        },
        ["--data", "bars.csv"],
        [
            "bars.csv:3, symbol AAPL, column ts: 1577975460 is in seconds by its size",
            "milliseconds",
        ],
    ),
    Case(
        "csv-ts-words",
        {"bars.csv": csv_text(replace_line(bar_lines(), 3, "yesterday,AAPL,100,101,99,100,1"))},
        ["--data", "bars.csv"],
        ["bars.csv:5, symbol AAPL, column ts: 'yesterday' is not an ISO-8601 timestamp"],
    ),
    Case(
        "csv-nan-close",
        {
            "bars.csv": csv_text(
                replace_line(bar_lines(), 4, f"{T0 + 4 * MINUTE},AAPL,100,101,99,NaN,1")
            )
        },
        ["--data", "bars.csv"],
        ["bars.csv:6, symbol AAPL: close is NaN"],
    ),
    Case(
        "csv-ragged-row",
        {"bars.csv": csv_text(replace_line(bar_lines(), 5, bar_lines()[5] + ",7"))},
        ["--data", "bars.csv"],
        ["bars.csv:7: expected 7 fields (as in the header), got 8"],
    ),
    Case(
        "csv-column-twice",
        {"bars.csv": csv_text(bar_lines(), HEADER.replace("volume", "close"))},
        ["--data", "bars.csv"],
        ["bars.csv:1, column close: the header names this column twice"],
    ),
    Case(
        "data-tz-unknown",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--data-tz", "Mars/Olympus"],
        ["--tz: 'Mars/Olympus' is not an IANA time zone"],
    ),
    Case("bars-txt", {"bars.txt": GOOD}, ["--data", "bars.txt"], ["unknown file type '.txt'"]),
    Case("bars-missing", {}, ["--data", "nothere.csv"], ["nothere.csv: file not found"]),
    Case("bars-directory", {"dir.csv/x": ""}, ["--data", "dir.csv"], ["dir.csv: not a file"]),
    # ---- bars: Parquet
    Case(
        "parquet-garbage",
        {"b.parquet": b"not parquet"},
        ["--data", "b.parquet"],
        ["b.parquet: cannot read Parquet"],
    ),
    Case(
        "parquet-float-ts",
        {"b.parquet": _parquet(_frame_with(ts=pl.col("ts").cast(pl.Float64)))},
        ["--data", "b.parquet"],
        ["b.parquet, column ts: has type Float64, expected an integer epoch time"],
    ),
    Case(
        "parquet-datetime-past-2262",
        {
            "b.parquet": _parquet(
                _frame_with(
                    ts=pl.datetime_range(
                        pl.datetime(2300, 1, 1, time_zone="UTC"),
                        pl.datetime(2300, 1, 1, 0, 39, time_zone="UTC"),
                        "1m",
                        time_unit="us",
                    )
                )
            )
        },
        ["--data", "b.parquet"],
        ["b.parquet:1, symbol AAPL, column ts: 2300-01-01 00:00:00+00:00 is outside the int64"],
    ),
    Case(
        "parquet-negative-volume",
        {
            "b.parquet": _parquet(
                _frame_with(volume=pl.when(pl.int_range(pl.len()) == 7).then(-5.0).otherwise(1.0))
            )
        },
        ["--data", "b.parquet"],
        ["b.parquet:8, symbol AAPL: volume -5.0 is negative"],
    ),
    # ---- bars: DuckDB
    Case(
        "duckdb-no-table",
        {"b.duckdb": _duckdb(bars_frame(), "other")},
        ["--data", "b.duckdb"],
        ["b.duckdb[bars]: cannot read table"],
    ),
    Case(
        "duckdb-garbage",
        {"b.duckdb": b"not a database at all" * 100},
        ["--data", "b.duckdb"],
        ["b.duckdb[bars]: cannot open DuckDB file: IO Error"],
    ),
    Case(
        "duckdb-low-above-high",
        {
            "b.duckdb": _duckdb(
                _frame_with(
                    low=pl.when(pl.int_range(pl.len()) == 2).then(500.0).otherwise(pl.col("low"))
                )
            )
        },
        ["--data", "b.duckdb"],
        ["b.duckdb[bars]:3, symbol AAPL: high", "< low 500.0"],
    ),
    Case(
        "duckdb-one-row",
        {"b.duckdb": _duckdb(bars_frame(1))},
        ["--data", "b.duckdb"],
        ["b.duckdb: only 1 bar"],
    ),
    # ---- signals: CSV
    *(
        Case(
            f"signals-{name}",
            {"bars.csv": GOOD, "s.csv": text},
            ["--data", "bars.csv", "--signals", "s.csv"],
            expect,
        )
        for name, text, expect in [
            (
                "unknown-column",
                "ts,symbol,side,intent,colour\n2020-01-02T14:31:00Z,AAPL,buy,entry,red\n",
                ["s.csv:1, column colour: unknown column"],
            ),
            (
                "side-hold",
                SIG_HEADER + "\n2020-01-02T14:31:00Z,AAPL,hold,entry\n",
                ["s.csv:2, symbol AAPL, column side: must be buy or sell, got 'hold'"],
            ),
            (
                "intent-open",
                SIG_HEADER + "\n2020-01-02T14:31:00Z,AAPL,buy,open\n",
                ["s.csv:2, symbol AAPL, column intent: must be entry or exit"],
            ),
            (
                "naive-ts",
                SIG_HEADER + "\n2020-01-02T14:31:00,AAPL,buy,entry\n",
                ["s.csv:2, symbol AAPL, column ts: '2020-01-02T14:31:00' has no UTC offset"],
            ),
            (
                "seconds-past-2262",
                SIG_HEADER + "\n20000000000,AAPL,buy,entry\n",
                [
                    "s.csv:2, symbol AAPL, column ts: 20000000000 read as seconds",
                    "outside the int64",
                ],
            ),
            (
                "iso-past-2262",
                SIG_HEADER + "\n2300-01-02T14:31:00Z,AAPL,buy,entry\n",
                ["s.csv:2, symbol AAPL, column ts: '2300-01-02T14:31:00Z' is outside the int64"],
            ),
            (
                "price-negative",
                SIG_HEADER + ",price\n2020-01-02T14:31:00Z,AAPL,buy,entry,-3\n",
                ["s.csv:2, symbol AAPL, column price: must be > 0, got '-3'"],
            ),
            (
                "stop-pct-two",
                SIG_HEADER + ",stop_pct\n2020-01-02T14:31:00Z,AAPL,buy,entry,2\n",
                ["s.csv:2, symbol AAPL, column stop_pct: must be a fraction in (0, 1)"],
            ),
            (
                "conviction-150",
                SIG_HEADER + ",conviction\n2020-01-02T14:31:00Z,AAPL,buy,entry,150\n",
                ["column conviction: must be in [0, 100], got '150'"],
            ),
            ("header-only", SIG_HEADER + "\n", ["s.csv: no signals: the file has no rows"]),
            ("blank-lines-only", SIG_HEADER + "\n\n  \n", ["s.csv: no signals"]),
            ("empty", "", ["s.csv:1: empty signal file: expected a header line"]),
            (
                "semicolon",
                SIG_HEADER.replace(",", ";") + "\n2020-01-02T14:31:00Z;AAPL;buy;entry\n",
                [
                    "s.csv:1: the header 'ts;symbol;side;intent' is one column",
                    "semicolon-separated",
                ],
            ),
            ("latin1", SIG_LATIN, ["s.csv:3: byte 0xe9 at character 25 is not UTF-8 text"]),
            (
                "column-twice",
                "ts,symbol,side,side,intent\n2020-01-02T14:31:00Z,AAPL,buy,sell,entry\n",
                ["s.csv:1, column side: the header names this column twice"],
            ),
            (
                "field-count",
                SIG_HEADER + "\n2020-01-02T14:31:00Z,AAPL,buy,entry,5\n",
                ["s.csv:2: expected 4 fields, got 5"],
            ),
            (
                "missing-intent-column",
                "ts,symbol,side\n2020-01-02T14:31:00Z,AAPL,buy\n",
                ["s.csv:1, column intent: required column is missing"],
            ),
            (
                "negative-source-id",
                SIG_HEADER + ",source_id\n2020-01-02T14:31:00Z,AAPL,buy,entry,-4\n",
                ["column source_id: must be >= 0, got -4"],
            ),
            (
                "bad-exit-reason",
                SIG_HEADER + ",exit_reason\n2020-01-02T14:31:00Z,AAPL,sell,exit,boredom\n",
                ["column exit_reason: must be one of", "got 'boredom'"],
            ),
            (
                "advisory-maybe",
                SIG_HEADER + ",advisory\n2020-01-02T14:31:00Z,AAPL,buy,entry,MAYBE\n",
                ["column advisory: must be WAIT, GO or NONE, got 'MAYBE'"],
            ),
        ]
    ),
    # ---- signals: JSONL
    *(
        Case(
            f"jsonl-{name}",
            {"bars.csv": GOOD, "s.jsonl": text},
            ["--data", "bars.csv", "--signals", "s.jsonl"],
            expect,
        )
        for name, text, expect in [
            ("not-json", '{"ts": 1}\n{oops\n', ["s.jsonl:2: not valid JSON"]),
            ("array", "[1, 2]\n", ["s.jsonl:1: expected a JSON object per line"]),
            (
                "unknown-key",
                SIG_JSON[:-2] + ', "size": 3}\n',
                ["s.jsonl:1, column size: unknown column"],
            ),
            (
                "float-ts",
                '{"ts": 1577975460.5, "symbol": "AAPL", "side": "buy", "intent": "entry"}\n',
                [
                    "s.jsonl:1, symbol AAPL, column ts: expected ISO-8601 with an offset or an "
                    "integer epoch time, got 1577975460.5"
                ],
            ),
            (
                "list-source-id",
                SIG_JSON[:-2] + ', "source_id": [1]}\n',
                ["column source_id: expected an integer or text id, got [1]"],
            ),
            (
                "no-symbol",
                '{"ts": "2020-01-02T14:31:00Z", "side": "buy", "intent": "entry"}\n',
                ["s.jsonl:1, column symbol: required value is missing"],
            ),
            ("only-blank", "\n\n", ["s.jsonl: no signals"]),
            (
                "latin1",
                SIG_JSON.replace("AAPL", "Caf\xe9").encode("latin-1"),
                ["s.jsonl:1: byte 0xe9 at character 46 is not UTF-8 text"],
            ),
        ]
    ),
    Case(
        "signals-text-ids-with-cursor",
        {
            "bars.csv": GOOD,
            "s.csv": SIG_HEADER + ",source_id\n2020-01-02T14:31:00Z,AAPL,buy,entry,kevin-4411\n",
        },
        ["--data", "bars.csv", "--signals", "s.csv", "--risk", "risk.source_cursor=5"],
        [
            "risk.source_cursor: applies to numeric source ids; this run's ids are text "
            "(e.g. 'kevin-4411')"
        ],
    ),
    Case(
        "signals-with-param",
        {"bars.csv": GOOD, "s.csv": SIG_HEADER + "\n"},
        ["--data", "bars.csv", "--signals", "s.csv", "--param", "fast=3"],
        ["--param: strategy parameters do not apply to --signals"],
    ),
    Case(
        "signals-missing",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--signals", "none.csv"],
        ["none.csv: no such signal file"],
    ),
    # ---- strategy parameters
    *(
        Case(
            f"param-{name}",
            {"bars.csv": GOOD},
            ["--data", "bars.csv", *_flags("--param", params)],
            expect,
        )
        for name, params, expect in [
            ("float-for-int", ["fast=10.7"], ["fast: expected int, got '10.7'"]),
            (
                "fast-not-below-slow",
                ["fast=20", "slow=20"],
                ["fast: must be shorter than slow (fast=20, slow=20)"],
            ),
            (
                "window-longer-than-data",
                ["fast=5", "slow=40"],
                [
                    "slow: 40 needs at least 41 bars of a symbol to signal, but the longest "
                    "symbol has 40"
                ],
            ),
            ("fast-zero", ["fast=0"], ["fast: must be >= 1, got 0"]),
            ("fast-nan", ["fast=nan"], ["fast: expected int, got 'nan'"]),
            ("stop-pct-two", ["stop_pct=2"], ["stop_pct: must be <= 1.0, got 2.0"]),
            ("qty-text", ["qty=lots"], ["qty: expected float, got 'lots'"]),
            ("no-equals", ["fast"], ["--param: expected KEY=VALUE, got 'fast'"]),
            ("unknown", ["speed=3"], ["speed: unknown parameter of strategy sma_cross"]),
            ("twice", ["fast=3", "fast=5"], ["fast: given twice in --param ('3' and '5')"]),
            ("empty-key", ["=5"], ["--param: expected KEY=VALUE, got '=5'"]),
        ]
    ),
    Case(
        "strategy-unknown",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--strategy", "nope"],
        ["strategy: unknown strategy 'nope'"],
    ),
    # ---- --set options
    *(
        Case(
            f"set-{name}",
            {"bars.csv": GOOD},
            ["--data", "bars.csv", *_flags("--set", sets)],
            expect,
        )
        for name, sets, expect in [
            (
                "percent-as-percentage",
                ["commission=percent", "commission_rate=0.2"],
                [
                    "commission_rate: 0.2 with commission=percent would be 20% of notional per "
                    "fill: the rate is a fraction (0.002 = 0.2%)"
                ],
            ),
            ("rate-text", ["commission_rate=abc"], ["commission_rate: expected float, got 'abc'"]),
            (
                "rate-negative",
                ["commission_rate=-1"],
                ["commission_rate: must be a finite number >= 0, got -1.0"],
            ),
            (
                "max-working-one",
                ["max_working=1"],
                ["max_working: must be an int in [2, 256], got 1"],
            ),
            ("unknown", ["speed=3"], ["speed: unknown option"]),
            (
                "participation-two",
                ["max_participation=2"],
                ["max_participation: must be in [0, 1], got 2.0"],
            ),
            (
                "session-tz",
                ["session_tz=Mars/Olympus"],
                ["session_tz: 'Mars/Olympus' is not an IANA time zone"],
            ),
            (
                "slippage-huge",
                ["slippage=huge"],
                ["slippage: must be one of ['bps', 'none', 'ticks'], got 'huge'"],
            ),
            (
                "bool-maybe",
                ["legs_live_on_entry_bar=maybe"],
                ["legs_live_on_entry_bar: expected bool, got 'maybe'"],
            ),
        ]
    ),
    # ---- profiles
    Case(
        "profile-directory",
        {"bars.csv": GOOD, "p.toml/x": ""},
        ["--data", "bars.csv", "--profile", "p.toml"],
        ["p.toml: profile: is a directory, not a profile file"],
    ),
    Case(
        "profile-latin1",
        {"bars.csv": GOOD, "p.toml": '[profile]\nname = "caf\xe9"\n'.encode("latin-1")},
        ["--data", "bars.csv", "--profile", "p.toml"],
        ["p.toml: profile: not UTF-8 text (byte 0xe9 at offset 21)"],
    ),
    Case(
        "profile-unknown-preset",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--profile", "nope"],
        ["profile: unknown preset 'nope'"],
    ),
    Case(
        "profile-missing-file",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--profile", "gone.toml"],
        ["profile: no such profile file: gone.toml"],
    ),
    Case(
        "profile-bad-toml",
        {"bars.csv": GOOD, "p.toml": "[entry\n"},
        ["--data", "bars.csv", "--profile", "p.toml"],
        ["p.toml: profile: not valid TOML"],
    ),
    Case(
        "profile-unknown-key",
        {"bars.csv": GOOD, "p.toml": "[entry]\nmax_stops = 3\n"},
        ["--data", "bars.csv", "--profile", "p.toml"],
        ["p.toml: entry.max_stops: unknown risk key"],
    ),
    Case(
        "profile-share-above-one",
        {"bars.csv": GOOD, "p.toml": "[checks]\nmin_order_share = 1.5\n"},
        ["--data", "bars.csv", "--profile", "p.toml"],
        ["p.toml: checks.min_order_share: must be in [0, 1], got 1.5"],
    ),
    Case(
        "profile-share-text",
        {"bars.csv": GOOD, "p.toml": '[checks]\nmin_order_share = "half"\n'},
        ["--data", "bars.csv", "--profile", "p.toml"],
        ["p.toml: checks.min_order_share: expected a finite float, got 'half'"],
    ),
    Case(
        "risk-share-text",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--risk", "checks.min_order_share=abc"],
        ["checks.min_order_share: expected a number, got 'abc'"],
    ),
    Case(
        "risk-twice",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--risk", "risk.max_positions=3", "--risk", "risk.max_positions=5"],
        ["risk.max_positions: given twice in --risk"],
    ),
    Case(
        "risk-unknown-key",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--risk", "risk.max_pos=3"],
        ["risk.max_pos: unknown risk key"],
    ),
    Case(
        "risk-bool-text",
        {"bars.csv": GOOD},
        ["--data", "bars.csv", "--risk", "risk.market_hours=often"],
        ["risk.market_hours: expected true or false, got 'often'"],
    ),
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch) -> None:
    """Run every case from its own folder: relative paths and ``runs/`` land there."""
    monkeypatch.chdir(tmp_path)


def _write(root: Path, files: dict[str, Any]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_cli_refuses_with_one_line(case: Case, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, case.files)
    code = main(["backtest", *case.argv, "--journal", "j"])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("backstop: error: "), captured.err
    for piece in case.expect:
        assert piece in lines[0], lines[0]
    assert not (tmp_path / "j").exists()  # refused before anything was journaled


# --- CLI runs that must give the right answer ----------------------------------------------


def _json_run(tmp_path: Path, capsys, *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["backtest", *argv, "--json", "--journal", str(tmp_path / "j"), "--force"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


KEYS = ("signals", "orders", "round_trips", "pnl", "verdicts_by_reason", "fills")


@pytest.mark.parametrize(
    ("unit", "name"), [(10**9, "seconds"), (10**6, "milliseconds"), (10**3, "microseconds")]
)
def test_cli_integer_ts_in_any_unit_give_the_nanosecond_result(
    unit: int, name: str, tmp_path: Path, capsys
) -> None:
    (tmp_path / "ns.csv").write_text(csv_text(bar_lines(200)))
    (tmp_path / f"{name}.csv").write_text(csv_text(bar_lines(200, unit=unit)))
    args = ("--param", "fast=3", "--param", "slow=8")
    _, ns = _json_run(tmp_path, capsys, "--data", str(tmp_path / "ns.csv"), *args)
    _, other = _json_run(tmp_path, capsys, "--data", str(tmp_path / f"{name}.csv"), *args)
    assert ns["round_trips"] > 0
    assert {k: other[k] for k in KEYS} == {k: ns[k] for k in KEYS}


def test_cli_signal_file_ms_ts_and_text_ids_are_kept(tmp_path: Path, capsys) -> None:
    (tmp_path / "bars.csv").write_text(GOOD)
    ms = (T0 + 2 * MINUTE) // 10**6
    (tmp_path / "s.csv").write_text(
        SIG_HEADER + ",source_id,qty\n"
        f"{ms},AAPL,buy,entry,kevin-4411,10\n"
        f"2020-01-02T14:35:00Z,AAPL,sell,exit,0b9e-uuid,\n"
        f"2020-01-02T14:36:00Z,AAPL,buy,entry,kevin-4411,10\n"
    )
    code, out = _json_run(
        tmp_path, capsys, "--data", "bars.csv", "--signals", str(tmp_path / "s.csv"),
        "--risk", "risk.new_signals_only=true",
    )  # fmt: skip
    assert code == 0
    assert out["verdicts_by_reason"] == {"STALE_SIGNAL": 1}
    con = duckdb.connect(str(tmp_path / "j" / "journal.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT ts, source_id, source_ref, approved FROM verdicts ORDER BY ts"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        (T0 + 2 * MINUTE, 0, "kevin-4411", True),
        (T0 + 5 * MINUTE, 1, "0b9e-uuid", True),
        (T0 + 6 * MINUTE, 0, "kevin-4411", False),
    ]


def test_cli_low_order_share_fails_check_and_is_in_json(tmp_path: Path, capsys) -> None:
    (tmp_path / "bars.csv").write_text(GOOD)
    lines = [f"2020-01-02T14:{31 + i}:00Z,AAPL,buy,entry" for i in range(4)]
    (tmp_path / "s.csv").write_text(SIG_HEADER + "\n" + "\n".join(lines) + "\n")
    code = main(
        ["backtest", "--data", "bars.csv", "--signals", str(tmp_path / "s.csv"), "--json",
         "--check", "--journal", str(tmp_path / "j")]
    )  # fmt: skip
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 1
    assert out["findings"] == ["LOW_ORDER_SHARE"]
    assert out["order_share"] == {"external": {"signals": 4, "orders": 1, "share": 0.25}}
    assert out["min_order_share"] == 0.5
    assert captured.err == "backstop: check failed: LOW_ORDER_SHARE\n"
    # the profile decides the threshold: at 0.2 the same run passes
    code = main(
        ["backtest", "--data", "bars.csv", "--signals", str(tmp_path / "s.csv"), "--json",
         "--check", "--risk", "checks.min_order_share=0.2", "--journal", str(tmp_path / "k")]
    )  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["findings"] == []


def test_cli_warnings_are_listed_in_json(tmp_path: Path, capsys) -> None:
    (tmp_path / "bars.csv").write_text(GOOD)
    code, out = _json_run(
        tmp_path, capsys, "--data", "bars.csv", "--param", "fast=3", "--param", "slow=8",
        "--set", "commission=percent", "--set", "commission_rate=0.02",
        "--profile", "equity-runner",
    )  # fmt: skip
    assert code == 0
    assert out["warnings"][0] == (
        "commission_rate 0.02 with commission=percent is 2.00% of notional per fill "
        "(the rate is a fraction: 0.002 = 0.2%)"
    )
    assert out["warnings"][1].endswith(
        "entries carry their own qty, which the pipeline uses instead of the profile's sizer "
        "(sizer.kind=pct_equity, sizer.pct_equity=0.1): drop qty from the strategy to size by "
        "the profile"
    )


# --- Python API ----------------------------------------------------------------------------


def _intents(**columns: Any) -> pl.DataFrame:
    base = {"ts": [T0 + 2 * MINUTE], "symbol": ["AAPL"], "side": [1], "intent": [0]}
    return pl.DataFrame({**base, **columns})


def _none_strategy(bars: pl.DataFrame) -> None:
    return None


def _list_strategy(bars: pl.DataFrame) -> list[int]:
    return [1, 2]


def _needs_n(bars: pl.DataFrame, n: int) -> pl.DataFrame:
    return bars.head(0)


def _every(bars: pl.DataFrame, n: int = 5, qty: float = 1.0) -> pd.DataFrame:
    rows = bars.with_row_index("bar").filter(pl.col("bar") % n == 0)
    out = rows.select("ts", "symbol", side=pl.lit(1), intent=pl.lit(0), qty=pl.lit(qty))
    return out.to_pandas()


API_CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "intents-qty-text",
        lambda: run_backtest(bars_frame(), _intents(qty=["abc"])),
        ConfigError,
        r"^qty: intent row 0: 'abc' is not a Float64 \(1 rows\)$",
    ),
    (
        "intents-price-list",
        lambda: run_backtest(bars_frame(), _intents(price=[[1.0]])),
        ConfigError,
        r"^price: has type List\(Float64\), expected Float64$",
    ),
    (
        "intents-kind-word",
        lambda: run_backtest(bars_frame(), _intents(kind=["advisory"])),
        ConfigError,
        r"^kind: intent row 0: 'advisory' is not a Int8",
    ),
    (
        "intents-qty-inf",
        lambda: run_backtest(bars_frame(), _intents(qty=[float("inf")])),
        ConfigError,
        r"^qty: intent row 0: must be finite, got inf \(1 rows\)$",
    ),
    (
        "intents-conviction-500",
        lambda: run_backtest(bars_frame(), _intents(conviction=[500.0])),
        ConfigError,
        r"^conviction: intent row 0: must be in \[0, 100\], got 500\.0",
    ),
    (
        "intents-source-bool",
        lambda: run_backtest(bars_frame(), _intents(source_id=[True])),
        ConfigError,
        r"^source_id: has type Boolean, expected integer or text ids$",
    ),
    (
        "intents-source-fraction",
        lambda: run_backtest(bars_frame(), _intents(source_id=[1.5])),
        ConfigError,
        r"^source_id: intent row 0: not a whole id$",
    ),
    (
        "instruments-not-a-dict",
        lambda: run_backtest(bars_frame(), _intents(), instruments=["AAPL"]),
        ConfigError,
        r"^instruments: expected a dict of Instrument, got list$",
    ),
    (
        "instrument-not-an-instrument",
        lambda: run_backtest(bars_frame(), _intents(), instruments={"AAPL": 3}),
        ConfigError,
        r"^instruments\['AAPL'\]: expected an Instrument, got 3$",
    ),
    (
        "normalize-bars-list",
        lambda: normalize_bars([1, 2], "mine"),
        DataError,
        r"^mine: expected a polars or pandas DataFrame, got list$",
    ),
    (
        "stop-updates-none",
        lambda: stop_updates(None, "level"),
        ConfigError,
        r"^bars: expected bars \(a polars or pandas DataFrame\), got NoneType$",
    ),
    (
        "latest-intents-none",
        lambda: latest_intents(get_strategy("sma_cross"), None),
        DataError,
        r"^window: expected a polars or pandas DataFrame, got NoneType$",
    ),
    (
        "bars-none",
        lambda: Backtest(None),
        DataError,
        r"^bars: expected bars as a polars or pandas DataFrame or a path .* got NoneType$",
    ),
    ("bars-int", lambda: Backtest(7), DataError, r"^bars: .* got int$"),
    ("bars-list", lambda: Backtest([1, 2]), DataError, r"^bars: .* got int in a list$"),
    (
        "run-bars-none",
        lambda: run_backtest(None, _intents()),
        DataError,
        r"^bars: .* got NoneType$",
    ),
    (
        "bars-one-row",
        lambda: Backtest(bars_frame(1)),
        DataError,
        r"^bars: only 1 bar: a backtest needs at least 2",
    ),
    (
        "bars-pandas-naive-past-2262",
        lambda: Backtest(bars_frame().with_columns(ts=pl.from_epoch("ts")).to_pandas()),
        DataError,
        r"^bars:1, symbol AAPL, column ts: \+\d+-\d\d-\d\d \S+ is outside the int64-nanosecond",
    ),
    (
        "fast-float",
        lambda: Backtest(bars_frame(), fast=10.7),
        ConfigError,
        r"^fast: expected int, got 10\.7$",
    ),
    (
        "fast-bool",
        lambda: Backtest(bars_frame(), fast=True),
        ConfigError,
        r"^fast: expected int, got True$",
    ),
    (
        "fast-equals-slow",
        lambda: Backtest(bars_frame(), fast=20, slow=20),
        ConfigError,
        r"^fast: must be shorter than slow \(fast=20, slow=20\)",
    ),
    (
        "window-too-long",
        lambda: Backtest(bars_frame(), fast=5, slow=45),
        ConfigError,
        r"^slow: 45 needs at least 46 bars of a symbol to signal, but the longest symbol has 40",
    ),
    (
        "strategy-number",
        lambda: Backtest(bars_frame(), 42),
        ConfigError,
        r"^strategy: expected a strategy name, a Strategy or a function of bars, got int$",
    ),
    (
        "fn-unknown-param",
        lambda: Backtest(bars_frame(), _every, m=3),
        ConfigError,
        r"^m: unknown parameter of strategy _every \(known: \['n', 'qty'\]\)$",
    ),
    (
        "fn-missing-param",
        lambda: Backtest(bars_frame(), _needs_n),
        ConfigError,
        r"^n: parameter of strategy _needs_n has no default",
    ),
    (
        "fn-float-for-int",
        lambda: Backtest(bars_frame(), _every, n=2.5),
        ConfigError,
        r"^n: expected int, got 2\.5$",
    ),
    (
        "fn-returns-none",
        lambda: Backtest(bars_frame(), _none_strategy).run(),
        ConfigError,
        r"^strategy _none_strategy: its return value: expected an intent table "
        r"\(a polars or pandas DataFrame\), got NoneType$",
    ),
    (
        "fn-returns-list",
        lambda: Backtest(bars_frame(), _list_strategy).run(),
        ConfigError,
        r"got list$",
    ),
    (
        "intents-none",
        lambda: run_backtest(bars_frame(), None),
        ConfigError,
        r"^intents: expected an intent table \(a polars or pandas DataFrame\), got NoneType$",
    ),
    (
        "intents-dict",
        lambda: run_backtest(bars_frame(), {"ts": [1]}),
        ConfigError,
        r"^intents: .* got dict$",
    ),
    (
        "intents-side-hold",
        lambda: run_backtest(bars_frame(), _intents(side=["hold"])),
        ConfigError,
        r"^side: intent row 0: must be 'buy' or 'sell'",
    ),
    (
        "intents-intent-open",
        lambda: run_backtest(bars_frame(), _intents(intent=["open"])),
        ConfigError,
        r"^intent: intent row 0: must be 'entry' or 'exit'",
    ),
    (
        "intents-naive-datetime",
        lambda: run_backtest(bars_frame(), _intents(ts=pl.Series([T0]).cast(pl.Datetime("us")))),
        DataError,
        r"^intents, column ts: timestamps have no time zone: give them one \(polars: "
        r"\.dt\.replace_time_zone\(.UTC.\); pandas: \.dt\.tz_localize",
    ),
    (
        "intents-ts-words",
        lambda: run_backtest(bars_frame(), _intents(ts=["soon"])),
        DataError,
        r"^intents:0, symbol AAPL, column ts: 'soon' is not an ISO-8601 timestamp",
    ),
    (
        "intents-negative-id",
        lambda: run_backtest(bars_frame(), _intents(source_id=[-5])),
        ConfigError,
        r"^source_id: intent row 0: must be >= 0",
    ),
    (
        "intents-missing-side",
        lambda: run_backtest(bars_frame(), _intents().drop("side")),
        ConfigError,
        r"^side: intent table lacks this required column$",
    ),
    (
        "config-wrong-type",
        lambda: run_backtest(bars_frame(), _intents(), "fast"),
        ConfigError,
        r"^config: expected a BacktestConfig, got str$",
    ),
    (
        "profile-wrong-type",
        lambda: run_backtest(bars_frame(), _intents(), profile=3),
        ConfigError,
        r"^profile: expected a RiskProfile",
    ),
    (
        "profile-unknown",
        lambda: Backtest(bars_frame(), fast=3, slow=8, profile="nope"),
        ConfigError,
        r"^profile: unknown preset 'nope'",
    ),
    (
        "percent-as-percentage",
        lambda: BacktestConfig(commission="percent", commission_rate=0.2),
        ConfigError,
        r"^commission_rate: 0\.2 with commission=percent would be 20% of notional",
    ),
    (
        "rate-bool",
        lambda: BacktestConfig(commission_rate=True),
        ConfigError,
        r"^commission_rate: must be a finite number >= 0, got True$",
    ),
    (
        "participation-text",
        lambda: BacktestConfig(max_participation="0.5"),
        ConfigError,
        r"^max_participation: must be in \[0, 1\]",
    ),
    (
        "profile-share",
        lambda: RiskProfile.from_mapping({"checks": {"min_order_share": -0.1}}),
        ConfigError,
        r"^checks\.min_order_share: must be in \[0, 1\], got -0\.1$",
    ),
    (
        "text-ids-with-cursor",
        lambda: run_backtest(
            bars_frame(),
            _intents(source_id=["a-1"]),
            profile=RiskProfile().with_settings({"risk.source_cursor": 3}),
        ),
        ConfigError,
        r"^risk\.source_cursor: applies to numeric source ids",
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "error", "match"), API_CASES, ids=[c[0] for c in API_CASES]
)
def test_python_api_refuses_precisely(
    name: str, call: Callable[[], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def _result_key(result: Any) -> tuple:
    s = result.summary()
    return tuple(s[k] for k in KEYS), result.verdicts.select("ts", "approved", "qty").rows()


def test_intents_as_pandas_words_and_microsecond_datetimes_equal_the_plain_table() -> None:
    bars = bars_frame()
    plain = pl.DataFrame(
        {
            "ts": [T0 + 2 * MINUTE, T0 + 9 * MINUTE],
            "symbol": ["AAPL", "AAPL"],
            "side": [1, -1],
            "intent": [0, 1],
            "qty": [5.0, None],
        }
    )
    friendly = pd.DataFrame(
        {
            "ts": pd.to_datetime(plain["ts"].to_list(), utc=True).astype("datetime64[us, UTC]"),
            "symbol": ["AAPL", "AAPL"],
            "side": ["buy", "sell"],
            "intent": ["entry", "exit"],
            "qty": [5.0, None],
        }
    )
    iso = plain.with_columns(ts=pl.Series(["2020-01-02T14:32:00Z", "2020-01-02T09:39:00-05:00"]))
    expected = _result_key(run_backtest(bars, plain))
    assert expected[0][2] == 1  # one round trip, entered at bar 2 and left at bar 9
    assert _result_key(run_backtest(bars, friendly)) == expected
    assert _result_key(run_backtest(bars, iso)) == expected


def test_plain_function_strategy_matches_its_intent_table() -> None:
    bars = bars_frame()
    result = Backtest(bars, _every, n=7).run()
    table = _every(bars, n=7)
    direct = run_backtest(bars, table)
    assert result.strategy_name == "_every" and result.params == {"n": 7, "qty": 1.0}
    assert result.summary()["signals"] == 6
    assert _result_key(result) == _result_key(direct)


def test_intents_in_milliseconds_are_warned_about() -> None:
    bars = bars_frame()
    ms = _intents(
        ts=[T0 // 10**6, (T0 + MINUTE) // 10**6], symbol=["AAPL"] * 2, side=[1, 1], intent=[0, 0]
    )
    warnings = run_backtest(bars, ms).summary()["warnings"]
    assert warnings == [
        "2 of 2 intents are stamped before the first bar and are all decided on it "
        "(integer intent ts are nanoseconds since the epoch, UTC)"
    ]


def test_symbols_shorter_than_the_window_are_warned_about() -> None:
    short = bars_frame(10).with_columns(symbol=pl.lit("MSFT"))
    bars = pl.concat([bars_frame(), short])
    result = Backtest(bars, fast=3, slow=20).run()
    assert result.summary()["warnings"] == [
        "1 symbols have fewer than the 21 bars slow=20 needs and cannot signal: MSFT"
    ]


def test_text_source_ids_are_numbered_per_strategy_and_kept_by_both_drivers() -> None:
    from backstop.runners.stepwise import run_event_driven

    intents = pl.DataFrame(
        {
            "ts": [T0 + k * MINUTE for k in (2, 3, 4, 5)],
            "symbol": ["AAPL"] * 4,
            "side": ["buy", "sell", "buy", "sell"],
            "intent": ["entry", "exit", "entry", "exit"],
            "qty": [1.0, None, 1.0, None],
            "strategy_id": ["a", "a", "b", "a"],
            "source_id": ["x-9", "y-1", "x-9", "x-9"],
        }
    )
    profile = RiskProfile().with_settings({"risk.new_signals_only": True})
    expected = [
        ("a", 0, "x-9", True),
        ("a", 1, "y-1", True),
        ("b", 0, "x-9", True),  # another strategy's numbering
        ("a", 0, "x-9", False),  # a repeat: stale
    ]
    for run in (run_backtest, run_event_driven):
        result = run(bars_frame(), intents, profile=profile)
        rows = result.verdicts.select("strategy_id", "source_id", "source_ref", "approved").rows()
        assert rows == expected, run.__name__
        assert result.verdicts.get_column("reason_codes").to_list()[3] == ["STALE_SIGNAL"]


def test_pandas_windows_give_the_same_live_signals_and_stop_updates() -> None:
    bars = bars_frame(200).with_columns(level=pl.col("low") - 1)
    sma = get_strategy("sma_cross")
    params = {"fast": 3, "slow": 8}
    window = bars.head(55)  # ends on a cross (bar 54): the live signal is not empty
    live = latest_intents(sma, window.drop("level"), params)
    assert live.height == 1
    assert latest_intents(sma, window.drop("level").to_pandas(), params).equals(live)
    assert stop_updates(bars.to_pandas(), "level").equals(stop_updates(bars, "level"))


def test_a_byte_order_mark_is_no_part_of_a_column_name(tmp_path: Path, capsys) -> None:
    (tmp_path / "bars.csv").write_text(GOOD)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    body = SIG_HEADER + "\n2020-01-02T14:31:00Z,AAPL,buy,entry\n"
    (tmp_path / "s.csv").write_text(body)
    (tmp_path / "sbom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    _, plain = _json_run(tmp_path, capsys, "--data", "bars.csv", "--signals", "s.csv")
    _, bom = _json_run(tmp_path, capsys, "--data", "bom.csv", "--signals", "sbom.csv")
    assert plain["signals"] == 1 and plain["orders"] == 1
    assert {k: bom[k] for k in KEYS} == {k: plain[k] for k in KEYS}


def test_cli_naive_bars_with_data_tz_equal_the_same_bars_with_offsets(
    tmp_path: Path, capsys
) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    def local(line: str) -> str:
        ts, rest = line.split(",", 1)
        wall = datetime.fromtimestamp(int(ts) / 1e9, UTC).astimezone(ZoneInfo("America/New_York"))
        return f"{wall.replace(tzinfo=None).isoformat()},{rest}"

    lines = bar_lines(200)
    (tmp_path / "ns.csv").write_text(csv_text(lines))
    (tmp_path / "naive.csv").write_text(csv_text([local(line) for line in lines]))
    args = ("--param", "fast=3", "--param", "slow=8")
    _, ns = _json_run(tmp_path, capsys, "--data", "ns.csv", *args)
    code, naive = _json_run(
        tmp_path, capsys, "--data", "naive.csv", "--data-tz", "America/New_York", *args
    )
    assert code == 0 and ns["round_trips"] > 0
    assert {k: naive[k] for k in KEYS} == {k: ns[k] for k in KEYS}
    assert naive["timezone"] == "America/New_York (given: --tz; the times have no zone)"
    assert ns["timezone"] == "UTC (the times carry their zone)"
    code, assumed = _json_run(tmp_path, capsys, "--data", "naive.csv", *args)
    assert code == 0 and assumed["timezone"] == (
        "UTC (assumed: the times have no zone; no exchange known for AAPL; set --tz)"
    )


def test_equity_below_zero_is_warned_about_with_its_low_point() -> None:
    config = BacktestConfig(initial_cash=1_000.0, commission="percent", commission_rate=0.03)
    result = Backtest(bars_frame(200), fast=3, slow=8, config=config).run()
    equity = result.equity_ns
    low = equity.get_column("equity").min()
    at = equity.filter(pl.col("equity") == low).get_column("ts")[0]
    assert low < 0
    minutes = (at - T0) // MINUTE
    assert result.summary()["warnings"][1:] == [
        f"equity went below zero: lowest {low:,.2f} at 2020-01-02T"
        f"{14 + (30 + minutes) // 60:02d}:{(30 + minutes) % 60:02d}:00Z "
        "(no account could carry that: check commission, sizing and initial_cash)"
    ]
    clean = Backtest(bars_frame(200), fast=3, slow=8).run()
    assert clean.summary()["warnings"] == []


def test_normalize_bars_takes_pandas_like_polars() -> None:
    frame = bars_frame()
    assert normalize_bars(frame.to_pandas(), "x").equals(normalize_bars(frame, "x"))
    assert normalize_bars(frame.lazy(), "x").equals(normalize_bars(frame, "x"))
