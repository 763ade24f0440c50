"""``--instruments FILE``: a user's symbols with their sectors, ticks and lots on the CLI.

Seed 002's "30% sector" cap needs each symbol's sector; the bars are T, U and V on six
one-minute bars at 100 (then 97), the account 100,000. T's 250 shares hold 25,000 of tech,
so U fits 50 shares under a 30,000 cap.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from backstop.cli import main
from backstop.domain.instrument_file import read_instruments
from backstop.domain.instruments import Instrument
from backstop.errors import ConfigError, DataError

SIGNALS = (
    "ts,symbol,side,intent,qty\n"
    "2024-01-02T14:30:00Z,T,buy,entry,250\n"
    "2024-01-02T14:31:00Z,U,buy,entry,100\n"
    "2024-01-02T14:31:00Z,V,buy,entry,100\n"
)


def write_inputs(folder: Path) -> None:
    """bars.csv (T, U, V) and signals.csv in ``folder``."""
    minute = [(100, 101, 99, 100)] * 2 + [(100, 100, 97, 97)] + [(97, 98, 96, 97)] * 3
    lines = ["ts,symbol,open,high,low,close,volume"]
    for sym in ("T", "U", "V"):
        for i, (o, h, lo, c) in enumerate(minute):
            lines.append(f"2024-01-02T14:3{i}:00Z,{sym},{o},{h},{lo},{c},1000000")
    (folder / "bars.csv").write_text("\n".join(lines) + "\n")
    (folder / "signals.csv").write_text(SIGNALS)


def backtest(folder: Path, capsys, monkeypatch, *extra: str) -> tuple[int, str, str]:
    """``backstop backtest --json`` over the inputs in ``folder``: (exit code, out, err)."""
    monkeypatch.chdir(folder)
    args = ["backtest", "--json", "--signals", "signals.csv", "--data", "bars.csv"]
    code = main([*args, "--risk", "risk.max_sector_pct=0.30", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def journal_qty(folder: Path, out: str) -> list[tuple[str, float]]:
    con = duckdb.connect(str(folder / json.loads(out)["journal"]), read_only=True)
    try:
        return con.execute("SELECT symbol, qty FROM verdicts ORDER BY ts, symbol").fetchall()
    finally:
        con.close()


def test_a_csv_instrument_file_gives_the_sector_cap_its_sectors(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """seed 002 from the CLI: sectors from ``--instruments instruments.csv`` shrink U to the
    tech sector's room (50 shares); V, in energy, keeps its 100."""
    write_inputs(tmp_path)
    (tmp_path / "instruments.csv").write_text(
        "symbol,sector,tick,lot\nT,tech,0.01,1\nU,tech,,\nV,energy,0.01,\n"
    )
    code, out, err = backtest(tmp_path, capsys, monkeypatch, "--instruments", "instruments.csv")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["verdicts_by_reason"] == {"CAPPED_BY_SECTOR": 1, "SIZE_CAPPED": 1}
    assert summary["warnings"] == []
    assert journal_qty(tmp_path, out) == [("T", 250.0), ("U", 50.0), ("V", 100.0)]


def test_a_toml_instrument_file_sets_the_lot_the_shrink_rounds_to(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """seed 002: U trades in lots of 20, so the 50 shares of room round down to 40."""
    write_inputs(tmp_path)
    (tmp_path / "inst.toml").write_text(
        '[T]\nsector = "tech"\n\n[U]\nsector = "tech"\nlot = 20\n\n[V]\nsector = "energy"\n'
    )
    code, out, err = backtest(tmp_path, capsys, monkeypatch, "--instruments", "inst.toml")
    assert (code, err) == (0, "")
    assert journal_qty(tmp_path, out) == [("T", 250.0), ("U", 40.0), ("V", 100.0)]


def test_without_the_file_the_sector_cap_says_it_cannot_act(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """seed 002: the same run without ``--instruments`` knows no sector: U is not shrunk
    and the run says why."""
    write_inputs(tmp_path)
    code, out, _ = backtest(tmp_path, capsys, monkeypatch)
    assert code == 0
    assert journal_qty(tmp_path, out)[1] == ("U", 100.0)
    assert any("no symbol of the run has a sector" in w for w in json.loads(out)["warnings"])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "i.csv",
            "symbol,sectr\nT,tech\n",
            "i.csv:1: sectr: unknown column (known: symbol, sector, tick, lot, multiplier, "
            "currency, future)",
        ),
        (
            "i.csv",
            "symbol,sector\nT,tech\nU,tech\nT,energy\n",
            "i.csv:4, symbol T, column symbol: listed twice (first at line 2)",
        ),
        (
            "i.csv",
            "symbol,sector,tick\nT,tech,0.01\nU,tech,abc\n",
            "i.csv:3, symbol U, column tick: expected a finite number, got 'abc'",
        ),
        ("i.csv", "symbol,lot\nT,0\n", "i.csv:2, symbol T, column lot: must be > 0, got '0'"),
        (
            "i.csv",
            "symbol,future\nT,maybe\n",
            "i.csv:2, symbol T, column future: expected true or false, got 'maybe'",
        ),
        ("i.csv", "sector\ntech\n", "i.csv:1, column symbol: no symbol column"),
        ("i.toml", '[T]\nsectr = "tech"\n', "i.toml: T.sectr: unknown key"),
        ("i.toml", '[T]\ntick = "one"\n', "i.toml: T.tick: expected a finite number, got 'one'"),
        ("i.txt", "T,tech\n", "--instruments: expected a .csv or .toml file, got i.txt"),
    ],
)
def test_a_bad_instrument_file_is_one_line_naming_where(
    tmp_path: Path, capsys, monkeypatch, name: str, text: str, message: str
) -> None:
    """Unknown columns or keys, a symbol twice, a bad number: exit 2 and one line on stderr
    naming the file, the line (CSV) and the column or key."""
    write_inputs(tmp_path)
    (tmp_path / name).write_text(text)
    code, out, err = backtest(tmp_path, capsys, monkeypatch, "--instruments", name)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err, err


def test_the_reader_keeps_the_registry_spec_under_the_files_values(tmp_path: Path) -> None:
    """A value the file leaves out keeps the registry's (MES: 0.25 tick, x5, a future); a
    symbol nobody knows is generic (no tick grid) with the file's values."""
    (tmp_path / "i.csv").write_text("symbol,sector,multiplier\nMES,index,\nZZZ,misc,2.5\n")
    got = read_instruments(tmp_path / "i.csv")
    assert got == {
        "MES": Instrument("MES", 0.25, 1.0, 5.0, "USD", "index", True),
        "ZZZ": Instrument("ZZZ", 0.0, 1.0, 2.5, "USD", "misc", False),
    }
    with pytest.raises(DataError, match="no instrument rows"):
        (tmp_path / "e.csv").write_text("symbol,sector\n")
        read_instruments(tmp_path / "e.csv")
    with pytest.raises(ConfigError, match="no such file"):
        read_instruments(tmp_path / "none.csv")


def test_the_guardrail_sweep_refuses_an_instrument_file_it_would_not_use(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """``sweep --guardrails`` does not pass instruments to its incidents and backtest yet:
    the option is refused there in one line instead of being ignored."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "i.csv").write_text("symbol,sector\nT,tech\n")
    code = main(["sweep", "--guardrails", "--instruments", "i.csv", "--json"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == "backstop: error: --instruments: does not apply to --guardrails yet\n"
