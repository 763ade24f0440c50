"""A position whose protective legs were cancelled behind the runner's back is protected
again from the runner's own plan when it restarts, once: a second restart places nothing.

A position no plan knows levels for (no order of ours behind it) gets nothing placed: it
stays reported, and under ``entry.require_protection`` a DESYNC control trips the kill
switch, which flattens or halts as the profile says, as a desync does.

The runner trades sma_cross against the loopback fake Alpaca (the real alpaca-py client).
As soon as it holds a position covered by its legs, someone cancels those legs over Alpaca's
REST API and the runner dies before it hears of it. The restarted runner books the
cancellations, finds the position unprotected at the reconcile that follows its catch-up,
and re-places a stop and a take-profit at the cycle's levels (new client ids), journaled as
REPROTECTED rows of the reconcile table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from alpaca.trading.client import TradingClient
from fake_port_broker import PortFakeBroker

import backstop
from backstop.domain.enums import GuardEventKind
from backstop.engine.brackets import Venue
from backstop.engine.core.guard import AI_N_EVENTS
from backstop.engine.journal import read_table
from backstop.engine.profile import RiskProfile
from backstop.runners.live.paper import FAKE_KEYS, PaperOptions, run_paper
from backstop.runners.live.protect import reprotect
from backstop.runners.live.reconcile import trading_state
from backstop.runners.live.runner import JOURNAL, LiveRunner, Mode
from backstop.runners.live.session import LiveSession, LiveSetup
from backstop.strategies import get_strategy
from backstop.testing.fake_alpaca import FakeAlpaca

BARS = 160
PARAMS = {"fast": 5, "slow": 20}
SYMBOLS = ("SYN000", "SYN001", "SYN002")
OPEN = ("new", "accepted", "held", "partially_filled")


class Crash(Exception):
    """The runner dies (after its step was made durable)."""


def sample(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    return bars.filter(pl.col("ts").is_in(first.implode()))


def options(run: Path, url: str, max_steps: int | None, on_step=None) -> PaperOptions:  # type: ignore[no-untyped-def]
    return PaperOptions("alpaca-fake", "sma_cross", PARAMS, SYMBOLS, None, Mode.PAPER, run,
                        bars=BARS, fake_url=url, max_steps=max_steps, on_step=on_step)  # fmt: skip


def protective_open(fake: FakeAlpaca, symbol: str) -> list[dict]:
    return [
        o
        for o in fake.orders()
        if o["symbol"] == symbol and o["status"] in OPEN and o["type"] in ("stop", "limit")
    ]


def test_legs_cancelled_behind_the_runners_back_are_replaced_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cancelled: list[str] = []
    held: dict[str, float] = {}
    with FakeAlpaca(sample(BARS), keys=FAKE_KEYS) as fake:
        human = TradingClient(*FAKE_KEYS, url_override=fake.url)

        def cancel_legs(runner: LiveRunner) -> None:
            mirror = runner.session.driver.mirror
            for symbol in SYMBOLS:
                legs = [o for o in mirror.working(symbol) if o.protective]
                if mirror.position(symbol) and len(legs) == 2:
                    cancelled.extend(o["client_order_id"] for o in protective_open(fake, symbol))
                    for _ in range(2):  # cancelling an OCO's take-profit takes its stop along
                        left = protective_open(fake, symbol)
                        if left:
                            human.cancel_order_by_id(left[0]["id"])
                    held[symbol] = mirror.position(symbol)
                    raise Crash(symbol)

        with pytest.raises(Crash):
            run_paper(options(run, fake.url, None, cancel_legs))
        (symbol,) = held
        assert len(cancelled) == 2 and not protective_open(fake, symbol)
        orders_before = len(fake.orders())

        run_paper(options(run, fake.url, 2))  # restart: catch up, reconcile, re-protect
        rows = read_table(run / JOURNAL, "reconcile")
        again = rows.filter(pl.col("kind") == "REPROTECTED")
        assert again["symbol"].to_list() == [symbol, symbol]
        new_ids = set(again["client_order_id"])
        assert not new_ids & set(cancelled)  # fresh client ids, never the cancelled ones
        # Alpaca files an OCO under its take-profit's client id; the stop leg rides inside it
        legs = protective_open(fake, symbol)
        fresh = {o["id"] for o in fake.orders()[orders_before:]}
        assert len(legs) == 2 and {o["id"] for o in legs} <= fresh
        assert [cid for cid in new_ids if "-TP-" in cid] == [
            o["client_order_id"] for o in legs if o["type"] == "limit"
        ]
        assert sorted(o["type"] for o in legs) == ["limit", "stop"]
        assert all(float(o["qty"]) == abs(held[symbol]) for o in legs)
        side = "sell" if held[symbol] > 0 else "buy"
        assert all(o["side"] == side for o in legs)
        journaled = read_table(run / JOURNAL, "orders").filter(
            pl.col("client_order_id").is_in(list(new_ids))
        )
        assert sorted(journaled["role"]) == ["STOP_LOSS", "TAKE_PROFIT"]
        assert set(journaled["status"]) == {"ACCEPTED"}
        found = rows.filter((pl.col("kind") == "UNPROTECTED") & (pl.col("symbol") == symbol))
        assert found.height == 1 and "re-protected from the plan of" in found["action"][0]
        assert (
            again["trade_cycle_id"].n_unique() == 1
            and again["qty"].to_list() == [abs(held[symbol])] * 2
        )

        count = len(fake.orders())
        run_paper(options(run, fake.url, 1))  # a second restart: nothing to re-place
        rows = read_table(run / JOURNAL, "reconcile")
        assert rows.filter(pl.col("kind") == "REPROTECTED").height == 2
        assert rows.filter(pl.col("kind") == "UNPROTECTED").height == 1
        assert len(fake.orders()) == count  # nothing sent: the legs at the fake stand
        assert {o["id"] for o in protective_open(fake, symbol)} == {o["id"] for o in legs}


@pytest.mark.parametrize("required", [False, True])
def test_a_position_no_plan_knows_is_reported_and_kills_when_protection_is_required(
    required: bool,
) -> None:
    broker = PortFakeBroker(["SYN000"], reduce_only=False, ticks={"SYN000": 0.01})
    profile = RiskProfile().with_settings({"entry.require_protection": required})
    setup = LiveSetup(get_strategy("sma_cross"), PARAMS, ("SYN000",), profile, "foreign",
                      venue=Venue(reduce_only=False))  # fmt: skip
    session = LiveSession(setup, broker, 100_000.0)
    session.on_bars(sample(1).filter(pl.col("symbol") == "SYN000"))
    session.driver.mirror.positions["SYN000"] = 10.0  # held, no entry of ours behind it
    done = reprotect(session, "SYN000", 10.0, 0.0)
    assert (done.client_order_ids, done.qty, done.entry, done.tripped) == ((), 0.0, "", required)
    # nothing protective is placed; with protection required, the kill switch flattens
    sent = [(o.symbol, o.side, o.qty, o.cid.split("-")[3]) for o in broker.orders.values()]
    assert sent == ([("SYN000", -1, 10.0, "X")] if required else [])
    g = session.driver.g
    kinds = g.events[: int(g.ai[AI_N_EVENTS])]["kind"]
    desyncs = int(np.sum(kinds == int(GuardEventKind.DESYNC)))
    assert desyncs == (1 if required else 0)
    assert (trading_state(session) == "ACTIVE") is not required
