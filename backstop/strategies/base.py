"""The Strategy interface: a function of bars (and parameters) returning a sparse intent table.

A strategy never sees a broker, a position or an order: it says what it would like to do at a
bar's close (enter long, exit, ...) and the pipeline decides what is actually sent. Backtests
call it once on the whole history; live, the same function runs on a rolling window and its
newest rows are the live signals (``latest_intents``), so research and production share code.

Intent table columns (``INTENT_SCHEMA``): ``ts`` (the bar whose close the intent is formed
at), ``symbol``, ``side`` (+1 buy / -1 sell), ``intent`` (0 entry / 1 exit) and optional
``qty``, ``price``, ``limit_px``, ``entry_stop_px``, ``stop_px``, ``target_px``, ``stop_pct``,
``target_pct``,
``trail_pct``, ``otype``, ``tif``, ``strategy_id``, and ``bar``: the row of the bars frame the
intent was formed at, when the strategy knows it (vectorised strategies do). The engine checks
it against ``ts`` and ``symbol`` and then skips the as-of join that finds the bar otherwise.

Guardrail columns: ``conviction`` (0..100), ``target_dollars`` (notional the signal source
sized), ``source_id`` (e.g. a mention id, for the new-signals-only cursor), ``exit_reason``
(``OrderRole`` of an exit: signal, momentum exhaustion, cloud flip, thesis invalidation...),
``advisory`` (``Advice``: 1 GO, 2 WAIT) with ``advisory_confidence`` (0..1) attached to the
signal itself, and ``scale_in_pct`` (scale-in entry: half now, half as a limit this fraction
back from the signal's price, cancelled if the stop takes the first half out). ``kind``
(``EventKind``) makes a row an advisory of its symbol (1) or a control action (2, with
``control`` a ``ControlAction``); such rows need no side or intent. A stop update (3) gives
a symbol's new protective level in ``stop_px`` (a strategy's trailing line, see
``stop_updates``): the working stop leg of the position moves to it when that tightens it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from backstop.engine.enums import SIGNAL_EXIT_REASONS
from backstop.errors import ConfigError, check
from backstop.strategies.intake import coerce_intent_columns, intent_frame, number_text_ids

EXIT_REASON_ROLES = tuple(sorted({int(role) for role in SIGNAL_EXIT_REASONS.values()}))

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
    "source_ref": pl.String(),  # the source id as given (text ids: see strategies/intake.py)
}
REQUIRED_INTENT_COLUMNS = ("ts", "symbol", "side", "intent")

IntentFn = Callable[..., pl.DataFrame]


@dataclass(frozen=True, slots=True)
class Param:
    """One strategy parameter: its type, default and allowed range."""

    name: str
    kind: type
    default: float | int
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def parse(self, raw: Any) -> float | int:
        """Convert and range-check a value (e.g. from ``--param fast=10``); name it on error."""
        try:
            if isinstance(raw, bool):
                raise TypeError  # True is 1 to Python, never a window length or a price
            value = self.kind(raw) if not isinstance(raw, str) else self.kind(float(raw))
            if self.kind is int and not float(raw).is_integer():
                raise ValueError  # fast=10.7 must not run as 10
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(self.name, f"expected {self.kind.__name__}, got {raw!r}") from None
        check(math.isfinite(float(value)), ConfigError(self.name, f"must be finite, got {raw!r}"))
        if self.minimum is not None:
            check(
                value >= self.minimum,
                ConfigError(self.name, f"must be >= {self.minimum}, got {value}"),
            )
        if self.maximum is not None:
            check(
                value <= self.maximum,
                ConfigError(self.name, f"must be <= {self.maximum}, got {value}"),
            )
        return value


@dataclass(frozen=True, slots=True)
class Strategy:
    """A named intent generator with declared parameters."""

    name: str
    fn: IntentFn
    params: tuple[Param, ...]
    doc: str = ""
    validate: Callable[[dict[str, Any]], None] | None = None
    """Checks that span parameters (``fast < slow``); raises ``ConfigError`` naming one."""
    bars_needed: Callable[[dict[str, Any]], tuple[str, int]] | None = None
    """(parameter, bars): the fewest bars of one symbol the strategy can signal on at all."""

    def resolve(self, values: dict[str, Any] | None = None) -> dict[str, float | int]:
        """Defaults overlaid with ``values``; unknown or out-of-range parameters are errors."""
        values = dict(values or {})
        known = {p.name: p for p in self.params}
        for key in values:
            check(
                key in known,
                ConfigError(
                    key, f"unknown parameter of strategy {self.name} (known: {sorted(known)})"
                ),
            )
        resolved = {
            p.name: p.parse(values[p.name]) if p.name in values else p.default for p in self.params
        }
        if self.validate is not None:
            self.validate(resolved)
        return resolved

    def check_data(self, counts: dict[str, int], params: dict[str, Any]) -> list[str]:
        """Refuse parameters the data is too short for; warn about symbols that are.

        ``counts`` is the number of bars of each symbol. A window longer than every symbol's
        history can never signal: that run would "succeed" with no trades, so it is an error
        naming the parameter. Symbols shorter than the window while others are long enough
        are listed in a warning.
        """
        if self.bars_needed is None or not counts:
            return []
        name, needed = self.bars_needed(params)
        longest = max(counts.values())
        check(
            longest >= needed,
            ConfigError(
                name,
                f"{params[name]} needs at least {needed} bars of a symbol to signal, but the "
                f"longest symbol has {longest}: the run could not trade at all",
            ),
        )
        short = sorted(symbol for symbol, n in counts.items() if n < needed)
        if not short:
            return []
        return [
            f"{len(short)} symbols have fewer than the {needed} bars {name}={params[name]} needs "
            f"and cannot signal: {', '.join(short[:5])}{' ...' if len(short) > 5 else ''}"
        ]

    def intents(
        self, bars: pl.DataFrame, params: dict[str, Any] | None = None, prepared: Any = None
    ) -> pl.DataFrame:
        """Run the strategy over ``bars`` and return its intent table, schema-checked.

        ``prepared`` (a ``PreparedBars`` of the same bars) is passed on to strategies that
        declare a ``prepared`` keyword, so array-based strategies reuse the engine's arrays.
        """
        if not isinstance(bars, pl.DataFrame):
            from backstop.data import load_bars_frame

            bars = load_bars_frame(bars, source="bars")  # pandas (validated), or refused
        resolved = self.resolve(params)
        if prepared is not None and "prepared" in inspect.signature(self.fn).parameters:
            out = self.fn(bars, prepared=prepared, **resolved)
        else:
            out = self.fn(bars, **resolved)
        return conform_intents(
            out, strategy_id=self.name, argument=f"strategy {self.name}: its return value"
        )


def conform_intents(
    df: Any, strategy_id: str = "default", argument: str = "intents"
) -> pl.DataFrame:
    """Give an intent table every column of ``INTENT_SCHEMA`` in order, with its types.

    ``df`` may be polars or pandas; ``side``/``intent`` may be words, ``ts`` datetimes or
    text, ``source_id`` text ids (``strategies/intake.py``). ``argument`` names the table in
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
    )
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


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Make a strategy available by name (CLI ``--strategy`` and ``Backtest(strategy=...)``)."""
    _REGISTRY[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    """Look a strategy up by name; an unknown name is an error listing the known ones."""
    check(
        name in _REGISTRY,
        ConfigError("strategy", f"unknown strategy {name!r} (known: {sorted(_REGISTRY)})"),
    )
    return _REGISTRY[name]


def latest_intents(
    strategy: Strategy, window: pl.DataFrame, params: dict[str, Any] | None = None
) -> pl.DataFrame:
    """The live signal: the strategy on a rolling window, keeping only its newest bar's rows."""
    if not isinstance(window, pl.DataFrame):
        from backstop.data import load_bars_frame

        window = load_bars_frame(window, source="window")  # pandas (validated), or refused
    intents = strategy.intents(window, params)
    if window.is_empty():
        return intents
    newest = window.get_column("ts").max()
    return intents.filter(pl.col("ts") == newest)
