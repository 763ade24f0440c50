"""Guardrail sweeps: which risk-profile settings block every incident, and at what cost.

``guardrail_sweep`` takes a base profile and a grid of risk keys (``entry.max_loss_per_trade``,
``advisory.override_min_conviction``, ... the README's profile table), and for every
combination builds the profile, replays each incident through it (``runners.replay``: the
same pipeline as ``backstop replay``) and runs one backtest with it. An incident counts as
blocked when every order its ``expect.toml`` marks ``BLOCKED`` is blocked by the candidate
profile: those are the orders that did the damage. The backtest says what the settings cost
in research: its P&L, and how much less that is than the base profile's.

Everything runs in this process, one combination after another (an incident replays in
milliseconds; the backtest's bars are prepared once), and rows come back in grid order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from backstop.engine.core.riskslots import RISK_KEYS
from backstop.engine.profile import RiskProfile, parse_setting, split_key_values
from backstop.errors import ConfigError, check
from backstop.replay.expect import load_expectations
from backstop.replay.load import load_incident
from backstop.replay.outcome import BLOCKED, outcome_of
from backstop.replay.timeline import Incident
from backstop.runners.backtest import Backtest
from backstop.runners.replay import gc_paused, rerun

OFF = "off"  # a grid value: the key left out of the profile (a limit that is off by default)
_DEFAULTS = {k.key: k.default for k in RISK_KEYS}
BACKTEST_STATS = ("round_trips", "total_return", "sharpe", "max_drawdown", "win_rate")


@dataclass(frozen=True)
class _Case:
    """One incident, loaded once, and the orders that must be blocked."""

    name: str
    incident: Incident
    must_block: tuple[str, ...]


def incident_paths(incidents: str | Path | Iterable[str | Path]) -> list[Path]:
    """Scenario folders: each path given, or every folder with an ``incident.toml`` inside a
    folder given (such as ``replays``), in name order."""
    given = [incidents] if isinstance(incidents, str | Path) else list(incidents)
    out: list[Path] = []
    for item in given:
        path = Path(item)
        if (path / "incident.toml").is_file():
            out.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if (p / "incident.toml").is_file())
            check(bool(found), ConfigError("incidents", f"{path}: no incident folders inside"))
            out.extend(found)
        else:
            raise ConfigError("incidents", f"{path}: not an incident folder")
    check(bool(out), ConfigError("incidents", "give at least one incident folder"))
    return out


def risk_grid(risk: dict[str, Any]) -> dict[str, list[Any]]:
    """``{key: values}`` -> typed values per key (``"off"`` kept), checked by the key table."""
    check(bool(risk), ConfigError("risk", "give at least one risk key to sweep"))
    grid: dict[str, list[Any]] = {}
    for key, values in risk.items():
        seq = list(values) if isinstance(values, list | tuple | range) else [values]
        check(bool(seq), ConfigError(key, "no values to sweep"))
        typed = []
        for value in seq:
            if value is None or value == OFF:
                check(
                    key in _DEFAULTS and _DEFAULTS[key] is None,
                    ConfigError(key, "'off' applies only to limits that are off by default"),
                )
                typed.append(OFF)
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            typed.append(parse_setting(f"{key}={text}")[1])
        grid[key] = typed
    return grid


def parse_risk_grid(items: list[str]) -> dict[str, list[Any]]:
    """``--risk-grid KEY=a,b,c`` items -> the grid, in the order given."""
    raw = split_key_values(items, "--risk-grid", "KEY=a,b,c")
    check(bool(raw), ConfigError("--risk-grid", "give at least one KEY=a,b,c"))
    return risk_grid(
        {k: [v.strip() for v in text.split(",") if v.strip()] for k, text in raw.items()}
    )


def profile_for(base: RiskProfile, combo: dict[str, Any]) -> RiskProfile:
    """``base`` with the combination's keys set (``off``: left out)."""
    kept = {k: v for k, v in base.settings if combo.get(k) != OFF}
    kept.update({k: v for k, v in combo.items() if v != OFF})
    return RiskProfile(
        name=base.name,
        description=base.description,
        settings=tuple(sorted(kept.items())),
        calendar=base.calendar,
        source=base.source,
        strategies=base.strategies,
        sectors=base.sectors,
    )


def _case(path: Path) -> _Case:
    """Load an incident and its expected-BLOCKED orders (an incident without any is refused:
    there would be nothing to block)."""
    expect = path / "expect.toml"
    check(
        expect.is_file(),
        ConfigError("incidents", f"{path}: no expect.toml naming the orders that must be blocked"),
    )
    orders = load_expectations(expect).data.get("orders", {})
    must = tuple(sorted(k for k, v in orders.items() if v.get("verdict") == BLOCKED))
    check(
        bool(must),
        ConfigError("incidents", f"{expect}: no order expected BLOCKED, nothing to block"),
    )
    return _Case(path.name, load_incident(path), must)


def _replay(case: _Case, profile: RiskProfile) -> tuple[bool, float]:
    """Whether ``profile`` blocks every order that must be blocked, and the with-guardrails
    net P&L."""
    verdicts, net = _judged(case, profile)
    blocked = all(verdicts.get(order) == BLOCKED for order in case.must_block)
    return blocked, net


def _judged(case: _Case, profile: RiskProfile) -> tuple[dict[str, str], float]:
    """Each order's verdict under ``profile`` and the with-guardrails net P&L."""
    with gc_paused():
        out = outcome_of(case.incident, rerun(case.incident, profile))
    return {o["order"]: o["verdict"] for o in out.orders}, float(out.counterfactual["net"])


def incident_let_through(path: str | Path, profile: RiskProfile) -> tuple[list[str], list[str]]:
    """The orders of the incident at ``path`` that must be blocked (its ``expect.toml``), and
    those of them ``profile`` does not block, as ``order (VERDICT)`` (the readiness check)."""
    case = _case(Path(path))
    verdicts, _ = _judged(case, profile)
    missed = [
        f"{order} ({verdicts.get(order, 'not decided')})"
        for order in case.must_block
        if verdicts.get(order) != BLOCKED
    ]
    return list(case.must_block), missed


def _backtest(bt: Backtest, profile: RiskProfile) -> dict[str, Any]:
    """One research run under ``profile``: P&L, headline stats, verdicts refused."""
    run = Backtest(bt.prepared, bt.strategy, config=bt.config, profile=profile, **bt.params)
    result = run.run()
    stats = result.stats
    row: dict[str, Any] = {"backtest_pnl": result.pnl}
    for key in BACKTEST_STATS:
        row[f"backtest_{key}"] = (
            float(result.round_trips) if key == "round_trips" else float(stats[key])
        )
    row["backtest_refused"] = int((~result.verdicts.get_column("approved")).sum())
    return row


def guardrail_sweep(
    incidents: str | Path | Iterable[str | Path],
    bars: Any,
    *,
    risk: dict[str, Any],
    profile: str | RiskProfile | None = "post-incident",
    strategy: Any = "sma_cross",
    config: Any = None,
    **params: Any,
) -> pl.DataFrame:
    """Sweep risk keys over incidents and a backtest at once; one row per combination.

    ``risk`` maps risk keys to values (``{"entry.max_loss_per_trade": [250, 500, "off"]}``);
    ``profile`` is the base they are set on (a preset, a TOML path or a ``RiskProfile``);
    ``bars``, ``strategy``, ``config`` and ``params`` make the backtest (as ``Backtest``).
    Columns: the swept keys; ``incidents_blocked`` and ``incidents_total``; ``blocks_all``;
    per incident ``<name>:blocked`` and ``<name>:pnl`` (net P&L with these guardrails);
    ``backtest_pnl``, ``backtest_cost`` (the base profile's backtest P&L minus this one's),
    and ``backtest_round_trips``, ``_total_return``, ``_sharpe``, ``_max_drawdown``,
    ``_win_rate``, ``_refused`` (verdicts not approved).
    """
    grid = risk_grid(risk)
    base = profile if isinstance(profile, RiskProfile) else RiskProfile.load(profile)
    cases = [_case(p) for p in incident_paths(incidents)]
    names = [c.name for c in cases]
    check(len(set(names)) == len(names), ConfigError("incidents", "two incidents share a name"))
    bt = Backtest(bars, strategy, config=config, profile=base, **params)
    reference = _backtest(bt, base)["backtest_pnl"]
    rows = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        combo = dict(zip(keys, values, strict=True))
        candidate = profile_for(base, combo)
        row: dict[str, Any] = {k: None if v == OFF else v for k, v in combo.items()}
        outcomes = [_replay(case, candidate) for case in cases]
        row["incidents_blocked"] = sum(blocked for blocked, _ in outcomes)
        row["incidents_total"] = len(cases)
        row["blocks_all"] = all(blocked for blocked, _ in outcomes)
        for case, (blocked, pnl) in zip(cases, outcomes, strict=True):
            row[f"{case.name}:blocked"] = blocked
            row[f"{case.name}:pnl"] = pnl
        tested = _backtest(bt, candidate)
        row["backtest_pnl"] = tested.pop("backtest_pnl")
        row["backtest_cost"] = reference - row["backtest_pnl"]
        row.update(tested)
        rows.append(row)
    return pl.from_dicts(rows, infer_schema_length=None)


def best_guardrails(table: pl.DataFrame) -> dict[str, Any]:
    """The row that blocks the most incidents and, among those, costs the backtest least
    (highest ``backtest_pnl``); the earliest in grid order on a tie."""
    ranked = table.with_row_index("_row").sort(
        ["incidents_blocked", "backtest_pnl", "_row"],
        descending=[True, True, False],
        nulls_last=True,
    )
    return ranked.drop("_row").row(0, named=True)
