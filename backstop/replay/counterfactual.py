"""The counterfactual re-run: the incident's decisions through today's pipeline.

The decisions (``decisions.py``) and advisories go through the same ``EventDriver`` and
compiled kernels as a backtest or a live run, against a ``ReplayBroker`` seeded with the
broker's position at the start. While today's pipeline decides what the bot decided, the
broker keeps the recorded fills (the world stays the one that happened); at the first
decision that differs it switches to the simulated exchange (fills on the supplied bars, or on
the prices the logs themselves recorded), and the report says which decision that was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from backstop.brokers.sim.exchange import SimExchange
from backstop.data import load_bars, load_bars_frame
from backstop.engine.backtest import guard_for
from backstop.engine.broker import EntryRequest, ExitRequest, FillEvent, fill_record
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.core.portfolio import apply_fill_nb
from backstop.engine.core.records import EVENT_DTYPE, FILL_DTYPE, Portfolio
from backstop.engine.enums import Advice, EventKind, OrderRole
from backstop.engine.event_driver import EventDriver
from backstop.engine.inputs import BarArrays, instrument_arrays
from backstop.engine.instruments import Instrument, lookup
from backstop.engine.profile import RiskProfile
from backstop.errors import DataError
from backstop.replay.decisions import Decision, decisions_of
from backstop.replay.events import Advisory, BrokerFill, BrokerOrder, BrokerPosition, Signal
from backstop.replay.timeline import Incident

RECORDED = "recorded"
SIMULATED = "simulated"


@dataclass(frozen=True, slots=True)
class BookedFill:
    """A fill of the counterfactual world: recorded at the broker, or simulated."""

    ts: int
    symbol: str
    side: int
    qty: float
    price: float
    fee: float
    origin: str
    order: str


@dataclass
class Divergence:
    """The first decision today's pipeline takes differently from the bot."""

    label: str
    ts: int
    bot: str
    today: str


class ReplayBroker(SimExchange):
    """A Broker that follows the recorded broker until today's decisions differ, then
    simulates. ``position``/``open_orders`` answer from whichever world is current."""

    def __init__(self, symbols, inst, prm, fills, orders, start_pos) -> None:
        super().__init__(symbols, inst, prm)
        self.following = True
        self.recorded = sorted(fills, key=lambda f: f.ts)
        self.order_types = {o.order_id: (o.order_type or "", o.parent_id) for o in orders}
        self.next_fill = 0
        self.actual = dict(start_pos)
        self.booked: list[BookedFill] = []
        self.expected: Decision | None = None
        self.sent_for_expected = False
        self.divergence: Divergence | None = None
        self.cycle_of_order: dict[str, int] = {}
        self._pseudo = 0
        self._fill_seen = 0
        for s, qty in start_pos.items():
            self.book.xpos[self.index[s]] = qty

    # ---- the recorded world ---------------------------------------------------------------
    def advance(self, ts: int) -> None:
        """Deliver the recorded fills up to ``ts`` while following the recorded broker."""
        while self.following and self.next_fill < len(self.recorded):
            f = self.recorded[self.next_fill]
            if f.ts > ts:
                break
            self.next_fill += 1
            self._book_recorded(f)

    def _book_recorded(self, f: BrokerFill) -> None:
        s = self.index[f.symbol]
        before = self.actual.get(f.symbol, 0.0)
        after = before + f.side * f.qty
        self.actual[f.symbol] = after
        self.book.xpos[s] = after
        kind, parent = self.order_types.get(f.order_id or "", ("", None))
        role = OrderRole.ENTRY
        if abs(after) < abs(before) or before * after < 0:
            role = OrderRole.SIGNAL_EXIT
            if parent is not None:
                role = OrderRole.STOP_LOSS if "stop" in kind else OrderRole.TAKE_PROFIT
        rec = fill_record(
            fill_id=-1,
            order_id=-1,
            trade_cycle=self.cycle_of_order.get(f.order_id or "", -1),
            strategy=0,
            sym=s,
            side=f.side,
            role=int(role),
            qty=f.qty,
            price=f.price,
            fee=f.fee or 0.0,
            ts=f.ts,
            bar=-1,
        )
        self._events.append(
            FillEvent(f.ts, f.ts, -1, f.symbol, f.side, f.qty, f.price, f.fee or 0.0, rec)
        )
        self.booked.append(
            BookedFill(
                f.ts, f.symbol, f.side, f.qty, f.price, f.fee or 0.0, RECORDED, f.order_id or "?"
            )
        )

    def expect(self, decision: Decision, ts: int) -> None:
        """The next decision to judge: what the bot did about it decides "the same"."""
        self.advance(ts)
        self.expected = decision
        self.sent_for_expected = False

    def settle(self, ts: int) -> None:
        """After the decision: the bot sent an order today's pipeline did not -> diverge."""
        d = self.expected
        if self.following and d is not None and d.bot_sent and not self.sent_for_expected:
            self._diverge(ts, "refused")
        self.expected = None

    def _diverge(self, ts: int, today: str) -> None:
        d = self.expected
        bot = "nothing sent" if d is None or d.bot_sent is None else _sent_text(d.bot_sent)
        self.divergence = Divergence(d.label if d else "?", ts, bot, today)
        self.following = False
        self._fill_seen = int(self.book.ctr[1])

    def _same(self, side: int, qty: float) -> bool:
        d = self.expected
        return bool(d and d.bot_sent and d.bot_sent[0] == side and abs(d.bot_sent[1] - qty) < 1e-9)

    # ---- Broker protocol -----------------------------------------------------------------
    def position(self, symbol: str) -> float:
        return self.actual.get(symbol, 0.0) if self.following else super().position(symbol)

    def open_orders(self, symbol: str):
        return [] if self.following else super().open_orders(symbol)

    def submit_entry(self, request: EntryRequest) -> int:
        return self._submit(request, super().submit_entry)

    def submit_exit(self, request: ExitRequest) -> int:
        return self._submit(request, super().submit_exit)

    def _submit(self, request, send) -> int:
        if self.expected is not None:
            self.sent_for_expected = True
            if self.expected.order_id:
                self.cycle_of_order[self.expected.order_id] = request.trade_cycle
        if self.following and self._same(int(request.side), request.qty):
            self._pseudo -= 1
            return self._pseudo - 1  # the bot's own recorded order stands for it
        if self.following:
            self._diverge(request.ts, _sent_text((int(request.side), request.qty)))
        return send(request)

    def on_bar(self, i, ts, symbol, open_, high, low, volume, session) -> None:
        self.advance(ts)
        if not self.following:
            super().on_bar(i, ts, symbol, open_, high, low, volume, session)

    def drain_events(self):
        events = super().drain_events()
        for e in events:
            if isinstance(e, FillEvent) and e.order_id >= 0:
                self.booked.append(
                    BookedFill(
                        e.ts_event,
                        e.symbol,
                        int(e.side),
                        e.qty,
                        e.price,
                        e.fee,
                        SIMULATED,
                        str(e.order_id),
                    )
                )
        return events


def _sent_text(sent: tuple[int, float]) -> str:
    return f"{'BUY' if sent[0] > 0 else 'SELL'} {sent[1]:g}"


@dataclass
class Rerun:
    """What the counterfactual re-run produced, for the report."""

    symbols: tuple[str, ...]
    decisions: tuple[Decision, ...]
    verdicts: pl.DataFrame  # one row per decision, in decision order
    booked: list[BookedFill]
    divergence: Divergence | None
    marks: dict[str, float]
    specs: dict[str, Instrument]
    profile: RiskProfile
    prices: pl.DataFrame = field(default_factory=pl.DataFrame)
    # the broker's starting positions as the pipeline booked them: symbol -> (qty, price)
    opening: dict[str, tuple[float, float]] = field(default_factory=dict)


def instruments_of(incident: Incident, symbols: tuple[str, ...]) -> dict[str, Instrument]:
    """The incident's declared specs over the registry's (ES roots know they are futures)."""
    out = {}
    for s in symbols:
        base = lookup(s)
        spec = incident.instruments.get(s, {})
        mult = float(spec.get("multiplier", base.multiplier))
        out[s] = Instrument(
            s,
            tick_size=float(spec.get("tick", base.tick_size or 0.01)),
            multiplier=mult,
            is_future=base.is_future or mult != 1.0,
            sector=base.sector,
        )
    return out


def price_bars(incident: Incident, symbols: tuple[str, ...]) -> pl.DataFrame:
    """Bars to price fills on: the scenario's bar files, else one flat bar per price the
    logs recorded (signal prices and broker fills), so the replay needs nothing else."""
    if incident.bars:
        frames = [load_bars(p) for p in incident.bars]
        return load_bars_frame(pl.concat(frames).sort("ts", "symbol"))
    rows = [(e.ts, e.symbol, e.price) for e in incident.events
            if isinstance(e, Signal | BrokerFill) and e.price is not None]  # fmt: skip
    if not rows:
        raise DataError("the incident has no prices (no bars, no signal prices, no fills)")
    frame = (
        pl.DataFrame(
            rows, schema={"ts": pl.Int64, "symbol": pl.String, "close": pl.Float64}, orient="row"
        )
        .unique(["ts", "symbol"], keep="last", maintain_order=True)
        .with_columns(
            open=pl.col("close"), high=pl.col("close"), low=pl.col("close"), volume=pl.lit(1.0)
        )
    )
    return load_bars_frame(frame.sort("ts", "symbol"))


def rerun(incident: Incident, profile: RiskProfile) -> Rerun:
    """Feed the incident's decisions through today's pipeline (see the module doc)."""
    decisions = decisions_of(incident)
    symbols = tuple(sorted(set(incident.symbols) | {d.symbol for d in decisions}))
    specs = instruments_of(incident, symbols)
    bars = price_bars(incident, symbols).filter(pl.col("symbol").is_in(list(symbols)))
    index = {s: i for i, s in enumerate(symbols)}
    arrays = BarArrays(
        ts=bars["ts"].to_numpy().astype(np.int64),
        sym=np.array([index[s] for s in bars["symbol"]], dtype=np.int32),
        open=bars["open"].to_numpy().astype(np.float64),
        high=bars["high"].to_numpy().astype(np.float64),
        low=bars["low"].to_numpy().astype(np.float64),
        close=bars["close"].to_numpy().astype(np.float64),
        volume=bars["volume"].to_numpy().astype(np.float64),
        session=np.zeros(bars.height, dtype=np.int32),
        symbols=symbols,
    )
    inst, spec_tuple = instrument_arrays(symbols, specs)
    ctx = bar_context(bars, arrays, spec_tuple, profile)
    equity = _start_equity(incident)
    config = BacktestConfig(initial_cash=equity)
    prm = config.sim_params()
    strategies = tuple(sorted({d.strategy_id for d in decisions} or {"bot"}))
    start = start_positions(incident, symbols)
    broker = ReplayBroker(
        symbols, inst, prm, incident.of(BrokerFill), incident.of(BrokerOrder), start
    )
    guard = guard_for(spec_tuple, strategies, profile, equity)
    driver = EventDriver(broker, symbols, inst, prm, equity, profile, guard, ctx)
    opening = seed_positions(driver.pf, start, index, arrays)  # where the broker stood
    events, owners = _events(incident, decisions, index, strategies, arrays.ts)
    j, n_ev = 0, len(events)
    rows = {}
    for i in range(arrays.n):
        s = int(arrays.sym[i])
        ts = int(arrays.ts[i])
        broker.on_bar(
            i, ts, symbols[s], arrays.open[i], arrays.high[i], arrays.low[i], arrays.volume[i], 0
        )
        driver.on_bar(i, s, ts, float(arrays.high[i]), float(arrays.low[i]), float(arrays.close[i]))
        while j < n_ev and int(events[j]["bar"]) <= i:
            j = _decide(driver, broker, events, owners, j, rows)
    while j < n_ev:  # decisions after the last price still get their verdicts
        j = _decide(driver, broker, events, owners, j, rows)
    broker.advance(np.iinfo(np.int64).max)
    driver.on_broker_events()
    verdicts = _verdict_frame(driver, decisions, rows)
    marks = {symbols[s]: float(c) for s, c in enumerate(driver.pf.mark) if c == c}
    return Rerun(
        symbols,
        decisions,
        verdicts,
        broker.booked,
        broker.divergence,
        marks,
        specs,
        profile,
        bars,
        opening,
    )


def _decide(driver, broker, events, owners, j: int, rows: dict) -> int:
    ev = events[j]
    decision = owners[j]
    if decision is not None:
        broker.expect(decision, int(ev["ts"]))
        before = int(driver.dec.ctr[3])
        driver.on_event(ev, j)
        rows[decision.label, decision.ts] = before
        broker.settle(int(ev["ts"]))
    else:
        broker.advance(int(ev["ts"]))
        driver.on_event(ev, j)
    return j + 1


def _start_equity(incident: Incident) -> float:
    from backstop.replay.events import AccountSnapshot

    snaps = incident.of(AccountSnapshot)
    return float(snaps[0].equity) if snaps else 100_000.0


def seed_positions(
    pf: Portfolio, start: dict[str, float], index: dict[str, int], arrays: BarArrays
) -> dict[str, tuple[float, float]]:
    """Book the broker's starting positions into the pipeline's portfolio; return what was
    booked, symbol -> (signed qty, price), which the report's P&L starts from as well.

    Each is booked as if opened at the first price the replay sees for its symbol (that bar's
    open, at that bar): cash pays for it as for any entry, so equity starts where the
    account stood, and a fill that later closes it closes a round trip priced from there. A
    position in a symbol without prices cannot be valued or filled, and is not booked (the
    pipeline's decisions read positions from the broker, which holds it).
    """
    rows = {int(s): int(k) for s, k in zip(*np.unique(arrays.sym, return_index=True), strict=True)}
    fill = np.zeros(1, dtype=FILL_DTYPE)
    booked = {}
    for symbol, qty in sorted(start.items()):
        s = index[symbol]
        if qty == 0.0 or s not in rows:
            continue
        k = rows[s]
        fill["sym"], fill["side"], fill["qty"] = s, 1 if qty > 0 else -1, abs(qty)
        fill["price"], fill["ts"], fill["bar"] = arrays.open[k], arrays.ts[k], k
        fill["cycle"], fill["role"] = -1, int(OrderRole.ENTRY)
        apply_fill_nb(pf, fill[0])
        booked[symbol] = (qty, float(arrays.open[k]))
    return booked


def start_positions(incident: Incident, symbols: tuple[str, ...]) -> dict[str, float]:
    """The broker's positions at the start of the incident (flat where nothing is known)."""
    start = incident.start_ns or 0
    out = {s: 0.0 for s in symbols}
    for e in incident.of(BrokerPosition):
        if e.ts <= start:
            out[e.symbol] = float(e.qty)
    return out


def _events(incident, decisions, index, strategies, bar_ts):
    """Decisions and advisories as the pipeline's event records, in (ts, priority) order."""
    items: list[tuple[int, int, int, object]] = []
    for k, a in enumerate(incident.of(Advisory)):
        items.append((a.ts, 1, k, a))
    for k, d in enumerate(decisions):
        items.append((d.ts, 2 if d.intent == "exit" else 3, k, d))
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    n = len(items)
    nan = float("nan")
    cols: dict[str, list] = {name: [] for name in (
        "ts", "priority", "sym", "kind", "advice", "advice_conf", "strategy", "side", "intent",
        "qty", "price", "stop_px", "target_px", "conviction", "target_dollars", "stop_pct",
        "target_pct", "source_id")}  # fmt: skip
    owners: list[Decision | None] = []
    advice = {"WAIT": int(Advice.WAIT), "GO": int(Advice.GO)}
    for ts, prio, _, item in items:
        cols["ts"].append(ts)
        cols["priority"].append(prio)
        cols["sym"].append(index.get(item.symbol, -1))
        if isinstance(item, Advisory):
            owners.append(None)
            values = (int(EventKind.ADVISORY), advice.get(item.verdict, 0),
                      nan if item.confidence is None else item.confidence, 0, 1, 0,
                      nan, nan, nan, nan, nan, nan, 0.0, 0.0, -1)  # fmt: skip
        else:
            d: Decision = item  # type: ignore[assignment]
            owners.append(d)
            values = (
                int(EventKind.SIGNAL), 0, nan, strategies.index(d.strategy_id), d.side,
                1 if d.intent == "exit" else 0, _f(d.qty), _f(d.price), _f(d.stop),
                _f(d.target), _f(d.conviction), _f(d.target_dollars), d.stop_pct or 0.0,
                d.target_pct or 0.0, -1 if d.source_id is None else d.source_id,
            )  # fmt: skip
        for name, value in zip(list(cols)[3:], values, strict=True):
            cols[name].append(value)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    for name, values in cols.items():
        ev[name] = values
    ev["seq"] = np.arange(n)
    ev["bar"] = np.maximum(np.searchsorted(bar_ts, ev["ts"], side="right") - 1, 0)
    for name in ("limit_px", "entry_stop_px"):
        ev[name] = np.nan
    ev["exit_role"] = int(OrderRole.SIGNAL_EXIT)
    ev["tif"] = 1
    return ev, owners


def _f(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _verdict_frame(driver: EventDriver, decisions, rows) -> pl.DataFrame:
    from backstop.engine.enums import reason_names

    v = driver.dec.verdicts
    out = []
    for d in decisions:
        k = rows.get((d.label, d.ts))
        r = v[k]
        out.append(
            {
                "label": d.label,
                "approved": bool(r["approved"]),
                "reason_codes": reason_names(int(r["reasons"])),
                "side": int(r["side"]),
                "qty": float(r["qty"]),
                "price": _num(r["price"]),
                "position": float(r["position"]),
                "equity": _num(r["equity"]),
                "risk": _num(r["risk"]),
                "exposure": _num(r["exposure"]),
                "stop_price": _num(r["stop_px"]),
                "target_price": _num(r["target_px"]),
                "advisory": {0: None, 1: "GO", 2: "WAIT"}[int(r["advice"])],
                "advisory_confidence": _num(r["advice_conf"]),
            }
        )
    return pl.DataFrame(out, infer_schema_length=None)


def _num(x: float) -> float | None:
    x = float(x)
    return None if x != x else x
