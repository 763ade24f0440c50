"""``backstop paper --broker ibkr|ibkr-fake`` and ``backstop readiness --broker ibkr`` against
the loopback fake TWS gateway, the real ib_async client inside:

- the keyless demo ends by itself with exit 0 and journals what it traded;
- readiness against the fake (a DU paper account, a tape clock) passes the gateway and
  account lines for PAPER and refuses LIVE, and ``paper --mode live`` is refused with it;
- a gateway that drops the connection mid-session is heard through the heartbeat: the
  journal's guard events hold CONNECTION_LOST then CONNECTION_RESTORED, and the run goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import backstop
from backstop.cli import main
from backstop.engine.journal import read_table
from backstop.errors import ConfigError
from backstop.runners.live.paper import PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, LiveRunner, Mode
from backstop.testing.fake_ibkr import FakeIBKR

BARS = 60


def sample(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    return bars.filter(pl.col("ts").is_in(first.implode()) & (pl.col("symbol") == "SYN000"))


def test_the_keyless_ibkr_demo_ends_by_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["paper", "--broker", "ibkr-fake", "--strategy", "sma_cross", "--mode", "paper",
            "--param", "fast=5", "--param", "slow=20", "--bars", "100", "--symbols", "SYN000",
            "--journal", str(tmp_path), "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["broker"], out["steps"], out["symbols"]) == ("ibkr-fake", 100, ["SYN000"])
    assert out["orders"] > 0 and out["fills"] > 0
    assert read_table(tmp_path / JOURNAL, "fills").height == out["fills"]
    assert main(argv) == 2  # a new fake is a new market: its journal is not resumed
    assert "already holds a session" in capsys.readouterr().err


def test_readiness_against_the_fake_passes_paper_and_refuses_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeIBKR(sample(BARS)) as fake:
        base = ["readiness", "--broker", "ibkr", "--port", str(fake.port), "--client-id", "3",
                "--profile", "micro-futures-constitution"]  # fmt: skip
        main(base)
        paper = capsys.readouterr().out.splitlines()
        assert main([*base, "--mode", "live"]) == 1
        live = capsys.readouterr().out.splitlines()
        opts = PaperOptions("ibkr", "sma_cross", {}, ("SYN000",), "micro-futures-constitution",
                            Mode.LIVE, tmp_path, port=fake.port, client_id=3,
                            confirm_live=True)  # fmt: skip
        with pytest.raises(ConfigError) as err:
            run_paper(opts)
        assert fake.orders == []
    assert f"PASS gateway: IB gateway 127.0.0.1:{fake.port} (client id 3) answered" in paper
    assert "PASS account: DU1234567 (a paper account)" in paper
    assert "FAIL account: DU1234567 is a paper account (DU...); LIVE needs a live account" in live
    clock = next(line for line in live if line.startswith("FAIL clock: broker behind by"))
    assert clock  # the fake's clock is its tape (2024), far behind the wall clock
    assert err.value.key == "--mode"
    assert "live refused: readiness failed (account: DU1234567 is a paper account" in str(err.value)
    assert not (tmp_path / JOURNAL).exists()  # nothing started


def test_a_dropped_gateway_is_heard_through_the_heartbeat(tmp_path: Path) -> None:
    with FakeIBKR(sample(BARS)) as fake:

        def drop(runner: LiveRunner) -> None:
            if runner.steps == 30:
                fake.disconnect()

        summary = run_paper(
            PaperOptions("ibkr", "sma_cross", {"fast": 5, "slow": 20}, ("SYN000",), None,
                         Mode.PAPER, tmp_path, fake_url=fake.control_url, port=fake.port,
                         heartbeat_s=0.0, on_step=drop)
        )  # fmt: skip
    assert summary["steps"] == BARS
    guard = read_table(tmp_path / JOURNAL, "guard")
    kinds = [k for k in guard["kind"].to_list() if k.startswith("CONNECTION")]
    assert kinds == ["CONNECTION_LOST", "CONNECTION_RESTORED"]
