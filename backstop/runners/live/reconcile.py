"""Reconcile: broker truth against the session's mirror, at start-up and on a timer.

What the broker says wins, and every difference is written down:

- an order the broker has whose client id is ours (this namespace) but the mirror lost
  (sent just before a crash) is adopted as the broker has it;
- an order the mirror thinks is working but the broker has finished is brought up to date
  (cancelled, expired, rejected), and its fills come in as below;
- executions of our orders the mirror never booked (fills while the stream was down, or
  while the runner was dead) are fed to the driver like any broker event, so the portfolio
  books them and the bracket manager answers them (a filled entry gets its legs; a filled
  leg cancels its sibling) - each once, by execution id;
- a position the broker holds that the mirror, after all of that, does not explain is a
  desync: a DESYNC control for the pipeline (the kill switch trips, the profile says how
  hard), and an alert;
- an open position not covered by working protective orders is reported (an alert); the
  runner then re-protects it from its cycle's plan when the plan knows the levels
  (``protect.py``), and the report says what was placed (``reprotected``).

Nothing here decides trading: it only makes the mirror true and hands the pipeline the
events and controls it would have had. What it found and did is a ``ReconcileReport``,
which the session keeps as journal rows (``rows``: the journal's ``reconcile`` table), so a
live run's journal says what every reconcile changed and ``backstop replay`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backstop.domain.enums import TERMINAL_STATUSES, ControlAction, OrderStatus, TradingState
from backstop.domain.events import BrokerEvent, Execution, OrderUpdate, OrderUpdateKind
from backstop.domain.orders import parse_client_order_id
from backstop.engine.broker import BrokerPort
from backstop.engine.core.guard import AI_STATE
from backstop.engine.journal_reconcile import RECONCILE_SCHEMA
from backstop.runners.live.protect import Reprotection
from backstop.runners.live.session import LiveSession

EPS = 1e-9
_FINISHED = {
    OrderStatus.CANCELED: OrderUpdateKind.CANCELED,
    OrderStatus.EXPIRED: OrderUpdateKind.EXPIRED,
    OrderStatus.REJECTED: OrderUpdateKind.REJECTED,
}


@dataclass(frozen=True, slots=True)
class LateFill:
    """An execution of ours the mirror had not booked, found by a reconcile: with its trade
    cycle and the P&L it realized (gross, average cost, against the position held when the
    reconcile ran)."""

    exec_id: str
    client_order_id: str
    cycle: int
    symbol: str
    side: int
    qty: float
    price: float
    ts: int
    pnl: float


@dataclass
class ReconcileReport:
    """What one reconcile found and did (journaled and alerted by the runner)."""

    adopted: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    booked: list[str] = field(default_factory=list)  # execution ids
    foreign_orders: list[str] = field(default_factory=list)
    desync: dict[str, tuple[float, float]] = field(default_factory=dict)  # broker, mirror
    unprotected: dict[str, tuple[float, float]] = field(default_factory=dict)  # held, covered
    reprotected: dict[str, Reprotection] = field(default_factory=dict)  # what was done for it
    late: list[LateFill] = field(default_factory=list)
    recovering: bool = False
    startup: bool = False
    state: str = ""  # the trading state after the reconcile (a desync may have moved it)
    status: dict[str, str] = field(default_factory=dict)  # finished order: its final status

    @property
    def clean(self) -> bool:
        return not (self.adopted or self.finished or self.booked or self.desync)

    def lines(self) -> list[str]:
        out = [f"adopted order {c}" for c in self.adopted]
        out += [f"order {c} finished at the broker" for c in self.finished]
        out += [f"booked missed execution {x}" for x in self.booked]
        out += [f"order {c} is not ours (left alone)" for c in self.foreign_orders]
        out += [
            f"{s}: broker holds {b:g}, the mirror {m:g} (desync)"
            for s, (b, m) in sorted(self.desync.items())
        ]
        out += [
            f"{s}: {h:g} held, only {c:g} covered by protective orders"
            for s, (h, c) in sorted(self.unprotected.items())
        ]
        out += [
            f"{s}: protective orders re-placed from the plan of {r.entry}: "
            + ", ".join(r.client_order_ids)
            for s, r in sorted(self.reprotected.items())
            if r.client_order_ids
        ]
        return out

    def rows(self, number: int, ts: int, namespace: str) -> list[dict[str, Any]]:
        """This reconcile as rows of the journal's ``reconcile`` table (JOURNAL.md): one
        RECONCILED row saying it ran and what it changed, then one row per finding."""

        def row(kind: str, action: str, **values: Any) -> dict[str, Any]:
            out: dict[str, Any] = dict.fromkeys(RECONCILE_SCHEMA)
            out.update(ts=ts, reconcile=number, kind=kind, action=action, **values)
            return out

        def cycle_id(cycle: int) -> str | None:
            return None if cycle < 0 else f"{namespace}-{cycle:07d}"

        changes = [
            f"{len(items)} {what}"
            for items, what in (
                (self.adopted, "adopted"),
                (self.finished, "finished"),
                (self.late, "late fills"),
                (self.desync, "desynced"),
                (self.unprotected, "unprotected"),
                (self.foreign_orders, "foreign orders"),
            )
            if items
        ]
        start = "start-up" if self.startup else "timer"
        summary = f"{start} reconcile: {', '.join(changes) or 'clean'}"
        out = [row("RECONCILED", summary + (" (recovering)" if self.recovering else ""))]
        out += [row("ADOPTED", "adopted as the broker has it", client_order_id=c)
                for c in self.adopted]  # fmt: skip
        out += [
            row("FINISHED", f"brought up to date: {self.status.get(c, '?')} at the broker",
                client_order_id=c)
            for c in self.finished
        ]  # fmt: skip
        booked = "booked at its bar on catch-up" if self.recovering else "booked now"
        out += [
            row("LATE_FILL", booked, client_order_id=f.client_order_id, exec_id=f.exec_id,
                trade_cycle_id=cycle_id(f.cycle), symbol=f.symbol,
                side="BUY" if f.side > 0 else "SELL", qty=f.qty, price=f.price, pnl=f.pnl,
                fill_ts=f.ts)
            for f in self.late
        ]  # fmt: skip
        out += [row("FOREIGN_ORDER", "not ours: left alone", client_order_id=c)
                for c in self.foreign_orders]  # fmt: skip
        out += [
            row("POSITION_DESYNC",
                f"mirror set to the broker's {b:g}; DESYNC control, trading state {self.state}",
                symbol=s, qty=b - m, mirror_qty=m, broker_qty=b)
            for s, (b, m) in sorted(self.desync.items())
        ]  # fmt: skip
        for s, (h, c) in sorted(self.unprotected.items()):
            r = self.reprotected.get(s)
            if r is not None and r.client_order_ids:
                what = f"re-protected from the plan of {r.entry}"
            elif r is not None and r.tripped:
                what = f"no protective levels known: DESYNC control, trading state {self.state}"
            else:
                what = "no protective levels known: reported"
            out.append(
                row("UNPROTECTED", f"{what} (alert): {c:g} of {h:g} covered",
                    symbol=s, qty=h - c if h > 0 else h + c, mirror_qty=h, broker_qty=h)
            )  # fmt: skip
            if r is None:
                continue
            parts = parse_client_order_id(r.entry)
            cycle = cycle_id(parts.cycle) if parts is not None else None
            out += [
                row("REPROTECTED", f"protective order re-placed from the plan of {r.entry}",
                    symbol=s, client_order_id=cid, trade_cycle_id=cycle, qty=r.qty)
                for cid in r.client_order_ids
            ]  # fmt: skip
        return out


def reconcile(
    session: LiveSession, broker: BrokerPort, since_ns: int, *, recovering: bool = False
) -> ReconcileReport:
    """Bring ``session``'s mirror in line with ``broker`` (see the module doc).

    After a restart (``recovering``) the session is behind the broker: it will decide again
    the bars after its last durable step. Then what was missed is not applied at once but
    handed to the driver to apply at the bar it happened on (``PortDriver.recover``), so
    every decision sees what it saw the first time; orders of ours the restored mirror does
    not know are left to be sent again (the broker answers a resent client id with the order
    it has, idempotently, and it comes back with its bracket plan); and positions are
    compared only once the session has caught up (the next reconcile). When nothing was
    missed (no fills or ends to book, no order of ours the mirror lacks), the session is
    not behind, and positions are compared at once."""
    report = ReconcileReport(recovering=recovering)
    driver = session.driver
    mirror = driver.mirror
    namespace = session.setup.namespace
    ts = max(session.last_ts(), 0)
    # first whatever the stream already said; after a restart, what it says of times after
    # the session's last bar (an adapter that re-reads on connect reports the fills made
    # while the runner was dead) waits for its own bar, like the fills recovered below
    driver.hold_after = ts if recovering and session.n_bars else None
    driver.on_broker_events()
    events: list[BrokerEvent] = []
    unknown_ours = False  # an order of ours the restored mirror does not know (to resend)
    for order in broker.open_orders():
        parts = parse_client_order_id(order.client_order_id)
        if parts is None or parts.run_id != namespace:
            report.foreign_orders.append(order.client_order_id)
            continue
        unknown_ours = unknown_ours or order.client_order_id not in mirror.orders
        if order.client_order_id not in mirror.orders and not recovering:
            mirror.adopt(order, parts.role, parts.cycle, 0)
            report.adopted.append(order.client_order_id)
    for o in list(mirror.orders.values()):
        if not o.working:
            continue
        seen = broker.order(o.client_order_id)
        if seen is None or seen.status not in TERMINAL_STATUSES:
            continue
        if seen.status in _FINISHED:
            kind = _FINISHED[seen.status]
            at = ts if seen.updated_ts is None else seen.updated_ts
            events.append(OrderUpdate(kind, o.client_order_id, at, ts, seen.broker_order_id))
            report.finished.append(o.client_order_id)
            report.status[o.client_order_id] = seen.status.name
    recent = broker.recent_fills(since_ns)
    fills = [
        ex
        for ex in recent
        if ex.client_order_id in mirror.orders and ex.exec_id not in mirror.exec_ids
    ]
    report.booked = [ex.exec_id for ex in fills]
    report.late = _late_fills(session, fills)
    if recovering:
        unknown_ours = unknown_ours or any(
            _ours(ex.client_order_id, namespace) and ex.client_order_id not in mirror.orders
            for ex in recent
        )
        if fills or events or unknown_ours or driver.holding:
            driver.recover([*fills, *events])
            report.state = trading_state(session)
            return report
        # nothing was missed while the runner was down: the restored state is as current
        # as the broker, so positions are compared now (a broker flat under a saved short
        # is a desync before the first decision, seed 004), not only at the next timer
        driver.hold_after = None
    _feed(session, [*fills, *events])
    held = {p.symbol: p.qty for p in broker.positions()}
    for symbol in session.symbols:
        b, m = held.get(symbol, 0.0), mirror.position(symbol)
        if abs(b - m) > EPS:
            report.desync[symbol] = (b, m)
            # the broker's word is taken before the pipeline reacts: a flatten must close
            # what is held, never what the mirror believed (an exit while flat reverses)
            mirror.positions[symbol] = b
            session.control(ControlAction.DESYNC, qty=b - m, symbol=symbol)
        elif m != 0.0:
            covered = mirror.protective_qty(symbol) + sum(
                o.remaining for o in mirror.working(symbol) if o.reduce_only and not o.protective
            )
            if covered + EPS < abs(m):
                report.unprotected[symbol] = (m, covered)
    report.state = trading_state(session)
    return report


def trading_state(session: LiveSession) -> str:
    return TradingState(int(session.driver.g.ai[AI_STATE])).name


def _late_fills(session: LiveSession, fills: list[Execution]) -> list[LateFill]:
    """The executions about to be booked, each with the P&L it realizes: average cost from
    the position the mirror and the portfolio hold now, the fills taken in time order."""
    driver = session.driver
    pos: dict[str, float] = {}
    avg: dict[str, float] = {}
    out = []
    for ex in sorted(fills, key=lambda e: e.ts_event):
        o = driver.mirror.orders[ex.client_order_id]
        s = session.symbols.index(ex.symbol)
        p = pos.get(ex.symbol, driver.mirror.position(ex.symbol))
        a = avg.get(ex.symbol, float(driver.pf.avg[s]) if p else 0.0)
        q = int(ex.side) * ex.qty
        realized = 0.0
        if p == 0 or (p > 0) == (q > 0):
            a = (abs(p) * a + ex.qty * ex.price) / (abs(p) + ex.qty)
        else:
            closed = min(abs(q), abs(p))
            realized = closed * (ex.price - a) * (1 if p > 0 else -1) * float(session.inst.mult[s])
            if abs(q) > abs(p):
                a = ex.price
        pos[ex.symbol], avg[ex.symbol] = p + q, a
        out.append(
            LateFill(ex.exec_id, ex.client_order_id, o.trade_cycle_id, ex.symbol, int(ex.side),
                     ex.qty, ex.price, ex.ts_event, realized)
        )  # fmt: skip
    return out


def _ours(client_order_id: str, namespace: str) -> bool:
    parts = parse_client_order_id(client_order_id)
    return parts is not None and parts.run_id == namespace


def _feed(session: LiveSession, events: list[BrokerEvent]) -> None:
    """Apply recovered events now, through the driver's normal path (booking, brackets)."""
    if events:
        session.driver.recover(events)
        session.driver.on_broker_events()
