"""The compiled validation pass (backstop.data.scan) counts exactly what the polars pass counts.

For every frame without missing values the two must agree on each check's count and on the
engine order, and the arrays the compiled pass hands to the engine must equal what
``bar_arrays`` makes from the frame: same bytes, so the same fingerprint and run id. Frames
with missing values, or with a ``ts`` that goes back, are left to the polars path.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.data import BAR_SCHEMA, gbm_bars, validate_bars
from backstop.data import scan as scan_module
from backstop.data.scan import scan_bars
from backstop.data.schema import _Context, _scale_by_masks, scale_int_ts
from backstop.data.validate import _value_checks, check_bars, count_problems
from backstop.engine.inputs import bar_arrays
from backstop.engine.prepare import PreparedBars
from backstop.errors import DataError

T0 = 1_577_975_400_000_000_000  # 2020-01-02T14:30:00Z
MINUTE = 60_000_000_000
PRICES = (100.0, 101.0, 99.0, 0.0, -1.0, math.nan, math.inf, -math.inf)
SYMBOLS = ("A", "B", "AA", "Ä", "", " ", "\t", "b")
ARRAYS = ("ts", "sym", "open", "high", "low", "close", "volume")


def _frame(rows: list[tuple], parts: int) -> pl.DataFrame:
    """``rows`` as a bar frame cut into ``parts`` chunks a column (as Parquet row groups read)."""
    df = pl.DataFrame(rows, schema=BAR_SCHEMA, orient="row")
    cuts = sorted({len(rows) * k // parts for k in range(1, parts)} - {0, len(rows)})
    pieces = [df.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    return pl.concat(pieces, rechunk=False)


def _polars_counts(df: pl.DataFrame) -> tuple[list[int], bool]:
    return count_problems(df.rechunk().lazy(), _value_checks())


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays, NaN for NaN (compared as bytes)."""
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


row = st.tuples(
    st.integers(0, 4).map(lambda k: T0 + k * MINUTE),
    st.sampled_from(SYMBOLS),
    *(st.sampled_from(PRICES) for _ in range(5)),
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=25), parts=st.integers(1, 3), sort=st.booleans())
def test_compiled_counts_equal_the_polars_counts(rows: list[tuple], parts: int, sort: bool) -> None:
    if sort:
        rows = sorted(rows, key=lambda r: (r[0], r[1]))
    df = _frame(rows, min(parts, len(rows)))
    counts, in_order = _polars_counts(df)
    fast = scan_bars(df)
    goes_back = any(b[0] < a[0] for a, b in itertools.pairwise(rows))
    if goes_back:
        assert fast is None and not in_order
        return
    assert fast is not None
    assert list(fast.counts) == counts
    assert fast.in_order == in_order
    assert fast.frame.equals(df)
    arrays = bar_arrays(df.rechunk())
    assert fast.columns.symbols == arrays.symbols
    for name in ARRAYS:
        assert _same_bits(getattr(fast.columns, name), getattr(arrays, name)), name


# one bad value per value check of backstop.data.validate (its index in _value_checks()),
# with every check that value fails (a price of 0 is also outside the bar's range)
ONE_PROBLEM = {
    1: (0, "symbol", " ", {1}),
    7: (1, "open", math.nan, {7}),
    8: (2, "high", math.inf, {8}),
    9: (0, "low", -math.inf, {9}),
    10: (3, "close", math.nan, {10}),
    11: (4, "volume", math.inf, {11}),
    12: (2, "open", -3.0, {12, 18}),
    13: (1, "high", 0.0, {13, 17}),
    14: (0, "low", -1.0, {14}),
    15: (3, "close", 0.0, {15, 19}),
    16: (4, "volume", -5.0, {16}),
    17: (2, "high", 98.0, {17}),
    18: (1, "open", 102.5, {18}),
    19: (3, "close", 98.5, {19}),
}


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("check", sorted(ONE_PROBLEM))
def test_each_kind_of_problem_is_counted_by_both_passes(check: int, parts: int) -> None:
    rows = [(T0 + i * MINUTE, "AAPL", 100.0, 101.0, 99.0, 100.0, 10.0) for i in range(6)]
    index, column, value, failed = ONE_PROBLEM[check]
    bad = dict(zip(BAR_SCHEMA.names(), rows[index], strict=True)) | {column: value}
    rows[index] = tuple(bad.values())
    df = _frame(rows, parts)
    fast = scan_bars(df)
    assert fast is not None
    counts, in_order = _polars_counts(df)
    assert list(fast.counts) == counts
    assert {k for k, n in enumerate(fast.counts) if n} == failed
    assert max(fast.counts) == 1
    assert in_order and fast.in_order


@pytest.mark.parametrize("column", BAR_SCHEMA.names())
def test_a_missing_value_leaves_the_count_to_polars(column: str) -> None:
    df = gbm_bars(20, 2).with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col(column)).alias(column)
    )
    assert scan_bars(df) is None
    with pytest.raises(DataError) as info:
        validate_bars(df, "bars")
    where = "bars:8" if column == "symbol" else "bars:8, symbol SYN001"
    assert str(info.value) == f"{where}: {column} is missing (1 row with this problem)"


def test_repeated_and_crossed_order_is_seen_without_a_ts_going_back() -> None:
    """Two bars of one symbol at one ts, and symbols out of order within a ts: both passes say
    'not in engine order', and validation words the repeat as before."""
    rows = [(T0, "B", 100.0, 101.0, 99.0, 100.0, 1.0), (T0, "A", 100.0, 101.0, 99.0, 100.0, 1.0)]
    rows += [(T0 + MINUTE, "A", 100.0, 101.0, 99.0, 100.0, 1.0)] * 2
    df = _frame(rows, 2)
    fast = scan_bars(df)
    assert fast is not None and not fast.in_order
    assert _polars_counts(df) == (list(fast.counts), False)
    with pytest.raises(DataError) as info:
        validate_bars(df, "bars")
    assert str(info.value) == (
        "bars:4, symbol A: duplicate ts 2020-01-02T14:31:00Z: same timestamp as row 3 for this "
        "symbol (1 row with this problem)"
    )


def test_chunked_bars_prepare_to_the_same_arrays_and_fingerprint() -> None:
    whole = gbm_bars(700, 3, seed=9)
    chunked = _frame(whole.rows(), 4)
    checked = check_bars(chunked, "bars")
    assert checked.columns is not None  # the compiled pass made the arrays
    assert checked.bars.equals(whole)
    fast = PreparedBars.of(checked.bars, checked.columns)
    slow = PreparedBars.of(whole)
    for name in ARRAYS:
        assert _same_bits(getattr(fast.arrays, name), getattr(slow.arrays, name)), name
    assert fast.arrays.symbols == slow.arrays.symbols == ("SYN000", "SYN001", "SYN002")
    assert fast.counts == slow.counts == {"SYN000": 700, "SYN001": 700, "SYN002": 700}
    assert fast.fingerprint == slow.fingerprint


def test_bars_in_one_chunk_are_checked_in_place() -> None:
    bars = gbm_bars(50, 2)
    checked = check_bars(bars, "bars")
    assert checked.bars is bars
    assert checked.columns is not None
    assert np.shares_memory(checked.columns.close, bars.get_column("close").to_numpy())


def test_columns_cut_differently_prepare_from_one_copy() -> None:
    """ts in one chunk (as after scaling milliseconds), prices in three: the columns are
    copied once, and the frame handed on reads the same arrays as the engine."""
    whole = gbm_bars(40, 2)
    df = _frame(whole.rows(), 3).with_columns(whole.get_column("ts"))
    assert df.get_column("ts").n_chunks() == 1 and df.get_column("open").n_chunks() == 3
    checked = check_bars(df, "bars")
    assert checked.columns is not None and checked.bars.equals(whole)
    for name in ("ts", "open", "volume"):
        column = checked.bars.get_column(name)
        assert column.n_chunks() == 1
        assert np.shares_memory(column.to_numpy(), getattr(checked.columns, name))


def test_a_hash_collision_leaves_the_symbols_to_polars(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two symbols with one hash would share a number: counting the symbols exactly sees
    it, and the polars path prepares the bars (same arrays as without the collision)."""
    bars = gbm_bars(30, 2)

    def colliding(symbol: pl.Series) -> tuple[np.ndarray, int]:
        return np.zeros(len(symbol), dtype=np.uint64), symbol.n_unique()

    monkeypatch.setattr(scan_module, "_hash_and_count", colliding)
    assert scan_bars(bars) is None
    checked = check_bars(bars, "bars")
    assert checked.columns is None
    assert PreparedBars.of(checked.bars).arrays.symbols == ("SYN000", "SYN001")


INT64_MIN = -(2**63)
magnitudes = st.sampled_from([0, 1, 10**9, 10**11, 10**14, 10**17, 2**63 - 1])


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.integers(INT64_MIN, 2**63 - 1),
            st.builds(
                lambda m, k, s: s * min(m + k, 2**63 - 1),
                magnitudes,
                st.integers(0, 99),
                st.sampled_from([1, -1]),
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_ts_scaling_by_the_extremes_equals_the_masks(values: list[int]) -> None:
    """The unit, mixed-unit and overflow rules decided from the minimum and maximum give the
    same values, or the same refusal, as the rules applied row by row."""
    series = pl.Series("ts", values, dtype=pl.Int64)
    ctx = _Context("bars", 1, pl.Series("symbol", ["X"] * len(values)))
    try:
        expected: pl.Series | str = _scale_by_masks(series, ctx)
    except DataError as exc:
        expected = str(exc)
    try:
        got: pl.Series | str = scale_int_ts(series, ctx)
    except DataError as exc:
        got = str(exc)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, pl.Series) and got.equals(expected)
