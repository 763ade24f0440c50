"""The HTML tearsheet in a real headless browser (issue: "opens in a headless browser without
console errors"): Chromium loads the page from disk, logs no console message, and the DOM it
built holds the stats table and both embedded figures.

Chromium is a system package, not a Python dependency: where it is not installed the test is
skipped and says so. A page that logs an error is the control that the check can fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from backstop import Backtest, sample_bars
from backstop.engine.journal import write_journal
from backstop.report import load_report, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")


def load(page: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from ``page``, and the console lines it logged."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, timeout=60, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def test_the_tearsheet_loads_in_chromium_without_console_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('broken page')</script></body></html>")
    assert any("broken page" in line for line in load(bad)[1])  # the check can fail
    result = Backtest(sample_bars(), "sma_cross").run()
    write_journal(result, tmp_path / "journal.duckdb")
    page = tmp_path / "report.html"
    page.write_text(render_html(load_report(tmp_path)))
    dom, console = load(page)
    assert console == []
    assert dom.count("data:image/png;base64,") == 2
    assert "Monthly returns" in dom and "Sharpe ratio" in dom
