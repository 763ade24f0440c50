"""Outgoing order messages: openOrder (5), orderStatus (3), completedOrder (101),
execDetails (11), commissionReport (59) and their End messages.

Layouts follow ib_async 2.1's ``Decoder.openOrder`` / ``completedOrder`` / ``execDetails`` at
server version 176: ``faProfile`` present (dropped at 177), no ``pendingPriceRevision``
(178). Fields the fake does not model go out empty (the decoder keeps its defaults for ""),
except the counts the decoder reads with ``int()``, which go out as 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from backstop.testing.fake_ibkr.contracts import Spec
from backstop.testing.fake_ibkr.orders import IbOrder

Fields = list[object]


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill as the gateway reports it (kept for reqExecutions after a reconnect)."""

    exec_id: str
    ts: int
    order_id: int
    client_id: int
    perm_id: int
    spec: Spec
    side: str  # BOT | SLD
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    account: str
    commission: float
    realized_pnl: float | None


def ib_time(ts_ns: int) -> str:
    """An instant as TWS writes execution times: ``YYYYMMDD HH:MM:SS UTC``."""
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).strftime("%Y%m%d %H:%M:%S UTC")


def _price(value: float | None) -> object:
    return "" if value is None else value


def open_order(o: IbOrder, status: str) -> Fields:
    """openOrder (5) for ``o`` with order-state ``status`` (Submitted, PreSubmitted...)."""
    return [
        5,
        o.order_id,
        *o.spec.contract_fields(),
        o.action,
        o.total_qty,
        o.order_type,
        _price(o.lmt_price),
        _price(o.aux_price),
        o.tif,
        o.oca_group,
        o.account,
        "O",  # openClose
        0,  # origin: customer
        o.order_ref,
        o.client_id,
        o.perm_id,
        0,  # outsideRth
        0,  # hidden
        "",  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation (skipped)
        "",
        "",
        "",  # faGroup, faMethod, faPercentage
        "",  # faProfile (server version < 177)
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        "",
        "",
        "",
        "",
        "",  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
        "",  # displaySize
        0,  # blockOrder
        0,  # sweepToFill
        0,  # allOrNone
        "",  # minQty
        o.oca_type,
        0,  # eTradeOnly
        0,  # firmQuoteOnly
        "",  # nbboPriceCap
        o.parent_id,
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (none: no extra fields)
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
        0,  # comboLegs count
        0,  # orderComboLegs count
        0,  # smartComboRoutingParams count
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement (unset: no scale fields)
        "",  # hedgeType (none: no hedgeParam)
        0,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        0,  # notHeld
        0,  # deltaNeutralContract present
        "",  # algoStrategy (none: no params)
        0,  # solicited
        0,  # whatIf
        status,
        *([""] * 14),  # margins before/change/after (9), commission, min, max, currency, warning
        0,  # randomizeSize
        0,  # randomizePrice
        0,  # conditions count
        "",  # adjustedOrderType
        "",  # triggerPrice
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",
        "",
        "",  # adjustedStopPrice, adjustedStopLimitPrice, adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",
        "",
        "",  # softDollarTier name, val, displayName
        "",  # cashQty
        0,  # dontUseAutoPriceForHedge
        0,  # isOmsContainer
        0,  # discretionaryUpToLimitPrice
        "",  # usePriceMgmtAlgo
        "",  # duration (159)
        "",  # postToAts (160)
        0,  # autoCancelParent (162)
        "",
        "",
        "",
        "",
        "",  # minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsets (170)
    ]


def open_order_end() -> Fields:
    """openOrderEnd (53)."""
    return [53, 1]


def order_status(
    o: IbOrder, status: str, filled: float, avg_price: float, last_price: float
) -> Fields:
    """orderStatus (3): no version field at this server version."""
    remaining = max(0.0, o.total_qty - filled)
    return [
        3,
        o.order_id,
        status,
        filled,
        remaining,
        avg_price,
        o.perm_id,
        o.parent_id,
        last_price,
        o.client_id,
        "",  # whyHeld
        "",  # mktCapPrice
    ]


def completed_order(o: IbOrder, status: str, filled: float, completed_ts: int) -> Fields:
    """completedOrder (101): no order id or client id in it; orderRef and permId say which."""
    return [
        101,
        *o.spec.contract_fields(),
        o.action,
        o.total_qty,
        o.order_type,
        _price(o.lmt_price),
        _price(o.aux_price),
        o.tif,
        o.oca_group,
        o.account,
        "O",
        0,
        o.order_ref,
        o.perm_id,
        0,  # outsideRth
        0,  # hidden
        "",  # discretionaryAmt
        "",  # goodAfterTime
        "",
        "",
        "",  # faGroup, faMethod, faPercentage
        "",  # faProfile (< 177)
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        "",
        "",
        "",
        "",
        "",  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
        "",  # displaySize
        0,  # sweepToFill
        0,  # allOrNone
        "",  # minQty
        o.oca_type,
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # comboLegsDescrip
        0,
        0,
        0,  # comboLegs, orderComboLegs, smartComboRoutingParams counts
        "",
        "",
        "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        "",  # clearingAccount
        "",  # clearingIntent
        0,  # notHeld
        0,  # deltaNeutralContract present
        "",  # algoStrategy
        0,  # solicited
        status,
        0,  # randomizeSize
        0,  # randomizePrice
        0,  # conditions count
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # cashQty
        0,  # dontUseAutoPriceForHedge
        0,  # isOmsContainer
        "",  # autoCancelDate
        filled,  # filledQuantity
        0,  # refFuturesConId
        0,  # autoCancelParent
        "",  # shareholder
        0,  # imbalanceOnly
        0,  # routeMarketableToBbo
        0,  # parentPermId
        ib_time(completed_ts),  # completedTime
        status,  # completedStatus
        "",
        "",
        "",
        "",
        "",  # minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsets (170)
    ]


def completed_orders_end() -> Fields:
    """completedOrdersEnd (102)."""
    return [102]


def exec_details(req_id: int, e: Execution) -> Fields:
    """execDetails (11): ``req_id`` -1 for a live fill, the request's id for reqExecutions."""
    return [
        11,
        req_id,
        e.order_id,
        e.spec.con_id,
        e.spec.symbol,
        e.spec.sec_type,
        e.spec.expiry,
        0.0,
        "",
        e.spec.multiplier_text,
        e.spec.exchange,
        e.spec.currency,
        e.spec.local_symbol,
        e.spec.trading_class,
        e.exec_id,
        ib_time(e.ts),
        e.account,
        e.spec.exchange,
        e.side,
        e.shares,
        e.price,
        e.perm_id,
        e.client_id,
        0,  # liquidation
        e.cum_qty,
        e.avg_price,
        e.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        0,  # lastLiquidity
    ]


def commission_report(e: Execution) -> Fields:
    """commissionReport (59); realized P&L empty (unset) for an opening fill."""
    pnl = "" if e.realized_pnl is None else e.realized_pnl
    return [59, 1, e.exec_id, e.commission, e.spec.currency, pnl, "", ""]


def exec_details_end(req_id: int) -> Fields:
    """execDetailsEnd (55)."""
    return [55, 1, req_id]
