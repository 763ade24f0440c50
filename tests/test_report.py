"""The tearsheet: built from the journal alone, its numbers equal ``.stats`` of the same run."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import polars as pl
import pytest

from backstop import Backtest, sample_bars
from backstop.cli import main
from backstop.engine.journal import write_journal
from backstop.engine.stats import STAT_LABELS, format_stat
from backstop.report import load_report, render_html, render_markdown
from backstop.report.tearsheet import monthly_returns


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    result = Backtest(sample_bars(), "sma_cross", stop_pct=0.001, target_pct=0.0015).run()
    folder = tmp_path_factory.mktemp("run")
    write_journal(result, folder / "journal.duckdb")
    return result, folder


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_journal_stats_equal_the_results_stats(run) -> None:
    result, folder = run
    rep = load_report(folder)
    assert set(rep.stats) == set(result.stats)
    different = {k for k in result.stats if not _same(result.stats[k], rep.stats[k])}
    assert different == set()
    # the run exercises the parts that need more than equity and trades
    assert rep.stats["ambiguous_exits"] > 0
    assert rep.stats["pnl_intrabar_low"] < rep.stats["pnl_intrabar_high"]
    assert rep.stats["verdicts_by_reason"]["EXIT_NO_EXPOSURE"] > 0
    assert rep.pnl_by_ordering == result.ambiguity()["pnl_by_ordering"]


def test_monthly_returns_chain_month_ends() -> None:
    jan, feb, mar = 1_704_067_200, 1_706_745_600, 1_709_251_200  # 1st of each month 2024, s
    equity = pl.DataFrame(
        {
            "ts": [(t + 3600) * 10**9 for t in (jan, jan + 86_400, feb, mar, mar + 86_400)],
            "equity": [1010.0, 1050.0, 1029.0, 1100.0, 1080.45],
            "gross_exposure": [0.0] * 5,
        }
    )
    rows = monthly_returns(equity, 1000.0).rows()
    assert [(y, m) for y, m, _ in rows] == [(2024, 1), (2024, 2), (2024, 3)]
    assert [r for _, _, r in rows] == pytest.approx([0.05, 1029 / 1050 - 1, 1080.45 / 1029 - 1])


def test_html_is_one_self_contained_page_with_every_section(run) -> None:
    result, folder = run
    page = render_html(load_report(folder))
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 2
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http://" not in page and "https://" not in page
    for key, value in result.stats.items():
        if key != "verdicts_by_reason":
            cell = f"<tr><th>{STAT_LABELS[key][0]}</th><td>{format_stat(key, value)}</td></tr>"
            assert cell.replace("&", "&amp;") in page, key
    for code, count in result.stats["verdicts_by_reason"].items():
        assert f"<td>{code}</td><td>{count:,}</td>" in page
    for name in ("Monthly returns", "Trades", "Config and profile", "ambiguity band"):
        assert name in page
    assert f"The first 100 of {result.trades.height:,} trades" in page
    assert "<th>config.intrabar</th><td>stop_first</td>" in page


def test_markdown_has_the_same_figures(run) -> None:
    result, folder = run
    text = render_markdown(load_report(folder))
    assert f"| Sharpe ratio | {format_stat('sharpe', result.stats['sharpe'])} |" in text
    assert f"| Trades | {result.trades.height:,} |" in text
    low = format_stat("pnl_intrabar_low", result.stats["pnl_intrabar_low"])
    assert f"| P&L, least favourable intrabar ordering | {low} |" in text


def test_cli_report_writes_the_files_asked_for(run, tmp_path: Path, capsys) -> None:
    _, folder = run
    html, md = tmp_path / "t.html", tmp_path / "t.md"
    assert main(["report", str(folder), "--html", str(html), "--md", str(md)]) == 0
    assert capsys.readouterr().out.split() == [str(html), str(md)]
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert md.read_text().startswith("# backstop run ")
    assert main(["report", str(folder / "journal.duckdb")]) == 0  # neither: HTML beside it
    assert capsys.readouterr().out.split() == [str(folder / "tearsheet.html")]
    assert (folder / "tearsheet.html").read_text() == html.read_text()


def test_cli_report_on_a_folder_without_a_journal_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"backstop: error: {tmp_path / 'journal.duckdb'}: no such journal\n"
