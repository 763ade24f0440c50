"""The order state machine, deterministic client ids, tick rounding and bracket checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from backstop.brokers.sim.matcher import TRANSITIONS
from backstop.domain.enums import OrderRole, OrderStatus, OrderType, Side
from backstop.domain.instruments import REGISTRY, Instrument, lookup
from backstop.domain.orders import (
    ALLOWED_TRANSITIONS,
    Bracket,
    ClientIdParts,
    Order,
    build_order,
    client_order_id,
    parse_client_order_id,
    replacement_client_id,
)
from backstop.errors import ConfigError, OrderStateError


def _order(**kw: object) -> Order:
    base = dict(client_order_id="c", symbol="T", side=Side.BUY, qty=1.0)
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


def test_kernel_and_python_state_tables_agree() -> None:
    py = np.zeros((8, 8), dtype=bool)
    for src, dst in ALLOWED_TRANSITIONS:
        py[src, dst] = True
    assert (py == TRANSITIONS).all()


def test_happy_path_created_to_filled() -> None:
    o = _order()
    for status in (
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ):
        o = o.transition(status)
    assert o.status == OrderStatus.FILLED and o.is_terminal


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (s, d)
        for s, d in itertools.product(OrderStatus, OrderStatus)
        if (s, d) not in ALLOWED_TRANSITIONS
    ],
)
def test_every_illegal_transition_raises(src: OrderStatus, dst: OrderStatus) -> None:
    o = _order(status=src)
    with pytest.raises(OrderStateError, match=f"{src.name} -> {dst.name}"):
        o.transition(dst)


def test_terminal_states_have_no_way_out() -> None:
    for src in (
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    ):
        assert not any(s == src for s, _ in ALLOWED_TRANSITIONS)


def test_client_order_id_is_a_pure_function() -> None:
    a = client_order_id("run1", 42, OrderRole.STOP_LOSS, 1)
    assert a == "bs-run1-42-SL-1"
    assert a == client_order_id("run1", 42, OrderRole.STOP_LOSS, 1)
    assert a != client_order_id("run1", 42, OrderRole.TAKE_PROFIT, 2)


def test_prices_are_rounded_to_tick_at_build_time() -> None:
    es = REGISTRY["ES"]
    o = build_order(
        es,
        client_order_id="x",
        side=Side.SELL,
        qty=1.0,
        order_type=OrderType.STOP,
        stop_price=6880.13,
    )
    assert o.stop_price == 6880.25
    eq = Instrument.equity("AAPL")
    o = build_order(
        eq,
        client_order_id="y",
        side=Side.BUY,
        qty=1.0,
        order_type=OrderType.LIMIT,
        limit_price=101.237,
    )
    assert o.limit_price == 101.24


def test_dated_futures_resolve_to_their_root() -> None:
    es = lookup("ESZ5")
    assert (es.tick_size, es.multiplier, es.is_future) == (0.25, 50.0, True)
    assert lookup("ESPRESSO").tick_size == 0.0


def test_order_needs_its_prices() -> None:
    with pytest.raises(ConfigError, match="limit_price"):
        _order(order_type=OrderType.LIMIT)
    with pytest.raises(ConfigError, match="stop_price"):
        _order(order_type=OrderType.STOP)
    with pytest.raises(ConfigError, match="qty"):
        _order(qty=0.0)


def test_bracket_legs_must_protect() -> None:
    entry = _order(order_type=OrderType.LIMIT, limit_price=100.0, trade_cycle_id="c1")
    sl = _order(
        client_order_id="sl",
        side=Side.SELL,
        order_type=OrderType.STOP,
        stop_price=99.0,
        reduce_only=True,
        trade_cycle_id="c1",
        role=OrderRole.STOP_LOSS,
    )
    tp = _order(
        client_order_id="tp",
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        limit_price=102.0,
        reduce_only=True,
        trade_cycle_id="c1",
        role=OrderRole.TAKE_PROFIT,
    )
    Bracket(entry, sl, tp)
    wrong = _order(
        client_order_id="sl",
        side=Side.SELL,
        order_type=OrderType.STOP,
        stop_price=101.0,
        reduce_only=True,
        trade_cycle_id="c1",
    )
    with pytest.raises(ConfigError, match="straddle"):
        Bracket(entry, wrong, tp)
    with pytest.raises(ConfigError, match="reduce-only"):
        Bracket(
            entry,
            _order(
                client_order_id="sl",
                side=Side.SELL,
                order_type=OrderType.STOP,
                stop_price=99.0,
                trade_cycle_id="c1",
            ),
            tp,
        )


def test_the_journal_builds_client_ids_with_the_one_formula() -> None:
    """Every order of a run (entries, legs, signal and engine exits) carries the id that
    ``client_order_id`` gives for its run, cycle, role and leg number; ids are unique and
    fit Alpaca's 48 characters."""
    from backstop import Backtest, sample_bars
    from backstop.engine.profile import RiskProfile

    profile = RiskProfile.preset("aggressive-executor")  # time stop and EOD exits too
    result = Backtest(sample_bars(), "sma_cross", profile=profile).run()
    records = result.records.orders
    cycles = result.orders["trade_cycle_id"].to_list()
    assert len(records) > 100
    assert set(result.orders["role"].to_list()) >= {"ENTRY", "STOP_LOSS", "TAKE_PROFIT"}
    expected = [
        client_order_id(result.run_id, int(o["cycle"]), OrderRole(int(o["role"])), int(o["leg_no"]))
        for o in records
    ]
    ids = result.orders["client_order_id"].to_list()
    assert ids == expected
    assert len(set(ids)) == len(ids) and max(map(len, ids)) <= 48
    assert all(c.startswith(result.run_id) for c in cycles)


def test_client_ids_parse_back_to_their_parts() -> None:
    parts = parse_client_order_id("bs-run1-42-SL-1")
    assert parts == ClientIdParts("run1", 42, OrderRole.STOP_LOSS, 1, 0)
    assert parts is not None and parts.base == "bs-run1-42-SL-1"
    assert parse_client_order_id("bs-run1-42-X-3") == ClientIdParts(
        "run1", 42, OrderRole.SIGNAL_EXIT, 3, 0
    )
    for foreign in ("manual-1", "bs-run1-42-ZZ-1", "bs-run1-x-SL-1", "bs-run1-42-SL"):
        assert parse_client_order_id(foreign) is None


def test_a_replacement_id_parses_to_its_base_parts() -> None:
    base = client_order_id("run1", 7, OrderRole.STOP_LOSS, 1)
    second = replacement_client_id(base, 2)
    assert second == "bs-run1-7-SL-1.2"
    parts = parse_client_order_id(second)
    assert parts == ClientIdParts("run1", 7, OrderRole.STOP_LOSS, 1, 2)
    assert parts is not None and parts.base == base
    # only a positive decimal suffix without leading zeros is a replacement of ours
    for odd in (f"{base}.0", f"{base}.01", f"{base}.x", f"{base}.", f"{base}.1.2"):
        assert parse_client_order_id(odd) is None


def test_a_replacement_id_is_checked_against_the_length_limit() -> None:
    long_base = "bs-" + "r" * 38 + "-1-SL-1"  # 48 characters: the limit itself
    with pytest.raises(ConfigError, match="longer than 48"):
        replacement_client_id(long_base, 1)
    with pytest.raises(ConfigError, match="at least 1"):
        replacement_client_id("bs-run1-7-SL-1", 0)


def test_a_run_id_with_a_dot_is_not_read_as_a_replacement() -> None:
    cid = client_order_id("r.1", 3, OrderRole.ENTRY, 0)
    assert parse_client_order_id(cid) == ClientIdParts("r.1", 3, OrderRole.ENTRY, 0, 0)
    assert parse_client_order_id(f"{cid}.4") == ClientIdParts("r.1", 3, OrderRole.ENTRY, 0, 4)
