"""Event records from an intent table: the one-pass kernel (``pack_events_nb``) against the
obvious construction, one numpy field at a time, on random intent tables.

The tables mix kinds, symbols with and without bars, intents after the last bar, several
strategies, unsorted timestamps and nulls in every optional column, so every branch of the
packing (shared null columns, refused rows, the sort into decision order) is exercised.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import bars, combine, intents, ts_of, with_bar_rows

from backstop.domain.enums import EventKind, Intent
from backstop.domain.intents import EXIT_REASON_ROLES, conform_intents
from backstop.engine import inputs
from backstop.engine.core.eventpack import pack_events_nb
from backstop.engine.core.records import EVENT_DTYPE
from backstop.engine.inputs import (
    _CODE_FIELDS,
    _FRACTION_FIELDS,
    _VALUE_FIELDS,
    EVENT_DEFAULTS,
    INTENT_COLUMN_OF,
    bar_arrays,
    event_array,
)

N_BARS = 6
FRAME = combine(
    bars([(100.0, 101.0, 99.0, 100.0)] * N_BARS, symbol="A"),
    bars([(50.0, 51.0, 49.0, 50.0)] * N_BARS, symbol="B"),
)
SYMBOLS = bar_arrays(FRAME).symbols


def reference_events(table: pl.DataFrame, rows: np.ndarray, strategies: tuple[str, ...]):
    """The events field by field (what ``_events_from_rows`` did before the kernel)."""
    n = table.height
    ts = table.get_column("ts").to_numpy()
    seq = np.empty(n, dtype=np.int64)
    seq[np.argsort(ts, kind="stable")] = np.arange(n)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    bars_ts = FRAME.get_column("ts").to_numpy()
    refused = rows < 0
    bar = rows.copy()
    at = np.searchsorted(bars_ts, ts[refused], side="left")
    bar[refused] = np.minimum(at, len(bars_ts) - 1)
    ev["bar"], ev["ts"], ev["seq"] = bar, ts, seq
    intent = table.get_column("intent").to_numpy()
    kind = table.get_column("kind").to_numpy()
    updates = kind == int(EventKind.STOP_UPDATE)
    ev["intent"] = np.where(updates, int(Intent.STOP_UPDATE), intent)
    ev["kind"] = kind
    exits = (intent == 1) | updates
    ev["priority"] = np.where(kind == 2, 0, np.where(kind == 1, 1, np.where(exits, 2, 3)))
    index = {name: i for i, name in enumerate(SYMBOLS)}
    known = np.array([index.get(s, -1) for s in table.get_column("symbol").to_list()])
    ev["sym"] = np.where(refused, rows, known)
    names = table.get_column("strategy_id").fill_null("default").to_list()
    ev["strategy"] = [strategies.index(s) for s in names]
    for name in _CODE_FIELDS:
        col = table.get_column(INTENT_COLUMN_OF.get(name, name))
        ev[name] = col.fill_null(EVENT_DEFAULTS.get(name, 0)).to_numpy()
    for name in _VALUE_FIELDS:
        ev[name] = table.get_column(INTENT_COLUMN_OF.get(name, name)).to_numpy()
    for name in _FRACTION_FIELDS:
        ev[name] = table.get_column(name).fill_nan(0.0).fill_null(0.0).to_numpy()
    return ev[np.lexsort((ev["seq"], ev["priority"], ev["bar"]))]


def _maybe(draw, values, null_rate: float = 0.5):
    return None if draw(st.floats(0, 1)) < null_rate else draw(values)


@st.composite
def intent_tables(draw) -> pl.DataFrame:
    rows = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
        price = st.floats(1.0, 200.0)
        fraction = st.one_of(st.just(float("nan")), st.floats(0.001, 0.2))
        rows.append(
            {
                "ts": ts_of(draw(st.integers(0, N_BARS + 2))),  # some after the last bar
                "symbol": draw(st.sampled_from(["A", "B", "Z"])),  # Z has no bars
                "side": draw(st.sampled_from([1, -1])),
                "intent": draw(st.sampled_from([0, 1])),
                "kind": kind,
                "qty": _maybe(draw, st.floats(1, 500)),
                "price": _maybe(draw, price),
                "stop_px": draw(price) if kind == 3 else _maybe(draw, price),
                "target_px": _maybe(draw, price),
                "stop_pct": _maybe(draw, fraction),
                "target_pct": _maybe(draw, fraction),
                "trail_pct": _maybe(draw, fraction, 0.8),
                "tif": _maybe(draw, st.sampled_from([1, 2])),
                "strategy_id": _maybe(draw, st.sampled_from(["s1", "s2"]), 0.3),
                "exit_reason": _maybe(draw, st.sampled_from(EXIT_REASON_ROLES)),
                "conviction": _maybe(draw, st.floats(0, 100)),
                "source_id": _maybe(draw, st.integers(0, 10**9)),
                "advisory": _maybe(draw, st.sampled_from([1, 2])),
                "control": _maybe(draw, st.sampled_from([1, 2])),
                "scale_in_pct": _maybe(draw, fraction, 0.8),
            }
        )
    return conform_intents(intents(rows))


def _same_events(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and len(got) == len(want)
    for name in EVENT_DTYPE.names:
        a, b = got[name], want[name]
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            assert np.array_equal(a, b), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=intent_tables())
def test_events_match_the_field_by_field_construction(table: pl.DataFrame) -> None:
    events, strategies, event_symbols = event_array(table, FRAME, SYMBOLS)
    # the rows the engine attached (as-of), taken back from the events in table order
    rows = np.empty(table.height, dtype=np.int64)
    seq_to_row = np.argsort(table.get_column("ts").to_numpy(), kind="stable")
    for e in events:
        row = seq_to_row[e["seq"]]
        rows[row] = e["bar"] if e["sym"] >= 0 else e["sym"]
    _same_events(events, reference_events(table, rows, strategies))
    # each event names its own symbol
    by_seq = table.get_column("symbol").to_list()
    assert event_symbols.to_list() == [by_seq[seq_to_row[s]] for s in events["seq"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=intent_tables(), data=st.data())
def test_bar_rows_and_bar_codes_give_the_events_of_the_as_of_match(table, data) -> None:
    """The shortcuts a strategy's own table takes (its bar rows, the bars' symbol codes,
    no sort when already in decision order) change nothing, in row order or shuffled."""
    on_bars = table.filter(pl.col("symbol") != "Z", pl.col("ts") <= ts_of(N_BARS - 1))
    if on_bars.is_empty():
        return
    as_of, strategies, _ = event_array(on_bars, FRAME, SYMBOLS)
    with_rows = with_bar_rows(on_bars, FRAME)
    in_row_order = with_rows.sort("bar", "ts", maintain_order=True)
    shuffled = with_rows.sample(fraction=1.0, shuffle=True, seed=data.draw(st.integers(0, 99)))
    codes = bar_arrays(FRAME).sym
    for variant in (with_rows, in_row_order, shuffled):
        got, got_strategies, got_names = event_array(variant, FRAME, SYMBOLS, codes)
        want, _, want_names = event_array(variant.with_columns(bar=None), FRAME, SYMBOLS)
        _same_events(got, want)
        assert got_strategies == strategies and got_names.to_list() == want_names.to_list()
    assert len(as_of) == len(got)


def test_packing_compiles_once_whatever_polars_shares_or_copies(monkeypatch) -> None:
    """The packing kernel sees one set of argument types (numba compiles, and the install
    builds ahead of time, one variant per set)."""
    seen = set()

    def recording(*args):
        seen.add(tuple(pack_events_nb.typeof_pyval(a) for a in args))
        return pack_events_nb(*args)

    monkeypatch.setattr(inputs, "pack_events_nb", recording)
    full = conform_intents(
        intents([{"ts": ts_of(1), "symbol": "A", "side": 1, "intent": 0, "qty": 5.0}])
    )
    sparse = full.with_columns(pl.lit(None, dtype=pl.Float64).alias("qty"))
    for table in (full, sparse, pl.concat([full, sparse])):
        event_array(table, FRAME, SYMBOLS)
    assert len(seen) == 1
