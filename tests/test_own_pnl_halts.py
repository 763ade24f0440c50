"""Seed 000's per-strategy halts judged on the strategy's own P&L, two strategies in one account.

Kit bars: entries decided at bar 0's close fill at bar 1's open (100); the account starts at
100,000. Strategy ``a`` trades T, strategy ``b`` trades U; their second entries (V, W) at bar
3 show who is paused. LOSER takes a 98 stop on bar 2 (-200); WINNER closes bar 2 at 110
(+1,000 open).
"""

from __future__ import annotations

import pytest
from kit import bars, combine, entry, intents, run, ts_of

from backstop.engine.checkpoint import Checkpoint
from backstop.engine.profile import RiskProfile
from backstop.errors import BackstopError
from backstop.runners.stepwise import Stepwise, run_event_driven

FLAT = (100.0, 101.0, 99.0, 100.0)
LOSER = [FLAT, FLAT, (100.0, 100.0, 97.0, 97.0), FLAT, FLAT, FLAT]
WINNER = [FLAT, FLAT, (100.0, 110.0, 100.0, 110.0)] + [(110.0, 111.0, 109.0, 110.0)] * 3
FLATS = [FLAT] * 6
BARS_NS = [ts_of(i) for i in range(6)]


def tables(**own: dict) -> RiskProfile:
    """A profile with a ``[strategy.NAME.risk]`` table per keyword."""
    return RiskProfile.from_mapping({"strategy": {k: {"risk": v} for k, v in own.items()}})


def desks_input(t_shape: list, u_shape: list, a_stop: bool, b_stop: bool):
    """Bars and intents: ``a`` buys T and ``b`` buys U at bar 0 (a 98 stop where asked), then
    each enters again at bar 3: ``a`` on V, ``b`` on W."""
    frame = combine(
        bars(t_shape), bars(u_shape, symbol="U"), bars(FLATS, symbol="V"), bars(FLATS, symbol="W")
    )
    stop_a = {"stop_px": 98.0, "target_px": 120.0} if a_stop else {}
    stop_b = {"stop_px": 98.0, "target_px": 120.0} if b_stop else {}
    rows = [
        entry(0, symbol="T", strategy_id="a", **stop_a),
        entry(0, symbol="U", strategy_id="b", **stop_b),
        entry(3, symbol="V", strategy_id="a"),
        entry(3, symbol="W", strategy_id="b"),
    ]
    return frame, rows


def two_desks(t_shape: list, u_shape: list, profile: RiskProfile, a_stop: bool, b_stop: bool):
    """The fused backtest of ``desks_input``."""
    frame, rows = desks_input(t_shape, u_shape, a_stop, b_stop)
    return run(frame, rows, profile=profile)


def second_entries(r) -> dict[str, tuple[bool, list[str]]]:
    """strategy -> (approved, reason codes) of its bar-3 entry."""
    v = r.verdicts.filter(r.verdicts["symbol"].is_in(["V", "W"]))
    return {
        row["strategy_id"]: (row["approved"], row["reason_codes"])
        for row in v.iter_rows(named=True)
    }


def guard_rows(r, kind: str) -> list[tuple[str, int, float]]:
    """(strategy, bar index, value) of the guard rows of ``kind``."""
    g = r.guard_events.filter(r.guard_events["kind"] == kind)
    at = [BARS_NS.index(t) for t in g["ts"].dt.epoch("ns").to_list()]
    return list(zip(g["strategy_id"].to_list(), at, g["value"].to_list(), strict=True))


def test_a_losing_strategy_is_paused_while_the_account_is_up() -> None:
    """seed 000: "5% daily-loss circuit (24h pause)" per strategy, judged on its own P&L
    (0.1% of its 100,000 capital here): a's -200 stop-out pauses a at bar 2's close although
    b's +1,000 keeps the account up; b keeps trading."""
    profile = tables(a={"circuit_loss_pct": 0.001}, b={"circuit_loss_pct": 0.001})
    r = two_desks(LOSER, WINNER, profile, a_stop=True, b_stop=False)
    assert r.trades["pnl"].to_list() == [-200.0]
    assert second_entries(r) == {"a": (False, ["DAILY_LOSS_CIRCUIT"]), "b": (True, [])}
    assert guard_rows(r, "CIRCUIT_PAUSED") == [("a", 2, 200.0)]


def test_a_strategy_is_not_paused_for_the_other_strategys_loss() -> None:
    """seed 000, the reverse: the account is down 200 only because b was stopped out; a,
    flat on its own P&L, keeps trading under the same 0.1% circuit; b is paused."""
    profile = tables(a={"circuit_loss_pct": 0.001}, b={"circuit_loss_pct": 0.001})
    r = two_desks(FLATS, LOSER, profile, a_stop=False, b_stop=True)
    assert r.trades["pnl"].to_list() == [-200.0]
    assert second_entries(r) == {"a": (True, []), "b": (False, ["DAILY_LOSS_CIRCUIT"])}
    assert guard_rows(r, "CIRCUIT_PAUSED") == [("b", 2, 200.0)]


def test_own_drawdown_halt_counts_open_losses_and_ignores_the_other_strategys_gains() -> None:
    """seed 000: "20% equity-drawdown halt" per strategy (0.25% here): a's open position in
    T, marked at 97 on bar 2, is -300 on its own curve (99,700 of 100,000) while b's +1,000
    keeps the account up: a is halted with its own equity journaled, b trades."""
    profile = tables(a={"drawdown_halt_pct": 0.0025}, b={"drawdown_halt_pct": 0.0025})
    r = two_desks(LOSER, WINNER, profile, a_stop=False, b_stop=False)
    assert r.trades.height == 0
    assert second_entries(r) == {"a": (False, ["DRAWDOWN_HALT"]), "b": (True, [])}
    assert guard_rows(r, "DRAWDOWN_HALTED") == [("a", 2, 99_700.0)]


@pytest.mark.parametrize(("capital", "halted"), [(None, False), (10_000.0, True)])
def test_strategy_capital_is_the_base_of_its_own_limits(capital, halted) -> None:
    """seed 000: the base of a strategy's own limits is the account's starting equity unless
    ``risk.strategy_capital`` says otherwise: -200 is 0.2% of 100,000 (under a 1% daily
    limit) but 2% of a 10,000 allocation (over it)."""
    own = {"daily_loss_pct": 0.01} | ({} if capital is None else {"strategy_capital": capital})
    r = two_desks(LOSER, WINNER, tables(a=own), a_stop=True, b_stop=False)
    expected = (False, ["DAILY_LOSS_LIMIT"]) if halted else (True, [])
    assert second_entries(r)["a"] == expected


def test_a_strategy_without_a_table_keeps_the_accounts_numbers() -> None:
    """seed 000: only a strategy with its own table is judged on its own P&L; the account's
    circuit (0.1%) still judges the account's day loss and pauses everyone."""
    profile = RiskProfile.from_mapping({"risk": {"circuit_loss_pct": 0.001}})
    r = two_desks(FLATS, LOSER, profile, a_stop=False, b_stop=True)
    assert second_entries(r) == {
        "a": (False, ["DAILY_LOSS_CIRCUIT"]),
        "b": (False, ["DAILY_LOSS_CIRCUIT"]),
    }


def test_the_event_driver_judges_own_pnl_the_same_way() -> None:
    """seed 000: the event driver (broker port, the live runner's path) reads a strategy's
    open P&L from its broker mirror and pauses the same strategy at the same bar."""
    profile = tables(a={"circuit_loss_pct": 0.001}, b={"circuit_loss_pct": 0.001})
    frame, rows = desks_input(LOSER, WINNER, a_stop=True, b_stop=False)
    r = run_event_driven(frame, intents(rows), profile=profile)
    assert second_entries(r) == {"a": (False, ["DAILY_LOSS_CIRCUIT"]), "b": (True, [])}
    assert guard_rows(r, "CIRCUIT_PAUSED") == [("a", 2, 200.0)]


def test_a_checkpoint_with_another_guard_layout_is_refused() -> None:
    """A checkpoint written before the strategies' own P&L columns existed would be read
    with the wrong columns: it is refused, naming the array and both widths."""
    frame, rows = desks_input(LOSER, WINNER, a_stop=True, b_stop=False)
    first = Stepwise(frame, intents(rows), profile=tables(a={"circuit_loss_pct": 0.001}))
    first.drive(until_event=2)
    saved = first.checkpoint()
    old = {k: dict(v) for k, v in saved.parts.items()}
    old["guard"]["sf"] = old["guard"]["sf"][:, :3]
    again = Stepwise(frame, intents(rows), profile=tables(a={"circuit_loss_pct": 0.001}))
    with pytest.raises(
        BackstopError, match=r"guard state 'sf' has 3 columns, this backstop keeps 6"
    ):
        again.restore(Checkpoint(run_id=saved.run_id, counters=saved.counters, parts=old))


def test_own_drawdown_is_measured_from_the_strategys_own_peak() -> None:
    """seed 000: "20% equity-drawdown halt" per strategy (0.5% here) measures from the
    strategy's own peak: a's T runs to 110 (+1,000, its equity 101,000) and falls back to 104
    (+400): still a gain, but 0.59% under its peak, so a is halted at bar 3 and its bar-4
    entry refused, while b, without a table, trades."""
    peak = [FLAT, FLAT, (100.0, 110.0, 100.0, 110.0), (110.0, 110.0, 104.0, 104.0)]
    peak += [(104.0, 105.0, 103.0, 104.0)] * 2
    frame = combine(
        bars(peak), bars(FLATS, symbol="U"), bars(FLATS, symbol="V"), bars(FLATS, symbol="W")
    )
    rows = [
        entry(0, symbol="T", strategy_id="a"),
        entry(4, symbol="V", strategy_id="a"),
        entry(4, symbol="W", strategy_id="b"),
    ]
    r = run(frame, rows, profile=tables(a={"drawdown_halt_pct": 0.005}))
    assert second_entries(r) == {"a": (False, ["DRAWDOWN_HALT"]), "b": (True, [])}
    assert guard_rows(r, "DRAWDOWN_HALTED") == [("a", 3, 100_400.0)]


def test_a_strategys_day_loss_starts_again_each_day() -> None:
    """seed 000: a strategy's daily loss is its own day's: a's -200 on day 1 refuses its next
    entry that day (0.1% daily_loss_pct), and the next session day starts it at zero."""
    day = 86_400_000_000_000
    stamps = [ts_of(i) for i in range(6)] + [ts_of(i) + day for i in range(6)]
    frame = combine(bars(LOSER + FLATS, ts=stamps), bars(FLATS * 2, symbol="V", ts=stamps))
    rows = [
        entry(0, symbol="T", strategy_id="a", stop_px=98.0, target_px=120.0),
        entry(stamps[3], symbol="V", strategy_id="a"),
        entry(stamps[7], symbol="V", strategy_id="a"),
    ]
    r = run(frame, rows, profile=tables(a={"daily_loss_pct": 0.001}))
    got = [(row["approved"], row["reason_codes"]) for row in r.verdicts.iter_rows(named=True)]
    assert got == [(True, []), (False, ["DAILY_LOSS_LIMIT"]), (True, [])]


def test_a_table_for_every_strategy_judges_each_on_its_own_pnl() -> None:
    """seed 000: the caps are per strategy for whichever strategies send signals; a
    ``[strategy."*".risk]`` table gives each its own circuit without naming it: a's stop-out
    pauses a alone while b, up, keeps trading; a named table's key wins over the "*" one."""
    profile = RiskProfile.from_mapping({"strategy": {"*": {"risk": {"circuit_loss_pct": 0.001}}}})
    assert profile.has_own_limits("a") and profile.has_own_limits("anyone")
    r = two_desks(LOSER, WINNER, profile, a_stop=True, b_stop=False)
    assert second_entries(r) == {"a": (False, ["DAILY_LOSS_CIRCUIT"]), "b": (True, [])}
    assert guard_rows(r, "CIRCUIT_PAUSED") == [("a", 2, 200.0)]
    looser = RiskProfile.from_mapping(
        {"strategy": {"*": {"risk": {"circuit_loss_pct": 0.001}},
                      "a": {"risk": {"circuit_loss_pct": 0.05}}}}
    )  # fmt: skip
    r = two_desks(LOSER, WINNER, looser, a_stop=True, b_stop=False)
    assert second_entries(r) == {"a": (True, []), "b": (True, [])}
