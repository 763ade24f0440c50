"""Reports of a run from its journal: the tearsheet (HTML, Markdown)."""

from backstop.report.render import render_html, render_markdown, write_tearsheet
from backstop.report.tearsheet import RunReport, journal_stats, load_report

__all__ = [
    "RunReport",
    "journal_stats",
    "load_report",
    "render_html",
    "render_markdown",
    "write_tearsheet",
]
