"""The learning loop (seeds 001 and 003): negative-expectancy quarantine on hand-made bars, and
its state exported after a run and restored at the start of the next.

One symbol T, one-minute bars at 100. Each entry (qty 100, stop 98, target 103) is decided
at a bar's close and fills at the next open (100); an UP bar takes the target (+300), a DOWN
bar the stop (-200). The trades go +300, -200, -200: after the third, three closed trades
with a net -100 (expectancy -33.33 a trade) quarantine the strategy.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from kit import bars, entry, intents, ts_of

from backstop.brokers.sim.backtest import run_backtest
from backstop.cli import main
from backstop.engine.learning_state import LearningState
from backstop.engine.profile import RiskProfile
from backstop.errors import ConfigError

F = (100.0, 101.0, 99.0, 100.0)
UP = (100.0, 103.5, 100.0, 103.0)
DOWN = (100.0, 100.0, 97.5, 98.0)
SHAPE = [F, F, UP, F, F, DOWN, F, F, DOWN, F, F, UP, F, F, UP, F, F, F]
SIGNAL_BARS = (0, 3, 6, 9, 10, 12)  # trades 1-3, two entries while quarantined, one after
SPLIT = 10  # the first bar of the second run
LEARN = {
    "learning.enabled": True,
    "learning.min_trades": 3,
    "learning.quarantine_losses": 5,  # the streak (2 losses) never quarantines here
    "learning.win_rate_floor": 0.0,  # nor does the win rate throttle
    "learning.reenable_shadow_wins": 1,
}


def run(bar_frame: pl.DataFrame, rows: list[dict], profile: RiskProfile, learning=None):
    """The fused backtest, restoring ``learning`` when given."""
    return run_backtest(bar_frame, intents(rows), profile=profile, learning=learning)


def profile(**extra) -> RiskProfile:
    return RiskProfile().with_settings(LEARN | extra)


def rows(signal_bars=SIGNAL_BARS) -> list[dict]:
    return [entry(i, stop_px=98.0, target_px=103.0) for i in signal_bars]


def frame(first: int = 0, last: int = len(SHAPE)) -> pl.DataFrame:
    """Bars ``first`` to ``last - 1`` of the shape, stamped on the one grid."""
    return bars(SHAPE[first:last], ts=[ts_of(i) for i in range(first, last)])


def decisions(result) -> list[tuple[bool, list[str]]]:
    return [(r["approved"], r["reason_codes"]) for r in result.verdicts.iter_rows(named=True)]


def guard_kinds(result, since_bar: int = 0) -> list[tuple[str, int, float]]:
    """(kind, bar, value) of the learning loop's guard rows from ``since_bar`` on."""
    g = result.guard_events.filter(pl.col("kind") != "DAY_STARTED")
    at = [(t - ts_of(0)) // ts_of(1, 0) for t in g["ts"].dt.epoch("ns").to_list()]
    out = zip(g["kind"].to_list(), at, g["value"].to_list(), strict=True)
    return [(k, b, round(v, 4)) for k, b, v in out if b >= since_bar]


QUARANTINED = (False, ["STRATEGY_QUARANTINED", "SHADOW_TRADE"])


def test_negative_expectancy_quarantines_after_the_third_trade() -> None:
    """seed 001: "negative expectancy -> quarantine": the third trade closes at bar 8 with
    the strategy's net at -100 over 3 trades; the entries at bars 9 and 10 are refused as
    shadow trades; the shadow of bar 9 takes its target at bar 11, which re-enables the
    strategy (1 shadow win), and bar 12's entry trades again."""
    r = run(frame(), rows(), profile=profile())
    assert r.trades["pnl"].to_list() == [300.0, -200.0, -200.0, 300.0]
    assert decisions(r) == [
        (True, []),
        (True, []),
        (True, []),
        QUARANTINED,
        QUARANTINED,
        (True, []),
    ]
    assert guard_kinds(r) == [
        ("STRATEGY_QUARANTINED", 8, -33.3333),
        ("SHADOW_OPENED", 9, 100.0),
        ("SHADOW_CLOSED", 11, 1.0),  # a win
        ("STRATEGY_REENABLED", 11, 1.0),
    ]


def test_without_the_expectancy_rule_the_losing_strategy_keeps_trading() -> None:
    """seed 001: the refusal above is the expectancy rule's: with it off, bar 9's entry
    trades (and bar 10's is a duplicate of its position), and nothing is quarantined."""
    off = profile(**{"learning.quarantine_on_negative_expectancy": False})
    r = run(frame(), rows(), profile=off)
    assert decisions(r) == [(True, [])] * 4 + [(False, ["DUPLICATE_POSITION"]), (True, [])]
    assert guard_kinds(r) == []


def test_export_then_restore_decides_as_one_continuous_run(tmp_path: Path) -> None:
    """seeds 001/003: run 1 (bars 0-9) ends quarantined with bar 9's shadow trade open; run 2
    (bars 10-17) restored from its file refuses bar 10's entry, settles the shadow at bar
    11 and trades bar 12's entry, exactly as the one run over all the bars does. Without the
    file, run 2 would trade bar 10's entry."""
    whole = run(frame(), rows(), profile=profile())
    first = run(frame(0, SPLIT), rows(SIGNAL_BARS[:4]), profile=profile())
    path = first.learning_state().save(tmp_path / "learning.json")
    saved = json.loads(path.read_text())
    assert saved["strategies"] == {
        "default": {
            "health": "QUARANTINED",
            "n_trades": 3,
            "n_wins": 1,
            "consecutive_losses": 2,
            "consecutive_wins": 0,
            "shadow_wins": 0,
            "sum_pnl": -100.0,
            "shadows": {"T": {"side": 1.0, "entry": 100.0, "stop": 98.0, "target": 103.0}},
        }
    }
    assert (saved["version"], saved["profile"]) == (1, "research")
    second = run(
        frame(SPLIT), rows(SIGNAL_BARS[4:]), profile=profile(), learning=LearningState.load(path)
    )
    assert decisions(second) == decisions(whole)[4:] == [QUARANTINED, (True, [])]
    assert guard_kinds(second) == guard_kinds(whole, SPLIT)
    assert second.trades["pnl"].to_list() == whole.trades["pnl"].to_list()[3:]
    fresh = run(frame(SPLIT), rows(SIGNAL_BARS[4:]), profile=profile())
    assert decisions(fresh)[0] == (True, [])
    assert second.run_id != fresh.run_id  # a restored run is another run


def _state(tmp_path: Path) -> Path:
    first = run(frame(0, SPLIT), rows(SIGNAL_BARS[:4]), profile=profile())
    return first.learning_state().save(tmp_path / "learning.json")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.pop("settings"), "settings"),
        (lambda d: d["strategies"]["default"].pop("n_wins"), "strategies.default.n_wins"),
        (lambda d: d["strategies"]["default"].update(health="ILL"), "strategies.default.health"),
        (lambda d: d["strategies"]["default"].update(sum_pnl="x"), "strategies.default.sum_pnl"),
        (
            lambda d: d["strategies"]["default"]["shadows"]["T"].pop("stop"),
            "strategies.default.shadows.T.stop",
        ),
    ],
)
def test_a_state_file_of_another_shape_names_the_file_and_key(tmp_path: Path, change, key) -> None:
    """A wrong version or a missing or bad key is a ConfigError naming the file and key."""
    path = _state(tmp_path)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        LearningState.load(path)
    assert err.value.key == key and err.value.source == str(path)


@pytest.mark.parametrize(
    ("prof", "strategy", "key"),
    [
        (RiskProfile.preset("micro-futures-constitution"), "default", "profile"),
        (profile(**{"learning.min_trades": 4}), "default", "settings.learning.min_trades"),
        (profile(), "other", "strategies"),
    ],
)
def test_a_state_from_another_profile_or_strategy_set_is_refused(
    tmp_path: Path, prof: RiskProfile, strategy: str, key: str
) -> None:
    """A state judged under another profile, other learning settings or for other strategy
    ids is refused before the run, naming the file and the key that differs."""
    state = LearningState.load(_state(tmp_path))
    later = [entry(SPLIT, strategy_id=strategy)]
    with pytest.raises(ConfigError) as err:
        run(frame(SPLIT), later, profile=prof, learning=state)
    assert err.value.key == key and err.value.source == str(tmp_path / "learning.json")


def test_a_shadow_of_a_symbol_the_next_run_lacks_is_said(tmp_path: Path) -> None:
    """An open shadow trade whose symbol has no bars in the next run cannot settle there:
    the run's warnings say so instead of dropping it silently."""
    state = LearningState.load(_state(tmp_path))
    other = bars(SHAPE[SPLIT:], symbol="U", ts=[ts_of(i) for i in range(SPLIT, len(SHAPE))])
    r = run(other, [entry(SPLIT, symbol="U")], profile=profile(), learning=state)
    assert r.warnings == [
        f"{tmp_path / 'learning.json'}: default's open shadow trade on T is not carried: "
        "this run has no bars of it"
    ]


def _write_csv(folder: Path, first: int, last: int, signal_bars: tuple[int, ...]) -> None:
    stamp = "2024-01-02T14:{:02d}:00Z"
    lines = ["ts,symbol,open,high,low,close,volume"]
    lines += [f"{stamp.format(30 + i)},T,{o},{h},{lo},{c},1000" for i, (o, h, lo, c) in
              zip(range(first, last), SHAPE[first:last], strict=True)]  # fmt: skip
    (folder / "bars.csv").write_text("\n".join(lines) + "\n")
    sig = ["ts,symbol,side,intent,stop,target,qty"]
    sig += [f"{stamp.format(30 + i)},T,buy,entry,98,103,100" for i in signal_bars]
    (folder / "signals.csv").write_text("\n".join(sig) + "\n")


def test_learning_out_and_in_from_the_cli(tmp_path: Path, capsys, monkeypatch) -> None:
    """seeds 001/003 from the CLI: ``--learning-out`` after run 1, ``--learning-in`` before
    run 2: run 2's first entry is refused as quarantined; a state judged under other
    learning settings is one line on stderr naming the file and key, exit 2."""
    monkeypatch.chdir(tmp_path)

    def cli(**over) -> list[str]:
        risk = [x for k, v in (LEARN | over).items() for x in ("--risk", f"{k}={str(v).lower()}")]
        return ["backtest", "--json", "--signals", "signals.csv", "--data", "bars.csv", *risk]

    args = cli()
    _write_csv(tmp_path, 0, SPLIT, SIGNAL_BARS[:4])
    assert main([*args, "--learning-out", "state.json"]) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "state.json").read_text())["strategies"]
    assert saved["external"]["health"] == "QUARANTINED"  # signals without a strategy_id
    _write_csv(tmp_path, SPLIT, len(SHAPE), SIGNAL_BARS[4:])
    assert main([*args, "--learning-in", "state.json", "--journal", "run2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdicts_by_reason"] == {"SHADOW_TRADE": 1, "STRATEGY_QUARANTINED": 1}
    code = main([*cli(**{"learning.min_trades": 4}), "--learning-in", "state.json"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "state.json: settings.learning.min_trades: the state was judged under 3" in err


def test_the_event_driver_restores_the_same_state(tmp_path: Path) -> None:
    """seeds 001/003: the event driver (the live runner's path) restores the state too and
    decides run 2 as the fused loop does."""
    from backstop.runners.stepwise import run_event_driven

    state = LearningState.load(_state(tmp_path))
    second = run_event_driven(
        frame(SPLIT), intents(rows(SIGNAL_BARS[4:])), profile=profile(), learning=state
    )
    assert decisions(second) == [QUARANTINED, (True, [])]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.mkdir(), "cannot read: Is a directory"),
        (lambda p: p.write_bytes(b"\xff\xfe{"), "not JSON"),
        (lambda p: None, "no such file"),
    ],
)
def test_a_state_file_that_cannot_be_read_is_one_line(tmp_path: Path, capsys, make, words) -> None:
    """--learning-in given a folder, bytes that are not UTF-8 JSON, or nothing: one line on
    stderr naming the flag and the cause, exit 2 (never a traceback)."""
    make(tmp_path / "state")
    code = main(["backtest", "--learning-in", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--learning-in" in err and words in err
