"""Notebook manners: a short summary instead of arrays, one figure shown once, no backend
switched, trades coloured by outcome, drawdown in % in its own panel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.colors as mcolors
import nbformat
import pytest
from kit import bars, entry, exit_, run
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from nbclient import NotebookClient

from backstop import BackstopError, Backtest, sample_bars
from backstop.engine.plot import plot_heatmap
from backstop.engine.stats import format_stat

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    (100, 101, 99, 100),
    (100, 103, 99, 102),
    (102, 106, 101, 105),
    (106, 107, 104, 105),  # exit of the first trade fills at 106: a win (entry 100)
    (105, 106, 103, 104),
    (104, 105, 100, 101),  # second entry fills at 104
    (100, 101, 97, 98),  # its exit fills at 100: a loss
    (98, 99, 97, 98),
]


@pytest.fixture(scope="module")
def two_trades():
    return run(bars(ROWS), [entry(0), exit_(2), entry(4), exit_(5)])


@pytest.fixture(scope="module")
def sample_result():
    return Backtest(sample_bars(), "sma_cross", fast=10, slow=50).run()


def test_repr_is_a_few_lines_without_arrays(sample_result) -> None:
    text = repr(sample_result)
    lines = text.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith(f"BacktestResult {sample_result.run_id}: sma_cross(fast=10, ")
    assert "60,000 bars, 3 symbols" in lines[1]
    assert lines[2] == (
        "  symbol from the symbol column of the frame; times UTC (the times carry their zone)"
    )
    assert f"{sample_result.round_trips:,} round trips" in lines[3]
    assert "array(" not in text and "RunRecords" not in text and "dtype" not in text


def test_html_repr_is_a_table_of_headline_figures(sample_result) -> None:
    page = sample_result._repr_html_()
    s = sample_result.stats
    assert page.count("<table>") == 1
    assert f"<td style='text-align:right'>{format_stat('sharpe', s['sharpe'])}</td>" in page
    assert format_stat("max_drawdown", s["max_drawdown"]) in page
    assert "array(" not in page and len(page) < 5_000


def test_plot_is_one_figure_outside_pyplot(two_trades) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = two_trades.plot()
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before  # nothing for Jupyter to show a second time
    assert fig._repr_png_().startswith(b"\x89PNG\r\n\x1a\n")
    assert len(fig.axes) == 3


def test_drawdown_panel_is_in_percent(two_trades) -> None:
    fig = two_trades.plot()
    ax_d = fig.axes[2]
    assert ax_d.get_ylabel() == "drawdown %"
    poly = ax_d.collections[0].get_paths()[0].vertices
    assert poly[:, 1].min() == pytest.approx(two_trades.stats["max_drawdown"] * 100)
    assert two_trades.stats["max_drawdown"] < 0


def test_trade_lines_run_entry_to_exit_coloured_by_outcome(two_trades) -> None:
    fig = two_trades.plot()
    lines = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(lines) == 1
    segs = lines[0].get_segments()
    t = two_trades.trades
    assert t["net_pnl"].to_list()[0] > 0 > t["net_pnl"].to_list()[1]
    assert [(s[0][1], s[1][1]) for s in segs] == [(100.0, 106.0), (104.0, 100.0)]
    colors = [mcolors.to_hex(c) for c in lines[0].get_colors()]
    assert colors == [mcolors.to_hex("tab:green"), mcolors.to_hex("tab:red")]


def test_title_names_the_parameters(sample_result) -> None:
    title = sample_result.plot().axes[0].get_title()
    assert "sma_cross(fast=10, qty=100, slow=50, stop_pct=0.01, target_pct=0.02)" in title


def test_unknown_symbol_is_refused_naming_the_known_ones(sample_result) -> None:
    with pytest.raises(BackstopError, match=r"'XYZ'.*SYN000.*SYN001.*SYN002"):
        sample_result.plot("XYZ")


def test_plot_never_switches_a_scripts_backend(tmp_path: Path) -> None:
    script = (
        "import matplotlib\n"
        "matplotlib.use('svg')\n"
        "from kit import bars, entry, exit_, run\n"
        f"r = run(bars({ROWS!r}), [entry(0), exit_(2)])\n"
        "fig = r.plot()\n"
        "fig.savefig('out.png')\n"
        "print(matplotlib.get_backend())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(ROOT / "tests")))},
        check=True,
    )
    assert out.stdout.strip() == "svg"
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")


def test_heatmap_refuses_an_unknown_column() -> None:
    import polars as pl

    table = pl.DataFrame({"fast": [5, 10], "slow": [50, 50], "sharpe": [0.1, 0.2]})
    with pytest.raises(BackstopError, match="sortino: not a column"):
        plot_heatmap(table, "fast", "slow", "sortino")
    fig = plot_heatmap(table, "fast", "slow", "sharpe")
    assert fig.axes[0].get_images()[0].get_array().tolist() == [[0.1, 0.2]]


def test_jupyter_shows_the_summary_and_the_figure_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own inline backend
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from backstop import Backtest, sample_bars\n"
            "r = Backtest(sample_bars(), 'sma_cross', fast=10, slow=50).run()\nr"
        ),
        nbformat.v4.new_code_cell("r.plot()"),
        nbformat.v4.new_code_cell("fig = r.plot()"),
    ]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    summary, plotted, assigned = (c.outputs for c in nb.cells)
    assert [o["output_type"] for o in summary] == ["execute_result"]
    assert "<table>" in summary[0]["data"]["text/html"]
    images = [o for o in plotted if "image/png" in o.get("data", {})]
    assert len(images) == 1 and len(plotted) == 1
    assert assigned == []  # assigned, not shown: nothing left over for the cell's end
