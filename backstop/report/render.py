"""Render a ``RunReport`` as one self-contained HTML page or as Markdown."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backstop.errors import BackstopError
from backstop.report.daily import daily_rows
from backstop.report.tearsheet import (
    TRADES_SHOWN,
    RunReport,
    band_rows,
    equity_figure,
    load_report,
    monthly_figure,
    monthly_rows,
    png_base64,
    reason_rows,
    setting_rows,
    stat_rows,
    strategy_title,
    trade_rows,
)

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:2px 8px;font-size:0.9em}"
    "th{background:#f3f3f3;text-align:left}td{text-align:right}"
    "img{max-width:100%}"
)


def _html_table(head: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    esc = html.escape
    out = ["<table>"]
    if head:
        out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        cells = [f"<th>{esc(row[0])}</th>"] if not head else [f"<td>{esc(row[0])}</td>"]
        cells += [f"<td>{esc(c)}</td>" for c in row[1:]]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _html_img(alt: str, fig: Any) -> str:
    return f"<img alt='{alt}' src='data:image/png;base64,{png_base64(fig)}'>"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(head), line(["---"] * len(head)), *(line(r) for r in rows)])


def _trade_note(rep: RunReport) -> str:
    n = rep.trades.height
    if n > TRADES_SHOWN:
        return f"The first {TRADES_SHOWN} of {n:,} trades; all are in the journal's trades table."
    return f"All {n:,} trades."


def render_html(rep: RunReport) -> str:
    """One HTML page, figures embedded: stats, equity and drawdown, monthly returns, trades,
    verdicts by reason, the intrabar band, the config and profile."""
    esc = html.escape
    title = f"backstop run {rep.run['run_id']}: {strategy_title(rep)}"
    trade_head, trade_body = trade_rows(rep)
    month_head, month_body = monthly_rows(rep)
    reasons = reason_rows(rep)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>",
        "<h2>Statistics</h2>",
        _html_table(None, stat_rows(rep)),
        "<h2>Equity and drawdown</h2>",
        _html_img("equity and drawdown", equity_figure(rep)),
        "<h2>Monthly returns</h2>",
        _html_img("monthly returns", monthly_figure(rep)),
        _html_table(month_head, month_body),
        "<h2>Daily P&amp;L per strategy</h2>",
        _html_table(*daily_rows(rep.daily)) if rep.daily.height else "<p>no closed trades</p>",
        "<h2>Verdicts by reason code</h2>",
        _html_table(["code", "verdicts", "meaning"], reasons) if reasons else "<p>none</p>",
        "<h2>Intrabar ordering (the ambiguity band)</h2>",
        _html_table(None, band_rows(rep)),
        "<h2>Trades</h2>",
        f"<p>{esc(_trade_note(rep))}</p>",
        _html_table(trade_head, trade_body),
        "<h2>Config and profile</h2>",
        _html_table(None, setting_rows(rep)),
        "</body></html>",
    ]
    return "\n".join(parts)


def render_markdown(rep: RunReport) -> str:
    """The same sections in Markdown, figures embedded as data URIs."""
    trade_head, trade_body = trade_rows(rep)
    month_head, month_body = monthly_rows(rep)
    reasons = reason_rows(rep)
    parts = [
        f"# backstop run {rep.run['run_id']}: {strategy_title(rep)}",
        "## Statistics",
        _md_table(["statistic", "value"], stat_rows(rep)),
        "## Equity and drawdown",
        f"![equity and drawdown](data:image/png;base64,{png_base64(equity_figure(rep))})",
        "## Monthly returns",
        _md_table(month_head, month_body),
        "## Daily P&L per strategy",
        _md_table(*daily_rows(rep.daily)) if rep.daily.height else "no closed trades",
        "## Verdicts by reason code",
        _md_table(["code", "verdicts", "meaning"], reasons) if reasons else "none",
        "## Intrabar ordering (the ambiguity band)",
        _md_table(["what", "value"], band_rows(rep)),
        "## Trades",
        _trade_note(rep),
        _md_table(trade_head, trade_body),
        "## Config and profile",
        _md_table(["setting", "value"], setting_rows(rep)),
    ]
    return "\n\n".join(parts) + "\n"


def write_tearsheet(
    journal: str | Path, html_path: str | Path | None = None, md_path: str | Path | None = None
) -> list[Path]:
    """Write the tearsheet of ``journal`` (file or run folder) as HTML and/or Markdown; with
    neither path given, ``tearsheet.html`` beside the journal. Returns the paths written."""
    rep = load_report(journal)
    if html_path is None and md_path is None:
        base = Path(journal)
        html_path = (base if base.is_dir() else base.parent) / "tearsheet.html"
    written = []
    for path, render in ((html_path, render_html), (md_path, render_markdown)):
        if path is not None:
            path = Path(path)
            try:
                path.write_text(render(rep), encoding="utf-8")
            except OSError as exc:
                raise BackstopError(f"{path}: tearsheet not written ({exc.strerror})") from None
            written.append(path)
    return written
