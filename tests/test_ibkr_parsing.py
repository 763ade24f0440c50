"""The IBKR adapter's pure parts: commands to ib_async orders (brackets, OCA groups,
amends), ib_async objects built by hand (Trade, OrderStatus, Fill, Execution,
CommissionReport, Position values, ContractDetails) to backstop's records, the contract
checks against the registry, the error-code table and the once-only translation. No
network."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from ib_async import (
    AccountValue,
    BarData,
    CommissionReport,
    Contract,
    ContractDetails,
    Fill,
    Order,
    OrderStatus,
    Trade,
    TradeLogEntry,
)
from ib_async import Execution as IBExecution

from backstop.brokers.ibkr import parsing
from backstop.brokers.ibkr import parsing_market as market
from backstop.brokers.ibkr.client import FillNote
from backstop.brokers.ibkr.codes import CodeKind, classify
from backstop.brokers.ibkr.config import IBKRConfig
from backstop.brokers.ibkr.translate import Translator
from backstop.data.schema import BAR_SCHEMA
from backstop.domain.commands import AmendOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderType, Side, TimeInForce
from backstop.domain.enums import OrderStatus as Status
from backstop.domain.events import Account, Execution, OrderUpdate, OrderUpdateKind
from backstop.domain.instruments import Instrument, lookup
from backstop.errors import BackstopError, ConfigError

K = OrderUpdateKind
T0 = datetime(2025, 12, 1, 14, 30, 0, 250000, tzinfo=UTC)
T0_NS = 1764599400_250000000


def _entry(**kw: Any) -> SubmitOrder:
    base: dict[str, Any] = dict(client_order_id="bs-r1-3-E-0", symbol="MESZ5", side=Side.BUY,
                                qty=2)  # fmt: skip
    return SubmitOrder(**(base | kw))


def _leg(role: OrderRole, n: int, **kw: Any) -> SubmitOrder:
    code = "SL" if role == OrderRole.STOP_LOSS else "TP"
    base: dict[str, Any] = dict(
        client_order_id=f"bs-r1-3-{code}-{n}", symbol="MESZ5", side=Side.SELL, qty=2,
        role=role, reduce_only=True, parent_id="bs-r1-3-E-0",
    )  # fmt: skip
    if role == OrderRole.STOP_LOSS:
        base |= dict(order_type=OrderType.STOP, stop_price=5990.25)
    else:
        base |= dict(order_type=OrderType.LIMIT, limit_price=6012.5)
    return SubmitOrder(**(base | kw))


# ---------------------------------------------------------------- commands out


def test_bracket_is_parent_then_take_profit_then_stop_which_alone_transmits() -> None:
    stop, target = _leg(OrderRole.STOP_LOSS, 1), _leg(OrderRole.TAKE_PROFIT, 2)
    cmd = _entry(legs=(stop, target))  # the stop first: the request still sends it last
    placed = parsing.request(cmd, 41, account="DU123")
    assert [m.client_order_id for m, _ in placed] == ["bs-r1-3-E-0", "bs-r1-3-TP-2",
                                                       "bs-r1-3-SL-1"]  # fmt: skip
    parent, tp, sl = (o for _, o in placed)
    assert [o.orderId for o in (parent, tp, sl)] == [41, 42, 43]
    assert [o.transmit for o in (parent, tp, sl)] == [False, False, True]
    assert [o.parentId for o in (parent, tp, sl)] == [0, 41, 41]
    assert [o.orderRef for o in (parent, tp, sl)] == ["bs-r1-3-E-0", "bs-r1-3-TP-2",
                                                      "bs-r1-3-SL-1"]  # fmt: skip
    assert (parent.action, parent.orderType, parent.totalQuantity) == ("BUY", "MKT", 2.0)
    assert (tp.action, tp.orderType, tp.lmtPrice) == ("SELL", "LMT", 6012.5)
    assert (sl.action, sl.orderType, sl.auxPrice) == ("SELL", "STP", 5990.25)
    assert {o.tif for o in (parent, tp, sl)} == {"GTC"}
    assert {o.account for o in (parent, tp, sl)} == {"DU123"}
    assert {o.ocaGroup for o in (parent, tp, sl)} == {""}


def test_exit_pair_is_one_oca_group_of_type_3() -> None:
    target = _leg(OrderRole.TAKE_PROFIT, 8, parent_id=None, oco_group="oco-3")
    stop = _leg(OrderRole.STOP_LOSS, 7, parent_id=None, oco_group="oco-3")
    placed = parsing.request(SubmitOrder(**{**_slots(target), "siblings": (stop,)}), 7)
    orders = [o for _, o in placed]
    assert [o.orderRef for o in orders] == ["bs-r1-3-TP-8", "bs-r1-3-SL-7"]
    assert [o.orderId for o in orders] == [7, 8]
    assert [(o.ocaGroup, o.ocaType) for o in orders] == [("oco-3", 3), ("oco-3", 3)]
    assert [o.transmit for o in orders] == [True, True]
    assert [o.parentId for o in orders] == [0, 0]


def _slots(cmd: SubmitOrder) -> dict[str, Any]:
    return {name: getattr(cmd, name) for name in SubmitOrder.__slots__}


def test_trailing_stop_and_stop_limit_fields() -> None:
    trail = parsing.ib_order(
        _leg(OrderRole.STOP_LOSS, 1, order_type=OrderType.TRAILING_STOP, stop_price=None,
             trail_percent=0.015, tif=TimeInForce.DAY),
        5,
    )  # fmt: skip
    assert (trail.orderType, trail.trailingPercent, trail.tif) == ("TRAIL", 1.5, "DAY")
    stop_limit = parsing.ib_order(
        _leg(OrderRole.STOP_LOSS, 1, order_type=OrderType.STOP_LIMIT, limit_price=5989.0), 6
    )
    assert (stop_limit.orderType, stop_limit.auxPrice, stop_limit.lmtPrice) == (
        "STP LMT", 5990.25, 5989.0,
    )  # fmt: skip


def test_amend_re_places_the_same_order_id_with_new_fields() -> None:
    placed = parsing.ib_order(_leg(OrderRole.STOP_LOSS, 1), 12)
    placed.parentId = 10
    new = parsing.amended(placed, AmendOrder("bs-r1-3-SL-1", qty=1, stop_price=5995.75))
    assert (new.orderId, new.parentId, new.orderRef) == (12, 10, "bs-r1-3-SL-1")
    assert (new.totalQuantity, new.auxPrice, new.transmit) == (1.0, 5995.75, True)
    assert (placed.totalQuantity, placed.auxPrice) == (2.0, 5990.25)  # the original stays


# ---------------------------------------------------------------- IB objects in


def _trade(status: str = "Submitted", **order_kw: Any) -> Trade:
    order = Order(orderId=12, permId=900012, action="SELL", totalQuantity=2, orderType="STP",
                  auxPrice=5990.25, tif="GTC", orderRef="bs-r1-3-SL-1", parentId=10)  # fmt: skip
    for key, value in order_kw.items():
        setattr(order, key, value)
    contract = Contract(secType="FUT", conId=7001, symbol="MES", localSymbol="MESZ5")
    return Trade(contract, order, OrderStatus(orderId=12, status=status, permId=900012))


def test_order_snap_reads_order_ref_levels_and_parent() -> None:
    snap = parsing.order_snap(_trade(), "MESZ5")
    assert snap == parsing.OrderSnap(
        client_order_id="bs-r1-3-SL-1", ib_order_id=12, perm_id=900012, symbol="MESZ5",
        side=Side.SELL, qty=2.0, filled=0.0, status="Submitted", order_type=OrderType.STOP,
        tif=TimeInForce.GTC, limit_price=None, stop_price=5990.25, parent_ib_id=10,
        oca_group="", avg_fill_price=None,
    )  # fmt: skip
    order = parsing.broker_order(snap, "bs-r1-3-SL-1", "bs-r1-3-E-0")
    assert (order.broker_order_id, order.status, order.parent_id) == (
        "900012", Status.ACCEPTED, "bs-r1-3-E-0",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ib_status", "filled", "status"),
    [
        ("PendingSubmit", 0, Status.SUBMITTED),
        ("PreSubmitted", 0, Status.ACCEPTED),
        ("Submitted", 1, Status.PARTIALLY_FILLED),
        ("Filled", 2, Status.FILLED),
        ("Cancelled", 0, Status.CANCELED),
        ("ApiCancelled", 0, Status.CANCELED),
        ("Inactive", 0, Status.REJECTED),
    ],
)
def test_ib_status_to_backstop_status(ib_status: str, filled: float, status: Status) -> None:
    trade = _trade(ib_status)
    trade.orderStatus.filled = filled
    assert parsing.order_status(parsing.order_snap(trade, "MESZ5")) == status


def test_ib_asyncs_local_cancel_on_an_error_is_not_the_gateways_status() -> None:
    trade = _trade("Cancelled")
    t = datetime(2025, 12, 1, tzinfo=UTC)
    trade.log = [
        TradeLogEntry(t, "PendingSubmit"),
        TradeLogEntry(t, "Submitted"),
        TradeLogEntry(t, "Cancelled", "Error 10148, reqId 12: cannot cancel", 10148),
    ]
    assert parsing.order_snap(trade, "MESZ5").status == "Submitted"  # it still works
    trade.log[-1] = TradeLogEntry(t, "Cancelled", "Error 202, reqId 12: Order Canceled", 202)
    assert parsing.order_snap(trade, "MESZ5").status == "Cancelled"


def test_completed_order_reads_filled_quantity_from_the_order() -> None:
    # completed orders (reqCompletedOrders) carry filledQuantity on the order, not a status
    snap = parsing.order_snap(_trade("Filled", filledQuantity=2.0), "MESZ5")
    assert (snap.filled, snap.is_done) == (2.0, True)


def _fill(commission: float | None = 1.24, side: str = "SLD") -> Fill:
    ex = IBExecution(execId="0000e0d5.6553.01.01", time=T0, side=side, shares=2.0,
                     price=5990.25, permId=900012, orderId=12, cumQty=2.0,
                     orderRef="bs-r1-3-SL-1")  # fmt: skip
    report = CommissionReport()
    if commission is not None:
        report = CommissionReport(execId=ex.execId, commission=commission, currency="USD")
    contract = Contract(secType="FUT", conId=7001, symbol="MES", localSymbol="MESZ5")
    return Fill(contract, ex, report, T0)


def test_fill_to_execution_exact() -> None:
    snap = parsing.fill_snap(_fill(), "MESZ5")
    assert (snap.ts_ns, snap.side, snap.commission) == (T0_NS, Side.SELL, 1.24)
    ex = parsing.execution(snap, "bs-r1-3-SL-1", order_qty=2.0, ts_init=5)
    assert ex == Execution(
        client_order_id="bs-r1-3-SL-1", exec_id="0000e0d5.6553.01.01", symbol="MESZ5",
        side=Side.SELL, qty=2.0, price=5990.25, fee=1.24, leaves_qty=0.0, ts_event=T0_NS,
        ts_init=5, broker_order_id="900012",
    )  # fmt: skip


def test_fill_without_commission_report_and_unknown_order() -> None:
    snap = parsing.fill_snap(_fill(commission=None, side="BOT"), "MESZ5")
    assert (snap.commission, snap.side) == (None, Side.BUY)
    ex = parsing.execution(snap, "bs-r1-3-SL-1", order_qty=None, ts_init=0)
    assert ex.fee == 0.0 and math.isnan(ex.leaves_qty)


def test_unknown_side_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="unknown IB side 'SSHORT'"):
        parsing.side_of("SSHORT")


def test_position_avg_cost_is_price_times_multiplier() -> None:
    # ES at 6000: IB's avgCost is 300000 (6000 x 50)
    pos = market.position("ESZ5", -1.0, 300_000.0, 50.0)
    assert (pos.symbol, pos.qty, pos.avg_price) == ("ESZ5", -1.0, 6000.0)


def test_account_values_prefers_usd_and_names_what_is_missing() -> None:
    values = [
        AccountValue("DU1", "NetLiquidation", "101250.5", "BASE", ""),
        AccountValue("DU1", "NetLiquidation", "101250.75", "USD", ""),
        AccountValue("DU1", "TotalCashValue", "100000", "USD", ""),
        AccountValue("DU1", "BuyingPower", "400000", "USD", ""),
        AccountValue("DU2", "BuyingPower", "1", "USD", ""),
    ]
    assert market.account_values(values, "DU1") == Account(101250.75, 100000.0, 400000.0)
    with pytest.raises(BackstopError, match="reported no BuyingPower"):
        market.account_values(values[:3], "DU1")


# ---------------------------------------------------------------- contracts


def test_contracts_for_dated_futures_roots_and_stocks() -> None:
    es = market.contract_for("ESZ5", True)
    assert (es.secType, es.symbol, es.localSymbol, es.exchange, es.currency) == (
        "FUT", "ES", "ESZ5", "CME", "USD",
    )  # fmt: skip
    mnq = market.contract_for("MNQH26", True)
    assert (mnq.symbol, mnq.lastTradeDateOrContractMonth, mnq.localSymbol) == (
        "MNQ", "202603", "MNQH26",
    )  # fmt: skip
    mes = market.contract_for("MES", True, {"MES": "202512"})
    assert (mes.symbol, mes.lastTradeDateOrContractMonth, mes.exchange) == (
        "MES", "202512", "CME",
    )  # fmt: skip
    aapl = market.contract_for("AAPL", False)
    assert (aapl.secType, aapl.exchange, aapl.currency) == ("STK", "SMART", "USD")


def test_futures_root_without_month_asks_ib_for_the_one_contract() -> None:
    nq = market.contract_for("NQ", True, {"ES": "202512"})
    assert (nq.symbol, nq.lastTradeDateOrContractMonth, nq.localSymbol, nq.exchange) == (
        "NQ", "", "", "CME",
    )  # fmt: skip


def _details(multiplier: str, tick: float) -> ContractDetails:
    contract = Contract(secType="FUT", conId=495512563, symbol="ES", localSymbol="ESZ5",
                        multiplier=multiplier, exchange="CME")  # fmt: skip
    return ContractDetails(contract=contract, minTick=tick)


def test_contract_spec_and_registry_check() -> None:
    spec = market.contract_spec("ESZ5", [_details("50", 0.25)])
    assert spec == market.ContractSpec("ESZ5", 495512563, 0.25, 50.0, True)
    market.check_spec(spec, lookup("ESZ5"))  # the registry agrees: no error


@pytest.mark.parametrize(
    ("multiplier", "tick", "words"),
    [
        ("5", 0.25, "IB's multiplier is 5 but backstop's instrument says 50"),
        ("50", 0.5, "IB's minimum tick is 0.5 but backstop's instrument says 0.25"),
    ],
)
def test_tick_or_multiplier_mismatch_is_a_config_error_naming_the_symbol(
    multiplier: str, tick: float, words: str
) -> None:
    spec = market.contract_spec("ESZ5", [_details(multiplier, tick)])
    with pytest.raises(ConfigError) as err:
        market.check_spec(spec, lookup("ESZ5"))
    assert err.value.key == "ESZ5"
    assert words in str(err.value)


def test_unknown_instrument_takes_ibs_tick_but_not_another_multiplier() -> None:
    spec = market.ContractSpec("XYZ", 1, 0.01, 1.0, False)
    market.check_spec(spec, Instrument.generic("XYZ"))  # no tick known: IB's stands
    with pytest.raises(ConfigError, match="multiplier is 1 but backstop's instrument says 100"):
        market.check_spec(spec, Instrument("XYZ", 0.01, multiplier=100.0))


def test_contract_lookup_must_be_unambiguous() -> None:
    with pytest.raises(ConfigError, match="IB found 0 contracts for ES "):
        market.contract_spec("ES", [])
    with pytest.raises(ConfigError, match=r"IB found 2 contracts.*set contract_months"):
        market.contract_spec("ES", [_details("50", 0.25), _details("50", 0.25)])


# ---------------------------------------------------------------- error codes


@pytest.mark.parametrize(
    ("code", "on_order", "accepted", "kind"),
    [
        (201, True, True, CodeKind.REJECTED),  # e.g. "OCA group already filled"
        (201, True, False, CodeKind.REJECTED),
        (202, True, True, CodeKind.CANCELED),
        (2104, False, False, CodeKind.IGNORED),
        (2106, False, False, CodeKind.IGNORED),
        (2158, False, False, CodeKind.IGNORED),
        (399, True, True, CodeKind.IGNORED),  # ib_async keeps the order live
        (1100, False, False, CodeKind.CONNECTION_LOST),
        (1101, False, False, CodeKind.CONNECTION_RESTORED),
        (1102, False, False, CodeKind.CONNECTION_RESTORED),
        (103, True, False, CodeKind.REJECTED),  # duplicate order id on a new order
        (10148, True, True, CodeKind.ORDER_ERROR),  # a refused cancel: still working
        (200, False, False, CodeKind.OTHER),  # no security definition (a look-up)
    ],
)
def test_error_code_table(code: int, on_order: bool, accepted: bool, kind: CodeKind) -> None:
    assert classify(code, on_order=on_order, accepted=accepted) == kind


# ---------------------------------------------------------------- translation, once each


def test_status_reports_accepted_once_and_one_end() -> None:
    tr = Translator()
    working = parsing.order_snap(_trade("PreSubmitted"), "MESZ5")
    assert tr.status(working, 1, 2) == [OrderUpdate(K.ACCEPTED, "bs-r1-3-SL-1", 1, 2, "900012")]
    assert tr.status(parsing.order_snap(_trade("Submitted"), "MESZ5"), 3, 3) == []
    cancelled = parsing.order_snap(_trade("Cancelled"), "MESZ5")
    assert tr.end(cancelled, K.CANCELED, 4, 4, "IB 202: Order Canceled") == [
        OrderUpdate(K.CANCELED, "bs-r1-3-SL-1", 4, 4, "900012", message="IB 202: Order Canceled")
    ]
    assert tr.status(cancelled, 5, 5) == []  # the gateway's Cancelled after the 202


def test_a_201_and_the_cancel_that_follows_are_one_rejection() -> None:
    tr = Translator()
    snap = parsing.order_snap(_trade("Cancelled"), "MESZ5")  # ib_async's local cancel
    text = "IB 201: Order rejected - reason:OCA group already filled"
    assert tr.end(snap, K.REJECTED, 7, 7, text) == [
        OrderUpdate(K.REJECTED, "bs-r1-3-SL-1", 7, 7, "900012", message=text)
    ]
    assert tr.status(snap, 8, 8) == []
    assert tr.status(parsing.order_snap(_trade("Inactive"), "MESZ5"), 9, 9) == []


def test_fill_is_reported_once_after_accepted() -> None:
    tr = Translator()
    note = FillNote(parsing.fill_snap(_fill(), "MESZ5"), 2.0)
    events = tr.fill(note, 11)
    assert [type(e).__name__ for e in events] == ["OrderUpdate", "Execution"]
    assert events[0] == OrderUpdate(K.ACCEPTED, "bs-r1-3-SL-1", T0_NS, 11, "900012")
    assert tr.fill(note, 12) == []


def test_amend_is_replaced_when_the_gateway_echoes_the_new_fields() -> None:
    tr = Translator()
    tr.status(parsing.order_snap(_trade("Submitted"), "MESZ5"), 1, 1)
    tr.expect_amend("bs-r1-3-SL-1", 2.0, 5995.75, None)
    old = parsing.order_snap(_trade("Submitted"), "MESZ5")
    assert tr.status(old, 2, 2) == []  # an echo of the old order is not the amend
    new = parsing.order_snap(_trade("Submitted", auxPrice=5995.75), "MESZ5")
    assert tr.status(new, 3, 3) == [
        OrderUpdate(K.REPLACED, "bs-r1-3-SL-1", 3, 3, "900012", qty=2.0, stop_price=5995.75)
    ]
    assert tr.status(new, 4, 4) == []


def test_orders_without_order_ref_are_not_reported() -> None:
    tr = Translator()
    assert tr.status(parsing.order_snap(_trade(orderRef=""), "MESZ5"), 1, 1) == []


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        (dict(port=0), "port"),
        (dict(client_id=0), "client_id"),
        (dict(host=" "), "host"),
        (dict(connect_timeout_s=0), "connect_timeout_s"),
        (dict(request_timeout_s=math.inf), "request_timeout_s"),
        (dict(contract_months={"ES": "2025-12"}), "contract_months['ES']"),
    ],
)
def test_config_rejects_bad_values_naming_the_key(kw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        IBKRConfig(**kw)
    assert err.value.key == key


def test_config_defaults_hold_nothing_secret() -> None:
    config = IBKRConfig(port=4002, client_id=7, account="DU1")
    assert repr(config).startswith("IBKRConfig(host='127.0.0.1', port=4002, client_id=7")
    assert "secret" not in repr(config).lower() and "password" not in repr(config).lower()


# ---------------------------------------------------------------- bars


def test_historical_bars_to_bar_schema_ordered_by_time_then_symbol() -> None:
    t1 = datetime(2025, 12, 1, 14, 31, tzinfo=UTC)
    frame = market.bars_frame(
        {
            "MESZ5": [
                BarData(date=t1, open=6000.25, high=6001.0, low=5999.5, close=6000.75, volume=812.0)
            ],
            "ESZ5": [
                BarData(date=t1, open=6000.0, high=6001.0, low=5999.0, close=6000.5, volume=1200.0)
            ],
        }
    )
    assert frame.schema == BAR_SCHEMA
    assert frame.rows() == [
        (T0_NS - 250_000_000 + 60_000_000_000, "ESZ5", 6000.0, 6001.0, 5999.0, 6000.5, 1200.0),
        (T0_NS - 250_000_000 + 60_000_000_000, "MESZ5", 6000.25, 6001.0, 5999.5, 6000.75, 812.0),
    ]
    assert market.bar_size("1Min") == "1 min"
    with pytest.raises(ConfigError) as err:
        market.bar_size("7Min")
    assert err.value.key == "timeframe"
