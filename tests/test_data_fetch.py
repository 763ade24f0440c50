"""``backstop data fetch``: Alpaca's historical bars through alpaca-py and IB's through ib_async,
against the loopback fakes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from backstop import BackstopError, Backtest, ConfigError, sample_bars
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys
from backstop.brokers.alpaca.history import bars_fetcher
from backstop.cli import main
from backstop.runners import fetch as fetch_mod
from backstop.runners.fetch import fetch_bars, parse_when
from backstop.testing.fake_alpaca import FakeAlpaca

# 2 and 3 Jan 2020 (UTC) of the bundled sample, which trades round the clock from 14:30 on
# 2 Jan: 570 + 1,440 = 2,010 one-minute bars per symbol
START, END = "2020-01-02", "2020-01-03"
LO, HI = parse_when(START, "start"), parse_when(END, "end", end=True)


def _tape(symbols: list[str], lo: int = LO, hi: int = HI) -> pl.DataFrame:
    bars = sample_bars()
    keep = pl.col("symbol").is_in(symbols) & pl.col("ts").is_between(lo, hi)
    return bars.filter(keep).sort(["ts", "symbol"])


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["data", "fetch", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_fetched_bars_are_the_tapes_bars_exactly(tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    result = fetch_bars("alpaca-fake", "SYN001,SYN000", "1Min", START, END, out=out)
    tape = _tape(["SYN000", "SYN001"])
    assert tape.height == 4020
    assert result.counts == {"SYN001": 2010, "SYN000": 2010}
    assert result.empty == []
    assert result.bars.equals(tape)
    assert pl.read_parquet(out).equals(tape)  # the file holds BAR_SCHEMA as it is
    assert result.out == [out]


def test_pages_are_followed_to_the_end(tmp_path: Path) -> None:
    tape = sample_bars()
    with FakeAlpaca(tape, start=tape["ts"].n_unique()) as fake:
        config = AlpacaConfig(rest_url=fake.url, data_url=fake.url, retry_wait_s=0)
        fn = bars_fetcher(config, AlpacaKeys(fake.key_id, fake.secret_key), limit=100_000)
        result = fetch_bars(fn, ["SYN000", "SYN001", "SYN002"], "1Min", "2020-01-01", "2020-12-31")
        pages = [r for r in fake.requests if r[1] == "/v2/stocks/bars"]
    assert result.bars.height == 60_000
    assert result.bars.equals(tape.sort(["ts", "symbol"]))
    assert len(pages) == 6 and {status for _, _, status in pages} == {200}  # 10,000 a page


def test_a_fetch_larger_than_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "MAX_BARS", 3000)
    with pytest.raises(BackstopError, match=r"more than 3,000 bars in one fetch; narrow"):
        fetch_bars("alpaca-fake", "SYN000,SYN001", "1Min", START, END)


def test_cli_writes_a_file_per_symbol_and_states_an_empty_symbol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bars"
    code, out, err = _cli(
        capsys, "--broker", "alpaca-fake", "--symbols", "SYN002,NOPE", "--timeframe", "1Min",
        "--start", START, "--end", END, "--out", str(folder),
    )  # fmt: skip
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        "fetched 2,010 1Min bars of 2 symbol(s) from alpaca-fake, "
        "2020-01-02T00:00:00Z .. 2020-01-03T23:59:59.999999Z"
    )
    assert lines[1].split() == ["SYN002", "2,010", "bars", "2020-01-02T14:30:00Z", "..",
                                "2020-01-03T23:59:00Z"]  # fmt: skip
    assert lines[2].split() == ["NOPE", "no", "bars:", "alpaca-fake", "has", "none", "in",
                                "this", "range"]  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["SYN002_1Min.parquet"]
    assert pl.read_parquet(folder / "SYN002_1Min.parquet").equals(_tape(["SYN002"]))


def test_fetching_twice_and_overlapping_keeps_one_row_per_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache.duckdb"
    args = ["--broker", "alpaca-fake", "--symbols", "SYN000", "--timeframe", "1Min",
            "--cache", str(cache), "--json"]  # fmt: skip
    runs = []
    for start, end in ((START, END), (START, END), ("2020-01-03", "2020-01-06")):
        code, out, _ = _cli(capsys, *args, "--start", start, "--end", end)
        assert code == 0
        runs.append(json.loads(out))
    assert [(r["bars"], r["cache_new"], r["cache_total"]) for r in runs] == [
        (2010, 2010, 2010),
        (2010, 0, 2010),
        (4 * 1440, 3 * 1440, 2010 + 3 * 1440),  # 3 Jan again, then 4, 5 and 6 Jan: new
    ]
    con = duckdb.connect(str(cache), read_only=True)
    try:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (symbol, timeframe, ts)) FROM fetched_bars"
        ).fetchall()[0]
        cached = pl.from_arrow(
            con.sql("SELECT ts, symbol, open, high, low, close, volume FROM fetched_bars").arrow()
        )
    finally:
        con.close()
    assert (total, distinct) == (6330, 6330)
    tape = _tape(["SYN000"], LO, parse_when("2020-01-06", "end", end=True))
    assert cached.sort("ts").equals(tape)


def test_the_fetched_file_backtests_as_the_bars_in_memory(tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    fetch_bars("alpaca-fake", ["SYN000", "SYN001"], "1Min", START, "2020-01-10", out=out)
    in_memory = _tape(["SYN000", "SYN001"], LO, parse_when("2020-01-10", "end", end=True))
    from_file = Backtest(str(out), "sma_cross", fast=10, slow=30).run()
    direct = Backtest(in_memory, "sma_cross", fast=10, slow=30).run()
    assert from_file.run_id == direct.run_id
    assert from_file.stats["trade_count"] == direct.stats["trade_count"] > 0
    assert from_file.trades.equals(direct.trades)
    assert from_file.stats == direct.stats


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--broker", "ibkr", "--port", "1"],
            "IB gateway 127.0.0.1:1 (client id 90) not reachable: connection refused",
        ),
        (["--broker", "kraken"], "--broker: unknown broker 'kraken'; choose one of alpaca"),
        (
            ["--broker", "alpaca-fake", "--start", "2020-01-04"],
            "--start: 2020-01-04T00:00:00Z is after --end 2020-01-03T23:59:59.999999Z",
        ),
        (["--broker", "alpaca-fake", "--start", "Jan 2"], "--start: 'Jan 2' is not an ISO date"),
        (["--broker", "alpaca-fake", "--timeframe", "1m"], "--timeframe: '1m' is not one of"),
        (["--broker", "alpaca-fake", "--symbols", " , "], "--symbols: give at least one symbol"),
        (
            ["--broker", "alpaca-fake", "--symbols", "NOPE"],
            "alpaca-fake: no 1Min bars for NOPE between 2020-01-02T00:00:00Z and "
            "2020-01-03T23:59:59.999999Z; nothing written",
        ),
    ],
)
def test_refusals_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = {"--symbols": "SYN000", "--timeframe": "1Min", "--start": START, "--end": END}
    given = dict(zip(args[::2], args[1::2], strict=True))
    flat = [x for k, v in (base | given).items() for x in (k, v)]
    out_file = tmp_path / "x.parquet"
    code, out, err = _cli(capsys, *flat, "--out", str(out_file))
    assert code == 2 and out == ""
    assert err.startswith(f"backstop: error: {message}") and err.count("\n") == 1
    assert not out_file.exists()


def test_missing_keys_name_the_variables_and_never_echo_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "PKSECRETISH123")
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    code, _, err = _cli(
        capsys, "--broker", "alpaca", "--symbols", "AAPL", "--timeframe", "1Day",
        "--start", START, "--end", END, "--out", str(tmp_path / "x.parquet"),
    )  # fmt: skip
    assert code == 2
    assert err == (
        "backstop: error: APCA_API_SECRET_KEY: not set in the environment: alpaca needs "
        "APCA_API_KEY_ID and APCA_API_SECRET_KEY (or use --broker alpaca-fake)\n"
    )
    monkeypatch.delenv("APCA_API_KEY_ID")
    with pytest.raises(ConfigError, match=r"^APCA_API_KEY_ID and APCA_API_SECRET_KEY: not set"):
        fetch_bars("alpaca", "AAPL", "1Day", START, END)


def test_an_existing_out_file_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    out.write_bytes(b"keep me")
    with pytest.raises(ConfigError, match=r"bars.parquet exists; pass --force"):
        fetch_bars("alpaca-fake", "SYN000", "1Min", START, END, out=out)
    assert out.read_bytes() == b"keep me"
    fetch_bars("alpaca-fake", "SYN000", "1Min", START, END, out=out, force=True)
    assert pl.read_parquet(out).equals(_tape(["SYN000"]))


def test_the_cli_needs_somewhere_to_write(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(
        capsys, "--broker", "alpaca-fake", "--symbols", "SYN000", "--timeframe", "1Min",
        "--start", START, "--end", END,
    )  # fmt: skip
    assert (code, err) == (2, "backstop: error: --out: give --out FILE.parquet|DIR and/or "
                               "--cache FILE.duckdb\n")  # fmt: skip


def test_ibkr_fake_bars_are_the_tapes_bars_exactly(tmp_path: Path) -> None:
    """IB's historical bars through the real ib_async client and the IBKR adapter against
    the loopback fake gateway: the same bars as the tape, into the same cache table."""
    out = tmp_path / "ib.parquet"
    cache = tmp_path / "cache.duckdb"
    result = fetch_bars("ibkr-fake", "SYN001,SYN000", "1Min", START, END, out=out, cache=cache)
    tape = _tape(["SYN000", "SYN001"])
    assert result.counts == {"SYN001": 2010, "SYN000": 2010}
    assert result.bars.equals(tape)
    assert pl.read_parquet(out).equals(tape)
    assert (result.cache_new, result.cache_total) == (4020, 4020)


def test_cli_fetches_from_the_ibkr_fake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ib.parquet"
    args = ["--broker", "ibkr-fake", "--symbols", "SYN002", "--timeframe", "1Min"]
    code, text, err = _cli(capsys, *args, "--start", START, "--end", END, "--out", str(out))
    assert (code, err) == (0, "")
    assert text.splitlines()[0] == (
        "fetched 2,010 1Min bars of 1 symbol(s) from ibkr-fake, "
        "2020-01-02T00:00:00Z .. 2020-01-03T23:59:59.999999Z"
    )
    assert pl.read_parquet(out).equals(_tape(["SYN002"]))


def test_a_bar_size_ib_refuses_is_its_reason_in_one_line_not_an_empty_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IB answers a historical request it will not serve with an error (162 here: the fake
    serves 1 min and 1 day bars); that is the error, never "no bars" nor ib_async's log."""
    out = tmp_path / "x.parquet"
    args = ["--broker", "ibkr-fake", "--symbols", "SYN000", "--timeframe", "1Hour"]
    code, text, err = _cli(capsys, *args, "--start", START, "--end", END, "--out", str(out))
    assert (code, text) == (2, "")
    assert err.startswith("backstop: error: bars SYN000 1Hour: IB refused the request (error 162")
    assert "bar size '1 hour' is not served" in err and err.count("\n") == 1
    assert not out.exists()
