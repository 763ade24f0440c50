"""The event driver: the pipeline in Python, one event at a time, against any Broker.

This is the driver the live runner and incident replay will use, and a step-by-step backtest
mode for debugging. It calls the very same compiled decision and accounting functions as the
backtest loop; only the order of calls is Python. A parity test runs both drivers on the same
inputs and compares their journals row by row.

It reads the position and working orders from the broker (broker truth), never from its own
book, so the reduce-only exit guard works against what is really held.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from backstop.data import load_bars_frame
from backstop.engine.backtest import PreparedBars, make_run_id
from backstop.engine.broker import (
    Broker,
    EntryRequest,
    ExitRequest,
    FillEvent,
    OrderStatusEvent,
)
from backstop.engine.config import BacktestConfig
from backstop.engine.core.decide import (
    INTENT_EXIT,
    REFUSING_MASK,
    decide_signal_nb,
    record_verdict_nb,
)
from backstop.engine.core.params import SimParams
from backstop.engine.core.portfolio import apply_fill_nb, equity_nb
from backstop.engine.core.records import (
    N_TRADES,
    N_VERDICTS,
    Instruments,
    ensure_room,
    new_book,
    new_decisions,
    new_portfolio,
)
from backstop.engine.enums import OrderRole, OrderStatus, OrderType, Side
from backstop.engine.inputs import event_array, instrument_arrays, session_days
from backstop.engine.instruments import Instrument
from backstop.engine.result import BacktestResult, RunRecords
from backstop.strategies.base import conform_intents


class EventDriver:
    """Signal -> guard -> sizer -> order builder -> Broker, and broker fills -> portfolio."""

    def __init__(
        self,
        broker: Broker,
        symbols: tuple[str, ...],
        inst: Instruments,
        prm: SimParams,
        initial_cash: float,
    ) -> None:
        self.broker = broker
        self.symbols = symbols
        self.inst = inst
        self.prm = prm
        self.pf = new_portfolio(len(symbols), initial_cash, 256)
        self.dec = new_decisions(256)

    def on_broker_events(self) -> dict[int, int]:
        """Book every fill the broker reports; return {order id: reasons} of rejections."""
        rejected: dict[int, int] = {}
        for event in self.broker.drain_events():
            if isinstance(event, OrderStatusEvent) and event.status == OrderStatus.REJECTED:
                rejected[event.order_id] = event.reasons
            if isinstance(event, FillEvent):
                if int(self.pf.ctr[N_TRADES]) + 2 > len(self.pf.trades):
                    _, self.pf, _ = ensure_room(
                        new_book(1, 2, 1, 1), self.pf, self.dec, 0, 0, len(self.pf.trades), 0
                    )
                apply_fill_nb(self.pf, self.inst.mult, self.inst.is_future, event.record)
        return rejected

    def on_mark(self, s: int, close: float) -> None:
        """A bar closed: its close is the symbol's mark for decisions and equity."""
        self.pf.mark[s] = close

    def on_signal(self, ev: np.void, row: int) -> None:
        """Decide one signal and send what the verdict approves; journal the verdict."""
        if int(self.dec.ctr[N_VERDICTS]) + 1 > len(self.dec.verdicts):
            _, _, self.dec = ensure_room(
                new_book(1, 2, 1, 1), self.pf, self.dec, 0, 0, 0, len(self.dec.verdicts)
            )
        inst, pf = self.inst, self.pf
        equity = float(equity_nb(pf.pos, pf.avg, pf.mark, pf.acct[0], inst.mult, inst.is_future))
        s = int(ev["sym"])
        pos, entries, exit_qty, mark, lot, mult = 0.0, 0, 0.0, np.nan, 1.0, 1.0
        if s >= 0:
            symbol = self.symbols[s]
            pos = self.broker.position(symbol)  # broker truth, not our own book
            working = self.broker.open_orders(symbol)
            entries = sum(1 for o in working if o.role == OrderRole.ENTRY)
            exit_qty = sum(o.remaining for o in working if o.role == OrderRole.SIGNAL_EXIT)
            mark, lot, mult = float(pf.mark[s]), float(inst.lot[s]), float(inst.mult[s])
        reasons, side, qty, price = decide_signal_nb(
            ev, pos, entries, exit_qty, mark, equity, lot, mult, self.prm
        )
        approved = (reasons & REFUSING_MASK) == 0
        order = -1
        if approved:
            order = self._send(ev, self.symbols[s], int(side), float(qty))
            rejected = self.on_broker_events()
            if order in rejected:
                approved = False
                reasons |= rejected[order]
        record_verdict_nb(
            self.dec, ev, row, approved, reasons, side, qty, price, pos, equity, order
        )

    def _send(self, ev: np.void, symbol: str, side: int, qty: float) -> int:
        """Turn an approved decision into the Broker call for its intent."""
        common = {
            "trade_cycle": int(ev["seq"]),
            "strategy": int(ev["strategy"]),
            "symbol": symbol,
            "side": Side(side),
            "qty": qty,
            "ts": int(ev["ts"]),
            "bar": int(ev["bar"]),
        }
        if int(ev["intent"]) == INTENT_EXIT:
            return self.broker.submit_exit(ExitRequest(**common))
        return self.broker.submit_entry(
            EntryRequest(
                **common,
                order_type=OrderType(int(ev["otype"])),
                tif=int(ev["tif"]),
                limit_price=float(ev["limit_px"]),
                entry_stop_price=float(ev["entry_stop_px"]),
                stop_price=float(ev["stop_px"]),
                target_price=float(ev["target_px"]),
                stop_pct=float(ev["stop_pct"]),
                target_pct=float(ev["target_pct"]),
                trail_pct=float(ev["trail_pct"]),
            )
        )


def run_event_driven(
    bars: pl.DataFrame | PreparedBars,
    intents: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    instruments: dict[str, Instrument] | None = None,
    label: str = "intents",
) -> BacktestResult:
    """Step-by-step backtest: Python per bar through the Broker protocol (debugging mode).

    Same inputs as ``run_backtest``, same journal; slower by design, since it is the path a
    live runner takes one event at a time.
    """
    from backstop.brokers.sim.exchange import SimExchange

    t0 = time.perf_counter()
    config = config or BacktestConfig()
    prepared = bars if isinstance(bars, PreparedBars) else PreparedBars.of(load_bars_frame(bars))
    intents = conform_intents(intents)
    a = prepared.arrays
    session = a.session
    if (
        config.max_participation > 0
        or intents.filter((pl.col("tif") == 0) & (pl.col("otype") != 0)).height
    ):
        session = session_days(prepared.bars, config.session_tz)
    inst, specs = instrument_arrays(a.symbols, instruments)
    events, strategies, event_symbols = event_array(intents, prepared.bars, a.symbols)
    prm = config.sim_params()
    broker = SimExchange(a.symbols, inst, prm)
    driver = EventDriver(broker, a.symbols, inst, prm, config.initial_cash)
    j = 0
    n_ev = len(events)
    for i in range(a.n):
        s = int(a.sym[i])
        broker.on_bar(
            i,
            int(a.ts[i]),
            a.symbols[s],
            float(a.open[i]),
            float(a.high[i]),
            float(a.low[i]),
            float(a.volume[i]),
            int(session[i]),
        )
        driver.on_broker_events()
        driver.on_mark(s, float(a.close[i]))
        while j < n_ev and int(events[j]["bar"]) == i:
            driver.on_signal(events[j], j)
            driver.on_broker_events()
            j += 1
    book = broker.book
    records = RunRecords.take(book, driver.pf, driver.dec)
    return BacktestResult(
        run_id=make_run_id(prepared.fingerprint, config, label),
        config=config,
        bars=prepared.bars,
        arrays=a,
        instruments=specs,
        strategies=strategies,
        event_symbols=event_symbols,
        records=records,
        final_cash=float(driver.pf.acct[0]),
        run_seconds=time.perf_counter() - t0,
        label=label,
    )
