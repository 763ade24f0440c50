"""The plain-English decision journal: one trade cycle, from signal to P&L, from the journal.

Rendered from the DuckDB journal's tables, never kept separately (DESIGN.md "The journal"), so
the story cannot disagree with the records: what the signal asked, what the pipeline decided
and why (reason codes and the numbers it used), which orders went out, how they ended, what
filled, and the round trip's P&L and exit reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from backstop.domain.enums import REASON_MEANINGS, ReasonCode
from backstop.engine.journal import read_table
from backstop.errors import BackstopError


def _when(ts: int | None) -> str:
    if ts is None:
        return "?"
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.2f}"


def _reasons(codes: list[str] | None) -> str:
    if not codes:
        return "no rule objected"
    return "; ".join(f"{c} ({REASON_MEANINGS[ReasonCode[c]]})" for c in codes)


def _journal_file(path: Path) -> Path:
    return path / "journal.duckdb" if path.is_dir() else path


def explain_cycle(journal: str | Path, cycle_id: str) -> str:
    """The story of one trade cycle, as lines of text."""
    path = _journal_file(Path(journal))
    tables = {
        name: read_table(path, name).filter(pl.col("trade_cycle_id") == cycle_id)
        for name in ("verdicts", "orders", "fills", "trades")
    }
    if all(t.is_empty() for t in tables.values()):
        raise BackstopError(f"{path}: no trade cycle {cycle_id!r} in this journal")
    lines = [f"Trade cycle {cycle_id}"]
    for v in tables["verdicts"].sort("ts").iter_rows(named=True):
        lines.append(_verdict_line(v))
    fills = tables["fills"]
    for o in tables["orders"].sort("order_id").iter_rows(named=True):
        lines.append(_order_line(o, fills.filter(pl.col("order_id") == o["order_id"])))
    for t in tables["trades"].iter_rows(named=True):
        lines.append(
            f"- {_when(t['exit_ts'])}: the {t['direction']} {t['symbol']} round trip of "
            f"{t['qty']:g} closed: in at {t['entry_price']:,.4f}, out at {t['exit_price']:,.4f}, "
            f"P&L {_money(t['pnl'])} gross, {_money(t['fees'])} fees, {_money(t['net_pnl'])} "
            f"net; exit reason: {t['exit_reason']}."
        )
    if tables["trades"].is_empty() and not tables["fills"].is_empty():
        lines.append("- The position of this cycle was still open at the end of the run.")
    return "\n".join(lines)


def _verdict_line(v: dict[str, Any]) -> str:
    who = "the engine's exit rules" if v["source"] == "engine" else f"strategy {v['strategy_id']}"
    if v["intent"] == "STOP_UPDATE":
        done = "APPROVED, the stop leg moved" if v["approved"] else "REFUSED, the stop stayed"
        return (
            f"- {_when(v['ts'])}: {who} asked to move the stop of {v['symbol']} to "
            f"{v['price']:,.4f}. Decision: {done}. Why: {_reasons(v['reason_codes'])}. "
            f"Numbers used: position held {v['position']:g}."
        )
    asked = f"{v['intent'].lower()} {v['side']} {v['symbol']}"
    numbers = [f"price {_money(v['price'])}", f"position held {v['position']:g}"]
    if v["equity"] is not None:
        numbers.append(f"equity {_money(v['equity'])}")
    if v["exposure"] is not None:
        numbers.append(f"gross exposure after {_money(v['exposure'])}")
    if v["risk"] is not None:
        numbers.append(f"loss at the stop {_money(v['risk'])}")
    if v["advisory"] is not None:
        numbers.append(f"advisory {v['advisory']} ({v['advisory_confidence']})")
    if v["conviction"] is not None:
        numbers.append(f"conviction {v['conviction']:g}")
    decision = f"APPROVED, sending {v['qty']:g}" if v["approved"] else "REFUSED, nothing was sent"
    return (
        f"- {_when(v['ts'])}: {who} asked to {asked}. Decision: {decision}. "
        f"Why: {_reasons(v['reason_codes'])}. Numbers used: {', '.join(numbers)}."
    )


def _order_line(o: dict[str, Any], fills: pl.DataFrame) -> str:
    level = ""
    if o["limit_price"] is not None:
        level += f" limit {o['limit_price']:,.4f}"
    if o["stop_price"] is not None:
        level += f" stop {o['stop_price']:,.4f}"
    text = (
        f"- {_when(o['created_ts'])}: order {o['order_id']} ({o['client_order_id']}), "
        f"{o['role'].lower()} {o['side']} {o['qty']:g} {o['order_type'].lower()}{level}"
        f"{' reduce-only' if o['reduce_only'] else ''}: {o['status']}"
    )
    if o["done_ts"] is not None:
        text += f" at {_when(o['done_ts'])}"
    if not fills.is_empty():
        parts = [f"{q:g} @ {p:,.4f}" for q, p in zip(fills["qty"], fills["price"], strict=True)]
        text += f"; filled {', '.join(parts)}"
    if o["reason_codes"]:
        text += f"; because {_reasons(o['reason_codes'])}"
    return text + "."
