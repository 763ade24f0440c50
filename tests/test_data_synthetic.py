"""Synthetic GBM bars follow the workload recipe, deterministically; the bundled sample is one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.data import (
    BAR_SCHEMA,
    SAMPLE_BARS_PATH,
    WORKLOAD_SIZES,
    gbm_bars,
    load_bars,
    sample_bars,
    validate_bars,
    write_workload,
)
from backstop.data.sample.make_sample import make_sample
from backstop.errors import DataError

T0 = 1_577_975_400_000_000_000  # 2020-01-02 09:30 America/New_York in ns UTC
MINUTE = 60_000_000_000


def test_same_seed_gives_the_same_frame() -> None:
    first = gbm_bars(300, 3, seed=11)
    second = gbm_bars(300, 3, seed=11)
    assert first.equals(second)
    assert not first.equals(gbm_bars(300, 3, seed=12))


def test_schema_order_and_timestamps() -> None:
    bars = gbm_bars(4, 2)
    assert bars.schema == BAR_SCHEMA
    assert bars.select("ts", "symbol").rows() == [
        (T0 + i * MINUTE, symbol) for i in range(4) for symbol in ("SYN000", "SYN001")
    ]


def test_start_and_zone_are_honoured() -> None:
    bars = gbm_bars(2, 1, start="2021-07-01 10:00", tz="Europe/London")
    # 10:00 BST is 09:00 UTC.
    assert bars["ts"].to_list() == [1_625_130_000_000_000_000, 1_625_130_060_000_000_000]


def test_listed_symbols_come_out_in_name_order_and_keep_their_draws() -> None:
    bars = gbm_bars(50, ["ZZZ", "AAA"], seed=5)
    assert bars["symbol"].to_list()[:2] == ["AAA", "ZZZ"]
    zzz_alone = gbm_bars(50, ["ZZZ"], seed=5)
    assert bars.filter(pl.col("symbol") == "ZZZ").equals(zzz_alone)


def test_first_symbols_do_not_depend_on_how_many_follow() -> None:
    three = gbm_bars(200, 3, seed=2)
    one = gbm_bars(200, 1, seed=2)
    assert three.filter(pl.col("symbol") == "SYN000").equals(one)


def test_per_bar_sigma_and_zero_drift() -> None:
    close = gbm_bars(100_000, 1, seed=1)["close"].to_numpy()
    log_returns = np.diff(np.log(close))
    assert log_returns.std() == pytest.approx(0.0008, rel=0.01)
    assert abs(log_returns.mean()) < 4 * 0.0008 / np.sqrt(log_returns.size)


def test_opens_gap_off_the_previous_close() -> None:
    bars = gbm_bars(1_000, 1, seed=4)
    gaps = np.log(bars["open"].to_numpy()[1:] / bars["close"].to_numpy()[:-1])
    assert 0 < gaps.std() < 0.0008
    assert bars["open"][0] != bars["close"][0]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_bars=st.integers(1, 200),
    n_symbols=st.integers(1, 4),
    sigma=st.sampled_from([0.0, 0.0008, 0.01, 0.2]),
)
def test_generated_bars_satisfy_ohlc_invariants(
    seed: int, n_bars: int, n_symbols: int, sigma: float
) -> None:
    bars = gbm_bars(n_bars, n_symbols, seed=seed, sigma=sigma)
    assert bars.height == n_bars * n_symbols
    o, h, l, c, v = (bars[name].to_numpy() for name in ("open", "high", "low", "close", "volume"))
    assert np.all(np.isfinite(np.stack([o, h, l, c, v])))
    assert np.all(l > 0)
    assert np.all(l <= np.minimum(o, c))
    assert np.all(h >= np.maximum(o, c))
    assert np.all((v >= 100) & (v <= 10_000) & (v == np.round(v)))
    assert validate_bars(bars, "gbm").equals(bars)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_bars": 0}, "n_bars must be >= 1"),
        ({"symbols": 0}, "symbols must be >= 1"),
        ({"symbols": ["A", "A"]}, "duplicate symbol names"),
        ({"symbols": ["A", ""]}, "list of non-empty names"),
        ({"tz": "Nowhere/Else"}, "is not an IANA time zone"),
        ({"start": "soon"}, "is not an ISO-8601 wall time"),
        ({"start": "2020-01-02T09:30:00+00:00"}, "must be a wall time without offset"),
        ({"start_price": -1.0}, "start_price must be > 0"),
        ({"sigma": float("nan")}, "sigma must be >= 0"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {"n_bars": 10, **kwargs}
    with pytest.raises(DataError, match=fragment):
        gbm_bars(**args)  # type: ignore[arg-type]


def test_workload_sizes_match_the_spec() -> None:
    assert WORKLOAD_SIZES == {"S": (100_000, 1), "M": (1_000_000, 1), "W": (100_000, 100)}


def test_write_workload_small(tmp_path: Path) -> None:
    path = write_workload(tmp_path / "S.parquet", "S")
    assert path == tmp_path / "S.parquet"
    written = pl.read_parquet(path)
    assert written.columns == ["ts", "symbol", "open", "high", "low", "close", "volume"]
    assert written.shape == (100_000, 7)
    assert written.equals(gbm_bars(100_000, 1, seed=42))
    assert written["symbol"].unique().to_list() == ["SYN000"]
    meta = pq.read_schema(path).metadata
    assert meta[b"backstop.synthetic"] == b"true"
    assert b"workload=S" in meta[b"backstop.generator"]


def test_unknown_workload_size(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown workload size 'XL'"):
        write_workload(tmp_path / "x.parquet", "XL")


def test_bundled_sample_is_the_documented_synthetic_data() -> None:
    bars = sample_bars()
    assert bars.equals(gbm_bars(20_000, ["SYN000", "SYN001", "SYN002"], seed=7))
    meta = pq.read_schema(SAMPLE_BARS_PATH).metadata
    assert meta[b"backstop.synthetic"] == b"true"
    assert meta[b"backstop.generator"].startswith(b"gbm_bars seed=7 ")
    assert SAMPLE_BARS_PATH.stat().st_size < 2 * 1024 * 1024


def test_make_sample_regenerates_the_same_bars(tmp_path: Path) -> None:
    out = make_sample(tmp_path / "sample.parquet")
    assert load_bars(out).equals(sample_bars())
    assert pq.read_schema(out).metadata == pq.read_schema(SAMPLE_BARS_PATH).metadata
