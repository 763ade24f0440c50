"""The live runner on the IBKR adapter (``backstop.runners.live.ibkr`` glue) against the
loopback fake gateway, real ib_async inside: sma_cross over the sample's first 100 bar
times decides, sends and books exactly what the same run on the fake Alpaca does (same
verdicts, orders, fills and round trips), and the glue refuses live trading on IB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from backstop.engine.brackets import Venue
from backstop.engine.profile import RiskProfile
from backstop.errors import ConfigError
from backstop.runners.live.feeds import BrokerBarFeed
from backstop.runners.live.ibkr import IBKRConnection, fake_advance, fake_gateway, ibkr_broker
from backstop.runners.live.paper import PaperOptions, _strategy, run_paper
from backstop.runners.live.runner import JOURNAL, LiveRunner, Mode
from backstop.runners.live.session import LiveSession, LiveSetup

BARS = 100
SYMBOLS = ("SYN000",)


def _opts(broker: str, run_dir: Path, mode: Mode = Mode.PAPER, **kw: object) -> PaperOptions:
    return PaperOptions(broker=broker, strategy="sma_cross", params={}, symbols=SYMBOLS,
                        profile=None, mode=mode, run_dir=run_dir, bars=BARS, **kw)  # type: ignore[arg-type]  # fmt: skip


def _run_ibkr(run_dir: Path) -> tuple[LiveSession, int, list[dict[str, object]]]:
    opts = _opts("ibkr-fake", run_dir)
    strategy = _strategy(opts.strategy)
    with fake_gateway(opts) as fake:
        broker = ibkr_broker(opts, IBKRConnection(), SYMBOLS, fake)
        with broker:
            setup = LiveSetup(strategy, {}, SYMBOLS, RiskProfile.load(None), "ns1",
                              venue=Venue(reduce_only=False))  # fmt: skip
            session = LiveSession(setup, broker, float(broker.account().cash))
            feed = BrokerBarFeed(broker, session.symbols, advance=fake_advance(fake, broker))
            runner = LiveRunner(session, broker, feed, run_dir)
            runner.start()
            steps = runner.run()
            assert fake.bugs == [] and fake.unserved == []
            return session, steps, fake.orders


def test_runner_on_ib_books_what_the_same_run_on_alpaca_books(tmp_path: Path) -> None:
    session, steps, sent = _run_ibkr(tmp_path / "ib")
    ib = session.result(label="live:paper")
    alpaca = run_paper(_opts("alpaca-fake", tmp_path / "alpaca", namespace="ns1"))
    assert steps == alpaca["steps"] == BARS
    assert (ib.records.orders.shape[0], ib.records.fills.shape[0], ib.round_trips) == (
        alpaca["orders"], alpaca["fills"], alpaca["round_trips"],
    )  # fmt: skip
    assert (ib.records.orders.shape[0], ib.records.fills.shape[0], ib.round_trips) == (7, 3, 1)
    assert round(float(ib.pnl), 2) == alpaca["pnl"]
    assert len(sent) == 7  # every order reached the gateway once
    assert len({o["order_ref"] for o in sent}) == 7
    fills = ib.records.fills
    assert np.all(fills["fee"] == 0.0)  # the fake charges no commission by default
    query = "SELECT * FROM {} ORDER BY ALL"
    for table in ("verdicts", "orders", "fills", "trades"):
        rows = []
        for journal in (tmp_path / "ib" / JOURNAL, tmp_path / "alpaca" / JOURNAL):
            with duckdb.connect(str(journal), read_only=True) as db:
                rows.append(db.execute(query.format(table)).fetchall())
        assert rows[0] == rows[1], table


def test_live_mode_on_ib_is_refused_with_the_reason(tmp_path: Path) -> None:
    opts = _opts("ibkr", tmp_path, mode=Mode.LIVE, confirm_live=False)
    with pytest.raises(ConfigError, match="--confirm-live"):
        ibkr_broker(opts, IBKRConnection(), SYMBOLS)
    opts = _opts("ibkr", tmp_path, mode=Mode.LIVE, confirm_live=True)
    with pytest.raises(ConfigError) as err:
        ibkr_broker(opts, IBKRConnection(), SYMBOLS)
    assert err.value.key == "--mode"
    assert "readiness checklist does not cover ibkr yet" in str(err.value)
