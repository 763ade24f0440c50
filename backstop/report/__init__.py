"""Reports of a run from its journal: the tearsheet (HTML, Markdown), daily P&L and execution
quality per strategy, and one outcome record per decision cycle."""

from backstop.report.daily import daily_pnl, journal_daily_pnl
from backstop.report.execution import execution_quality
from backstop.report.outcomes import CATEGORIES, cycle_outcomes, journal_cycle_outcomes
from backstop.report.render import render_html, render_markdown, write_tearsheet
from backstop.report.tearsheet import RunReport, journal_stats, load_report

__all__ = [
    "CATEGORIES",
    "RunReport",
    "cycle_outcomes",
    "daily_pnl",
    "execution_quality",
    "journal_cycle_outcomes",
    "journal_daily_pnl",
    "journal_stats",
    "load_report",
    "render_html",
    "render_markdown",
    "write_tearsheet",
]
