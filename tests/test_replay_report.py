"""Report details: plain words for unbooked fills, counted desyncs, rounded numbers, the plot's
zone and position lines, and the command line's quiet end on a closed pipe."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib.pyplot as plt
import pytest

from backstop.cli import main
from backstop.replay.outcome import cents, tidy, tidy_number
from backstop.replay.report import qty_text, timeline_figure
from backstop.runners.replay import replay

HEADER = {
    "schema": "backstop.events",
    "version": 1,
    "tz": "America/New_York",
    "instruments": {"AMD": {"tick": 0.01, "multiplier": 1}},
}
EVENTS = [
    {"ts": "2026-06-05T14:00:00Z", "kind": "broker_position", "symbol": "AMD", "qty": 4},
    {"ts": "2026-06-05T14:00:00Z", "kind": "bot_position", "symbol": "AMD", "qty": 4},
    {"ts": "2026-06-05T14:05:00Z", "kind": "signal", "symbol": "AMD", "side": 1, "price": 150.0},
    {
        "ts": "2026-06-05T14:05:01Z",
        "kind": "order_intent",
        "symbol": "AMD",
        "side": 1,
        "path": "entry",
        "qty": 6,
        "order_id": "o1",
    },
    {
        "ts": "2026-06-05T14:05:02Z",
        "kind": "broker_fill",
        "symbol": "AMD",
        "side": 1,
        "qty": 6,
        "price": 150.1,
        "order_id": "o1",
    },
    # closed by hand at the broker: no order id, never logged by the bot
    {
        "ts": "2026-06-05T14:20:00Z",
        "kind": "broker_fill",
        "symbol": "AMD",
        "side": -1,
        "qty": 10,
        "price": 151.35,
    },
] + [
    # the bot goes on believing it holds 10: seven desyncs
    {"ts": f"2026-06-05T14:2{m}:00Z", "kind": "bot_position", "symbol": "AMD", "qty": 10}
    for m in range(1, 8)
]


@pytest.fixture
def events_log(tmp_path: Path) -> Path:
    path = tmp_path / "manual.jsonl"
    lines = [json.dumps(HEADER)] + [json.dumps(e) for e in EVENTS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_manual_fill_without_an_id_is_named_plainly(
    events_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(events_log)]) == 0
    out = capsys.readouterr().out
    assert (
        "Broker fill the bot never booked: an order without an id (not logged by the bot: "
        "manual or another client's) SELL 10 AMD @ 151.35 at 2026-06-05 10:20:00 EDT; "
        "reconcile books it with realized P&L 12.90"
    ) in out
    assert "None" not in out and "leg of" not in out


def test_desyncs_past_five_are_counted(
    events_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(events_log)]) == 0
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if line.startswith("Desync at ")]
    assert len(listed) == 5
    assert listed[0] == (
        f"Desync at 2026-06-05 10:21:00 EDT: bot believed 10 AMD, the broker held 0 "
        f"({events_log}:8)"
    )
    assert "... and 2 more desyncs (--format json)" in out
    assert main(["replay", str(events_log), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.count("| AMD | 10 | 0 |") == 7


def test_numbers_are_rounded_money_to_cents(
    events_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(events_log), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    o1 = d["orders"][0]
    assert o1["numbers"]["equity"] == round(o1["numbers"]["equity"], 2)
    # 4 held from the start at the first price seen (150) and 6 bought at 150.10, all sold
    # at 151.35: 10 x (151.35 - 150.06)
    assert d["pnl"]["actual"] == {
        "gross": 12.9,
        "realized": 12.9,
        "unrealized": 0.0,
        "fees": 0.0,
        "net": 12.9,
    }
    assert d["unbooked_fills"][0]["realized_pnl"] == 12.9
    assert main(["replay", str(events_log)]) == 0
    text = capsys.readouterr().out
    used = next(line for line in text.splitlines() if "numbers used:" in line)
    assert used.strip().startswith("numbers used: price=150, position=4, equity=")
    assert "000000" not in text and "999999" not in text


@pytest.mark.parametrize(
    ("value", "text"),
    [(10.0, "10"), (0.1 + 0.2, "0.3"), (-0.0, "0"), (1234567.0, "1234567"), (0.125, "0.125")],
)
def test_qty_text(value: float, text: str) -> None:
    assert qty_text(value) == text


def test_rounding_helpers() -> None:
    assert cents(24986.260000000002) == 24986.26
    assert str(cents(-0.001)) == "0.0"
    assert tidy(0.1 + 0.2) == 0.3
    assert tidy_number("equity", 93.16000000000001) == 93.16
    assert tidy_number("price", 142.86000000000001) == 142.86
    assert tidy_number("advisory", "WAIT") == "WAIT"


def test_plot_uses_the_report_zone_and_draws_start_and_guarded_positions(
    events_log: Path,
) -> None:
    out = replay(events_log).outcome
    fig = timeline_figure(out)
    try:
        ax = fig.axes[1]
        assert ax.get_xlabel() == "time (America/New_York)"
        lines = {line.get_label(): line for line in ax.get_lines() if "AMD" in line.get_label()}
        assert sorted(lines) == ["actual AMD", "bot belief AMD", "with guardrails AMD"]
        ny = ZoneInfo("America/New_York")
        actual = lines["actual AMD"]
        first_x = actual.get_xdata()[0]
        assert first_x == datetime(2026, 6, 5, 10, 0, tzinfo=ny)  # the start, before any fill
        assert first_x.utcoffset() == ny.utcoffset(first_x)
        assert list(actual.get_ydata()[:3]) == [4.0, 10.0, 0.0]
        guarded = lines["with guardrails AMD"]
        assert guarded.get_ydata()[0] == 4.0 and len(guarded.get_ydata()) >= 2
        fig.canvas.draw()
        ticks = [t.get_text() for t in ax.get_xticklabels() if ":" in t.get_text()]
        assert ticks and all(t.startswith("10:") for t in ticks)  # New York time, not UTC's 14:
    finally:
        plt.close(fig)


def test_plot_into_a_missing_folder_is_one_line(
    events_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no" / "plot.png"
    assert main(["replay", str(events_log), "--plot", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"backstop: error: --plot: no such folder: {target.parent} (for {target})\n"


def test_plot_is_written(events_log: Path, tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    assert main(["replay", str(events_log), "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_strict_and_tolerant_are_exclusive(
    events_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["replay", str(events_log), "--strict", "--tolerant"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
