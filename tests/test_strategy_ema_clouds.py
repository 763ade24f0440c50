"""The EMA-clouds strategy (seed 002) on hand-made bars: its entries, orders and exits bar by bar.

Small clouds (fast 2/3, pullback 3/4, macro 5/6) keep the arithmetic short; the expected
levels come from a plain exponential average written out here, independent of the strategy's.
Ten flat bars at 100 put every average at 100; bar 10 then closes at 101, which turns the fast
cloud bullish with the macro cloud bullish under the close: the setup.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from kit import START_NS, bars

from backstop import Backtest, ConfigError
from backstop.cli import main
from backstop.data import sample_bars
from backstop.domain.enums import OrderRole
from backstop.strategies import get_strategy

CLOUDS = {
    "fast_short": 2,
    "fast_long": 3,
    "pullback_short": 3,
    "pullback_long": 4,
    "macro_short": 5,
    "macro_long": 6,
    "vol_lookback": 3,
}
FLAT = [(100.0, 100.0, 100.0, 100.0, 1000.0)] * 10
SETUP = (100.0, 101.2, 100.0, 101.0, 5000.0)  # bar 10: volume 5x the average: confirmed
QUIET_SETUP = (100.0, 101.2, 100.0, 101.0, 1000.0)  # the same bar without the volume
MINUTE = 60_000_000_000


def _ema(closes: list[float], span: int) -> list[float]:
    """The textbook recursion: e[0] = c[0], e[t] = e[t-1] + 2/(span+1) * (c[t] - e[t-1])."""
    alpha = 2.0 / (span + 1)
    out = [closes[0]]
    for c in closes[1:]:
        out.append(out[-1] + alpha * (c - out[-1]))
    return out


def _closes(rows: list[tuple]) -> list[float]:
    return [float(r[3]) for r in rows]


def _intents(rows: list[tuple], start_ns: int = START_NS, **params) -> pl.DataFrame:
    frame = bars(rows, start_ns=start_ns)
    return get_strategy("ema_clouds").intents(frame, CLOUDS | params)


def _run(rows: list[tuple], start_ns: int = START_NS, **params):
    return Backtest(bars(rows, start_ns=start_ns), "ema_clouds", **(CLOUDS | params)).run()


def test_high_conviction_with_volume_enters_at_market_with_macro_stop_and_2r_target() -> None:
    """seed 002: conviction >= 75 with volume confirmed is a market entry; its stop is the
    macro cloud's far edge and its target 2:1 on the risk from the signal's close."""
    rows = [*FLAT, SETUP, (101.0, 101.3, 100.9, 101.2, 1000.0)]
    stop = min(_ema(_closes(rows), 5)[10], _ema(_closes(rows), 6)[10])
    assert stop == pytest.approx(100 + 2 / 7, abs=1e-12)  # EMA6: 100 + 2/7 x (101 - 100)
    table = _intents(rows)
    assert table.height == 1
    row = table.row(0, named=True)
    assert (row["bar"], row["side"], row["intent"], row["otype"]) == (10, 1, 0, 0)
    assert row["conviction"] == 100.0  # 50 setup + 25 pullback cloud agrees + 25 volume
    assert row["stop_px"] == pytest.approx(stop, abs=1e-9)
    assert row["target_px"] == pytest.approx(101.0 + 2 * (101.0 - stop), abs=1e-9)
    orders = _run(rows).orders.sort("order_id")
    entry = orders.filter(pl.col("role") == "ENTRY").row(0, named=True)
    assert (entry["order_type"], entry["status"], entry["avg_fill_price"]) == (
        "MARKET",
        "FILLED",
        101.0,  # bar 11's open
    )
    legs = orders.filter(pl.col("role") != "ENTRY")
    assert legs.filter(pl.col("role") == "STOP_LOSS")["stop_price"][0] == pytest.approx(stop)
    assert legs.filter(pl.col("role") == "TAKE_PROFIT")["limit_price"][0] == pytest.approx(
        101.0 + 2 * (101.0 - stop)
    )


def test_three_green_closes_outside_the_fast_cloud_exit_as_momentum_exhaustion() -> None:
    """seed 002 exit 2: 3+ consecutive candles close outside the fast cloud, same colour.
    Bars 10, 11 and 12 close green above the fast cloud: the exit is decided at bar 12's close
    and fills at bar 13's open."""
    rows = [
        *FLAT,
        SETUP,
        (101.0, 101.3, 100.9, 101.2, 1000.0),
        (101.2, 101.5, 101.1, 101.4, 1000.0),
        (101.4, 101.6, 101.3, 101.5, 1000.0),
    ]
    table = _intents(rows)
    exits = table.filter(pl.col("intent") == 1)
    assert exits.select("bar", "side", "exit_reason").rows() == [
        (12, -1, int(OrderRole.MOMENTUM_EXHAUSTION))
    ]
    trade = _run(rows).trades_ns.row(0, named=True)
    assert (trade["entry_price"], trade["exit_price"], trade["exit_reason"]) == (
        101.0,
        101.4,
        "momentum_exhaustion",
    )
    four = _intents(rows, exhaustion_bars=4).filter(pl.col("intent") == 1)
    assert four["bar"].to_list() == [13]  # bar 13 is the fourth green close outside


def test_medium_conviction_is_a_day_limit_at_the_pullback_cloud_edge() -> None:
    """seed 002: medium conviction (no volume confirmation) waits for a pullback with a limit
    at the cloud edge; the pullback cloud's near edge on bar 10 is EMA3 = 100.5."""
    rows = [*FLAT, QUIET_SETUP, (100.9, 101.0, 100.45, 100.6, 1000.0)]
    edge = max(_ema(_closes(rows), 3)[10], _ema(_closes(rows), 4)[10])
    assert edge == 100.5
    row = _intents(rows).row(0, named=True)
    assert (row["otype"], row["tif"], row["conviction"]) == (1, 0, 75.0)
    assert row["limit_px"] == pytest.approx(edge, abs=1e-12)
    stop = 100 + 2 / 7
    assert row["target_px"] == pytest.approx(edge + 2 * (edge - stop), abs=1e-9)
    result = _run(rows)
    entry = result.orders.filter(pl.col("role") == "ENTRY").row(0, named=True)
    assert (entry["order_type"], entry["tif"], entry["avg_fill_price"]) == ("LIMIT", "DAY", 100.5)
    assert _intents(rows, medium_conviction=80, high_conviction=90).is_empty()


def test_scale_in_sends_half_now_and_half_at_the_pullback_cloud() -> None:
    """seed 002 scale-in: enter half, add half on the first pullback to the cloud that holds
    (the add is the pipeline's scale-in limit at the pullback cloud's near edge)."""
    rows = [*FLAT, SETUP, (101.0, 101.3, 100.9, 101.2, 1000.0)]
    row = _intents(rows, scale_in=1).row(0, named=True)
    assert row["otype"] == 0
    assert row["scale_in_pct"] == pytest.approx((101.0 - 100.5) / 101.0, abs=1e-12)
    entries = (
        _run(rows, scale_in=1, qty=100)
        .orders.filter(pl.col("role") == "ENTRY")
        .sort("order_id")
        .select("order_type", "qty", "limit_price", "status")
    )
    assert entries.rows()[0] == ("MARKET", 50.0, None, "FILLED")
    assert entries.rows()[1][:2] == ("LIMIT", 50.0)
    assert entries.rows()[1][2] == pytest.approx(100.5, abs=1e-9)


DROP = [
    *FLAT,
    SETUP,
    (101.0, 101.3, 100.9, 101.2, 1000.0),
    (101.2, 101.25, 100.35, 100.4, 1000.0),  # bar 12: below the macro cloud, fast cloud flips
    (100.4, 100.5, 100.3, 100.45, 1000.0),
]


def test_exits_judged_at_one_close_take_the_first_rule_of_exit_priority() -> None:
    """seed 002's exit priority: at bar 12's close the close is below the macro cloud (rule 1)
    and the fast cloud has flipped (rule 3); the stop leg (at the entry's macro edge, 100.2857)
    is not touched. The default order names the macro close; 3125 puts the flip first; 25
    turns both off."""
    closes = _closes(DROP)
    assert closes[12] < min(_ema(closes, 5)[12], _ema(closes, 6)[12])
    assert _ema(closes, 2)[12] < _ema(closes, 3)[12]

    def exit_rows(**params) -> list[tuple]:
        table = _intents(DROP, **params).filter(pl.col("intent") == 1)
        return table.select("bar", "exit_reason").rows()

    assert exit_rows() == [(12, int(OrderRole.THESIS_INVALIDATION))]
    assert exit_rows(exit_priority=3125) == [(12, int(OrderRole.CLOUD_FLIP))]
    assert exit_rows(exit_priority=25) == []
    trade = _run(DROP).trades_ns.row(0, named=True)
    assert (trade["exit_price"], trade["exit_reason"]) == (100.4, "thesis_invalidation")


FLAT_AFTER = [*FLAT, SETUP, *[(101.0, 101.0, 101.0, 101.0, 1000.0)] * 6]


def test_time_stop_closes_day_and_scalp_trades_without_progress_but_not_swing() -> None:
    """seed 002 exit 5: a position open longer than the time stop with no progress (day
    trades). Filled at bar 11's open (101), still 101 at bar 13's close: 3 minutes held."""
    for trade_type in (0, 2):
        table = _intents(FLAT_AFTER, time_stop_minutes=3, trade_type=trade_type)
        assert table.filter(pl.col("intent") == 1).select("bar", "exit_reason").rows() == [
            (13, int(OrderRole.TIME_STOP))
        ]
    swing = _intents(FLAT_AFTER, time_stop_minutes=3, trade_type=1)
    assert swing.filter(pl.col("intent") == 1).is_empty()
    trade = _run(FLAT_AFTER, time_stop_minutes=3).trades_ns.row(0, named=True)
    assert (trade["exit_ts"] - START_NS) // MINUTE == 14
    assert trade["exit_reason"] == "time_stop"


# bar 10 at 15:50 New York: the bar stamped 15:54 ends at the 15:55 close time
LATE = START_NS + (15 * 60 + 40 - (9 * 60 + 30)) * MINUTE


def test_eod_close_applies_to_day_trades_only_and_swing_trades_trail_the_pullback_cloud() -> None:
    """seed 002 exits 6 and 7: day trades are closed by 3:55 PM ET; swing trades are held and
    their stop trails the pullback cloud (8/9 here 3/4), moving only when that tightens it."""
    day = _intents(FLAT_AFTER, start_ns=LATE)
    assert day.filter(pl.col("intent") == 1).select("bar", "exit_reason").rows() == [
        (14, int(OrderRole.EOD_CLOSE))
    ]
    trade = _run(FLAT_AFTER, start_ns=LATE).trades_ns.row(0, named=True)
    assert (trade["exit_ts"] - LATE) // MINUTE == 15
    assert trade["exit_reason"] == "eod_close"
    scalp = _intents(FLAT_AFTER, start_ns=LATE, trade_type=2)
    assert scalp.filter(pl.col("intent") == 1).is_empty()
    swing = _intents(FLAT_AFTER, start_ns=LATE, trade_type=1)
    assert swing.filter(pl.col("intent") == 1).is_empty()
    updates = swing.filter(pl.col("kind") == 3)
    far = _ema(_closes(FLAT_AFTER), 4)  # the lower average of the bullish pullback cloud
    assert updates["bar"].to_list() == [11, 12, 13, 14, 15, 16]
    assert updates["stop_px"].to_list() == pytest.approx([far[i] for i in range(11, 17)])
    moved = _run(FLAT_AFTER, start_ns=LATE, trade_type=1).verdicts_ns.filter(
        pl.col("reason_codes").list.contains("STOP_MOVED")
    )
    assert moved.height == 6
    assert _intents(FLAT_AFTER, start_ns=LATE + 5 * MINUTE).is_empty()  # no day trade after 15:55


def test_a_profile_eod_close_closes_the_day_trade_and_holds_the_swing_trade() -> None:
    """seed 002 exit 6 from the profile (``exits.eod_minutes_before_close``, 5 minutes before
    the 16:00 close): every entry carries its ``trade_type``, so the engine closes the day
    trade at the 15:55 bar's close (filled at the 15:56 open) and holds the swing trade. The
    strategy's own close time is moved past the session so that only the profile's acts."""
    from backstop.engine.profile import RiskProfile

    profile = RiskProfile().with_settings({"exits.eod_minutes_before_close": 5.0})
    frame = bars(FLAT_AFTER, start_ns=LATE)
    params = CLOUDS | {"eod_minute": 1439}
    day = Backtest(frame, "ema_clouds", profile=profile, **params).run()
    assert day.verdicts_ns.filter(pl.col("source") == "engine").select(
        "ts", "reason_codes"
    ).rows() == [(LATE + 15 * MINUTE, ["EOD_CLOSE_EXIT"])]
    trade = day.trades_ns.row(0, named=True)
    assert (trade["exit_ts"], trade["exit_reason"]) == (LATE + 16 * MINUTE, "eod_close")
    swing = Backtest(frame, "ema_clouds", profile=profile, **params, trade_type=1).run()
    assert swing.verdicts_ns.filter(pl.col("source") == "engine").is_empty()
    assert swing.trades_ns.is_empty()
    assert swing.fills_ns.select("role", "qty").rows() == [("ENTRY", 100.0)]


def test_shorts_mirror_the_long_rules_when_enabled() -> None:
    """seed 002 trades both directions: a fast-cloud flip down under a bearish macro cloud is
    a short with its stop at the macro cloud's upper edge (off unless shorts=1)."""
    rows = [*FLAT, (100.0, 100.0, 98.8, 99.0, 5000.0), (99.0, 99.1, 98.7, 98.8, 1000.0)]
    assert _intents(rows).is_empty()
    row = _intents(rows, shorts=1).row(0, named=True)
    stop = 100 - 2 / 7
    assert (row["side"], row["otype"]) == (-1, 0)
    assert row["stop_px"] == pytest.approx(stop, abs=1e-9)
    assert row["target_px"] == pytest.approx(99.0 - 2 * (stop - 99.0), abs=1e-9)


def test_bad_clouds_and_exit_orders_are_config_errors_naming_the_parameter() -> None:
    """seed 002's clouds pair a shorter with a longer average; exit_priority lists rules; a
    scale-in swing trade would hold two stop legs of which the pipeline trails one."""
    strategy = get_strategy("ema_clouds")
    with pytest.raises(ConfigError, match="fast_short: must be shorter than fast_long"):
        strategy.resolve({"fast_short": 12})
    with pytest.raises(ConfigError, match=r"exit_priority: must list rules .* got 124"):
        strategy.resolve({"exit_priority": 124})
    with pytest.raises(ConfigError, match="scale_in: cannot trail a swing trade held in two"):
        strategy.resolve({"scale_in": 1, "trade_type": 1})


def test_runs_from_the_cli_and_the_api_on_the_sample_with_its_model_in_step(
    tmp_path: Path, capsys
) -> None:
    """seed 002 on the bundled sample: the strategy's model of its trade agrees with the
    pipeline, so no entry is refused as a duplicate and no exit finds nothing to close."""
    argv = ["backtest", "--strategy", "ema_clouds", "--param", "trade_type=1", "--json"]
    code = main([*argv, "--journal", str(tmp_path / "j"), "--force"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["strategy"] == "ema_clouds"
    assert out["round_trips"] > 100
    assert set(out["verdicts_by_reason"]) == {"STOP_MOVED"}
    api = Backtest(sample_bars(), "ema_clouds", trade_type=1).run()
    assert api.trades.height == out["round_trips"]
    assert api.stats["trade_count"] == out["stats"]["trade_count"]
