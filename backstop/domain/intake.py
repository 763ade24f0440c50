"""What an intent table may look like on the way in, and how it is read into INTENT_SCHEMA.

Python users hand over what they have: a polars or pandas frame, ``side`` as ``"buy"`` /
``"sell"``, ``intent`` as ``"entry"`` / ``"exit"``, ``trade_type`` as ``"day"`` / ``"swing"``
/ ``"scalp"``, ``ts`` as integers, datetimes of any unit (pandas' default is
microseconds) or ISO-8601 text, and ``source_id`` as the signal
feed's own ids (``4411``, ``"kevin-4411"``, a UUID). Each is converted here, once, by the
same rules as bars (datetimes: tz-aware, or refused when naive), or refused with a
``BackstopError`` that names the argument, column and row: nothing is read in the wrong unit
and run. Integer ``ts`` are nanoseconds, as ``INTENT_SCHEMA`` says (a signal file's integers
are converted by magnitude when it is read); ``run_backtest`` warns when intents are stamped
before the first bar, the mark of seconds or milliseconds read as nanoseconds.

Text source ids: the kernels compare ids as integers (the new-signals-only cursor), so a
table whose ids are not all non-negative integers numbers them per strategy, in order of
first appearance by ``ts`` (rows with equal ``ts`` in table order), from 0. A repeated id gets
the number it got first, so with ``risk.new_signals_only`` a repeat is refused as
``STALE_SIGNAL``. ``source_ref`` keeps every id as given (numeric ids as their decimal text).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from backstop.data.schema import ts_to_ns
from backstop.domain.enums import TRADE_TYPE_WORDS
from backstop.errors import ConfigError, check

SIDE_WORDS = {"buy": 1, "sell": -1}  # not long/short: "exit long" is a sell
INTENT_WORDS = {"entry": 0, "exit": 1}
SOURCE = "intents"
NAIVE = (
    "give them one (polars: .dt.replace_time_zone('UTC'); pandas: .dt.tz_localize('UTC'); "
    "ISO text: a Z or +hh:mm offset)"
)


def intent_frame(df: Any, argument: str = "intents", what: str = "an intent table") -> pl.DataFrame:
    """A polars DataFrame of ``df`` (polars, lazy polars or pandas); anything else is refused
    with an error naming ``argument`` and saying ``what`` was expected."""
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    if isinstance(df, pl.DataFrame):
        return df
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(df, pd.DataFrame):
        try:
            return pl.from_pandas(df, nan_to_null=True)
        except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
            text = str(exc).strip().splitlines()
            raise ConfigError(
                argument, f"cannot convert the pandas frame: {text[0] if text else exc}"
            ) from exc
    raise ConfigError(
        argument,
        f"expected {what} (a polars or pandas DataFrame), got {type(df).__name__}",
    )


def coerce_intent_columns(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series | None]:
    """Convert ``ts``, ``side``, ``intent`` and ``source_id`` to the schema's types.

    Returns the frame and, when ``source_id`` holds text ids, that text (the frame's
    ``source_id`` is then null until ``number_text_ids`` numbers it).
    """
    if "ts" in df.columns and df.height and not df.schema["ts"].is_integer():
        symbol = (
            df.get_column("symbol") if "symbol" in df.columns else pl.Series([None] * df.height)
        )
        ts = ts_to_ns(df.get_column("ts"), SOURCE, symbol.cast(pl.String), 0, naive_hint=NAIVE)
        df = df.with_columns(ts)
    for column, words in (
        ("side", SIDE_WORDS),
        ("intent", INTENT_WORDS),
        ("trade_type", TRADE_TYPE_WORDS),
    ):
        if column in df.columns and df.schema[column] in (pl.String, pl.Categorical):
            df = df.with_columns(_words(df.get_column(column), column, words))
    refs = None
    if "source_id" in df.columns:
        df, refs = _source_ids(df)
    return _cast_columns(df), refs


# numbers that must be finite when given (NaN/null: not given), and their allowed ranges
_RANGES = {"conviction": (0.0, 100.0), "advisory_confidence": (0.0, 1.0)}


def _cast_columns(df: pl.DataFrame) -> pl.DataFrame:
    """Cast every schema column present to its type, naming the first row that will not go.

    ``"10"`` becomes 10.0; ``"abc"``, a list or an infinite quantity is an error naming the
    column and row rather than a polars traceback or an order for ``inf`` shares.
    """
    from backstop.domain.intents import INTENT_SCHEMA  # imported here: intents imports intake

    casts = {}
    for name, dtype in INTENT_SCHEMA.items():
        if name not in df.columns or name in ("ts", "source_id", "source_ref"):
            continue
        col = df.get_column(name)
        if col.dtype == dtype:
            continue
        check(
            not isinstance(col.dtype, pl.List | pl.Array | pl.Struct | pl.Object),
            ConfigError(name, f"has type {col.dtype}, expected {dtype}"),
        )
        source = col.cast(pl.String).str.strip_chars() if col.dtype == pl.String else col
        cast = source.cast(dtype, strict=False)
        bad = col.is_not_null() & cast.is_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ConfigError(
                name,
                f"intent row {row}: {col[row]!r} is not a {dtype} ({int(bad.sum())} rows)",
            )
        casts[name] = cast.alias(name)
    if casts:
        df = df.with_columns(casts.values())
    floats = [n for n, t in INTENT_SCHEMA.items() if n in df.columns and t == pl.Float64()]
    if not floats or df.is_empty():
        return df
    counts = df.select(_out_of_range(name).sum() for name in floats).row(0)
    for name, count in zip(floats, counts, strict=True):
        if count:
            col = df.get_column(name)
            row = int(df.select(_out_of_range(name)).to_series().arg_true()[0])
            limits = "in [{:g}, {:g}]".format(*_RANGES[name]) if name in _RANGES else "finite"
            raise ConfigError(
                name, f"intent row {row}: must be {limits}, got {col[row]} ({int(count)} rows)"
            )
    return df


def _out_of_range(name: str) -> pl.Expr:
    """True where a value column is infinite or outside its range (null/NaN: not given)."""
    col = pl.col(name)
    bad = col.is_infinite()
    if name in _RANGES:
        lo, hi = _RANGES[name]
        bad = bad | (col.is_finite() & ((col < lo) | (col > hi)))
    return bad.fill_null(False).alias(name)


def _words(col: pl.Series, column: str, words: dict[str, int]) -> pl.Series:
    """Map ``buy``/``sell`` (any case) or the codes as text (``1``, ``-1``) to their codes."""
    text = col.cast(pl.String).str.strip_chars().str.to_lowercase()
    table = {**words, **{str(code): code for code in set(words.values())}}
    table.update({f"+{code}": code for code in set(words.values()) if code > 0})
    codes = text.replace_strict(table, default=None, return_dtype=pl.Int8)
    bad = text.is_not_null() & codes.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        allowed = " or ".join(f"{w!r}" for w in words)
        raise ConfigError(
            column, f"intent row {row}: must be {allowed}, got {col[row]!r} ({int(bad.sum())} rows)"
        )
    return codes.alias(column)


def _source_ids(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series | None]:
    """Integer ids stay integers (>= 0); any other text makes the whole column text ids."""
    col = df.get_column("source_id")
    check(
        col.dtype in (pl.String, pl.Categorical, pl.Null)
        or col.dtype.is_integer()
        or col.dtype.is_float(),
        ConfigError("source_id", f"has type {col.dtype}, expected integer or text ids"),
    )
    if col.dtype.is_integer() or col.dtype == pl.Null:
        _check_non_negative(col.cast(pl.Int64))
        return df, None
    if col.dtype.is_float():
        whole = col.is_null() | (col == col.floor())
        check(
            bool(whole.all()),
            ConfigError("source_id", f"intent row {int((~whole).arg_true()[0])}: not a whole id"),
        )
        _check_non_negative(col.cast(pl.Int64))
        return df.with_columns(pl.col("source_id").cast(pl.Int64)), None
    stripped = pl.DataFrame({"t": col.cast(pl.String).str.strip_chars()})
    text = stripped.select(pl.when(pl.col("t") != "").then(pl.col("t"))).to_series()
    as_int = text.cast(pl.Int64, strict=False)
    numeric = bool((text.is_null() | (as_int.is_not_null() & (as_int >= 0))).all())
    if numeric:
        return df.with_columns(as_int.alias("source_id")), None
    return df.with_columns(pl.lit(None, dtype=pl.Int64).alias("source_id")), text


def _check_non_negative(ids: pl.Series) -> None:
    bad = ids.is_not_null() & (ids < -1)  # -1: no id (what conform_intents fills in)
    if bad.any():
        row = int(bad.arg_true()[0])
        raise ConfigError(
            "source_id", f"intent row {row}: must be >= 0 (or -1 for none), got {ids[row]}"
        )


def number_text_ids(out: pl.DataFrame, refs: pl.Series | None) -> pl.DataFrame:
    """Fill ``source_id`` with per-strategy ordinals of text ids, and ``source_ref`` with the
    ids as given (see the module docstring for the rule)."""
    if refs is None:  # numeric ids, or a table conform_intents already numbered
        ref = pl.when(pl.col("source_id") >= 0).then(pl.col("source_id").cast(pl.String))
        return out.with_columns(source_ref=pl.coalesce("source_ref", ref))
    keyed = out.select("ts", pl.col("strategy_id").fill_null("default")).with_columns(
        source_ref=refs, _row=pl.int_range(pl.len(), dtype=pl.Int64)
    )
    firsts = (
        keyed.filter(pl.col("source_ref").is_not_null())
        .sort(["ts", "_row"])
        .unique(["strategy_id", "source_ref"], keep="first", maintain_order=True)
        .with_columns(
            _ordinal=pl.int_range(pl.len(), dtype=pl.Int64).over("strategy_id"),
        )
        .select("strategy_id", "source_ref", "_ordinal")
    )
    numbered = keyed.join(firsts, on=["strategy_id", "source_ref"], how="left").sort("_row")
    return out.with_columns(
        source_id=numbered.get_column("_ordinal").fill_null(-1),
        source_ref=numbered.get_column("source_ref"),
    )
