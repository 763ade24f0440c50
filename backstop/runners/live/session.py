"""LiveSession: the pipeline one bar at a time, as bars arrive, against a BrokerPort.

The session holds the bars seen so far, the port driver (decisions, guardrails, portfolio,
mirror, bracket manager) and the signal cursor. ``on_bars`` takes the bars of one new
timestamp and does what the backtest loop does at a bar, in the same order: book what the
broker reported (fills of orders sent earlier), mark and supervise each symbol's bar, then
run the strategy on its rolling window and decide the newest intents, only those newer than
the cursor (a cold start never acts on old signals).

Its whole state is durable: ``checkpoint`` / ``restore`` carry the driver's state structs,
the mirror, the bracket manager and the counters, so a restarted runner resumes with its
halts, day counts and positions, and never re-decides a signal it already decided.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from backstop.data.schema import BAR_COLUMNS, BAR_SCHEMA
from backstop.domain.enums import ControlAction, EventKind, TradingState
from backstop.domain.instruments import Instrument
from backstop.engine.brackets import Venue
from backstop.engine.broker import BrokerPort
from backstop.engine.checkpoint import Checkpoint
from backstop.engine.config import BacktestConfig
from backstop.engine.context import plain_context
from backstop.engine.core.guard import AI_N_EVENTS, AI_STATE
from backstop.engine.core.records import EVENT_DTYPE, N_TRADES, N_VERDICTS
from backstop.engine.driver import PortDriver
from backstop.engine.driver_records import from_text_array, text_array
from backstop.engine.inputs import bar_arrays, event_array, instrument_arrays
from backstop.engine.prepare import guard_for
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult, RunRecords
from backstop.errors import BackstopError, ConfigError, DataError, check
from backstop.runners.live.bars import LiveBars
from backstop.runners.live.status import PositionView, StatusSnapshot
from backstop.strategies.base import Strategy


@dataclass(frozen=True)
class LiveSetup:
    """What a live session runs: a strategy with its parameters over fixed symbols, under a
    profile, with a namespace for its client order ids (stable across restarts)."""

    strategy: Strategy
    params: dict[str, Any]
    symbols: tuple[str, ...]
    profile: RiskProfile
    namespace: str
    config: BacktestConfig = field(default_factory=BacktestConfig)
    instruments: Mapping[str, Instrument] | None = None
    window: int = 0  # bars of each symbol the strategy sees (0: what it declares it needs)
    venue: Venue = field(default_factory=Venue)

    def window_bars(self) -> int:
        if self.window > 0:
            return self.window
        if self.strategy.bars_needed is not None:
            return int(self.strategy.bars_needed(self.strategy.resolve(self.params))[1]) + 1
        return 500


class LiveSession:
    """One live session's pipeline and state (see the module doc)."""

    def __init__(self, setup: LiveSetup, broker: BrokerPort, initial_cash: float) -> None:
        check(
            len(setup.symbols) > 0 and len(set(setup.symbols)) == len(setup.symbols),
            ConfigError("symbols", f"need distinct symbols, got {list(setup.symbols)}"),
        )
        self.setup = setup
        self.symbols = tuple(sorted(setup.symbols))
        self.params = setup.strategy.resolve(setup.params)
        self.broker = broker
        self.inst, self.specs = instrument_arrays(
            self.symbols, dict(setup.instruments) if setup.instruments else None
        )
        self.strategies = (setup.strategy.name,)
        guard = guard_for(self.specs, self.strategies, setup.profile, initial_cash)
        self.store = LiveBars(self.symbols, self.specs, setup.profile)
        self._rows: dict[str, tuple[list[int], list[int]]] = {}  # symbol: (stamps, rows)
        prm = setup.config.sim_params()
        ctx = plain_context()
        self.driver = PortDriver(
            broker, self.symbols, self.inst, prm, initial_cash, setup.profile, guard, ctx,
            run_id=setup.namespace, venue=setup.venue, strategies=self.strategies,
        )  # fmt: skip
        self.driver.bar_of = self.row_of
        self.initial_cash = initial_cash
        self.events_done = 0
        self.signal_cursor = -1  # ns: intents at or before it were decided (or predate us)
        self.event_symbols: list[str] = []
        # every reconcile with the broker, as rows of the journal's reconcile table
        self.reconcile_rows: list[dict[str, Any]] = []
        self.reconciles = 0
        # ns: every execution of ours stamped before it was read by a finished reconcile
        self.fills_checked = -1

    # ---- bars in -----------------------------------------------------------------------------
    def row_of(self, symbol: str, ts: int) -> int:
        """Row of ``symbol``'s latest bar at or before ``ts`` (the bar a fill belongs to)."""
        stamps, rows = self._rows.get(symbol, ([], []))
        k = bisect.bisect_right(stamps, ts) - 1
        return rows[k] if k >= 0 else max(self.store.n - 1, 0)

    def warm_up(self, history: pl.DataFrame) -> None:
        """Bars from before the session: seen by the strategy, never decided on."""
        if history.height:
            self._append(history)
            self.signal_cursor = self.store.last_ts()

    def on_bars(self, new: pl.DataFrame) -> int:
        """Process the bars of one new timestamp (every symbol's bar at it); return the
        number of events decided."""
        if new.is_empty():
            return 0
        stamps = new.get_column("ts").unique()
        check(
            stamps.len() == 1,
            DataError(source="live bars", problem=f"one timestamp per step, got {stamps.len()}"),
        )
        ts = int(stamps[0])
        if self.store.n:
            last = self.store.last_ts()
            check(
                ts > last,
                DataError(
                    source="live bars",
                    problem=f"bar at {ts} is not after the last one seen ({last})",
                ),
            )
        first = self.store.n
        new = self._append(new)
        recovering = self.driver.holding
        self.driver.hold_after = ts if recovering else None
        bars = self.store
        self.driver.ctx = bars.context()
        sym, high, low, close = bars.sym, bars.value("high"), bars.value("low"), bars.value("close")
        decided = 0
        intents = self._latest_intents(ts)
        events = self._events(intents, new, first)
        e = 0
        for i in range(first, bars.n):
            s = int(sym[i])
            self.driver.bar_started(i)
            self.driver.route_symbol = self.symbols[s]  # this bar's fills, not the others'
            h, lo, c = float(high[i]), float(low[i]), float(close[i])
            try:
                self.driver.on_bar(i, s, ts, h, lo, c)
                while e < len(events) and int(events[e]["bar"]) <= i:
                    self.driver.on_event(events[e], self.events_done)
                    self.events_done += 1
                    decided += 1
                    e += 1
            finally:
                self.driver.route_symbol = None
        self.driver.bar_decided = True
        try:
            self.driver.on_broker_events()  # whatever is left (symbols without a bar now)
        finally:
            self.driver.bar_decided = False
        while e < len(events):  # intents for symbols without a bar at this timestamp
            self.driver.on_event(events[e], self.events_done)
            self.events_done += 1
            decided += 1
            e += 1
        self.signal_cursor = ts
        return decided

    def control(self, action: ControlAction, qty: float = math.nan, symbol: str = "") -> None:
        """Apply a control (a kill from outside, a desync found by reconcile, a connection
        lost or restored) at the session's last bar, as a journaled event of the pipeline."""
        ev = np.zeros(1, dtype=EVENT_DTYPE)[0]
        last = self.store.n - 1
        ev["bar"] = max(last, 0)
        ev["ts"] = max(self.store.last_ts(), 0)
        ev["priority"] = 0
        ev["seq"] = self.events_done
        ev["sym"] = self.symbols.index(symbol) if symbol in self.symbols else -1
        ev["strategy"] = 0
        ev["kind"] = int(EventKind.CONTROL)
        ev["control"] = int(action)
        ev["qty"] = qty
        for name in ("price", "limit_px", "entry_stop_px", "stop_px", "target_px", "conviction"):
            ev[name] = np.nan
        ev["target_dollars"] = np.nan
        ev["source_id"] = -1
        self.driver.on_event(ev, self.events_done)
        self.events_done += 1
        self.event_symbols.append(symbol)

    def last_ts(self) -> int:
        """Time of the last bar seen (-1: none yet)."""
        return self.store.last_ts()

    @property
    def bars(self) -> pl.DataFrame:
        """Every bar seen, as a frame (built when asked, not at every step)."""
        return self.store.frame()

    @property
    def n_bars(self) -> int:
        return self.store.n

    def settle(self) -> None:
        """Book what the broker reported since the last bar (between bars, live)."""
        self.driver.on_broker_events()

    def _append(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add ``frame``'s bars; return them as they were stored (sorted, in the schema)."""
        if frame.is_empty():
            return frame
        frame = frame.select(BAR_COLUMNS).cast(BAR_SCHEMA).sort("ts", "symbol")
        unknown = sorted(set(frame.get_column("symbol").to_list()) - set(self.symbols))
        check(
            not unknown,
            DataError(source="live bars", problem=f"bars for symbols not traded: {unknown}"),
        )
        start = self.store.n
        for k, (sym, t) in enumerate(zip(frame["symbol"], frame["ts"], strict=True)):
            stamps, rows = self._rows.setdefault(sym, ([], []))
            stamps.append(int(t))
            rows.append(start + k)
        self.store.append(frame)
        missing = sorted(set(self.symbols) - set(self._rows))
        check(
            not missing,
            DataError(
                source="live bars",
                problem=f"no bars yet for {missing}: every symbol needs its first bar",
            ),
        )
        return frame

    def _latest_intents(self, ts: int) -> pl.DataFrame:
        """The strategy on each symbol's last ``window`` bars; its intents stamped ``ts``."""
        n = self.setup.window_bars()
        # bars arrive in time order: each symbol's last n bars lie in the frame's tail
        recent = self.store.frame(max(0, self.store.n - n * len(self.symbols)))
        # pl.len() is unsigned: a window longer than the bars seen must not wrap below zero
        first = pl.len().over("symbol").cast(pl.Int64) - n
        keep = pl.int_range(pl.len(), dtype=pl.Int64).over("symbol") >= first
        window = recent.filter(keep)
        table = self.setup.strategy.intents(window, self.params)
        return table.filter((pl.col("ts") == ts) & (pl.col("ts") > self.signal_cursor))

    def _events(self, intents: pl.DataFrame, new: pl.DataFrame, first: int) -> np.ndarray:
        """The intents (all stamped this step's time) as events at this step's bar rows:
        matched against this step's bars (``new``, stored from row ``first``) only, since
        an intent belongs to its symbol's bar at or after its time, never an older one."""
        if intents.is_empty():
            return np.zeros(0, dtype=self.driver.g.scratch.dtype)
        intents = intents.with_columns(pl.lit(None, dtype=pl.Int64).alias("bar"))
        codes = self.store.sym[first:]
        events, strategies, symbols = event_array(intents, new, self.symbols, codes)
        check(
            strategies == self.strategies,
            BackstopError(f"strategy ids {strategies} are not the session's {self.strategies}"),
        )
        events = events.copy()
        events["bar"] += first
        events["seq"] = self.events_done + np.arange(len(events))
        self.event_symbols.extend(symbols.to_list())
        return events

    # ---- status --------------------------------------------------------------------------------
    def status(self) -> StatusSnapshot:
        """The one-line status: open positions at their marks, working orders, realized and
        open P&L, the trading state, the last fill's time."""
        d = self.driver
        positions = []
        for s, symbol in enumerate(self.symbols):
            qty = d.mirror.position(symbol)
            avg, mark = float(d.pf.avg[s]), float(d.pf.mark[s])
            if qty and math.isfinite(avg) and math.isfinite(mark):
                positions.append(PositionView(symbol, qty, avg, mark, float(self.inst.mult[s])))
        trades = d.pf.trades[: int(d.pf.ctr[N_TRADES])]
        return StatusSnapshot(
            ts=max(self.last_ts(), 0),
            state=TradingState(int(d.g.ai[AI_STATE])).name,
            positions=tuple(positions),
            working_orders=len(d.mirror.working()),
            realized_pnl=float(trades["pnl"].sum()),
            unrealized_pnl=sum(p.unrealized for p in positions),
            last_event_ts=int(d.fills[-1]["ts"]) if d.fills else None,
        )

    # ---- results -------------------------------------------------------------------------------
    def result(self, label: str = "live", seconds: float = 0.0) -> BacktestResult:
        """The session so far as a run result: the journal is written from it, with the same
        tables and columns as a backtest's."""
        d = self.driver
        records = RunRecords(
            orders=d.order_records(),
            fills=d.fill_records(),
            trades=d.pf.trades[: int(d.pf.ctr[N_TRADES])].copy(),
            verdicts=d.dec.verdicts[: int(d.dec.ctr[N_VERDICTS])].copy(),
            guard=d.g.events[: int(d.g.ai[AI_N_EVENTS])].copy(),
        )
        result = BacktestResult(
            run_id=self.setup.namespace,
            config=self.setup.config,
            profile=self.setup.profile,
            bars=self.bars,
            arrays=bar_arrays(self.bars),
            instruments=self.specs,
            strategies=self.strategies,
            records=records,
            event_symbols=pl.Series("symbol", self.event_symbols, dtype=pl.String),
            final_cash=float(d.pf.acct[0]),
            run_seconds=seconds,
            label=label,
        )
        result.params = dict(self.params)
        result.strategy_name = self.setup.strategy.name
        result.reconcile_rows = list(self.reconcile_rows)
        return result

    # ---- durable state -------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        parts = self.driver.snapshot()  # state structs, mirror, bracket plans, fills
        # views of the growing columns, no copies: rows already stored never change
        parts["bars"] = {c: self.store.value(c) for c in BAR_COLUMNS[2:]}
        parts["bars"]["ts"] = self.store.ts
        parts["bars"]["sym"] = self.store.sym
        parts["session"] = {
            "event_symbols": text_array(self.event_symbols),
            "reconcile": text_array(self.reconcile_rows),
        }
        counters = {
            "reconciles": self.reconciles,
            "fills_checked": self.fills_checked,
            "bars_done": self.store.n,
            "events_done": self.events_done,
            "signal_cursor": self.signal_cursor,
            "verdicts": int(self.driver.dec.ctr[N_VERDICTS]),
            "trades": int(self.driver.pf.ctr[N_TRADES]),
        }
        return Checkpoint(run_id=self.setup.namespace, counters=counters, parts=parts)

    def restore(self, cp: Checkpoint) -> None:
        check(
            cp.run_id == self.setup.namespace,
            BackstopError(f"state belongs to {cp.run_id}, not to {self.setup.namespace}"),
        )
        self.driver.restore(cp.parts)
        bars = cp.part("bars")
        names = np.array(self.symbols, dtype=object)[bars["sym"].astype(np.int64)]
        columns = {c: bars[c] for c in BAR_COLUMNS if c != "symbol"}
        frame = pl.DataFrame({**columns, "symbol": names.tolist()}).select(BAR_COLUMNS)
        self.store = LiveBars(self.symbols, self.specs, self.setup.profile)
        self._rows = {}
        self._append(frame)
        held = cp.part("session")
        self.event_symbols = list(from_text_array(held["event_symbols"]))
        # a checkpoint from before reconciles were journaled has none
        self.reconcile_rows = (
            list(from_text_array(held["reconcile"])) if "reconcile" in held else []
        )
        self.reconciles = int(cp.counters.get("reconciles", 0))
        self.fills_checked = int(cp.counters.get("fills_checked", -1))
        self.events_done = cp.counter("events_done")
        self.signal_cursor = cp.counter("signal_cursor")
        self.driver.ctx = self.store.context()
