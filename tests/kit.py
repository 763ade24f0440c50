"""Test kit: factories for bars, intents and runs, so each test states only what matters.

Tests import it as ``from kit import ...`` (``tests/`` is on ``sys.path`` under pytest's default
import mode). Everything here goes through the public boundary: ``bars`` builds a frame with
``load_bars_frame`` (normalized and validated exactly as user data would be), ``entry`` /
``exit_`` build rows of the intent table schema, and ``run`` calls ``run_backtest``;
``run_exchange`` drives the simulated exchange alone for order kinds intents cannot express.

Time: bar ``i`` of a kit frame is stamped ``START_NS + i * MINUTE_NS`` unless told otherwise;
``START_NS`` is 2024-01-02 14:30 UTC (09:30 New York), so a default five-bar frame lies inside
one New York session. An intent given a small int is read as a bar index on that grid (an
intent stamped with a bar's ts is decided at that bar's close); a large int is a ts in ns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from hypothesis import strategies as st

from backstop.brokers.sim.backtest import run_backtest
from backstop.data import load_bars_frame
from backstop.domain.instruments import Instrument
from backstop.domain.intents import INTENT_SCHEMA
from backstop.engine.config import BacktestConfig
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult

START_NS = 1_704_205_800_000_000_000  # 2024-01-02T14:30:00Z = 09:30 America/New_York
MINUTE_NS = 60_000_000_000
DEFAULT_VOLUME = 1_000_000.0
_BAR_INDEX_LIMIT = 10**12  # ints below this are bar indices, above it timestamps in ns

Row = Sequence[float]


def ts_of(i: int, start_ns: int = START_NS, step_ns: int | float = MINUTE_NS) -> int:
    """Timestamp of bar ``i`` on a kit grid."""
    return int(start_ns) + int(i) * int(step_ns)


def bars(
    rows: Iterable[Row],
    symbol: str = "T",
    start_ns: int = START_NS,
    step_ns: int | float = 60e9,
    ts: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Validated bars of one symbol from (open, high, low, close[, volume]) tuples.

    ``ts`` overrides the regular grid with explicit timestamps (ns UTC), one per row.
    """
    rows = [tuple(float(x) for x in r) for r in rows]
    for r in rows:
        if len(r) not in (4, 5):
            raise ValueError(f"a bar row is (open, high, low, close[, volume]), got {r!r}")
    stamps = list(ts) if ts is not None else [ts_of(i, start_ns, step_ns) for i in range(len(rows))]
    if len(stamps) != len(rows):
        raise ValueError(f"{len(stamps)} timestamps for {len(rows)} rows")
    frame = pl.DataFrame(
        {
            "ts": pl.Series(stamps, dtype=pl.Int64),
            "symbol": [symbol] * len(rows),
            "open": [r[0] for r in rows],
            "high": [r[1] for r in rows],
            "low": [r[2] for r in rows],
            "close": [r[3] for r in rows],
            "volume": [r[4] if len(r) == 5 else DEFAULT_VOLUME for r in rows],
        }
    )
    return load_bars_frame(frame, source=f"kit:{symbol}")


def combine(*frames: pl.DataFrame) -> pl.DataFrame:
    """Merge bar frames of several symbols into one validated frame in engine order."""
    return load_bars_frame(pl.concat(frames), source="kit:combined")


def _ts(bar_index_or_ts: int) -> int:
    value = int(bar_index_or_ts)
    return ts_of(value) if 0 <= value < _BAR_INDEX_LIMIT else value


def _intent(
    bar_index_or_ts: int,
    *,
    side: int,
    intent: int,
    symbol: str,
    qty: float | None,
    price: float | None = None,
    limit_px: float | None = None,
    stop_px: float | None = None,
    target_px: float | None = None,
    stop_pct: float | None = None,
    target_pct: float | None = None,
    trail_pct: float | None = None,
    otype: int = 0,
    tif: int = 1,
    strategy_id: str = "default",
    entry_stop_px: float | None = None,
) -> dict[str, Any]:
    return {
        "entry_stop_px": entry_stop_px,
        "ts": _ts(bar_index_or_ts),
        "symbol": symbol,
        "side": side,
        "intent": intent,
        "qty": qty,
        "price": price,
        "limit_px": limit_px,
        "stop_px": stop_px,
        "target_px": target_px,
        "stop_pct": stop_pct,
        "target_pct": target_pct,
        "trail_pct": trail_pct,
        "otype": otype,
        "tif": tif,
        "strategy_id": strategy_id,
    }


def entry(
    bar_index_or_ts: int,
    side: int = 1,
    qty: float | None = 100,
    stop_pct: float | None = None,
    target_pct: float | None = None,
    stop_px: float | None = None,
    target_px: float | None = None,
    otype: int = 0,
    limit_px: float | None = None,
    tif: int = 1,
    trail_pct: float | None = None,
    symbol: str = "T",
    price: float | None = None,
    strategy_id: str = "default",
    entry_stop_px: float | None = None,
    **guard: Any,
) -> dict[str, Any]:
    """One entry intent row (``qty=None`` lets the configured sizer decide).

    ``guard`` sets guardrail columns: conviction, target_dollars, source_id, advisory,
    advisory_confidence.
    """
    return guard | _intent(
        bar_index_or_ts,
        side=side,
        intent=0,
        symbol=symbol,
        qty=qty,
        price=price,
        limit_px=limit_px,
        entry_stop_px=entry_stop_px,
        stop_px=stop_px,
        target_px=target_px,
        stop_pct=stop_pct,
        target_pct=target_pct,
        trail_pct=trail_pct,
        otype=otype,
        tif=tif,
        strategy_id=strategy_id,
    )


def exit_(
    bar_index_or_ts: int,
    side: int = -1,
    qty: float | None = None,
    symbol: str = "T",
    strategy_id: str = "default",
    **guard: Any,
) -> dict[str, Any]:
    """One exit intent row (``qty=None`` closes the whole position held); ``guard`` sets
    guardrail columns (exit_reason, advisory, stop_px/target_px...)."""
    return guard | _intent(
        bar_index_or_ts, side=side, intent=1, symbol=symbol, qty=qty, strategy_id=strategy_id
    )


def advisory(
    bar_index_or_ts: int, advice: int = 2, confidence: float = 0.5, symbol: str = "T"
) -> dict[str, Any]:
    """An advisory row for a symbol (``advice`` 2 = WAIT, 1 = GO)."""
    return {
        "ts": _ts(bar_index_or_ts),
        "symbol": symbol,
        "kind": 1,
        "advisory": advice,
        "advisory_confidence": confidence,
    }


def control(bar_index_or_ts: int, action: int, strategy_id: str = "default") -> dict[str, Any]:
    """A control row (``ControlAction``: 0 kill, 1 reset, 2 reducing, 4 connection lost...)."""
    return {
        "ts": _ts(bar_index_or_ts),
        "symbol": "",
        "kind": 2,
        "control": action,
        "strategy_id": strategy_id,
    }


def intents(rows: Iterable[Mapping[str, Any]] = ()) -> pl.DataFrame:
    """An intent table with the exact ``INTENT_SCHEMA`` (empty when no rows).

    Its ``bar`` column is null: the engine attaches each intent to its bar by ts (as-of).
    """
    return pl.DataFrame(list(rows), schema=INTENT_SCHEMA)


def with_bar_rows(table: pl.DataFrame, bar_frame: pl.DataFrame) -> pl.DataFrame:
    """Fill ``bar`` with the row of the bar stamped exactly at each intent's (ts, symbol).

    This is how a vectorised strategy hands its intents over (it knows the row it formed each
    one at). Intents with no bar at their exact (ts, symbol) keep a null ``bar``.
    """
    rows = bar_frame.select("ts", "symbol").with_row_index("_kit_bar")
    return (
        table.drop("bar", strict=False)
        .with_row_index("_kit_row")
        .join(rows, on=["ts", "symbol"], how="left")
        .sort("_kit_row")
        .with_columns(bar=pl.col("_kit_bar").cast(pl.Int64))
        .drop("_kit_row", "_kit_bar")
    )


def run(
    bar_frame: pl.DataFrame,
    intent_rows: pl.DataFrame | Iterable[Mapping[str, Any]],
    instruments: dict[str, Instrument] | None = None,
    bar_rows: bool = False,
    **config: Any,
) -> BacktestResult:
    """Run bars and intents (a frame or rows from ``entry``/``exit_``) under ``config``.

    By default ``bar`` is left null, as in a hand-written intent table, and the engine
    attaches each intent to its bar by ts; ``bar_rows=True`` hands the intents over with
    their bar rows, as vectorised strategies do (``with_bar_rows``).
    """
    table = intent_rows if isinstance(intent_rows, pl.DataFrame) else intents(intent_rows)
    if bar_rows:
        table = with_bar_rows(table, bar_frame)
    sim, profile = split_settings(config)
    return run_backtest(
        bar_frame, table, BacktestConfig(**sim), instruments=instruments, profile=profile
    )


# kit shorthands for the profile keys tests set most
RISK_SHORTHANDS = {
    "sizer": "sizer.kind",
    "qty": "sizer.qty",
    "pct_equity": "sizer.pct_equity",
    "require_protection": "entry.require_protection",
}


def split_settings(settings: Mapping[str, Any]) -> tuple[dict[str, Any], RiskProfile]:
    """Split keyword settings into BacktestConfig options and a RiskProfile.

    Profile keys are given dotted in a ``risk`` mapping (``risk={"risk.max_positions": 2}``),
    by shorthand (``sizer="pct_equity"``), or as a whole ``profile=RiskProfile(...)``.
    """
    sim = dict(settings)
    profile = sim.pop("profile", None) or RiskProfile()
    risk = dict(sim.pop("risk", {}) or {})
    for short, key in RISK_SHORTHANDS.items():
        if short in sim:
            risk[key] = sim.pop(short)
    if risk:
        profile = profile.with_settings(risk)
    return sim, profile


# ---- reading results -----------------------------------------------------------------------
_SIGN = {"BUY": 1.0, "SELL": -1.0}  # a fill with any other side fails loudly (KeyError)


def fill_rows(result: BacktestResult) -> list[tuple[int, str, str, float, float]]:
    """Fills as (ts, role, side, qty, price) tuples, in fill order."""
    f = result.fills_ns.sort("fill_id")
    return list(zip(f["ts"], f["role"], f["side"], f["qty"], f["price"], strict=True))


def order_by_role(result: BacktestResult, role: str) -> dict[str, Any]:
    """The single order with ``role``; fails loudly when there is not exactly one."""
    rows = result.orders_ns.filter(pl.col("role") == role)
    if rows.height != 1:
        raise AssertionError(f"expected one {role} order, found {rows.height}:\n{result.orders_ns}")
    return rows.row(0, named=True)


def positions_after_fills(result: BacktestResult) -> list[tuple[str, float, float]]:
    """(role, position before, position after) for each fill, per symbol, in fill order."""
    held: dict[str, float] = {}
    out = []
    for sym, side, qty, role in (
        result.fills_ns.sort("fill_id").select("symbol", "side", "qty", "role").iter_rows()
    ):
        before = held.get(sym, 0.0)
        after = before + _SIGN[side] * qty
        held[sym] = after
        out.append((role, before, after))
    return out


def final_positions(result: BacktestResult) -> dict[str, float]:
    """Net position per symbol after every fill."""
    held: dict[str, float] = {}
    for sym, side, qty in result.fills_ns.select("symbol", "side", "qty").iter_rows():
        held[sym] = held.get(sym, 0.0) + _SIGN[side] * qty
    return {s: q for s, q in held.items() if q != 0.0}


# ---- the simulated exchange alone ----------------------------------------------------------
def run_exchange(
    rows: Sequence[Row],
    *,
    side: int,
    otype: int,
    qty: float = 100.0,
    limit_px: float = float("nan"),
    stop_px: float = float("nan"),
    tif: int = 1,
    tick: float = 0.0,
    **config: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Match one order, placed at bar 0's close, against ``rows`` on the simulated exchange.

    For order kinds the intent table cannot express (stop-limit): the order goes in as a
    Broker port v2 command (``SimExchange.submit``) after bar 0 was matched, so it is live from
    bar 1 as the order builder makes it, and every bar goes through ``SimExchange.on_bar``.
    Returns the exchange's (orders, fills) record arrays.
    """
    from backstop.brokers.sim.exchange import SimExchange
    from backstop.domain.commands import SubmitOrder
    from backstop.domain.enums import OrderType, Side, TimeInForce
    from backstop.engine.core.records import N_FILLS, N_ORDERS
    from backstop.engine.inputs import instrument_arrays

    inst, _ = instrument_arrays(("T",), {"T": Instrument(symbol="T", tick_size=tick)})
    ex = SimExchange(("T",), inst, BacktestConfig(**split_settings(config)[0]).sim_params())
    order = SubmitOrder(
        "kit-0",
        "T",
        Side(side),
        qty,
        order_type=OrderType(otype),
        tif=TimeInForce(tif),
        limit_price=None if limit_px != limit_px else limit_px,
        stop_price=None if stop_px != stop_px else stop_px,
        ts=START_NS,
        bar=0,
    )
    for i, r in enumerate(rows):
        vol = float(r[4]) if len(r) == 5 else DEFAULT_VOLUME
        ex.on_bar(i, ts_of(i), "T", float(r[0]), float(r[1]), float(r[2]), vol, 0)
        if i == 0:
            ex.submit(order)
    book = ex.book
    return book.orders[: book.ctr[N_ORDERS]].copy(), book.fills[: book.ctr[N_FILLS]].copy()


# ---- hypothesis: random bar paths ----------------------------------------------------------
@st.composite
def price_paths(
    draw: st.DrawFn,
    n: int,
    starts: Sequence[float] = (50.0, 100.0),
    gap: float = 0.03,
    move: float = 0.04,
    wick: float = 0.03,
    volumes: Sequence[float] | None = None,
) -> list[tuple[float, ...]]:
    """A valid OHLC path of ``n`` bars on a one-cent grid: each bar opens up to ``gap`` away
    from the last close, closes up to ``move`` from its open, and reaches up to ``wick``
    beyond both. With ``volumes`` each row also gets a volume drawn from them (OHLCV)."""
    price = draw(st.sampled_from(list(starts)))
    rows: list[tuple[float, ...]] = []
    for _ in range(n):
        o = round(max(price * (1 + draw(st.floats(-gap, gap))), 1.0), 2)
        c = round(max(o * (1 + draw(st.floats(-move, move))), 1.0), 2)
        h = round(max(o, c) * (1 + draw(st.floats(0.0, wick))), 2)
        lo = max(round(min(o, c) * (1 - draw(st.floats(0.0, wick))), 2), 0.5)
        row: tuple[float, ...] = (o, max(h, o, c), min(lo, o, c), c)
        if volumes is not None:
            row = (*row, float(draw(st.sampled_from(list(volumes)))))
        rows.append(row)
        price = c
    return rows
