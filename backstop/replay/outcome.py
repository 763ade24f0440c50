"""The replay's findings: per decision ALLOWED / BLOCKED / MODIFIED, actual vs counterfactual
position paths and P&L, bot-belief desyncs, silent drops and fills the bot never booked.

``REPORT_VERSION`` versions the JSON keys (``REPLAY.md`` documents them); the text, Markdown
and plot renderers read only this ``Outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backstop.domain.enums import MODIFYING_CODES
from backstop.replay.decisions import Decision
from backstop.replay.events import BotPosition, BrokerFill, BrokerPosition, OrderIntent
from backstop.replay.rerun import Rerun, start_positions
from backstop.replay.timeline import Incident

REPORT_VERSION = 1
MONEY_KEYS = frozenset({"equity", "risk", "exposure"})
"""Numbers of a decision in account currency: rounded to cents."""
_QTY_DIGITS = 8  # quantities and prices: float noise (0.1 + 0.2) goes, any real tick stays
SILENT_STREAK = 3  # this many signals of one strategy in a row with no order: the alarm
ALLOWED, BLOCKED, MODIFIED = "ALLOWED", "BLOCKED", "MODIFIED"
MODIFYING = {c.name for c in MODIFYING_CODES}


@dataclass(frozen=True, slots=True)
class Fill:
    ts: int
    symbol: str
    side: int
    qty: float
    price: float
    fee: float


def pnl_of(
    fills: list[Fill],
    mult: dict[str, float],
    marks: dict[str, float],
    opening: dict[str, tuple[float, float]] | None = None,
) -> dict[str, float]:
    """Gross realized + unrealized P&L (average cost, with multipliers) and fees.

    ``opening`` holds the positions the account started with, as (signed qty, price): a fill
    that closes one realizes against that price, and one still open at the end is marked
    from it, so the P&L counts what happened during the incident only.
    """
    pos = {s: q for s, (q, _) in (opening or {}).items()}
    avg = {s: p for s, (_, p) in (opening or {}).items()}
    realized = 0.0
    fees = 0.0
    for f in sorted(fills, key=lambda x: x.ts):
        m = mult.get(f.symbol, 1.0)
        p = pos.get(f.symbol, 0.0)
        q = f.side * f.qty
        fees += f.fee
        if p == 0 or (p > 0) == (q > 0):
            avg[f.symbol] = (abs(p) * avg.get(f.symbol, 0.0) + f.qty * f.price) / (abs(p) + f.qty)
        else:
            closed = min(abs(q), abs(p))
            realized += closed * (f.price - avg[f.symbol]) * (1 if p > 0 else -1) * m
            if abs(q) > abs(p):
                avg[f.symbol] = f.price
        pos[f.symbol] = p + q
    unrealized = sum(
        q * (marks.get(s, avg.get(s, 0.0)) - avg.get(s, 0.0)) * mult.get(s, 1.0)
        for s, q in pos.items()
        if q != 0
    )
    return {
        "gross": cents(realized + unrealized),
        "realized": cents(realized),
        "unrealized": cents(unrealized),
        "fees": cents(fees),
        "net": cents(realized + unrealized - fees),
    }


def cents(value: float) -> float:
    """Round an amount of money to cents (and never print ``-0.0``)."""
    return round(value, 2) + 0.0


def tidy(value: float) -> float:
    """Round a quantity or a price to 8 decimals: float noise out, every real tick kept."""
    return round(value, _QTY_DIGITS) + 0.0


def tidy_number(key: str, value: object) -> object:
    """Round one of a decision's numbers by what it is: money to cents, the rest ``tidy``."""
    if not isinstance(value, float):
        return value
    return cents(value) if key in MONEY_KEYS else tidy(value)


def path_of(start: dict[str, float], fills: list[Fill]) -> list[dict[str, Any]]:
    """Position after each fill (ts, symbol, qty), from the start positions."""
    held = dict(start)
    out = [{"ts": None, "symbol": s, "qty": q} for s, q in sorted(start.items())]
    for f in sorted(fills, key=lambda x: x.ts):
        held[f.symbol] = tidy(held.get(f.symbol, 0.0) + f.side * f.qty)
        out.append({"ts": f.ts, "symbol": f.symbol, "qty": held[f.symbol]})
    return out


@dataclass
class Outcome:
    """Everything the report shows, JSON-ready through ``to_dict``."""

    incident: Incident
    rerun: Rerun
    orders: list[dict[str, Any]]
    actual: dict[str, float]
    counterfactual: dict[str, float]
    paths: dict[str, list[dict[str, Any]]]
    desyncs: list[dict[str, Any]]
    findings: list[str]
    unbooked: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        div = self.rerun.divergence
        return {
            "report_version": REPORT_VERSION,
            "incident": self.incident.name,
            "profile": self.rerun.profile.name,
            "timezone": self.incident.tz,
            "orders": self.orders,
            "first_divergence": None
            if div is None
            else {"decision": div.label, "ts": div.ts, "bot": div.bot, "today": div.today},
            "pnl": {"actual": self.actual, "with_guardrails": self.counterfactual},
            "paths": self.paths,
            "desyncs": self.desyncs,
            "findings": self.findings,
            "unbooked_fills": self.unbooked,
            "skipped_lines": len(self.incident.skipped),
            "reconciliation": [
                {"kind": i.kind, "ts": i.ts, "source": i.source, "order": i.order, "text": i.text}
                for i in self.incident.inferences
            ],
            "skipped": [
                {"source": x.source, "reason": x.reason, "text": x.text}
                for x in self.incident.skipped
            ],
        }


def outcome_of(incident: Incident, rerun: Rerun) -> Outcome:
    """Judge every decision and compare the two worlds."""
    mult = {s: spec.multiplier for s, spec in rerun.specs.items()}
    start = start_positions(incident, rerun.symbols)
    actual_fills = [Fill(f.ts, f.symbol, f.side, f.qty, f.price, f.fee or 0.0)
                    for f in incident.of(BrokerFill)]  # fmt: skip
    cf_fills = [Fill(b.ts, b.symbol, b.side, b.qty, b.price, b.fee) for b in rerun.booked]
    orders = _judge(rerun)
    _mark_phantom_exits(incident, orders)
    findings: list[str] = []
    streak = _longest_silent_streak(rerun.decisions)
    if streak >= SILENT_STREAK:
        findings.append(
            f"NO_ORDERS_FROM_SIGNALS: {streak} signals in a row of one strategy sent no order"
        )
    silent = [d.label for d in rerun.decisions if d.bot_sent is None]
    if silent:
        findings.append(f"SIGNALS_WITHOUT_ORDERS: {len(silent)} of {len(rerun.decisions)}")
    findings += _inference_findings(incident, orders)
    desyncs = _desyncs(incident, start, actual_fills)
    if desyncs:
        findings.append(f"POSITION_DESYNC: bot belief differed from the broker {len(desyncs)}x")
    unbooked = _unbooked(incident, mult, rerun.opening)
    if unbooked:
        findings.append(f"UNBOOKED_BROKER_FILLS: {len(unbooked)} booked by reconcile")
    return Outcome(
        incident=incident,
        rerun=rerun,
        orders=orders,
        actual=pnl_of(actual_fills, mult, rerun.marks, rerun.opening),
        counterfactual=pnl_of(cf_fills, mult, rerun.marks, rerun.opening),
        paths={
            "actual": path_of(start, actual_fills),
            "with_guardrails": path_of(start, cf_fills),
            "bot_belief": [
                {"ts": e.ts, "symbol": e.symbol, "qty": e.qty} for e in incident.of(BotPosition)
            ],
        },
        desyncs=desyncs,
        findings=findings,
        unbooked=unbooked,
    )


def _inference_findings(incident: Incident, orders: list[dict[str, Any]]) -> list[str]:
    """What loading inferred across sources (crossmatch.py, window.py), as findings; an
    inferred ordering is also noted on the order it concerns."""
    by_label = {o["order"]: o for o in orders}
    out = []
    matched = 0
    for i in incident.inferences:
        if i.kind == "FILLS_MATCHED":
            matched += 1
        else:
            out.append(f"{i.kind}: {i.text}")
        o = by_label.get(i.order or "")
        if o is not None and i.kind == "ORDERING_INFERRED":
            o["notes"].append(f"fill time inferred: {i.text}")
    if matched:
        out.append(
            f"FILLS_MATCHED: {matched} broker execution(s) without a shared order id matched "
            "to the bot's fills or orders, or to another export's executions, by symbol, side, "
            "quantity, price and time; each counted once"
        )
    return out


def _longest_silent_streak(decisions: tuple[Decision, ...]) -> int:
    """Longest run of consecutive decisions of one strategy that reached no broker."""
    best = 0
    run: dict[str, int] = {}
    for d in decisions:
        run[d.strategy_id] = 0 if d.bot_sent else run.get(d.strategy_id, 0) + 1
        best = max(best, run[d.strategy_id])
    return best


def _judge(rerun: Rerun) -> list[dict[str, Any]]:
    out = []
    for d, v in zip(rerun.decisions, rerun.verdicts.iter_rows(named=True), strict=True):
        codes = v["reason_codes"]
        resized = d.qty is not None and abs(v["qty"] - d.qty) > 1e-9
        if not v["approved"]:
            verdict = BLOCKED
        elif resized or any(c in MODIFYING for c in codes):
            verdict = MODIFIED
        else:
            verdict = ALLOWED
        out.append(
            {
                "order": d.label,
                "ts": d.ts,
                "symbol": d.symbol,
                "side": "BUY" if d.side > 0 else "SELL",
                "path": d.intent,
                "bot_qty": d.qty,
                "bot_sent": None if d.bot_sent is None else d.bot_sent[1],
                "verdict": verdict,
                "reason_codes": codes,
                "would_send": {"side": "BUY" if v["side"] > 0 else "SELL", "qty": tidy(v["qty"])}
                if v["approved"]
                else None,
                "numbers": {
                    k: tidy_number(k, v[k])
                    for k in (
                        "price",
                        "position",
                        "equity",
                        "risk",
                        "exposure",
                        "stop_price",
                        "target_price",
                        "advisory",
                        "advisory_confidence",
                    )
                },
                "source": d.source,
                "notes": [],
            }
        )
    return out


def _mark_phantom_exits(incident: Incident, orders: list[dict[str, Any]]) -> None:
    """An exit that closed (at the broker) a position opened by an order today's guardrails
    block is the exit of a position that should never have existed."""
    opened_by: dict[str, str] = {}
    verdict = {o["order"]: o["verdict"] for o in orders}
    by_label = {o["order"]: o for o in orders}
    held: dict[str, float] = {}
    for f in incident.of(BrokerFill):
        before = held.get(f.symbol, 0.0)
        after = before + f.side * f.qty
        held[f.symbol] = after
        if before == 0 and after != 0:
            opened_by[f.symbol] = f.order_id or "?"
        elif after == 0 or before * after < 0:
            opener = opened_by.get(f.symbol)
            o = by_label.get(f.order_id or "")
            if o is not None and opener and verdict.get(opener) == BLOCKED:
                o["notes"].append(
                    f"exit of a position that should never have existed (opened by "
                    f"{opener}, which today's guardrails block)"
                )


def _desyncs(incident: Incident, start: dict[str, float], fills: list[Fill]) -> list[dict]:
    """Moments the bot's belief differed from what the broker held (one merge pass): held
    as the fills add up, or, where the broker's own position was read at the very time of
    the bot's belief (a live runner's reconcile reads both), as the broker said."""
    out = []
    stated = {(e.ts, e.symbol): e.qty for e in incident.of(BrokerPosition)}
    held = dict(start)
    ordered = sorted(fills, key=lambda f: f.ts)
    k = 0
    for e in incident.of(BotPosition):
        while k < len(ordered) and ordered[k].ts <= e.ts:
            f = ordered[k]
            held[f.symbol] = held.get(f.symbol, 0.0) + f.side * f.qty
            k += 1
        broker = tidy(stated.get((e.ts, e.symbol), held.get(e.symbol, 0.0)))
        if abs(broker - e.qty) > 1e-9:
            out.append(
                {"ts": e.ts, "symbol": e.symbol, "bot": e.qty, "broker": broker, "source": e.source}
            )
    return out


def _unbooked(
    incident: Incident, mult: dict[str, float], opening: dict[str, tuple[float, float]]
) -> list[dict[str, Any]]:
    """Broker fills of orders the bot never logged deciding (bracket legs, broker closes):
    the reconcile step books them, with the realized P&L they carry (against the starting
    positions ``opening`` too, as the P&L lines count them)."""
    logged = {i.order_id for i in incident.of(OrderIntent) if i.order_id}
    trails = incident.orders()
    out = []
    pos: dict[str, float] = {s: q for s, (q, _) in opening.items()}
    avg: dict[str, float] = {s: p for s, (_, p) in opening.items()}
    for f in incident.of(BrokerFill):
        p = pos.get(f.symbol, 0.0)
        realized = 0.0
        if p == 0 or (p > 0) == (f.side > 0):
            avg[f.symbol] = (abs(p) * avg.get(f.symbol, 0.0) + f.qty * f.price) / (abs(p) + f.qty)
        else:
            closed = min(f.qty, abs(p))
            realized = closed * (f.price - avg[f.symbol]) * (1 if p > 0 else -1)
            realized *= mult.get(f.symbol, 1.0)
        pos[f.symbol] = p + f.side * f.qty
        if f.order_id in logged or (f.exec_id is not None and f.exec_id in incident.booked):
            continue
        trail = trails.get(f.order_id or "")
        out.append(
            {
                "order": f.order_id,
                "parent": trail.parent_id if trail else None,
                "ts": f.ts,
                "symbol": f.symbol,
                "side": "BUY" if f.side > 0 else "SELL",
                "qty": f.qty,
                "price": f.price,
                "realized_pnl": cents(realized),
            }
        )
    return [u for u in out if u["parent"] is not None or u["realized_pnl"] != 0.0]
