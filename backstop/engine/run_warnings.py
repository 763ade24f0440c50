"""Stated warnings and run checks: what is legal but probably not meant, said out loud.

"Never silently wrong": a value that is implausible rather than impossible does not stop the
run, but it is said, in the summary and in ``--json``'s ``warnings`` list, so nobody reads a
result without seeing it. Impossible values are errors (``BacktestConfig``, ``RiskProfile``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backstop.engine.config import BacktestConfig
from backstop.engine.profile import RiskProfile
from backstop.errors import ConfigError, check

PERCENT_WARN_ABOVE = 0.01
"""``commission=percent`` rates above this (1% of notional per fill) are stated."""


def config_warnings(config: BacktestConfig) -> list[str]:
    """Warnings about a ``BacktestConfig`` (implausible but not impossible values)."""
    out = []
    if config.commission == "percent" and config.commission_rate > PERCENT_WARN_ABOVE:
        out.append(
            f"commission_rate {config.commission_rate} with commission=percent is "
            f"{config.commission_rate:.2%} of notional per fill (the rate is a fraction: "
            "0.002 = 0.2%)"
        )
    return out


def sizer_warnings(intents: pl.DataFrame, profile: RiskProfile) -> list[str]:
    """Say when the profile sets its sizer but the entries carry their own ``qty``.

    The pipeline sizes an entry from its ``target_dollars``, else its ``qty``, else the
    profile's sizer: a strategy that gives every entry a quantity makes ``sizer.*`` moot.
    """
    keys = [k for k, _ in profile.settings if k.startswith("sizer.") and k != "sizer.max_qty"]
    keys = [k for k in keys if k != "sizer.honour_target_dollars"]
    if not keys or intents.is_empty():
        return []
    entries = intents.filter(
        (pl.col("kind") == 0)
        & (pl.col("intent") == 0)
        & pl.col("qty").is_not_null()
        & pl.col("target_dollars").is_null()
    )
    if entries.is_empty():
        return []
    setting = ", ".join(f"{k}={profile.get(k)}" for k in keys)
    return [
        f"{entries.height} entries carry their own qty, which the pipeline uses instead of the "
        f"profile's sizer ({setting}): drop qty from the strategy to size by the profile"
    ]


def text_id_refs(intents: pl.DataFrame, profile: RiskProfile) -> pl.DataFrame | None:
    """(strategy_id, source_id, source_ref) of text source ids, or None when ids are numbers.

    Text ids are numbered per strategy (``domain/intake.py``); a cold-start cursor
    (``risk.source_cursor``) is a number of the feed's own ids and means nothing for them.
    """
    if intents.is_empty():
        return None
    refs = intents.filter(pl.col("source_ref").is_not_null())
    text = refs.filter(pl.col("source_ref") != pl.col("source_id").cast(pl.String))
    if text.is_empty():
        return None
    check(
        profile.get("risk.source_cursor") is None,
        ConfigError(
            "risk.source_cursor",
            "applies to numeric source ids; this run's ids are text (e.g. "
            f"{text.get_column('source_ref')[0]!r}), numbered in order of appearance",
        ),
    )
    return (
        refs.select(pl.col("strategy_id").fill_null("default"), "source_id", "source_ref")
        .unique(maintain_order=True)
        .sort("strategy_id", "source_id")
    )


def early_intent_warnings(intents: pl.DataFrame, first_bar_ts: int) -> list[str]:
    """Say when several intents are stamped before the first bar: all of them are decided on
    that bar, which is what seconds or milliseconds read as nanoseconds look like."""
    if intents.height < 2:
        return []
    early = int((intents.get_column("ts") < first_bar_ts).sum())
    if early < 2:
        return []
    return [
        f"{early} of {intents.height} intents are stamped before the first bar and are all "
        "decided on it (integer intent ts are nanoseconds since the epoch, UTC)"
    ]


def order_share(
    verdicts: np.ndarray, strategies: tuple[str, ...], is_signal: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    """Per strategy (sorted by id): signals in, signals that sent an order, and their share.

    A run where most signals were refused is a quieter no-op than one with no orders at all;
    ``checks.min_order_share`` turns a low share into the ``LOW_ORDER_SHARE`` finding.
    """
    from backstop.domain.enums import Intent

    v = verdicts
    if is_signal is None:
        is_signal = (v["event"] >= 0) & (v["intent"] != int(Intent.STOP_UPDATE))
    strat = v["strategy"][is_signal].astype(np.int64)
    sent = v["entry_order"][is_signal] >= 0
    n_in = np.bincount(strat, minlength=len(strategies))
    n_out = np.bincount(strat, weights=sent, minlength=len(strategies))
    out = {}
    for k, name in sorted(enumerate(strategies), key=lambda kv: kv[1]):
        if k < len(n_in) and n_in[k]:
            out[name] = {
                "signals": int(n_in[k]),
                "orders": int(n_out[k]),
                "share": round(float(n_out[k]) / float(n_in[k]), 6),
            }
    return out


def source_ref_column(v: np.ndarray, strategy: pl.Series, refs: pl.DataFrame | None) -> pl.Series:
    """Each verdict's source id as given: text ids looked up by (strategy, number), integer
    ids as their decimal text, null without an id."""
    ids = pl.Series("source_id", v["source_id"]).cast(pl.Int64)
    if refs is None:
        return ids.replace(-1, None).cast(pl.String).alias("source_ref")
    keys = pl.DataFrame([strategy.alias("strategy_id"), ids])
    joined = keys.join(refs, on=["strategy_id", "source_id"], how="left", maintain_order="left")
    return joined.get_column("source_ref")


def negative_equity_warnings(equity: pl.DataFrame) -> list[str]:
    """Say when equity went below zero: no account carries that, so the run's sizing, fees or
    cash are almost certainly not what was meant (a percent fee written as a percentage)."""
    if equity.is_empty():
        return []
    row = int(equity.get_column("equity").arg_min())  # type: ignore[arg-type]
    low = float(equity.get_column("equity")[row])
    if not low < 0:
        return []
    from backstop.data._rows import format_ns

    return [
        f"equity went below zero: lowest {low:,.2f} at {format_ns(equity.get_column('ts')[row])}"
        " (no account could carry that: check commission, sizing and initial_cash)"
    ]
