"""BacktestResult: the run's records as polars frames, its stats, plots and ambiguity report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from backstop.domain.enums import (
    GuardEventKind,
    Intent,
    KillCause,
    OrderRole,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
    TimeInForce,
    reason_names,
)
from backstop.domain.instruments import Instrument
from backstop.domain.orders import CLIENT_ID_PREFIX, LEG_CODES
from backstop.engine.config import BacktestConfig
from backstop.engine.core.curves import equity_by_ts_nb, positions_by_row_nb
from backstop.engine.core.guard import AI_N_EVENTS
from backstop.engine.core.records import N_TRADES, N_VERDICTS
from backstop.engine.profile import RiskProfile
from backstop.engine.run_warnings import negative_equity_warnings
from backstop.engine.zoned import run_zone, zoned
from backstop.errors import BackstopError

NO_ORDERS_FROM_SIGNALS = "NO_ORDERS_FROM_SIGNALS"
"""Run finding: signals came in and not one order went out (the silent no-op of seeds 000
and 003). The CLI's check mode exits non-zero on it."""
LOW_ORDER_SHARE = "LOW_ORDER_SHARE"
"""Run finding: a strategy's share of signals that became orders is below the profile's
``checks.min_order_share`` (most signals refused is a quieter no-op). ``--check`` fails."""

if TYPE_CHECKING:
    from backstop.engine.inputs import BarArrays
    from backstop.engine.learning_state import LearningState


@dataclass(frozen=True, slots=True)
class RunRecords:
    """The record arrays of one run, trimmed to what was written (views: a finished run's
    buffers are never written again)."""

    orders: np.ndarray
    fills: np.ndarray
    trades: np.ndarray
    verdicts: np.ndarray
    guard: np.ndarray  # guardrail state changes (kill switch, learning loop, ...)
    # the final guard's strategy ints, floats and shadow trades (``learning_state``)
    learning: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def of_driver(cls, orders: np.ndarray, fills: np.ndarray, pf: Any, dec: Any, g: Any):  # type: ignore[no-untyped-def]
        """A run's records: the orders and fills its driver kept (the fused loop's are the
        simulated book's; the event driver's, its own), with the core's trades, verdicts and
        guardrail events."""
        return cls(
            orders=orders,
            fills=fills,
            trades=pf.trades[: pf.ctr[N_TRADES]],
            verdicts=dec.verdicts[: dec.ctr[N_VERDICTS]],
            guard=g.events[: g.ai[AI_N_EVENTS]],
            learning=(g.si.copy(), g.sf.copy(), g.shadow.copy()),
        )


def _enum_col(values: np.ndarray, enum: Any, name: str) -> pl.Series:
    """Map kernel ints to enum member names (vectorised, deterministic)."""
    members = list(enum)
    lo = min(int(m) for m in members)
    hi = max(int(m) for m in members)
    lookup = ["?"] * (hi - lo + 1)
    for m in members:
        lookup[int(m) - lo] = m.name
    return _named(lookup, np.asarray(values).astype(np.int64) - lo, name)


def _named(names: Sequence[str], index: np.ndarray, name: str) -> pl.Series:
    """``names[index]`` as a polars string column, gathered natively (no Python string per
    row: W's 548k orders build in a fraction of the time)."""
    return pl.Series(name, list(names), dtype=pl.String).gather(index.astype(np.int64))


def _text(expr: pl.Expr, **columns: np.ndarray) -> pl.Series:
    """One string column made by ``expr`` over ``columns`` in a single pass (an id written
    as one ``concat_str``, not one string per operator: W's orders 0.14 s -> 0.1 s)."""
    return pl.DataFrame({name: np.asarray(c) for name, c in columns.items()}).select(expr)[:, 0]


def reason_lists(masks: np.ndarray) -> pl.Series:
    """Bit masks -> lists of reason-code names (enum order), one list per distinct mask.

    The distinct masks come from a hash pass and each row finds its own by binary search (no
    sort of every row: W's 548k orders, 0.06 s -> 0.01 s)."""
    codes = pl.Series("m", np.asarray(masks, dtype=np.int64).ravel())
    uniq = codes.unique().sort()
    lists = pl.Series(
        "reason_codes",
        [reason_names(int(m)) for m in uniq.to_list()],
        dtype=pl.List(pl.String),
    )
    return lists.gather(uniq.search_sorted(codes))


@dataclass(repr=False)
class BacktestResult:
    """Everything a run produced. Frames are polars; ``.to_pandas()`` on any of them works.

    It shows itself as a short summary (a few lines in a terminal, a table in Jupyter), never
    its arrays: see ``backstop.engine.display``.
    """

    run_id: str
    config: BacktestConfig
    profile: RiskProfile
    bars: pl.DataFrame
    arrays: BarArrays
    instruments: tuple[Instrument, ...]
    strategies: tuple[str, ...]
    records: RunRecords
    event_symbols: pl.Series  # the symbol each event (in decision order) named
    final_cash: float
    run_seconds: float
    label: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    strategy_name: str = ""
    warnings: list[str] = field(default_factory=list)
    data_info: dict[str, Any] = field(default_factory=dict)  # symbol, timezone: as assumed
    source_refs: pl.DataFrame | None = None  # text source ids by (strategy_id, source_id)
    tz: str | None = None  # the zone the bars' naive times were read in, when one was given
    # a live run's reconciles with its broker, as rows of the journal's reconcile table
    reconcile_rows: list[dict[str, Any]] = field(default_factory=list)

    def _cycle_col(self, cycles: np.ndarray) -> pl.Series:
        ids = self._cycle_ids
        if len(cycles) and (int(cycles.min()) < 0 or int(cycles.max()) >= ids.len()):
            return self._cycle_text(cycles)
        return ids.gather(cycles.astype(np.int64, copy=False))

    def _cycle_text(self, cycles: np.ndarray) -> pl.Series:
        number = pl.col("c").cast(pl.String).str.zfill(7)
        return _text(pl.concat_str(pl.lit(f"{self.run_id}-"), number), c=cycles).alias(
            "trade_cycle_id"
        )

    @cached_property
    def _cycle_ids(self) -> pl.Series:
        """Every cycle's id, written once and gathered by each table that names cycles (W's
        verdicts, orders, fills and trades name 1.2M cycles, 276k of them distinct)."""
        r = self.records
        tops = [int(a["cycle"].max()) for a in (r.verdicts, r.orders, r.fills, r.trades) if len(a)]
        return self._cycle_text(np.arange(max(tops, default=-1) + 1, dtype=np.int64))

    def _symbol_col(self, sym: np.ndarray) -> pl.Series:
        return _named((*self.arrays.symbols, "?", "?"), sym, "symbol")

    def _strategy_col(self, strat: np.ndarray) -> pl.Series:
        return _named((*self.strategies, "default"), strat, "strategy_id")

    # ---- frames for people: times as zone-aware datetimes in ``zone`` -------------------
    @property
    def zone(self) -> str:
        """The zone the frames show times in (``backstop.engine.zoned``): ``tz``, else the
        one exchange zone of the run's symbols, else UTC."""
        return run_zone(self.tz, self.arrays.symbols)

    def _zoned(self, name: str) -> pl.DataFrame:
        """The ``<name>_ns`` frame shown in ``zone``, built once per zone (``tz`` may be set
        after the run, as the facade and the CLI do)."""
        cache = self.__dict__.setdefault("_zoned_frames", {})
        key = (name, self.zone)
        if key not in cache:
            cache[key] = zoned(getattr(self, f"{name}_ns"), self.zone)
        return cache[key]

    @property
    def orders(self) -> pl.DataFrame:
        """Every order: ids, roles, prices, status, and why it was cancelled or changed."""
        return self._zoned("orders")

    @property
    def fills(self) -> pl.DataFrame:
        """Every fill with its order, cycle, fees, slippage and intrabar-ambiguity flag."""
        return self._zoned("fills")

    @property
    def trades(self) -> pl.DataFrame:
        """Round trips: entry/exit, realized P&L, fees, exit reason, cycle and strategy."""
        return self._zoned("trades")

    @property
    def verdicts(self) -> pl.DataFrame:
        """Every decision of the pipeline, approved or not, with the numbers it used."""
        return self._zoned("verdicts")

    def learning_state(self) -> LearningState:
        """The learning loop's state at the end of the run, to restore at the start of the
        next (``backstop.engine.learning_state``; ``.save(path)`` writes it)."""
        from backstop.engine.learning_state import LearningState

        if self.records.learning is None:
            raise BackstopError("this result kept no learning state (a live session's)")
        return LearningState.of_arrays(
            self.records.learning, self.strategies, self.arrays.symbols, self.profile
        )

    @property
    def guard_events(self) -> pl.DataFrame:
        """Every guardrail state change: kill switch, trading state, learning loop, day roll."""
        return self._zoned("guard_events")

    @property
    def equity(self) -> pl.DataFrame:
        """Equity, cash and gross exposure at each timestamp, computed after the run."""
        return self._zoned("equity")

    # ---- the same frames as the journal holds them: times in int ns UTC ----------------
    @cached_property
    def orders_ns(self) -> pl.DataFrame:
        """``orders`` with ``created_ts``/``done_ts`` in int ns UTC."""
        return self.orders_of(self.records.orders)

    def orders_of(self, o: np.ndarray) -> pl.DataFrame:
        """``orders`` for some of the order records (the journal writes them in batches)."""
        cycle = self._cycle_col(o["cycle"])
        role = _enum_col(o["role"], OrderRole, "role")
        legs = pl.Series([LEG_CODES[OrderRole(int(r))] for r in range(len(OrderRole))])
        client = _text(
            pl.concat_str(
                pl.lit(f"{CLIENT_ID_PREFIX}-{self.run_id}-"),
                pl.col("c").cast(pl.String),
                pl.lit("-"),
                pl.lit(legs).gather(pl.col("r")),
                pl.lit("-"),
                pl.col("n").cast(pl.String),
            ),
            c=o["cycle"],
            r=o["role"].astype(np.int64),
            n=o["leg_no"],
        ).alias("client_order_id")
        return pl.DataFrame(
            [
                pl.Series("order_id", o["id"]),
                client,
                cycle,
                self._strategy_col(o["strategy"]),
                self._symbol_col(o["sym"]),
                _enum_col(o["side"], Side, "side"),
                _enum_col(o["otype"], OrderType, "order_type"),
                _enum_col(o["tif"], TimeInForce, "tif"),
                role,
                _enum_col(o["status"], OrderStatus, "status"),
                pl.Series("reduce_only", o["reduce_only"]),
                pl.Series("qty", o["qty"]),
                pl.Series("filled_qty", o["filled"]),
                pl.Series("avg_fill_price", o["avg_fill"]).fill_nan(None),
                pl.Series("limit_price", o["limit_px"]).fill_nan(None),
                pl.Series("stop_price", o["stop_px"]).fill_nan(None),
                pl.Series("parent_order_id", o["parent"]),
                pl.Series("oco_sibling_id", o["sibling"]),
                pl.Series("created_ts", o["created_ts"]),
                pl.Series("done_ts", np.where(o["done_ts"] >= 0, o["done_ts"], 0))
                .cast(pl.Int64)
                .scatter(np.flatnonzero(o["done_ts"] < 0), None),
                reason_lists(o["reasons"]),
            ]
        )

    @cached_property
    def fills_ns(self) -> pl.DataFrame:
        """``fills`` with ``ts`` in int ns UTC."""
        return self.fills_of(self.records.fills)

    def fills_of(self, f: np.ndarray) -> pl.DataFrame:
        """``fills`` for some of the fill records."""
        return pl.DataFrame(
            [
                pl.Series("fill_id", f["id"]),
                pl.Series("order_id", f["order"]),
                self._cycle_col(f["cycle"]),
                self._strategy_col(f["strategy"]),
                self._symbol_col(f["sym"]),
                _enum_col(f["side"], Side, "side"),
                _enum_col(f["role"], OrderRole, "role"),
                pl.Series("ts", f["ts"]),
                pl.Series("qty", f["qty"]),
                pl.Series("price", f["price"]),
                pl.Series("fee", f["fee"]),
                pl.Series("slippage", f["slippage"]),
                pl.Series("ambiguous", f["ambiguous"]),
            ]
        )

    @cached_property
    def trades_ns(self) -> pl.DataFrame:
        """``trades`` with ``entry_ts``/``exit_ts`` in int ns UTC."""
        return self.trades_of(self.records.trades)

    def trades_of(self, t: np.ndarray) -> pl.DataFrame:
        """``trades`` for some of the round-trip records."""
        return pl.DataFrame(
            [
                pl.Series("trade_id", t["id"]),
                self._cycle_col(t["cycle"]),
                self._strategy_col(t["strategy"]),
                self._symbol_col(t["sym"]),
                _named(("short", "long"), (t["side"] > 0).astype(np.int64), "direction"),
                pl.Series("qty", t["qty"]),
                pl.Series("entry_ts", t["entry_ts"]),
                pl.Series("entry_price", t["entry_px"]),
                pl.Series("exit_ts", t["exit_ts"]),
                pl.Series("exit_price", t["exit_px"]),
                pl.Series("pnl", t["pnl"]),
                pl.Series("fees", t["fees"]),
                pl.Series("net_pnl", t["pnl"] - t["fees"]),
                _enum_col(t["exit_role"], OrderRole, "exit_reason").str.to_lowercase(),
                pl.Series("ambiguous", t["ambiguous"]),
                pl.Series("bars_held", t["exit_bar"] - t["entry_bar"]),
            ]
        )

    @cached_property
    def verdicts_ns(self) -> pl.DataFrame:
        """``verdicts`` with ``ts`` in int ns UTC."""
        return self.verdicts_of(self.records.verdicts)

    def verdicts_of(self, v: np.ndarray) -> pl.DataFrame:
        """``verdicts`` for some of the verdict records."""
        from_signal = v["event"] >= 0
        # a signal's verdict names the symbol its event named; the engine's, its own symbol
        symbol = self._symbol_col(v["sym"])
        if len(v):
            named = self.event_symbols.cast(pl.String).gather(np.where(from_signal, v["event"], 0))
            symbol = named.zip_with(pl.Series(from_signal), symbol).alias("symbol")
        advice = _named(("", "GO", "WAIT"), v["advice"], "advisory").replace("", None)
        return pl.DataFrame(
            [
                pl.Series("ts", v["ts"]),
                self._cycle_col(v["cycle"]),
                self._strategy_col(v["strategy"]),
                symbol,
                _enum_col(np.where(v["side"] >= 0, 1, -1), Side, "side"),
                _enum_col(v["intent"], Intent, "intent"),
                _named(("engine", "signal"), from_signal.astype(np.int64), "source"),
                pl.Series("approved", v["approved"]),
                reason_lists(v["reasons"]),
                pl.Series("qty", v["qty"]),
                pl.Series("price", v["price"]).fill_nan(None),
                pl.Series("stop_price", v["stop_px"]).fill_nan(None),
                pl.Series("target_price", v["target_px"]).fill_nan(None),
                pl.Series("risk", v["risk"]).fill_nan(None),
                pl.Series("position", v["position"]),
                pl.Series("equity", v["equity"]).fill_nan(None),
                pl.Series("exposure", v["exposure"]).fill_nan(None),
                pl.Series("conviction", v["conviction"]).fill_nan(None),
                pl.Series("source_id", v["source_id"]).cast(pl.Int64).replace(-1, None),
                advice,
                pl.Series("advisory_confidence", v["advice_conf"]).fill_nan(None),
                pl.Series("order_id", v["entry_order"]),
                self._source_ref_col(v),
            ]
        )

    def _source_ref_col(self, v: np.ndarray) -> pl.Series:
        """The signal's source id as given: text ids through ``source_refs``, numbers as text."""
        from backstop.engine.run_warnings import source_ref_column

        return source_ref_column(v, self._strategy_col(v["strategy"]), self.source_refs)

    @cached_property
    def guard_events_ns(self) -> pl.DataFrame:
        """``guard_events`` with ``ts`` in int ns UTC."""
        e = self.records.guard
        cause = _enum_col(e["cause"], KillCause, "kill_cause")
        is_kill = (e["kind"] == int(GuardEventKind.KILL_ACTIVATED)) | (
            e["kind"] == int(GuardEventKind.DESYNC)
        )
        names = (*self.strategies, None)
        strat = pl.Series(
            "strategy_id", [names[k] for k in e["strategy"].tolist()], dtype=pl.String
        )
        syms = (*self.arrays.symbols, None)
        sym = pl.Series("symbol", [syms[k] for k in e["sym"].tolist()], dtype=pl.String)
        return pl.DataFrame(
            [
                pl.Series("ts", e["ts"]),
                _enum_col(e["kind"], GuardEventKind, "kind"),
                strat,
                sym,
                cause.scatter(np.flatnonzero(~is_kill), None) if len(e) else cause,
                pl.Series("value", e["value"]),
                pl.Series("cycle", e["cycle"]),
            ]
        )

    @cached_property
    def equity_ns(self) -> pl.DataFrame:
        """``equity`` with ``ts`` in int ns UTC."""
        a = self.arrays
        f = self.records.fills
        mult = np.array([i.multiplier for i in self.instruments], dtype=np.float64)
        signed = f["side"].astype(np.float64) * f["qty"]
        pos = positions_by_row_nb(a.sym, f["bar"], f["sym"], signed, len(a.symbols))
        # per-row sums in fill order, as np.add.at adds them (W: 0.22 s -> a few ms)
        flow = -signed * f["price"] * mult[f["sym"]] - f["fee"]
        flows = np.bincount(f["bar"], weights=flow, minlength=a.n).astype(np.float64, copy=False)
        ts, eq, expo = equity_by_ts_nb(
            a.ts, a.sym, a.close, pos, mult, flows, self.config.initial_cash, len(a.symbols)
        )
        return pl.DataFrame({"ts": ts, "equity": eq, "gross_exposure": expo})

    # ---- summaries ---------------------------------------------------------------------
    @cached_property
    def buy_hold_return(self) -> float:
        """The bars' equal-weighted buy & hold return (the stats and the journal both show it:
        computed once, from the bar arrays in engine order)."""
        from backstop.engine.stats import buy_hold_return_of_arrays

        a = self.arrays
        return buy_hold_return_of_arrays(a.sym, a.close, len(a.symbols))

    @cached_property
    def stats(self) -> dict[str, Any]:
        """Every performance figure (``backstop.engine.stats`` defines each), plus backstop's
        own: verdicts by reason code, ambiguous exits and the intrabar P&L band."""
        from backstop.engine.stats import compute_stats

        trades = self.__dict__.get("trades_ns")  # the full frame, when it is built already
        out = compute_stats(
            self.equity_ns,
            self._stats_trades() if trades is None else trades,
            self.config.initial_cash,
            buy_hold_return=self.buy_hold_return,
        )
        amb = self.ambiguity()
        low, high = amb["pnl_range"]
        return out | {
            "ambiguous_exits": float(amb["ambiguous_round_trips"]),
            "pnl_intrabar_low": float(low),
            "pnl_intrabar_high": float(high),
            "verdicts_by_reason": dict(self._verdicts_by_reason),
        }

    def _stats_trades(self) -> pl.DataFrame:
        """The columns of ``trades_ns`` that ``compute_stats`` reads, with the same values,
        straight from the round-trip records: no id or name column is built for figures that
        never read one (W's 138k trades: 0.07 s -> a few ms, for every run of a sweep too)."""
        t = self.records.trades
        return pl.DataFrame(
            [
                _named(("short", "long"), (t["side"] > 0).astype(np.int64), "direction"),
                pl.Series("entry_ts", t["entry_ts"]),
                pl.Series("entry_price", t["entry_px"]),
                pl.Series("exit_ts", t["exit_ts"]),
                pl.Series("exit_price", t["exit_px"]),
                pl.Series("net_pnl", t["pnl"] - t["fees"]),
            ]
        )

    @cached_property
    def _verdicts_by_reason(self) -> dict[str, int]:
        """Verdicts carrying each reason code, in enum order (codes with none left out).

        Only the verdicts with a reason are looked at, once per run (W: 550k verdicts, 2.8k
        with a reason: 0.08 s per call -> under 1 ms); ``summary`` and ``stats`` share it."""
        masks = self.records.verdicts["reasons"]
        masks = masks[masks != 0]
        out: dict[str, int] = {}
        for code in ReasonCode:
            n = int(((masks & (1 << int(code))) != 0).sum())
            if n:
                out[code.name] = n
        return out

    @property
    def round_trips(self) -> int:
        return len(self.records.trades)

    @property
    def pnl(self) -> float:
        """Realized P&L of closed round trips, net of fees."""
        t = self.records.trades
        return float(t["pnl"].sum() - t["fees"].sum())

    def ambiguity(self) -> dict[str, Any]:
        """How much of the result hangs on the intrabar-ordering assumption.

        Counts round trips whose exit was decided on a bar that touched both stop and target,
        and re-prices them under stop-first, target-first and open-proximity ordering. The
        re-pricing holds the rest of the run fixed (first-order: with fixed-size entries the
        later trades do not depend on these exit prices).
        """
        t = self.records.trades
        amb = t["ambiguous"]
        base = float(t["pnl"].sum() - t["fees"].sum())
        alts = {
            "stop_first": float(t["pnl_stop_first"].sum() - t["fees"].sum()),
            "target_first": float(t["pnl_target_first"].sum() - t["fees"].sum()),
            "open_proximity": float(t["pnl_open_proximity"].sum() - t["fees"].sum()),
        }
        return {
            "ambiguous_round_trips": int(amb.sum()),
            "round_trips": len(t),
            "policy": self.config.intrabar,
            "pnl": base,
            "pnl_by_ordering": alts,
            "pnl_range": (min(alts.values()), max(alts.values())),
        }

    def summary(self) -> dict[str, Any]:
        """The headline numbers of the run, JSON-ready."""
        v = self.records.verdicts
        orders = self.records.orders
        amb = self.ambiguity()
        is_signal = (v["event"] >= 0) & (v["intent"] != int(Intent.STOP_UPDATE))
        signals = int(is_signal.sum())
        share = self.order_share(is_signal)
        findings = []
        if signals > 0 and len(orders) == 0:
            findings.append(NO_ORDERS_FROM_SIGNALS)
        else:
            floor = float(self.profile.get("checks.min_order_share"))
            if any(s["share"] < floor for s in share.values() if s["signals"]):
                findings.append(LOW_ORDER_SHARE)
        kills = self.records.guard
        return {
            "run_id": self.run_id,
            "profile": self.profile.name,
            "bars": int(self.arrays.n),
            "symbols": len(self.arrays.symbols),
            "signals": signals,
            "approved": int(v["approved"][is_signal].sum()),
            "stop_updates": int((v["intent"] == int(Intent.STOP_UPDATE)).sum()),
            "orders": len(orders),
            "findings": findings,
            "kill_switch_trips": int((kills["kind"] == int(GuardEventKind.KILL_ACTIVATED)).sum()),
            "fills": len(self.records.fills),
            "round_trips": self.round_trips,
            "pnl": round(self.pnl, 6),
            "verdicts_by_reason": dict(self._verdicts_by_reason),
            "ambiguous_round_trips": amb["ambiguous_round_trips"],
            "pnl_range_intrabar": [round(x, 6) for x in amb["pnl_range"]],
            "unrounded_symbols": [i.symbol for i in self.instruments if i.tick_size == 0],
            "order_share": share,
            "min_order_share": float(self.profile.get("checks.min_order_share")),
            "warnings": [*self.warnings, *negative_equity_warnings(self.equity_ns)],
        }

    def order_share(self, is_signal: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
        """Per strategy: signals in, how many sent an order, and that share (sorted by id)."""
        from backstop.engine.run_warnings import order_share

        return order_share(self.records.verdicts, self.strategies, is_signal)

    def plot(self, symbol: str | None = None) -> Any:
        """Price with entry-to-exit lines coloured by outcome, equity, and drawdown in % (one
        matplotlib Figure, kept out of pyplot's registry: it shows once, where it is shown)."""
        from backstop.engine.plot import plot_result

        return plot_result(self, symbol)

    def __repr__(self) -> str:
        from backstop.engine.display import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        from backstop.engine.display import result_html

        return result_html(self)
