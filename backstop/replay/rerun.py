"""The counterfactual re-run's records and inputs: what the report reads, and the helpers
that turn an incident into the pipeline's inputs (instruments, price bars, starting positions,
events, the verdict frame).

The re-run itself (the incident's decisions through the event driver against a broker that
follows the recorded one until today's pipeline decides differently) is composition:
``backstop.runners.replay``. The decisions go through the same compiled kernels as a backtest
or a live run; at the first decision that differs the broker switches to the simulated
exchange (fills on the supplied bars, or on the prices the logs themselves recorded), and the
report says which decision that was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from backstop.data import load_bars, load_bars_frame
from backstop.domain.enums import Advice, EventKind, OrderRole
from backstop.domain.instruments import Instrument, lookup
from backstop.engine.core.portfolio import apply_fill_nb
from backstop.engine.core.records import EVENT_DTYPE, FILL_DTYPE, Portfolio
from backstop.engine.inputs import BarArrays
from backstop.engine.profile import RiskProfile
from backstop.errors import DataError
from backstop.replay.decisions import Decision
from backstop.replay.events import Advisory, BrokerFill, BrokerPosition, Signal
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


def sent_text(sent: tuple[int, float]) -> str:
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


def start_equity(incident: Incident) -> float:
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


def decision_events(incident, decisions, index, strategies, bar_ts):
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


def verdict_frame(driver, decisions, rows) -> pl.DataFrame:
    from backstop.domain.enums import reason_names

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
