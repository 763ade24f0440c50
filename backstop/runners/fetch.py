"""``backstop data fetch``: a broker's historical bars into a Parquet file and/or a DuckDB cache.

A broker plugs in through one function, ``(symbols, timeframe, start_ns, end_ns) -> frame``
(``BarsFetch``), which returns bars in ``BAR_SCHEMA`` with ``start_ns <= ts <= end_ns``;
``open_broker`` picks it by name. ``alpaca`` reads Alpaca with the keys in
``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY``; ``ibkr`` reads IB's historical TRADES bars from a
TWS or IB Gateway through the IBKR adapter (contracts checked against the instrument
registry); ``alpaca-fake`` and ``ibkr-fake`` start the loopback fakes on the bundled sample
(no keys, no gateway needed). What comes back is validated as any bar input is, so
``backstop backtest --data FILE`` reads the Parquet file as it is.

The cache is the table ``fetched_bars`` (symbol, timeframe, ts, open, high, low, close,
volume) keyed by (symbol, timeframe, ts): fetching a range again, or an overlapping one,
replaces those bars instead of adding copies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from backstop.data import load_bars_frame
from backstop.errors import BackstopError, ConfigError, check

BarsFetch = Callable[[list[str], str, int, int], pl.DataFrame]
BROKERS = ("alpaca", "alpaca-fake", "ibkr", "ibkr-fake")
MAX_BARS = 5_000_000  # one fetch's bound: Alpaca's pages are followed up to this many bars
CACHE_TABLE = "fetched_bars"
_TIMEFRAME = re.compile(r"^[1-9]\d*(Min|Hour|Day|Week)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch brought: the bars (``BAR_SCHEMA``), each symbol's count (0: the broker
    had none in the range), and where they were written."""

    broker: str
    timeframe: str
    start_ns: int
    end_ns: int
    bars: pl.DataFrame
    counts: dict[str, int]
    out: list[Path] = field(default_factory=list)
    cache: Path | None = None
    cache_new: int = 0
    cache_total: int = 0

    @property
    def empty(self) -> list[str]:
        """Symbols the broker answered with no bars at all."""
        return [s for s, n in self.counts.items() if n == 0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "timeframe": self.timeframe,
            "start": iso(self.start_ns),
            "end": iso(self.end_ns),
            "bars": self.bars.height,
            "counts": dict(self.counts),
            "empty": self.empty,
            "out": [str(p) for p in self.out],
            "cache": None if self.cache is None else str(self.cache),
            "cache_new": self.cache_new,
            "cache_total": self.cache_total,
        }


def iso(ns: int) -> str:
    """ns UTC as RFC 3339 text (to the microsecond)."""
    when = _EPOCH + dt.timedelta(microseconds=ns // 1000)
    return when.isoformat().replace("+00:00", "Z")


def parse_when(value: str | dt.datetime | dt.date, key: str, *, end: bool = False) -> int:
    """An ISO date or datetime (naive: UTC) as ns UTC. A date alone as an ``end`` covers that
    whole day (up to its last microsecond); as a start, it begins at midnight UTC."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if _DATE_ONLY.match(text):
                value = dt.date.fromisoformat(text)
            else:
                value = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ConfigError(key, f"{value!r} is not an ISO date or datetime") from None
    if not isinstance(value, dt.datetime):
        if not isinstance(value, dt.date):
            raise ConfigError(key, f"expected an ISO date or datetime, got {value!r}")
        day = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        value = day + dt.timedelta(days=1, microseconds=-1) if end else day
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def parse_symbols(value: str | list[str] | tuple[str, ...], key: str = "symbols") -> list[str]:
    """Comma-separated text or a list -> the symbols, first occurrence order, no blanks."""
    items = value.split(",") if isinstance(value, str) else list(value)
    symbols = list(dict.fromkeys(s.strip() for s in items if s and s.strip()))
    check(bool(symbols), ConfigError(key, "give at least one symbol, e.g. AAPL,MSFT"))
    return symbols


def check_broker(broker: str) -> None:
    """Refuse a broker ``open_broker`` cannot open."""
    check(
        broker in BROKERS,
        ConfigError("--broker", f"unknown broker {broker!r}; choose one of {', '.join(BROKERS)}"),
    )


@dataclass(frozen=True, slots=True)
class Gateway:
    """Where an IB gateway listens for ``ibkr`` (TWS paper 7497, IB Gateway paper 4002), and
    the API client id the fetch connects as (one no running runner uses)."""

    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 90


@contextlib.contextmanager
def open_broker(broker: str, gateway: Gateway | None = None) -> Iterator[BarsFetch]:
    """The named broker's fetch function, open for the ``with`` block."""
    check_broker(broker)
    if broker in ("ibkr", "ibkr-fake"):
        with _ibkr(broker, gateway or Gateway()) as fetch:
            yield fetch
        return
    from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys
    from backstop.brokers.alpaca.history import bars_fetcher

    if broker == "alpaca":
        yield bars_fetcher(AlpacaConfig(), _alpaca_keys(), limit=MAX_BARS + 1)
        return
    from backstop.data import sample_bars
    from backstop.testing.fake_alpaca import FakeAlpaca

    tape = sample_bars()
    # every bar of the tape already delivered: the fake serves bars up to its clock only
    with FakeAlpaca(tape, start=tape["ts"].n_unique()) as fake:
        config = AlpacaConfig(rest_url=fake.url, data_url=fake.url, retry_wait_s=0)
        yield bars_fetcher(config, AlpacaKeys(fake.key_id, fake.secret_key), limit=MAX_BARS + 1)


@contextlib.contextmanager
def _ibkr(broker: str, gateway: Gateway) -> Iterator[BarsFetch]:
    """IB's historical bars through the IBKR adapter (its contracts checked against the
    instrument registry first); ``ibkr-fake`` starts the loopback fake gateway on the
    bundled sample, every bar already delivered."""
    from backstop.brokers.ibkr import IBKRBroker, IBKRConfig

    with contextlib.ExitStack() as stack:
        if broker == "ibkr-fake":
            from backstop.data import sample_bars
            from backstop.testing.fake_ibkr import FakeIBKR

            tape = sample_bars()
            fake = stack.enter_context(FakeIBKR(tape, start=tape["ts"].n_unique()))
            config = IBKRConfig(
                host=fake.host, port=fake.port, client_id=gateway.client_id, max_requests_per_s=0
            )
        else:
            config = IBKRConfig(host=gateway.host, port=gateway.port, client_id=gateway.client_id)

        def fetch(symbols: list[str], timeframe: str, start_ns: int, end_ns: int) -> pl.DataFrame:
            with IBKRBroker(config, symbols=symbols) as ib:
                return ib.bars(symbols, timeframe, start_ns, end_ns)

        yield fetch


def _alpaca_keys() -> Any:
    """The keys from the environment; one error naming both variables when one is missing."""
    from backstop.brokers.alpaca.config import KEY_ID_VAR, SECRET_VAR, AlpacaKeys

    missing = [v for v in (KEY_ID_VAR, SECRET_VAR) if not os.environ.get(v, "").strip()]
    check(
        not missing,
        ConfigError(
            " and ".join(missing),
            f"not set in the environment: alpaca needs {KEY_ID_VAR} and {SECRET_VAR} "
            "(or use --broker alpaca-fake)",
        ),
    )
    return AlpacaKeys.from_env()


def fetch_bars(
    broker: str | BarsFetch,
    symbols: str | list[str],
    timeframe: str,
    start: str | dt.datetime | dt.date,
    end: str | dt.datetime | dt.date,
    *,
    out: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    force: bool = False,
    names: tuple[str, ...] = ("symbols", "timeframe", "start", "end", "out", "cache"),
    gateway: Gateway | None = None,
) -> FetchResult:
    """Fetch bars from ``broker`` (a name in ``BROKERS`` or a ``BarsFetch``) and write them
    to ``out`` (a .parquet file, or a folder: one ``SYMBOL_TIMEFRAME.parquet`` per symbol;
    an existing file only with ``force``) and/or the DuckDB ``cache``. ``names`` are the
    keys errors name (the CLI passes its flags); ``gateway`` is where ``ibkr`` connects."""
    k_sym, k_tf, k_start, k_end, k_out, k_cache = names
    if isinstance(broker, str):
        check_broker(broker)
    syms = parse_symbols(symbols, k_sym)
    check(
        bool(_TIMEFRAME.match(timeframe)),
        ConfigError(k_tf, f"{timeframe!r} is not one of <n>Min, <n>Hour, <n>Day, <n>Week"),
    )
    start_ns = parse_when(start, k_start)
    end_ns = parse_when(end, k_end, end=True)
    check(
        start_ns <= end_ns,
        ConfigError(k_start, f"{iso(start_ns)} is after {k_end} {iso(end_ns)}"),
    )
    targets = _out_paths(Path(out), syms, timeframe, force, k_out) if out is not None else None
    if cache is not None:
        check(
            Path(cache).suffix in (".duckdb", ".db"),
            ConfigError(k_cache, f"{cache}: expected a .duckdb file"),
        )
    label = broker if isinstance(broker, str) else getattr(broker, "__name__", "fetch")
    with contextlib.ExitStack() as stack:
        fn = (
            stack.enter_context(open_broker(broker, gateway)) if isinstance(broker, str) else broker
        )
        raw = fn(syms, timeframe, start_ns, end_ns)
    bars = _checked(raw, syms, start_ns, end_ns, label)
    counts = dict(zip(syms, [bars.filter(pl.col("symbol") == s).height for s in syms], strict=True))
    check(
        bars.height > 0,
        BackstopError(
            f"{label}: no {timeframe} bars for {', '.join(syms)} between "
            f"{iso(start_ns)} and {iso(end_ns)}; nothing written"
        ),
    )
    written = _write_out(bars, targets) if targets is not None else []
    new = total = 0
    if cache is not None:
        new, total = write_cache(Path(cache), bars, timeframe)
    return FetchResult(
        label,
        timeframe,
        start_ns,
        end_ns,
        bars,
        counts,
        written,
        None if cache is None else Path(cache),
        new,
        total,
    )


def _checked(
    raw: pl.DataFrame, symbols: list[str], start_ns: int, end_ns: int, label: str
) -> pl.DataFrame:
    """The broker's answer validated as bar input, bounded and kept to what was asked."""
    check(
        raw.height <= MAX_BARS,
        BackstopError(
            f"{label}: more than {MAX_BARS:,} bars in one fetch; narrow --start/--end or "
            "fetch fewer symbols at a time"
        ),
    )
    if raw.height == 0:
        return raw
    bars = load_bars_frame(raw, f"{label} bars")
    stray = bars.filter(
        ~pl.col("symbol").is_in(symbols) | (pl.col("ts") < start_ns) | (pl.col("ts") > end_ns)
    )
    check(
        stray.height == 0,
        BackstopError(f"{label}: answered {stray.height} bars outside the symbols or range asked"),
    )
    return bars


def _out_paths(
    out: Path, symbols: list[str], timeframe: str, force: bool, key: str
) -> dict[str | None, Path]:
    """Where the bars go: {None: file} for a .parquet path, else one file per symbol in a
    folder. Every target is checked before anything is fetched."""
    if out.suffix.lower() in (".parquet", ".pq"):
        check(not out.is_dir(), ConfigError(key, f"{out} is a folder, not a .parquet file"))
        targets: dict[str | None, Path] = {None: out}
    else:
        check(
            not out.suffix or out.is_dir(),
            ConfigError(key, f"{out}: give a .parquet file or a folder"),
        )
        check(not out.is_file(), ConfigError(key, f"{out} is a file, not a folder"))
        targets = {s: out / f"{s}_{timeframe}.parquet" for s in symbols}
    for path in targets.values():
        check(
            force or not path.exists(),
            ConfigError(key, f"{path} exists; pass --force to replace it"),
        )
    return targets


def _write_out(bars: pl.DataFrame, targets: dict[str | None, Path]) -> list[Path]:
    """Write each target whole to a temporary name, then rename it into place."""
    written = []
    for symbol, path in targets.items():
        part = bars if symbol is None else bars.filter(pl.col("symbol") == symbol)
        if part.height == 0:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            part.write_parquet(partial)
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise BackstopError(f"{path}: not written ({exc.strerror or exc})") from None
        written.append(path)
    return written


def write_cache(path: Path, bars: pl.DataFrame, timeframe: str) -> tuple[int, int]:
    """Upsert ``bars`` into ``fetched_bars``; (bars new to the cache, bars it now holds)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
    except (duckdb.Error, OSError) as exc:
        raise BackstopError(
            f"{path}: cannot open the cache ({' '.join(str(exc).split())})"
        ) from None
    try:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {CACHE_TABLE} (symbol VARCHAR NOT NULL, "
            "timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL, open DOUBLE, high DOUBLE, "
            "low DOUBLE, close DOUBLE, volume DOUBLE, PRIMARY KEY (symbol, timeframe, ts))"
        ).fetchall()
        before = _count(con)
        con.register("_fetched", bars.to_arrow())
        con.execute(
            f"INSERT OR REPLACE INTO {CACHE_TABLE} SELECT symbol, ?, ts, open, high, low, "
            "close, volume FROM _fetched",
            [timeframe],
        ).fetchall()  # DuckDB answers the row count: read it, or the connection stays busy
        con.unregister("_fetched")
        after = _count(con)
        con.execute("CHECKPOINT")
    except duckdb.Error as exc:
        raise BackstopError(f"{path}: cache not written ({' '.join(str(exc).split())})") from None
    finally:
        con.close()
    return after - before, after


def _count(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute(f"SELECT count(*) FROM {CACHE_TABLE}").fetchall()
    return int(rows[0][0])
