"""The fake market prices fills exactly as the backtest's exchange kernels do.

One order placed at bar 0's close, matched over a random five-bar path, by both the fake's
``Market`` (pure, no server) and the simulated exchange (``kit.run_exchange``): the bars it
fills on and the prices must be equal. This is what lets a paper run against the fake be
compared with a backtest on the same bars.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import bars, price_paths, run_exchange

from backstop.domain.enums import OrderType
from backstop.testing.fake_alpaca.market import Market
from backstop.testing.fake_alpaca.submit import submit
from backstop.testing.fake_alpaca.tape import Tape

KINDS = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
}


def fake_fills(rows, body) -> list[tuple[int, float]]:
    market = Market(Tape(bars(rows, symbol="T")), cash=1e9)
    order = submit(market, {"symbol": "T", "qty": 100, "time_in_force": "gtc", **body})
    while market.advance():
        pass
    return [(int(market.tape.times.searchsorted(f.ts)), f.price) for f in market.fills
            if f.order_id == order.id]  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=price_paths(5),
    kind=st.sampled_from(sorted(KINDS)),
    side=st.sampled_from([1, -1]),
    a=st.floats(-0.04, 0.04),
    b=st.floats(-0.02, 0.02),
)
def test_fills_equal_the_backtest_exchange(rows, kind, side, a, b):
    close0 = rows[0][3]
    level = round(close0 * (1 + a), 2)
    body = {"type": kind, "side": "buy" if side > 0 else "sell"}
    limit_px = stop_px = float("nan")
    if kind == "limit":
        body["limit_price"] = limit_px = level
    if kind in ("stop", "stop_limit"):
        body["stop_price"] = stop_px = level
    if kind == "stop_limit":
        body["limit_price"] = limit_px = round(level * (1 + b), 2)
    _, fills = run_exchange(rows, side=side, otype=KINDS[kind], limit_px=limit_px, stop_px=stop_px)
    expected = [(int(f["bar"]), float(f["price"])) for f in fills]
    assert fake_fills(rows, body) == expected
