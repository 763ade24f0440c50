"""Replay reports: text (for a terminal), Markdown (for a postmortem), JSON (for machines,
versioned keys in ``REPLAY.md``) and a matplotlib timeline.

The text form ends with one line per examined order, ``order 14812: Guardrails would block
trade: yes (ADVISORY_WAIT, EXIT_NO_EXPOSURE, MISSING_PROTECTION)``, and the P&L line
``actual -1,700.00 USD | with guardrails 0.00 USD`` (gross, before fees).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from backstop.replay.outcome import BLOCKED, Outcome


def _local(ts: int | None, tz: str) -> str:
    if ts is None:
        return "start"
    t = datetime.fromtimestamp(ts / 1e9, tz=UTC).astimezone(ZoneInfo(tz))
    return t.strftime("%Y-%m-%d %H:%M:%S %Z")


def order_line(order: dict[str, Any]) -> str:
    """The one-line verdict of an examined order."""
    codes = ", ".join(sorted(order["reason_codes"]))
    if order["verdict"] == BLOCKED:
        return f"order {order['order']}: Guardrails would block trade: yes ({codes})"
    if order["verdict"] == "MODIFIED":
        sent = order["would_send"]
        return (
            f"order {order['order']}: Guardrails would block trade: no, modified to "
            f"{sent['side']} {sent['qty']:g} ({codes})"
        )
    sent = order["would_send"]
    return (
        f"order {order['order']}: Guardrails would block trade: no "
        f"(would send {sent['side']} {sent['qty']:g})"
    )


def pnl_line(out: Outcome) -> str:
    return (
        f"actual {out.actual['gross']:,.2f} USD | with guardrails "
        f"{out.counterfactual['gross']:,.2f} USD"
    )


def render_text(out: Outcome, order_id: str | None = None) -> str:
    """The terminal report: timeline of decisions, findings, then the verdict lines."""
    tz = out.incident.tz
    d = out.to_dict()
    lines = [
        f"Incident {out.incident.name} (profile {d['profile']}, times {tz})",
        "",
        "Decisions, judged again by today's pipeline:",
    ]
    orders = _selected(d["orders"], order_id)
    for o in orders:
        n = o["numbers"]
        what = f"{o['side']} {o['bot_qty'] if o['bot_qty'] is not None else '?'} {o['symbol']}"
        bot = "reached the broker" if o["bot_sent"] else "never reached the broker"
        lines.append(
            f"  {_local(o['ts'], tz)}  {o['order']}: {what} via the {o['path']} path, {bot}; "
            f"today {o['verdict']}"
            + (f" [{', '.join(o['reason_codes'])}]" if o["reason_codes"] else "")
        )
        used = ", ".join(f"{k}={v}" for k, v in n.items() if v is not None)
        lines.append(f"      numbers used: {used}")
        for note in o["notes"]:
            lines.append(f"      note: {note}")
        lines.append(f"      from {o['source']}")
    div = d["first_divergence"]
    lines.append("")
    if div:
        lines.append(
            f"First divergent decision: {div['decision']} at {_local(div['ts'], tz)} "
            f"(bot: {div['bot']}; today: {div['today']}); recorded fills kept until then, "
            "simulated fills after."
        )
    else:
        lines.append("Today's pipeline decides every order as the bot did: recorded fills kept.")
    for desync in d["desyncs"][:5]:
        lines.append(
            f"Desync at {_local(desync['ts'], tz)}: bot believed {desync['bot']:g} "
            f"{desync['symbol']}, the broker held {desync['broker']:g} ({desync['source']})"
        )
    for u in d["unbooked_fills"]:
        lines.append(
            f"Broker fill the bot never booked: order {u['order']} (leg of {u['parent']}) "
            f"{u['side']} {u['qty']:g} {u['symbol']} @ {u['price']:,.2f} at "
            f"{_local(u['ts'], tz)}; reconcile books it with realized P&L "
            f"{u['realized_pnl']:,.2f}"
        )
    for f in d["findings"]:
        lines.append(f"FINDING {f}")
    if d["skipped_lines"]:
        lines.append(f"{d['skipped_lines']} log lines could not be read (tolerant mode)")
    a, c = d["pnl"]["actual"], d["pnl"]["with_guardrails"]
    lines.append(
        f"P&L gross (fees): actual {a['gross']:,.2f} ({a['fees']:,.2f}), "
        f"with guardrails {c['gross']:,.2f} ({c['fees']:,.2f})"
    )
    lines.append("")
    lines.extend(order_line(o) for o in orders)
    lines.append(pnl_line(out))
    return "\n".join(lines)


def render_markdown(out: Outcome, order_id: str | None = None) -> str:
    """A postmortem section: what happened, what today's guardrails would do, the cost."""
    tz = out.incident.tz
    d = out.to_dict()
    md = [
        f"# Replay: {out.incident.name}",
        "",
        f"Profile `{d['profile']}`; times in {tz}.",
        "",
        "| time | order | bot did | path | today | reason codes | notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in _selected(d["orders"], order_id):
        bot = f"{o['side']} {o['bot_sent']:g} sent" if o["bot_sent"] else "not sent"
        md.append(
            f"| {_local(o['ts'], tz)} | {o['order']} | {bot} | {o['path']} | {o['verdict']} | "
            f"{', '.join(o['reason_codes']) or '-'} | {'; '.join(o['notes']) or '-'} |"
        )
    a, c = d["pnl"]["actual"], d["pnl"]["with_guardrails"]
    md += [
        "",
        "| P&L (USD) | gross | fees | net |",
        "| --- | ---: | ---: | ---: |",
        f"| actual | {a['gross']:,.2f} | {a['fees']:,.2f} | {a['net']:,.2f} |",
        f"| with guardrails | {c['gross']:,.2f} | {c['fees']:,.2f} | {c['net']:,.2f} |",
        "",
    ]
    if d["first_divergence"]:
        div = d["first_divergence"]
        md.append(
            f"First divergent decision: **{div['decision']}** ({div['bot']} -> {div['today']})."
        )
    md += [f"- {f}" for f in d["findings"]]
    return "\n".join(md) + "\n"


def render_json(out: Outcome, order_id: str | None = None) -> str:
    """The stable JSON report (``report_version``; keys documented in REPLAY.md)."""
    d = out.to_dict()
    d["orders"] = _selected(d["orders"], order_id)
    d["summary_lines"] = [order_line(o) for o in d["orders"]] + [pnl_line(out)]
    return json.dumps(d, sort_keys=True, default=str)


def _selected(orders: list[dict[str, Any]], order_id: str | None) -> list[dict[str, Any]]:
    return [o for o in orders if order_id is None or o["order"] == order_id]


def plot_timeline(out: Outcome, path: str) -> None:
    """Price with the orders, bot belief vs broker position, actual vs counterfactual
    position: one figure, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = out.to_dict()
    prices = out.rerun.prices
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for symbol in prices["symbol"].unique(maintain_order=True).to_list():
        sub = prices.filter(prices["symbol"] == symbol)
        ax1.plot(_dt(sub["ts"].to_list()), sub["close"].to_list(), label=symbol, lw=1)
    for o in d["orders"]:
        colour = "red" if o["verdict"] == BLOCKED else "green"
        price = o["numbers"]["price"]
        if price is not None:
            ax1.scatter(_dt([o["ts"]]), [price], color=colour, zorder=3)
            ax1.annotate(f"{o['order']} {o['verdict']}", (_dt([o["ts"]])[0], price), fontsize=7)
    ax1.set_title(f"{out.incident.name}: orders (red = blocked today)")
    ax1.legend(loc="best", fontsize=7)
    for name, style in (("bot_belief", ":"), ("actual", "-"), ("with_guardrails", "--")):
        pts = [p for p in d["paths"][name] if p["ts"] is not None]
        if pts:
            ax2.step(
                _dt([p["ts"] for p in pts]),
                [p["qty"] for p in pts],
                style,
                where="post",
                label=name.replace("_", " "),
            )
    ax2.axhline(0, color="grey", lw=0.5)
    a, c = d["pnl"]["actual"]["gross"], d["pnl"]["with_guardrails"]["gross"]
    ax2.set_title(f"position: bot belief vs broker; P&L actual {a:,.2f} vs guarded {c:,.2f}")
    ax2.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _dt(ts: list[int]) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1e9, tz=UTC) for t in ts]
