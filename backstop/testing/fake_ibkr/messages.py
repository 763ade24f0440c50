"""Outgoing account, contract, market-data and control messages, as field lists.

Each function returns the fields of one message exactly as ib_async 2.1's ``Decoder`` reads
them at server version 176 (``wire.SERVER_VERSION``): the decoder is positional and drops a
message with a wrong field count with only a log line, so the layouts here are checked by
tests that run the real client. Order messages are in ``order_msgs.py``.
"""

from __future__ import annotations

import datetime as dt

from backstop.testing.fake_alpaca.tape import Bar
from backstop.testing.fake_ibkr.contracts import Spec

Fields = list[object]


def next_valid_id(order_id: int) -> Fields:
    """nextValidId (9): the lowest order id the client may use."""
    return [9, 1, order_id]


def managed_accounts(accounts: str) -> Fields:
    """managedAccounts (15): comma-separated account codes (non-empty, or no connect)."""
    return [15, 1, accounts]


def error(req_id: int, code: int, message: str) -> Fields:
    """error (4): ``req_id`` is an order id, a request id or -1; no advanced-reject JSON."""
    return [4, 2, req_id, code, message, ""]


def current_time(seconds: int) -> Fields:
    """currentTime (49): epoch seconds (the fake's clock, never the wall clock)."""
    return [49, 1, seconds]


def position(account: str, spec: Spec, qty: float, avg_cost: float) -> Fields:
    """position (61): signed size; avgCost is price x multiplier."""
    return [61, 3, account, *spec.contract_fields(), qty, avg_cost]


def position_end() -> Fields:
    """positionEnd (62)."""
    return [62, 1]


def position_multi(req_id: int, account: str, spec: Spec, qty: float, avg_cost: float) -> Fields:
    """positionMulti (71)."""
    return [71, 1, req_id, account, *spec.contract_fields(), qty, avg_cost, ""]


def position_multi_end(req_id: int) -> Fields:
    """positionMultiEnd (72)."""
    return [72, 1, req_id]


def account_value(key: str, value: str, currency: str, account: str) -> Fields:
    """updateAccountValue (6)."""
    return [6, 2, key, value, currency, account]


def portfolio(
    spec: Spec,
    qty: float,
    price: float,
    value: float,
    avg_cost: float,
    unrealized: float,
    realized: float,
    account: str,
) -> Fields:
    """updatePortfolio (7): the contract with its primary exchange (no routing exchange)."""
    return [
        7,
        8,
        *spec.contract_fields(with_exchange=False),
        qty,
        price,
        value,
        avg_cost,
        unrealized,
        realized,
        account,
    ]


def account_time(ts_ns: int) -> Fields:
    """updateAccountTime (8): HH:MM of the fake's clock, UTC."""
    return [8, 1, dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).strftime("%H:%M")]


def account_end(account: str) -> Fields:
    """accountDownloadEnd (54)."""
    return [54, 1, account]


def account_multi(req_id: int, account: str, key: str, value: str, currency: str) -> Fields:
    """accountUpdateMulti (73), model code empty."""
    return [73, 1, req_id, account, "", key, value, currency]


def account_multi_end(req_id: int) -> Fields:
    """accountUpdateMultiEnd (74)."""
    return [74, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    """accountSummary (63)."""
    return [63, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    """accountSummaryEnd (64)."""
    return [64, 1, req_id]


def contract_details(req_id: int, spec: Spec) -> Fields:
    """contractDetails (10) at server version >= 164 (no version field)."""
    future = spec.sec_type == "FUT"
    return [
        10,
        req_id,
        spec.symbol,
        spec.sec_type,
        spec.expiry,  # lastTradeDateOrContractMonth (no time, no zone)
        0.0,  # strike
        "",  # right
        spec.exchange,
        spec.currency,
        spec.local_symbol,
        spec.trading_class,  # marketName
        spec.trading_class,
        spec.con_id,
        spec.min_tick,
        spec.multiplier_text,
        "LMT,MKT,STP,STPLMT",  # orderTypes
        spec.exchange if future else f"SMART,{spec.primary_exchange}",  # validExchanges
        1,  # priceMagnifier
        0,  # underConId
        spec.symbol,  # longName
        spec.primary_exchange,
        spec.month,  # contractMonth
        "",
        "",
        "",  # industry, category, subcategory
        "US/Central" if future else "US/Eastern",  # timeZoneId
        "",
        "",  # tradingHours, liquidHours
        "",
        "",  # evRule, evMultiplier
        0,  # numSecIds
        "",  # aggGroup
        spec.symbol if future else "",  # underSymbol
        "IND" if future else "",  # underSecType
        "",  # marketRuleIds
        spec.expiry,  # realExpirationDate
        "" if future else "COMMON",  # stockType
        1.0,
        1.0,
        1.0,  # minSize, sizeIncrement, suggestedSizeIncrement
    ]


def contract_details_end(req_id: int) -> Fields:
    """contractDetailsEnd (52)."""
    return [52, 1, req_id]


def bar_date(ts_ns: int, daily: bool) -> str:
    """A bar's date as TWS writes it: YYYYMMDD for daily bars, epoch seconds otherwise
    (formatDate=2; the fake answers every request in that form, which ib_async parses as UTC)."""
    if daily:
        return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).strftime("%Y%m%d")
    return str(ts_ns // 1_000_000_000)


def historical_data(req_id: int, start: str, end: str, bars: list[Bar], daily: bool) -> Fields:
    """historicalData (17): every bar, then the decoder ends the request itself."""
    out: Fields = [17, req_id, start, end, len(bars)]
    for b in bars:
        avg = (b.high + b.low + b.close) / 3
        out += [bar_date(b.ts, daily), b.open, b.high, b.low, b.close, b.volume, avg, -1]
    return out


def historical_update(req_id: int, bar: Bar, daily: bool) -> Fields:
    """historicalDataUpdate (90): barCount, date, open, close, high, low, average, volume."""
    avg = (bar.high + bar.low + bar.close) / 3
    return [
        90,
        req_id,
        -1,
        bar_date(bar.ts, daily),
        bar.open,
        bar.close,
        bar.high,
        bar.low,
        avg,
        bar.volume,
    ]
