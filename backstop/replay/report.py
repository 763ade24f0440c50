"""Replay reports: text (for a terminal), Markdown (for a postmortem), JSON (for machines,
versioned keys in ``REPLAY.md``) and a matplotlib timeline.

The text form ends with one line per examined order, ``order 14812: Guardrails would block
trade: yes (ADVISORY_WAIT, EXIT_NO_EXPOSURE, MISSING_PROTECTION)``, and the P&L line
``actual -1,700.00 USD | with guardrails 0.00 USD`` (gross, before fees).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from backstop.errors import ConfigError
from backstop.replay.outcome import BLOCKED, MONEY_KEYS, Outcome

DESYNC_LINES = 5
"""Desyncs the text report lists one by one; the rest are counted ("... and N more")."""


def qty_text(value: float | None) -> str:
    """A quantity or a price as text: up to 8 decimals, no trailing zeros, no exponent."""
    if value is None:
        return "?"
    text = f"{round(value, 8) + 0.0:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _number_text(key: str, value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if key in MONEY_KEYS else qty_text(value)
    return str(value)


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
            f"{sent['side']} {qty_text(sent['qty'])} ({codes})"
        )
    sent = order["would_send"]
    return (
        f"order {order['order']}: Guardrails would block trade: no "
        f"(would send {sent['side']} {qty_text(sent['qty'])})"
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
        what = f"{o['side']} {qty_text(o['bot_qty'])} {o['symbol']}"
        bot = "reached the broker" if o["bot_sent"] else "never reached the broker"
        lines.append(
            f"  {_local(o['ts'], tz)}  {o['order']}: {what} via the {o['path']} path, {bot}; "
            f"today {o['verdict']}"
            + (f" [{', '.join(o['reason_codes'])}]" if o["reason_codes"] else "")
        )
        used = ", ".join(f"{k}={_number_text(k, v)}" for k, v in n.items() if v is not None)
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
    for desync in d["desyncs"][:DESYNC_LINES]:
        lines.append(
            f"Desync at {_local(desync['ts'], tz)}: bot believed {qty_text(desync['bot'])} "
            f"{desync['symbol']}, the broker held {qty_text(desync['broker'])} "
            f"({desync['source']})"
        )
    if len(d["desyncs"]) > DESYNC_LINES:
        lines.append(f"... and {len(d['desyncs']) - DESYNC_LINES} more desyncs (--format json)")
    for u in d["unbooked_fills"]:
        lines.append(
            f"Broker fill the bot never booked: {unbooked_what(u)} "
            f"{u['side']} {qty_text(u['qty'])} {u['symbol']} @ {qty_text(u['price'])} at "
            f"{_local(u['ts'], tz)}; reconcile books it with realized P&L "
            f"{u['realized_pnl']:,.2f}"
        )
    for f in d["findings"]:
        lines.append(f"FINDING {f}")
    lines.extend(skipped_lines(d))
    a, c = d["pnl"]["actual"], d["pnl"]["with_guardrails"]
    lines.append(
        f"P&L gross (fees): actual {a['gross']:,.2f} ({a['fees']:,.2f}), "
        f"with guardrails {c['gross']:,.2f} ({c['fees']:,.2f})"
    )
    lines.append("")
    lines.extend(order_line(o) for o in orders)
    lines.append(pnl_line(out))
    return "\n".join(lines)


def unbooked_what(u: dict[str, Any]) -> str:
    """Name an unbooked fill's order: its id (or that it had none) and, for a bracket leg,
    its parent; an order with no parent the bot never logged (placed by hand, say)."""
    order = f"order {u['order']}" if u["order"] is not None else "an order without an id"
    if u["parent"] is not None:
        return f"{order} (leg of {u['parent']})"
    return f"{order} (not logged by the bot: manual or another client's)"


def skipped_lines(d: dict[str, Any]) -> list[str]:
    """One line per unreadable line or record that was left out, naming its file:line."""
    skipped = d["skipped"]
    if not skipped:
        return []
    out = [f"SKIPPED {len(skipped)} unreadable lines or records (left out of the replay):"]
    out += [f"  {s['source']}: {s['reason']}" for s in skipped]
    return out


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
        bot = f"{o['side']} {qty_text(o['bot_sent'])} sent" if o["bot_sent"] else "not sent"
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
    if d["desyncs"]:
        md += ["", "| time | symbol | bot believed | broker held | source |"]
        md.append("| --- | --- | ---: | ---: | --- |")
        md += [
            f"| {_local(x['ts'], tz)} | {x['symbol']} | {qty_text(x['bot'])} | "
            f"{qty_text(x['broker'])} | {x['source']} |"
            for x in d["desyncs"]
        ]
    if d["unbooked_fills"]:
        md.append("")
        md += [
            f"- Broker fill the bot never booked: {unbooked_what(u)} {u['side']} "
            f"{qty_text(u['qty'])} {u['symbol']} @ {qty_text(u['price'])} at "
            f"{_local(u['ts'], tz)}, realized P&L {u['realized_pnl']:,.2f}"
            for u in d["unbooked_fills"]
        ]
    if d["skipped"]:
        md += ["", f"## Skipped: {len(d['skipped'])} unreadable lines or records", ""]
        md += [f"- {s['source']}: {s['reason']}" for s in d["skipped"]]
    return "\n".join(md) + "\n"


def render_json(out: Outcome, order_id: str | None = None) -> str:
    """The stable JSON report (``report_version``; keys documented in REPLAY.md)."""
    d = out.to_dict()
    d["orders"] = _selected(d["orders"], order_id)
    d["summary_lines"] = [order_line(o) for o in d["orders"]] + [pnl_line(out)]
    return json.dumps(d, sort_keys=True, default=str)


def _selected(orders: list[dict[str, Any]], order_id: str | None) -> list[dict[str, Any]]:
    return [o for o in orders if order_id is None or o["order"] == order_id]


def check_plot_path(path: str | os.PathLike[str]) -> Path:
    """Refuse a ``--plot`` file whose folder does not exist or whose type cannot be drawn,
    before any work is done (``ConfigError`` naming ``--plot``)."""
    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError("--plot", f"no such folder: {target.parent} (for {target})")
    if target.is_dir():
        raise ConfigError("--plot", f"{target} is a folder: give a file name such as plot.png")
    kind = target.suffix.lower().lstrip(".")
    if kind not in _PLOT_TYPES:
        what = target.suffix or "file without a type"
        raise ConfigError("--plot", f"cannot draw a {what}: use .png, .pdf or .svg")
    return target


_PLOT_TYPES = frozenset({"png", "pdf", "svg", "jpg", "jpeg"})


def plot_timeline(out: Outcome, path: str | os.PathLike[str]) -> None:
    """Draw ``timeline_figure`` and save it to ``path`` (refused first by ``check_plot_path``)."""
    import matplotlib.pyplot as plt

    target = check_plot_path(path)
    fig = timeline_figure(out)
    try:
        fig.savefig(target, dpi=110)
    except OSError as exc:
        raise ConfigError("--plot", f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def timeline_figure(out: Outcome) -> Any:
    """Price with the orders; bot belief, the broker's actual position and the position the
    guardrails would have held: one matplotlib figure, times in the incident's zone (the
    zone the text report uses), named under the time axis.

    Each position line starts at the figure's first time with the position held before the
    first fill (the broker's start position) and runs to its last time.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    tz = out.incident.tz
    zone = ZoneInfo(tz)
    d = out.to_dict()
    prices = out.rerun.prices
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for symbol in prices["symbol"].unique(maintain_order=True).to_list():
        sub = prices.filter(prices["symbol"] == symbol)
        ax1.plot(_dt(sub["ts"].to_list(), zone), sub["close"].to_list(), label=symbol, lw=1)
    for o in d["orders"]:
        colour = "red" if o["verdict"] == BLOCKED else "green"
        price = o["numbers"]["price"]
        if price is not None:
            at = _dt([o["ts"]], zone)[0]
            ax1.scatter([at], [price], color=colour, zorder=3)
            ax1.annotate(f"{o['order']} {o['verdict']}", (at, price), fontsize=7)
    ax1.set_title(f"{out.incident.name}: orders (red = blocked today)")
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend(loc="best", fontsize=7)
    first, last = _span(out, d)
    for name, style in (("bot_belief", ":"), ("actual", "-"), ("with_guardrails", "--")):
        for symbol, pts in _position_steps(d["paths"][name], first, last).items():
            ax2.step(
                _dt([t for t, _ in pts], zone),
                [q for _, q in pts],
                style,
                where="post",
                label=f"{name.replace('_', ' ')} {symbol}",
            )
    ax2.axhline(0, color="grey", lw=0.5)
    a, c = d["pnl"]["actual"]["gross"], d["pnl"]["with_guardrails"]["gross"]
    ax2.set_title(
        f"position: bot belief, broker (actual), with guardrails; "
        f"P&L actual {a:,.2f} vs guarded {c:,.2f}"
    )
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(loc="best", fontsize=7)
    locator = mdates.AutoDateLocator(tz=zone)
    ax2.xaxis.set_major_locator(locator)
    ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    ax2.set_xlabel(f"time ({tz})")
    fig.tight_layout()
    return fig


def _span(out: Outcome, d: dict[str, Any]) -> tuple[int, int]:
    """The first and last time the figure shows: prices, decisions and fills together."""
    times = [int(t) for t in out.rerun.prices["ts"].to_list()] if out.rerun.prices.height else []
    times += [e.ts for e in out.incident.events]
    times += [p["ts"] for path in d["paths"].values() for p in path if p["ts"] is not None]
    return (min(times), max(times)) if times else (0, 0)


def _position_steps(
    path: list[dict[str, Any]], first: int, last: int
) -> dict[str, list[tuple[int, float]]]:
    """Per symbol, (ts, qty) steps from ``first`` (a start position, ``ts`` None) or from
    the first known position, through every change, to ``last``."""
    out: dict[str, list[tuple[int, float]]] = {}
    for p in path:
        steps = out.setdefault(p["symbol"], [])
        steps.append((first if p["ts"] is None else p["ts"], p["qty"]))
    for steps in out.values():
        steps.append((max(last, steps[-1][0]), steps[-1][1]))
    return out


def _dt(ts: list[int], zone: ZoneInfo) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1e9, tz=UTC).astimezone(zone) for t in ts]
