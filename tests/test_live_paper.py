"""``backstop paper`` end to end: the real alpaca-py client against the loopback fake Alpaca.

- The paper run's journal equals the backtest's on the same bars (verdicts, fills, trades
  row by row; orders too, except the difference the broker forces: legs an exit makes
  redundant are cancelled when the exit is sent, not when it fills, because Alpaca holds
  the shares of open sell orders; and the backtest runs with legs live from the bar after
  the entry's fill, since a live runner hears of a fill only after its bar).
- OBSERVE decides and journals and sends nothing.
- A runner killed with SIGKILL at random instants and restarted each time ends with the
  uninterrupted run's trades, no order placed twice, every open position protected.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import polars as pl
from kill_kit import alpaca_uncovered, child_env, kill_and_restart

import backstop
from backstop.cli import main
from backstop.engine.config import BacktestConfig
from backstop.engine.journal import read_table, write_journal
from backstop.runners.live.paper import PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, Mode
from backstop.testing.fake_alpaca import FakeAlpaca

BARS = 160
KILLS = 32
KILL_BARS = 300
PARAMS = {"fast": 5, "slow": 20}
IDS = ("trade_cycle_id", "client_order_id", "run_id")


def sample(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    return bars.filter(pl.col("ts").is_in(first.implode()))


def table(path: Path, name: str) -> pl.DataFrame:
    frame = read_table(path, name)
    return frame.drop([c for c in IDS if c in frame.columns])


def test_paper_run_journal_equals_the_backtest(tmp_path: Path) -> None:
    summary = run_paper(
        PaperOptions("alpaca-fake", "sma_cross", PARAMS, None, None, Mode.PAPER,
                     tmp_path / "run", bars=BARS)
    )  # fmt: skip
    assert summary["steps"] == BARS and summary["round_trips"] > 3
    ref = backstop.Backtest(
        sample(BARS), "sma_cross", config=BacktestConfig(legs_live_on_entry_bar=False), **PARAMS
    ).run()
    expected = write_journal(ref, tmp_path / "ref.duckdb")
    live = tmp_path / "run" / JOURNAL
    for name in ("verdicts", "fills", "trades", "guard"):
        assert table(live, name).equals(table(expected, name)), name
    a, e = table(live, "orders"), table(expected, "orders")
    assert a.drop("done_ts").equals(e.drop("done_ts"))
    moved = a.with_columns(bt=e["done_ts"]).filter(pl.col("done_ts") != pl.col("bt"))
    assert set(moved["role"]) <= {"STOP_LOSS", "TAKE_PROFIT"}
    assert (moved["done_ts"] < moved["bt"]).all()
    client = read_table(live, "orders")["client_order_id"]
    assert client.n_unique() == client.len() and client.str.len_chars().max() <= 48


def test_observe_mode_decides_and_journals_but_sends_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        ["paper", "--broker", "alpaca-fake", "--mode", "observe", "--bars", "120",
         "--param", "fast=5", "--param", "slow=20", "--journal", str(tmp_path), "--json"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert '"mode": "observe"' in out and '"fills": 0' in out
    verdicts = read_table(tmp_path / JOURNAL, "verdicts")
    assert verdicts.height > 0 and verdicts["approved"].any()
    assert read_table(tmp_path / JOURNAL, "fills").height == 0


def _paper(url: str, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "backstop.cli", "paper", "--broker", "alpaca-fake",
        "--fake-url", url, "--symbols", "SYN000,SYN001,SYN002", "--param", "fast=5",
        "--param", "slow=20", "--journal", str(run_dir),
    ]  # fmt: skip


def test_sigkilled_runner_restarts_without_duplicates_or_lost_fills(tmp_path: Path) -> None:
    bars = sample(KILL_BARS)
    with FakeAlpaca(bars, keys=("fake-key", "fake-secret")) as fake:
        done = subprocess.run(
            _paper(fake.url, tmp_path / "clean"), env=child_env(), capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        clean_orders = len(fake.orders())
    expected = table(tmp_path / "clean" / JOURNAL, "trades")
    assert expected.height > 3
    run_dir = tmp_path / "killed"
    with FakeAlpaca(bars, keys=("fake-key", "fake-secret")) as fake:

        def start() -> subprocess.Popen:  # type: ignore[type-arg]
            return subprocess.Popen(
                _paper(fake.url, run_dir), env=child_env(), stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip

        kills = kill_and_restart(start, run_dir / "state.ckpt", KILLS, random.Random(7), 0.12)
        orders = fake.orders()
        ids = [o["client_order_id"] for o in orders]
        assert len(ids) == len(set(ids)) == clean_orders  # none placed twice
        assert alpaca_uncovered(orders, fake.market.positions) == []  # every position protected
    assert kills >= 30
    assert table(run_dir / JOURNAL, "trades").equals(expected)


def test_live_mode_needs_confirmation_a_profile_and_real_keys(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "PKPAPERKEY0001")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "not-a-real-secret")
    base = ["paper", "--broker", "alpaca", "--mode", "live", "--journal", str(tmp_path)]
    assert main(base) == 2
    assert "explicit risk profile" in capsys.readouterr().err
    assert main([*base, "--profile", "alpaca-live"]) == 2
    assert "--confirm-live" in capsys.readouterr().err
    assert main([*base, "--profile", "alpaca-live", "--confirm-live"]) == 2
    err = capsys.readouterr().err
    assert "paper keys" in err and "PKPAPERKEY0001" not in err and "not-a-real-secret" not in err
    assert not (tmp_path / JOURNAL).exists()  # nothing started


def test_the_in_process_fake_refuses_to_resume_an_old_session(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    args = ["paper", "--broker", "alpaca-fake", "--bars", "60", "--journal", str(tmp_path)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2  # a new fake is a new market: resuming would be a lie
    assert "already holds a session" in capsys.readouterr().err


def test_seed_000_caps_refuse_live_as_in_the_backtest(tmp_path: Path) -> None:
    """The signal-follower preset (seed 000: $20k a day, 10 trades a day, drawdown halt,
    daily-loss pause) against the fake: the same verdicts as the backtest, its daily
    allocation cap refusing entries, and exits while flat refused (seed 004's reversal)."""
    run_paper(
        PaperOptions("alpaca-fake", "sma_cross", PARAMS, None, "signal-follower", Mode.PAPER,
                     tmp_path / "run", bars=BARS)
    )  # fmt: skip
    ref = backstop.Backtest(
        sample(BARS), "sma_cross", profile="signal-follower",
        config=BacktestConfig(legs_live_on_entry_bar=False), **PARAMS,
    ).run()  # fmt: skip
    expected = table(write_journal(ref, tmp_path / "ref.duckdb"), "verdicts")
    live = table(tmp_path / "run" / JOURNAL, "verdicts")
    assert live.equals(expected)
    codes = set(live.filter(~pl.col("approved"))["reason_codes"].explode().to_list())
    assert {"DAILY_ALLOCATION_CAP", "EXIT_NO_EXPOSURE"} <= codes


def test_alerts_reach_a_webhook_and_the_status_line_reads_the_session(tmp_path: Path) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from backstop.runners.live.status import status_line

    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    lines: list[str] = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        summary = run_paper(
            PaperOptions("alpaca-fake", "sma_cross", PARAMS, None, None, Mode.PAPER,
                         tmp_path / "run", bars=BARS, alert_webhook=url,
                         on_step=lambda r: lines.append(status_line(r.session.status())))
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    fills = [a for a in got if a["kind"] == "FILL"]
    assert len(fills) == summary["fills"] > 0  # every fill alerted, delivered before the end
    assert len(lines) == BARS and all("ACTIVE" in line for line in lines)
    assert any("SYN00" in line for line in lines)  # an open position shows with its symbol


def test_seed_003_position_cap_refuses_live_as_in_the_backtest(tmp_path: Path) -> None:
    """The equity-runner preset (seed 003: 10% of equity a position, duplicate-entry guard),
    its position cap lowered to 1 so three symbols contend for it: the same verdicts live
    against the fake as in the backtest, the cap refusing entries."""
    from backstop.engine.profile import RiskProfile

    profile = RiskProfile.load("equity-runner").with_settings({"risk.max_positions": 1})
    run_paper(
        PaperOptions("alpaca-fake", "sma_cross", PARAMS, None, profile, Mode.PAPER,
                     tmp_path / "run", bars=BARS)
    )  # fmt: skip
    ref = backstop.Backtest(
        sample(BARS), "sma_cross", profile=profile,
        config=BacktestConfig(legs_live_on_entry_bar=False), **PARAMS,
    ).run()  # fmt: skip
    expected = table(write_journal(ref, tmp_path / "ref.duckdb"), "verdicts")
    live = table(tmp_path / "run" / JOURNAL, "verdicts")
    assert live.equals(expected)
    codes = live.filter(~pl.col("approved"))["reason_codes"].explode().to_list()
    assert "MAX_POSITIONS" in codes, sorted(set(codes))


def test_a_session_too_short_to_signal_says_so(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    args = ["paper", "--broker", "alpaca-fake", "--symbols", "SYN001", "--bars", "40",
            "--journal", str(tmp_path), "--json"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert '"verdicts": 0' in out
    assert "sma_cross needs 51 bars of a symbol before it can signal; SYN001 had fewer" in out


def test_seed_003_duplicate_entry_guard_refuses_live_as_in_the_backtest(tmp_path: Path) -> None:
    """The equity-runner preset (seed 003: no double entry) against the fake: a strategy that
    asks for a second entry in a symbol it already holds (SYN001), and in one whose first
    entry is still working (SYN002, a limit far below the market), is refused with the
    backtest's verdicts and reason codes, and the fake receives one order per symbol."""
    from backstop.engine.profile import RiskProfile
    from backstop.runners.live.paper import FAKE_KEYS

    bars = sample(60)
    stamps = bars.get_column("ts").unique().sort().to_list()
    asks = [
        (stamps[30], "SYN001", 1, 0, 0, None),  # market: filled at the next open
        (stamps[33], "SYN001", 1, 0, 0, None),  # held by now: a second entry
        (stamps[30], "SYN002", 1, 0, 1, 50.0),  # limit far below: stays working
        (stamps[35], "SYN002", 1, 0, 1, 50.0),  # its first entry still works
    ]

    def entries_twice(frame: pl.DataFrame) -> pl.DataFrame:
        schema = {"ts": pl.Int64, "symbol": pl.String, "side": pl.Int64, "intent": pl.Int64,
                  "otype": pl.Int64, "limit_px": pl.Float64}  # fmt: skip
        table = pl.DataFrame(asks, schema=schema, orient="row").with_columns(tif=pl.lit(1))
        return table.filter(pl.col("ts").is_in(frame.get_column("ts").implode()))

    profile = RiskProfile.load("equity-runner")
    with FakeAlpaca(bars, keys=FAKE_KEYS) as fake:
        run_paper(
            PaperOptions("alpaca-fake", entries_twice, {}, ("SYN000", "SYN001", "SYN002"),
                         profile, Mode.PAPER, tmp_path / "run", bars=60, fake_url=fake.url)
        )  # fmt: skip
        sent = [o["symbol"] for o in fake.orders()]
    ref = backstop.Backtest(
        bars, entries_twice, profile=profile, config=BacktestConfig(legs_live_on_entry_bar=False)
    ).run()
    expected = table(write_journal(ref, tmp_path / "ref.duckdb"), "verdicts")
    live = table(tmp_path / "run" / JOURNAL, "verdicts")
    assert live.equals(expected)
    refused = live.filter(~pl.col("approved"))
    assert refused["symbol"].to_list() == ["SYN001", "SYN002"]
    assert refused["reason_codes"].to_list() == [["DUPLICATE_POSITION"], ["DUPLICATE_POSITION"]]
    assert sorted(sent) == ["SYN001", "SYN002"]  # no second order reached the broker
