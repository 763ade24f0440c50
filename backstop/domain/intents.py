"""The intent table: the engine's input contract, what a strategy returns and what
external signals become.

Columns (``INTENT_SCHEMA``): ``ts`` (the bar whose close the intent is formed at),
``symbol``, ``side`` (+1 buy / -1 sell), ``intent`` (0 entry / 1 exit) and optional ``qty``,
``price``, ``limit_px``, ``entry_stop_px``, ``stop_px``, ``target_px``, ``stop_pct``,
``target_pct``, ``trail_pct``, ``otype``, ``tif``, ``strategy_id``, and ``bar``: the row of
the bars frame the intent was formed at, when the strategy knows it (vectorised strategies
do). The engine checks it against ``ts`` and ``symbol`` and then skips the as-of join that
finds the bar otherwise.

Guardrail columns: ``conviction`` (0..100), ``target_dollars`` (notional the signal source
sized), ``source_id`` (e.g. a mention id, for the new-signals-only cursor), ``exit_reason``
(``OrderRole`` of an exit: signal, momentum exhaustion, cloud flip, thesis invalidation...),
``advisory`` (``Advice``: 1 GO, 2 WAIT) with ``advisory_confidence`` (0..1) attached to the
signal itself, and ``scale_in_pct`` (scale-in entry: half now, half as a limit this fraction
back from the signal's price, cancelled if the stop takes the first half out). Exits may
carry ``exit_fraction`` in (0, 1]: the share of the open position (less what working exits
already close) to close, rounded half-down to the lot (a scale-out; none or 1: all of it).
Entries may carry ``trade_type`` (``TradeType``: 0 day, 1 swing, 2 scalp; none: day): the
profile's end-of-day close applies to day trades only (seed 002). ``kind``
(``EventKind``) makes a row an advisory of its symbol (1) or a control action (2, with
``control`` a ``ControlAction``); such rows need no side or intent. A stop update (3) gives
a symbol's new protective level in ``stop_px`` (a strategy's trailing line, see
``backstop.strategies.stop_updates``): the working stop leg of the position moves to it when
that tightens it. ``conform_intents`` checks a table against this contract and gives it every
column with its type; ``backstop.domain.intake`` reads the forms people write (pandas, words,
datetimes, text ids).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from backstop.domain.enums import SIGNAL_EXIT_REASONS, OrderRole
from backstop.domain.intake import coerce_intent_columns, intent_frame, number_text_ids
from backstop.errors import ConfigError, check

# roles an exit row may carry: the reasons a signal may name, and a strategy's own end-of-day
# close (seed 002's day trades), which external signal files do not name
EXIT_REASON_ROLES = tuple(
    sorted({int(role) for role in SIGNAL_EXIT_REASONS.values()} | {int(OrderRole.EOD_CLOSE)})
)

INTENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64(),
    "symbol": pl.String(),
    "side": pl.Int8(),
    "intent": pl.Int8(),
    "qty": pl.Float64(),
    "price": pl.Float64(),
    "limit_px": pl.Float64(),
    "entry_stop_px": pl.Float64(),
    "stop_px": pl.Float64(),
    "target_px": pl.Float64(),
    "stop_pct": pl.Float64(),
    "target_pct": pl.Float64(),
    "trail_pct": pl.Float64(),
    "otype": pl.Int8(),
    "tif": pl.Int8(),
    "strategy_id": pl.String(),
    "bar": pl.Int64(),
    "kind": pl.Int8(),
    "exit_reason": pl.Int8(),
    "conviction": pl.Float64(),
    "target_dollars": pl.Float64(),
    "source_id": pl.Int64(),
    "advisory": pl.Int8(),
    "advisory_confidence": pl.Float64(),
    "control": pl.Int8(),
    "scale_in_pct": pl.Float64(),
    "exit_fraction": pl.Float64(),
    "trade_type": pl.Int8(),
    "source_ref": pl.String(),  # the source id as given (text ids: see domain/intake.py)
}
REQUIRED_INTENT_COLUMNS = ("ts", "symbol", "side", "intent")


def conform_intents(
    df: Any, strategy_id: str = "default", argument: str = "intents"
) -> pl.DataFrame:
    """Give an intent table every column of ``INTENT_SCHEMA`` in order, with its types.

    ``df`` may be polars or pandas; ``side``/``intent`` may be words, ``ts`` datetimes or
    text, ``source_id`` text ids (``domain/intake.py``). ``argument`` names the table in
    the error when it is not a table at all.
    """
    df = intent_frame(df, argument)
    df, text_ids = coerce_intent_columns(df)
    for col in REQUIRED_INTENT_COLUMNS:
        if col in ("side", "intent", "symbol") and "kind" in df.columns and col not in df.columns:
            df = df.with_columns(pl.lit({"side": 1, "intent": 0, "symbol": ""}[col]).alias(col))
        check(col in df.columns, ConfigError(col, "intent table lacks this required column"))
    if "kind" in df.columns:
        _check_codes(
            df,
            (
                "kind",
                (0, 1, 2, 3, None),
                "0 (signal), 1 (advisory), 2 (control) or 3 (stop update)",
            ),
        )
        updates = df.get_column("kind").fill_null(0) == 3
        if updates.any():
            symbols = df.get_column("symbol") if "symbol" in df.columns else None
            missing = updates if symbols is None else updates & symbols.fill_null("").eq("")
            check(
                not missing.any(),
                ConfigError("symbol", f"{int(missing.sum())} stop updates name no symbol"),
            )
            _require_price(df, updates, "stop_px", "a stop update")
        other = pl.col("kind").fill_null(0) != 0
        df = df.with_columns(
            side=pl.when(other).then(pl.col("side").fill_null(1)).otherwise(pl.col("side")),
            intent=pl.when(other).then(pl.col("intent").fill_null(0)).otherwise(pl.col("intent")),
            symbol=pl.when(other).then(pl.col("symbol").fill_null("")).otherwise(pl.col("symbol")),
        )
    for col in REQUIRED_INTENT_COLUMNS:
        nulls = df.get_column(col).null_count()
        check(nulls == 0, ConfigError(col, f"{nulls} intent rows have no value"))
    _check_codes(
        df,
        ("side", (1, -1), "+1 (buy) or -1 (sell)"),
        ("intent", (0, 1), "0 (entry) or 1 (exit)"),
        ("otype", (0, 1, 2, 3, None), "0 (market), 1 (limit), 2 (stop) or 3 (stop-limit)"),
    )
    if "otype" in df.columns:
        otype = df.get_column("otype")
        _require_price(df, otype.is_in([1, 3]), "limit_px", "a limit or stop-limit entry")
        _require_price(df, otype.is_in([2, 3]), "entry_stop_px", "a stop or stop-limit entry")
    _check_codes(
        df,
        ("tif", (0, 1, 2, None), "0 (day), 1 (gtc) or 2 (ioc)"),
        ("exit_reason", (*EXIT_REASON_ROLES, None), "an exit-reason role code"),
        ("advisory", (0, 1, 2, None), "0 (none), 1 (GO) or 2 (WAIT)"),
        ("trade_type", (0, 1, 2, None), "0 (day), 1 (swing) or 2 (scalp)"),
    )
    if "exit_fraction" in df.columns:
        _check_exit_fraction(df)
    defaults = {"otype": 0, "tif": 1, "kind": 0, "exit_reason": 3, "source_id": -1, "advisory": 0}
    exprs = []
    for name, dtype in INTENT_SCHEMA.items():
        if name == "source_ref" and (text_ids is not None or name not in df.columns):
            exprs.append(pl.lit(None, dtype=dtype).alias(name))  # number_text_ids fills it
        elif name in defaults and name in df.columns:
            exprs.append(pl.col(name).cast(dtype).fill_null(defaults[name]))
        elif name in df.columns:
            exprs.append(pl.col(name).cast(dtype))
        elif name == "strategy_id":
            exprs.append(pl.lit(strategy_id, dtype=dtype).alias(name))
        elif name in defaults:
            exprs.append(pl.lit(defaults[name], dtype=dtype).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return number_text_ids(df.select(exprs), text_ids)


def _check_exit_fraction(df: pl.DataFrame) -> None:
    """An exit's fraction is in (0, 1], on exit rows only, and never beside a ``qty``."""
    fraction = df.get_column("exit_fraction")
    given = fraction.is_not_null() & fraction.is_not_nan()
    problems = (
        (given & ((fraction <= 0) | (fraction > 1)), "must be in (0, 1]"),
        (given & (df.get_column("intent") != 1), "is for exits only (this row is an entry)"),
    )
    if "qty" in df.columns:
        qty = df.get_column("qty")
        both = given & qty.is_not_null() & qty.is_not_nan()  # NaN: no qty, as in the kernels
        problems += ((both, "and qty both size this exit: give one"),)
    for bad, what in problems:
        bad = bad.fill_null(False)
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ConfigError(
                "exit_fraction",
                f"intent row {row}: {what}, got {fraction[row]!r} ({int(bad.sum())} rows)",
            )


def _require_price(df: pl.DataFrame, needs: pl.Series, column: str, what: str) -> None:
    """Refuse intent rows of an order type that needs a price the row does not give."""
    missing = needs.fill_null(False)
    if column in df.columns:
        missing = missing & df.get_column(column).is_null()
    if missing.any():
        row = int(missing.arg_true()[0])
        raise ConfigError(
            column,
            f"intent row {row}: {what} needs a {column} ({int(missing.sum())} rows lack one)",
        )


def _check_codes(df: pl.DataFrame, *specs: tuple[str, tuple, str]) -> None:
    """Refuse an intent column holding a code outside its allowed ones, naming the first row.

    ``specs`` are (column, allowed codes, meaning); columns the table lacks are skipped, the
    present ones are counted in one pass and the first failing one in order is reported.
    """
    present = [spec for spec in specs if spec[0] in df.columns]
    if not present or df.is_empty():
        return
    counts = df.select(_bad_code(column, allowed).sum() for column, allowed, _ in present).row(0)
    for (column, allowed, meaning), count in zip(present, counts, strict=True):
        if count:
            bad = df.select(_bad_code(column, allowed)).to_series()
            row = int(bad.arg_true()[0])
            raise ConfigError(
                column,
                f"intent row {row}: must be {meaning}, got "
                f"{df.get_column(column)[row]!r} ({int(count)} rows)",
            )


def _bad_code(column: str, allowed: tuple) -> pl.Expr:
    """True where ``column`` holds a code outside ``allowed`` (null is allowed when listed)."""
    values = [v for v in allowed if v is not None]
    bad = ~pl.col(column).is_in(values)
    if None in allowed:
        bad = bad & pl.col(column).is_not_null()
    return bad.fill_null(False).alias(column)
