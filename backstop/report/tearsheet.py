"""A run's tearsheet from its DuckDB journal: one self-contained HTML page, or Markdown.

Everything comes from the journal's tables (``run``, ``equity``, ``trades``, ``verdicts``), so
a tearsheet can be made long after the run, without its bars. The statistics are computed by
the same ``compute_stats`` as ``BacktestResult.stats``, from the same columns, so the two
agree figure for figure. Figures are PNGs embedded as base64: the page needs no other file.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from backstop.domain.enums import REASON_MEANINGS, ReasonCode
from backstop.engine.journal import read_table
from backstop.engine.plot import ResultFigure, drawdown_pct
from backstop.engine.stats import STAT_LABELS, compute_stats, format_stat, verdicts_by_reason
from backstop.report.daily import daily_pnl

TRADES_SHOWN = 100
TRADE_COLUMNS = (
    "trade_id",
    "symbol",
    "direction",
    "qty",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "net_pnl",
    "exit_reason",
    "ambiguous",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class RunReport:
    """What a tearsheet shows, read from one journal."""

    run: dict[str, Any]
    equity: pl.DataFrame
    trades: pl.DataFrame
    stats: dict[str, Any]
    pnl_by_ordering: dict[str, float]
    monthly: pl.DataFrame
    daily: pl.DataFrame  # daily P&L per strategy (``report.daily``)


def journal_stats(
    run: dict[str, Any], equity: pl.DataFrame, trades: pl.DataFrame, verdicts: pl.DataFrame
) -> tuple[dict[str, Any], dict[str, float]]:
    """``BacktestResult.stats`` rebuilt from journal tables, and the P&L by intrabar ordering."""
    config = json.loads(run["config"])
    buy_hold = run.get("buy_hold_return")
    stats = compute_stats(
        equity,
        trades,
        float(config["initial_cash"]),
        buy_hold_return=math.nan if buy_hold is None else float(buy_hold),
    )
    raw = run.get("pnl_by_ordering")
    by_ordering = {k: float(v) for k, v in json.loads(raw).items()} if raw else {}
    stats["ambiguous_exits"] = float(trades.get_column("ambiguous").sum()) if trades.height else 0.0
    stats["pnl_intrabar_low"] = min(by_ordering.values()) if by_ordering else math.nan
    stats["pnl_intrabar_high"] = max(by_ordering.values()) if by_ordering else math.nan
    stats["verdicts_by_reason"] = verdicts_by_reason(verdicts)
    return stats, by_ordering


def monthly_returns(equity: pl.DataFrame, initial_cash: float) -> pl.DataFrame:
    """Each calendar month's (UTC) return: its last equity over the month before's (the first
    month over the initial cash). Columns year, month (1-12), ret."""
    if equity.height == 0:
        return pl.DataFrame(schema={"year": pl.Int32, "month": pl.Int8, "ret": pl.Float64})
    ends = (
        equity.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")).alias("t"))
        .group_by(pl.col("t").dt.year().alias("year"), pl.col("t").dt.month().alias("month"))
        .agg(pl.col("equity").sort_by("ts").last())
        .sort("year", "month")
    )
    prev = ends.get_column("equity").shift(1).fill_null(initial_cash)
    return ends.select("year", "month", (pl.col("equity") / prev - 1.0).alias("ret"))


def load_report(path: str | Path) -> RunReport:
    """Read a journal (its file or run folder) and compute everything a tearsheet shows."""
    run = read_table(path, "run").row(0, named=True)
    equity = read_table(path, "equity")
    trades = read_table(path, "trades")
    verdicts = read_table(path, "verdicts")
    stats, by_ordering = journal_stats(run, equity, trades, verdicts)
    config = json.loads(run["config"])
    cash = float(config["initial_cash"])
    daily = daily_pnl(trades, config.get("session_tz", "America/New_York"))
    return RunReport(run, equity, trades, stats, by_ordering, monthly_returns(equity, cash), daily)


# ---- figures -------------------------------------------------------------------------------


def png_base64(fig: ResultFigure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def equity_figure(rep: RunReport) -> ResultFigure:
    """Equity over time above its drawdown in %."""
    fig = ResultFigure(figsize=(10, 5), layout="constrained")
    ax_e, ax_d = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]}).tolist()
    t = rep.equity.get_column("ts").cast(pl.Datetime("ns")).to_numpy()
    eq = rep.equity.get_column("equity").to_numpy()
    ax_e.plot(t, eq, lw=0.8, color="tab:blue")
    ax_e.set_ylabel("equity")
    ax_d.fill_between(
        t, drawdown_pct(eq, rep.stats["start_equity"]), 0.0, color="tab:red", alpha=0.3
    )
    ax_d.set_ylabel("drawdown %")
    return fig


def monthly_figure(rep: RunReport) -> ResultFigure:
    """Monthly returns as a years x months heat map, in %."""
    years = sorted(set(rep.monthly.get_column("year").to_list()))
    z = np.full((len(years), 12), np.nan)
    for year, month, ret in rep.monthly.iter_rows():
        z[years.index(year), month - 1] = ret * 100.0
    fig = ResultFigure(figsize=(10, 1.2 + 0.45 * len(years)), layout="constrained")
    ax = fig.subplots()
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    image = ax.imshow(z, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(years)), [str(y) for y in years])
    for i, j in np.argwhere(np.isfinite(z)).tolist():
        ax.text(j, i, f"{z[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="return %")
    return fig


# ---- sections as rows --------------------------------------------------------------------


def strategy_title(rep: RunReport) -> str:
    params = json.loads(rep.run["params"] or "{}")
    args = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    strategy = rep.run.get("strategy") or rep.run.get("label") or "run"
    return f"{strategy}({args})" if args else str(strategy)


def stat_rows(rep: RunReport) -> list[tuple[str, str]]:
    return [
        (label, format_stat(key, rep.stats[key]))
        for key, (label, _) in STAT_LABELS.items()
        if key in rep.stats and key != "verdicts_by_reason"
    ]


def reason_rows(rep: RunReport) -> list[tuple[str, str, str]]:
    meanings = {c.name: REASON_MEANINGS[c] for c in ReasonCode}
    return [(k, f"{v:,}", meanings[k]) for k, v in rep.stats["verdicts_by_reason"].items()]


def band_rows(rep: RunReport) -> list[tuple[str, str]]:
    rows = [
        (
            "ambiguous exits (stop and target touched in one bar)",
            f"{rep.stats['ambiguous_exits']:,.0f}",
        )
    ]
    config = json.loads(rep.run["config"])
    rows.append(("ordering used by the run", str(config.get("intrabar", "?"))))
    rows += [(f"net P&L, {k}", f"{v:,.2f}") for k, v in rep.pnl_by_ordering.items()]
    return rows


def trade_rows(rep: RunReport) -> tuple[list[str], list[list[str]]]:
    cols = [c for c in TRADE_COLUMNS if c in rep.trades.columns]
    shown = rep.trades.head(TRADES_SHOWN).select(cols)
    for c in ("entry_ts", "exit_ts"):
        if c in cols:
            shown = shown.with_columns(
                pl.col(c).cast(pl.Datetime("ns", "UTC")).dt.strftime("%Y-%m-%d %H:%M")
            )
    body = [[_cell(v) for v in row] for row in shown.iter_rows()]
    return cols, body


def monthly_rows(rep: RunReport) -> tuple[list[str], list[list[str]]]:
    head = ["year", *MONTHS]
    by_year: dict[int, list[str]] = {}
    for year, month, ret in rep.monthly.iter_rows():
        by_year.setdefault(year, [""] * 12)[month - 1] = f"{ret:.2%}"
    return head, [[str(y), *cells] for y, cells in sorted(by_year.items())]


def setting_rows(rep: RunReport) -> list[tuple[str, str]]:
    rows = [("run id", str(rep.run["run_id"])), ("strategy", strategy_title(rep))]
    rows.append(("bars / symbols", f"{rep.run['bars']:,} / {rep.run['symbols']}"))
    rows.append(("profile", str(rep.run.get("profile", "?"))))
    for name, raw in (("config", rep.run["config"]), ("profile", rep.run.get("profile_settings"))):
        for k, v in sorted(json.loads(raw or "{}").items()):
            rows.append((f"{name}.{k}", str(v)))
    return rows


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".") if math.isfinite(v) else str(v)
    return str(v)
