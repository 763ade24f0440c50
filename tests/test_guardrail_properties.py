"""Properties of the guardrail pipeline over random bars, signals, advisories and controls.

Each example draws one New York session of minute bars for one or two symbols, a random
stream of entries (market and limit, protected or not), exits of random side and size,
WAIT/GO advisories and manual controls (kill switch, reset, reducing), a random risk profile
(protection required or not, max positions, time stop, daily loss limit, kill-switch flatten)
and a random fill model (partial fills under a volume cap, slippage, fees). Then, whatever
the input:

(a) an exit never increases absolute exposure, never flips a position and never opens one,
    whoever sent it (a signal, a bracket leg, the time stop, the kill switch);
(b) every filled protected entry gets both protective legs at its first fill, and they stay
    working until one of them fills or the position is closed; while a protected position
    is held, its legs cover exactly the quantity held;
(c) every order, fill, verdict and round trip names its trade cycle and its strategy;
(d) the daily loss limit is never exceeded by more than one trade's loss: once the day's
    loss reaches the limit no entry is approved, so only the trade already open can add to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import (
    advisory,
    bars,
    combine,
    control,
    entry,
    exit_,
    final_positions,
    intents,
    positions_after_fills,
    price_paths,
    run,
)

from backstop.domain.instruments import Instrument

SYMBOLS = ("A", "B")
INSTRUMENTS = {s: Instrument.equity(s) for s in SYMBOLS}
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SIGN = {"BUY": 1.0, "SELL": -1.0}
STOP_ROLES = ("STOP_LOSS", "TRAILING")
LEG_ROLES = (*STOP_ROLES, "TAKE_PROFIT")
EPS = 1e-9


# ---- generators ----------------------------------------------------------------------------
def ohlcv(n: int) -> st.SearchStrategy[list[tuple[float, ...]]]:
    """Bars with gaps, wide ranges and thin volumes (partial fills under a volume cap)."""
    return price_paths(n, (40.0, 100.0), 0.03, 0.04, 0.02, (300, 2_000, 1_000_000))


@st.composite
def signal_rows(
    draw: st.DrawFn, n: int, symbols: tuple[str, ...], controls: bool = True
) -> list[dict[str, Any]]:
    """Entries (protected or not, market or limit), exits, advisories and controls."""
    rows: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(3, 24))):
        b = draw(st.integers(0, n - 1))
        symbol = draw(st.sampled_from(symbols))
        side = draw(st.sampled_from([1, -1]))
        kind = draw(st.sampled_from(["entry"] * 4 + ["exit"] * 3 + ["advice", "control"]))
        if kind == "exit":
            qty = draw(st.sampled_from([None, 5.0, 40.0, 500.0]))
            rows.append(exit_(b, side=side, qty=qty, symbol=symbol))
        elif kind == "advice":
            conf = draw(st.sampled_from([0.3, 0.9]))
            rows.append(advisory(b, draw(st.sampled_from([1, 2])), conf, symbol=symbol))
        elif kind == "control":
            if controls:
                rows.append(control(b, draw(st.sampled_from([0, 0, 1, 2, 3]))))
        else:
            legs = draw(st.sampled_from(["both", "both", "trail", "stop", "none"]))
            limit = draw(st.integers(0, 3)) == 0
            rows.append(
                entry(
                    b,
                    side=side,
                    qty=draw(st.sampled_from([None, 10.0, 100.0])),
                    stop_pct=draw(st.sampled_from([0.005, 0.02])) if legs != "none" else None,
                    target_pct=0.02 if legs in ("both", "trail") else None,
                    trail_pct=0.01 if legs == "trail" else None,
                    otype=1 if limit else 0,
                    limit_px=draw(st.sampled_from([40.0, 99.0, 100.0])) if limit else None,
                    symbol=symbol,
                    strategy_id=draw(st.sampled_from(["s1", "s2"])),
                )
            )
    rows.sort(key=lambda r: r["ts"])
    return rows


@st.composite
def risk_settings(draw: st.DrawFn) -> dict[str, Any]:
    risk: dict[str, Any] = {
        "entry.require_protection": draw(st.booleans()),
        "kill.flatten": draw(st.booleans()),
        "advisory.wait_blocks_exits": draw(st.booleans()),
    }
    for key, values in (
        ("risk.max_positions", [None, 1, 2]),
        ("exits.time_stop_minutes", [None, 3.0]),
        ("risk.daily_loss_dollars", [None, 150.0, 1_000.0]),
        ("orders.max_qty", [None, 60.0]),
    ):
        value = draw(st.sampled_from(values))
        if value is not None:
            risk[key] = value
    return {k: v for k, v in risk.items() if v is not None}


@dataclass(frozen=True)
class Case:
    bars: pl.DataFrame
    rows: list[dict[str, Any]]
    config: dict[str, Any]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(6, 30))  # minutes after 09:30: one session
    symbols = SYMBOLS[: draw(st.integers(1, 2))]
    frame = combine(*(bars(draw(ohlcv(n)), symbol=s) for s in symbols))
    config = {
        "risk": draw(risk_settings()),
        "max_participation": draw(st.sampled_from([0.0, 0.0, 0.05])),
        "slippage": "ticks",
        "slippage_value": float(draw(st.sampled_from([0, 1]))),
        "commission": "per_share",
        "commission_rate": 0.005,
        "commission_min": 1.0,
    }
    return Case(frame, draw(signal_rows(n, symbols)), config)


def run_case(case: Case):
    return run(case.bars, intents(case.rows), instruments=INSTRUMENTS, **case.config)


# ---- readings of a result ------------------------------------------------------------------
def position_at(fills: pl.DataFrame, symbol: str, ts: int) -> float:
    """The position in ``symbol`` after every fill stamped at or before ``ts``."""
    f = fills.filter((pl.col("symbol") == symbol) & (pl.col("ts") <= ts))
    return float(sum(SIGN[s] * q for s, q in f.select("side", "qty").iter_rows()))


# ---- properties ----------------------------------------------------------------------------
@SETTINGS
@given(cases())
def test_exits_never_add_exposure_whoever_sends_them(case: Case) -> None:
    r = run_case(case)
    for role, before, after in positions_after_fills(r):
        if role == "ENTRY":
            continue
        assert before != 0.0, f"a {role} fill opened a position"
        assert abs(after) <= abs(before) + EPS, f"{role} grew a position: {before} -> {after}"
        assert abs(after) < EPS or (after > 0) == (before > 0), f"{role} flipped {before}"


@SETTINGS
@given(cases())
def test_filled_protected_entries_keep_both_legs_until_one_fills_or_the_position_closes(
    case: Case,
) -> None:
    r = run_case(case)
    orders, fills = r.orders, r.fills.sort("fill_id")
    entries = orders.filter((pl.col("role") == "ENTRY") & (pl.col("filled_qty") > 0))
    protected: set[str] = set()  # cycles whose entry named a stop and a target
    for e in entries.iter_rows(named=True):
        legs = orders.filter(pl.col("parent_order_id") == e["order_id"])
        cycle = int(e["trade_cycle_id"].rsplit("-", 1)[1])
        row = case.rows[cycle]
        if row["target_pct"] is None or (row["stop_pct"] is None and row["trail_pct"] is None):
            continue  # an unprotected entry (only allowed when the profile does not insist)
        protected.add(e["trade_cycle_id"])
        roles = legs["role"].to_list()
        assert len(roles) == 2 and "TAKE_PROFIT" in roles, roles
        assert any(role in STOP_ROLES for role in roles), roles
        first_fill = fills.filter(pl.col("order_id") == e["order_id"])["ts"].min()
        for leg in legs.iter_rows(named=True):
            assert leg["created_ts"] == first_fill, "legs are placed when the entry fills"
            assert leg["reduce_only"] and leg["side"] != e["side"]
            if leg["status"] == "FILLED":
                continue
            if leg["status"] == "CANCELED":
                codes = leg["reason_codes"]
                flat = position_at(fills, leg["symbol"], leg["done_ts"]) == 0.0
                assert "OCO_SIBLING_FILLED" in codes or flat, (leg, codes)
            else:
                assert leg["status"] in ("ACCEPTED", "PARTIALLY_FILLED"), leg
                assert position_at(fills, leg["symbol"], r.bars["ts"].max()) != 0.0
    held = final_positions(r)
    working = orders.filter(
        pl.col("status").is_in(["ACCEPTED", "PARTIALLY_FILLED"]) & pl.col("reduce_only")
    )
    for sym in sorted(set(entries["symbol"])):
        if abs(held.get(sym, 0.0)) < EPS:
            assert working.filter(pl.col("symbol") == sym).is_empty(), "a leg outlived its trade"
            continue
        last_entry = fills.filter((pl.col("symbol") == sym) & (pl.col("role") == "ENTRY"))
        if last_entry["trade_cycle_id"][-1] not in protected:
            continue  # the position held now was opened without protection
        mine = working.filter(pl.col("symbol") == sym).with_columns(
            left=pl.col("qty") - pl.col("filled_qty")
        )
        stop_left = mine.filter(pl.col("role").is_in(STOP_ROLES))["left"].sum()
        target_left = mine.filter(pl.col("role") == "TAKE_PROFIT")["left"].sum()
        exit_left = mine.filter(~pl.col("role").is_in(LEG_ROLES))["left"].sum()
        assert math.isclose(stop_left, abs(held[sym]), abs_tol=EPS), (sym, held, mine)
        assert math.isclose(target_left, abs(held[sym]), abs_tol=EPS), (sym, held, mine)
        assert exit_left <= abs(held[sym]) + EPS, "working exits exceed the position"


@SETTINGS
@given(cases())
def test_every_record_names_its_cycle_and_strategy(case: Case) -> None:
    r = run_case(case)
    for name in ("orders", "fills", "verdicts", "trades"):
        frame = getattr(r, name)
        for column in ("trade_cycle_id", "strategy_id"):
            values = frame.get_column(column)
            assert values.null_count() == 0, f"{name}.{column} has nulls"
            assert (values.str.len_chars() > 0).all(), f"{name}.{column} has empty names"
    # a cycle's orders, fills and round trips all carry the strategy its verdict named
    owner = dict(zip(r.verdicts["trade_cycle_id"], r.verdicts["strategy_id"], strict=True))
    for name in ("orders", "fills", "trades"):
        frame = getattr(r, name)
        for cycle, strategy in frame.select("trade_cycle_id", "strategy_id").iter_rows():
            assert owner.get(cycle, strategy) == strategy, (name, cycle, strategy)
    # every signal got exactly one verdict of its own
    signals = sum(1 for row in case.rows if row.get("kind", 0) == 0)
    from_signals = r.verdicts.filter(pl.col("source") == "signal")
    assert from_signals.height == signals
    assert from_signals["trade_cycle_id"].n_unique() == signals


@st.composite
def loss_cases(draw: st.DrawFn) -> tuple[Case, float]:
    """One session, protected market entries only, one position at a time, a loss limit."""
    n = draw(st.integers(8, 30))
    symbols = SYMBOLS[: draw(st.integers(1, 2))]
    frame = combine(*(bars(draw(ohlcv(n)), symbol=s) for s in symbols))
    limit = draw(st.sampled_from([50.0, 200.0, 800.0]))
    rows = []
    for _ in range(draw(st.integers(2, 20))):
        rows.append(
            entry(
                draw(st.integers(0, n - 1)),
                side=draw(st.sampled_from([1, -1])),
                qty=draw(st.sampled_from([50.0, 200.0])),
                stop_pct=draw(st.sampled_from([0.003, 0.01])),
                target_pct=draw(st.sampled_from([0.005, 0.02])),
                symbol=draw(st.sampled_from(symbols)),
            )
        )
    rows.sort(key=lambda r: r["ts"])
    config = {
        "risk": {"risk.daily_loss_dollars": limit, "risk.max_positions": 1},
        "slippage": "ticks",
        "slippage_value": float(draw(st.sampled_from([0, 2]))),
        "commission": "per_share",
        "commission_rate": 0.005,
        "commission_min": 1.0,
    }
    return Case(frame, rows, config), limit


@SETTINGS
@given(loss_cases())
def test_daily_loss_is_never_exceeded_by_more_than_one_trade(case_limit) -> None:
    case, limit = case_limit
    r = run_case(case)
    start = 100_000.0
    day_loss = start - r.equity["equity"][-1]
    trade_losses = [-p for p in r.trades["net_pnl"].to_list() if p < 0]
    last_close = dict(
        r.bars.sort("ts").group_by("symbol", maintain_order=True).last().select("symbol", "close")
        .iter_rows()
    )  # fmt: skip
    held = final_positions(r)
    for sym, pos in held.items():  # the open trade's loss, marked at the last close
        if abs(pos) < EPS:
            continue
        # one position at a time, no volume cap: the open trade is its symbol's last fill
        opened = r.fills.filter(pl.col("symbol") == sym).sort("fill_id").tail(1)
        assert opened["role"][0] == "ENTRY"
        px, fee = opened["price"][0], opened["fee"][0]
        marked = pos * (last_close[sym] - px) - fee
        trade_losses.append(max(0.0, -marked))
    worst = max(trade_losses, default=0.0)
    assert day_loss <= limit + worst + 1e-6, (day_loss, limit, worst)
    # the gate's boundary: refused exactly when the equity it saw was down by the limit
    for approved, codes, equity in r.verdicts.select("approved", "reason_codes", "equity").rows():
        down = start - equity >= limit
        assert ("DAILY_LOSS_LIMIT" in codes) == down, (codes, equity)
        assert not (approved and down)
