"""IBKR executions: Flex Query trade XML and the CSV trade exports (statement or flat).

Flex: every ``<Trade>`` element of ``FlexQueryResponse/FlexStatements/FlexStatement/Trades``
at execution level becomes a ``BrokerFill`` (``buySell``, |``quantity``|, ``tradePrice``,
fee = -``ibCommission``, ``ibOrderID``, ``ibExecID``), plus a ``PnlRecord`` when
``fifoPnlRealized`` is non-zero or the trade closes (``openCloseIndicator`` has ``C``). Rows of
another ``levelOfDetail`` (``ORDER``, ``CLOSED_LOT``, ...) repeat executions and are ignored
(counted in ``Incident.ignored``). ``dateTime`` is ``yyyyMMdd;HHmmss`` (the separator may be
``;``, ``,`` or a space; dashes and colons are allowed) or ``tradeDate`` + ``tradeTime``.

CSV: an Activity Statement export (rows ``Trades,Header,...`` / ``Trades,Data,...``; ``Order``
and ``Trade`` rows are executions, ``ClosedLot``/``SubTotal``/``Total`` rows are ignored), or a
flat CSV whose header names the columns (``Symbol``, ``Date/Time``, ``Quantity`` signed,
``T. Price``, optional ``Comm/Fee``, ``Realized P/L``, ``Order ID``, ``Exec ID``, ``Buy/Sell``,
``Code``; Flex-style names such as ``TradePrice`` or ``IBCommission`` are accepted).

IBKR prints local times without an offset; they are read in ``timezone``, by default
``America/New_York`` (the zone IBKR statements use unless the account says otherwise).
Exports are not logs: rows are sorted by time, never checked for order.
"""

from __future__ import annotations

import csv
import io
import os
import re
import xml.parsers.expat
from pathlib import Path

from backstop.errors import DataError
from backstop.replay.events import BrokerFill, Event, PnlRecord
from backstop.replay.issues import LineIssues, Mode
from backstop.replay.timeline import Incident, sort_events
from backstop.replay.times import LocalZone, TimeReader
from backstop.replay.values import is_none, to_float, to_side, to_text

DEFAULT_TZ = "America/New_York"
_STAMPS = (
    re.compile(
        r"(?P<year>\d{4})-?(?P<month>\d{2})-?(?P<day>\d{2})[;, ]\s*"
        r"(?P<hour>\d{2}):?(?P<minute>\d{2}):?(?P<second>\d{2})"
    ),
    re.compile(
        r"(?P<month>\d{2})/(?P<day>\d{2})/(?P<year>\d{4})[;, ]\s*"
        r"(?P<hour>\d{2}):?(?P<minute>\d{2}):?(?P<second>\d{2})"
    ),
)
_CSV_ALIASES = {
    "symbol": ("Symbol",),
    "datetime": ("Date/Time", "DateTime", "Date Time"),
    "quantity": ("Quantity",),
    "price": ("T. Price", "TradePrice", "Trade Price", "Price"),
    "fee": ("Comm/Fee", "IBCommission", "Commission", "Comm"),
    "pnl": ("Realized P/L", "FifoPnlRealized", "Realized P&L"),
    "order_id": ("Order ID", "IBOrderID", "OrderID"),
    "exec_id": ("Exec ID", "IBExecID", "ExecID", "Execution ID"),
    "side": ("Buy/Sell", "BuySell", "Side"),
    "code": ("Code", "Open/CloseIndicator", "OpenCloseIndicator"),
}
_EXECUTION_ROWS = frozenset({"Order", "Trade"})


class _Bad(ValueError):
    def __init__(self, column: str, problem: str) -> None:
        self.column = column
        super().__init__(problem)


class _Reader:
    """Shared row conversion of both formats: one fill (and maybe a P&L record) per row."""

    def __init__(self, source: str, mode: Mode, timezone: str) -> None:
        try:
            zone = LocalZone(timezone)
        except ValueError as exc:
            raise DataError(str(exc), source=source) from None
        self.issues = LineIssues(source, mode, zone, truth=True)
        self.times = [TimeReader(p, zone) for p in _STAMPS]
        self.events: list[Event] = []
        self.ignored = 0

    def stamp(self, text: str, column: str) -> int:
        for reader in self.times:
            try:
                return reader.read(text)
            except ValueError as exc:
                if "does not match" not in str(exc):
                    raise _Bad(column, str(exc)) from None
        raise _Bad(column, f"not an IBKR date/time: {text!r} (expected e.g. 20251212;095320)")

    def add(
        self, row: int, text: str, fields: dict[str, str | None], names: dict[str, str]
    ) -> None:
        """Convert one execution row; ``names`` maps canonical field names to column names."""
        symbol = fields.get("symbol") or None
        try:
            self.events.extend(self._convert(row, fields, names))
        except _Bad as exc:
            self.issues.fail(str(exc), row=row, text=text, column=exc.column, symbol=symbol)

    def _convert(
        self, row: int, fields: dict[str, str | None], names: dict[str, str]
    ) -> list[Event]:
        cells = _Cells(fields, names)
        symbol = cells.text("symbol")
        ts = self.stamp(cells.text("datetime"), names.get("datetime", "datetime"))
        quantity = cells.number("quantity")
        if quantity == 0:
            raise _Bad(names["quantity"], "quantity is 0")
        side = 1 if quantity > 0 else -1
        stated = fields.get("side")
        if stated is not None and not is_none(stated) and _buy_sell(stated, names["side"]) != side:
            raise _Bad(names["side"], f"{stated} disagrees with quantity {quantity:g}")
        price = cells.number("price")
        if price <= 0:
            raise _Bad(names["price"], f"price must be > 0, got {price:g}")
        fee = cells.optional_number("fee")
        source = self.issues.where(row)
        out: list[Event] = [
            BrokerFill(
                ts=ts,
                source=source,
                order_id=cells.optional_text("order_id"),
                symbol=symbol,
                side=side,
                qty=abs(quantity),
                price=price,
                fee=None if fee is None else -fee,
                exec_id=cells.optional_text("exec_id"),
            )
        ]
        pnl = cells.optional_number("pnl")
        closing = "C" in re.split(r"[;,\s]+", fields.get("code") or "")
        if pnl is not None and (pnl != 0 or closing):
            note = "IBKR realized P/L"
            out.append(PnlRecord(ts=ts, source=source, symbol=symbol, amount=pnl, note=note))
        return out

    def incident(self, source: str, timezone: str) -> Incident:
        return Incident(
            name=Path(source).stem,
            tz=timezone,
            events=sort_events(self.events),
            skipped=tuple(self.issues.skipped),
            warnings=tuple(self.issues.warnings),
            ignored=self.ignored,
            inputs=(source,),
        )


class _Cells:
    """Typed access to one row's cells; errors name the export's own column name."""

    def __init__(self, fields: dict[str, str | None], names: dict[str, str]) -> None:
        self.fields = fields
        self.names = names

    def _raw(self, key: str) -> str | None:
        value = self.fields.get(key)
        return None if is_none(value) else value

    def text(self, key: str) -> str:
        value = self._raw(key)
        if value is None:
            raise _Bad(self.names.get(key, key), "missing")
        return to_text(value)

    def optional_text(self, key: str) -> str | None:
        value = self._raw(key)
        return None if value is None else to_text(value)

    def number(self, key: str) -> float:
        value = self.optional_number(key)
        if value is None:
            raise _Bad(self.names.get(key, key), "missing")
        return value

    def optional_number(self, key: str) -> float | None:
        value = self._raw(key)
        if value is None:
            return None
        try:
            return to_float(value)
        except ValueError as exc:
            raise _Bad(self.names.get(key, key), str(exc)) from None


def _buy_sell(value: str, column: str) -> int:
    text = value.split("(")[0].strip()  # "SELL (Ca.)" marks a cancellation
    try:
        return to_side(text)
    except ValueError as exc:
        raise _Bad(column, str(exc)) from None


def read_ibkr_flex(
    path: str | os.PathLike[str], mode: Mode = "safe", *, timezone: str = DEFAULT_TZ
) -> Incident:
    """Read the ``<Trade>`` executions of an IBKR Flex Query XML into a timeline."""
    source = os.fspath(path)
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read: {exc}", source=source) from None
    reader = _Reader(source, mode, timezone)
    parser = xml.parsers.expat.ParserCreate()
    trades: list[tuple[int, dict[str, str]]] = []
    seen: set[str] = set()

    def start(name: str, attrs: dict[str, str]) -> None:
        seen.add(name)
        if name == "Trade":
            trades.append((parser.CurrentLineNumber, attrs))

    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        lines = data.decode("utf-8", "replace").splitlines()
        text = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        reader.issues.fail(
            f"malformed XML: {xml.parsers.expat.errors.messages[exc.code]} at column "
            f"{exc.offset + 1}; the rest of the file is unread",
            row=exc.lineno,
            text=text,
        )
    if "FlexQueryResponse" not in seen and not trades:
        raise DataError("not a Flex query: no FlexQueryResponse element", source=source)
    names = {
        "symbol": "symbol",
        "datetime": "dateTime",
        "quantity": "quantity",
        "price": "tradePrice",
        "fee": "ibCommission",
        "pnl": "fifoPnlRealized",
        "order_id": "ibOrderID",
        "exec_id": "ibExecID",
        "side": "buySell",
        "code": "openCloseIndicator",
    }
    for line, attrs in trades:
        level = attrs.get("levelOfDetail")
        if level is not None and level.upper() != "EXECUTION":
            reader.ignored += 1
            continue
        fields: dict[str, str | None] = {key: attrs.get(attr) for key, attr in names.items()}
        if fields["datetime"] is None and attrs.get("tradeDate") and attrs.get("tradeTime"):
            fields["datetime"] = f"{attrs['tradeDate']};{attrs['tradeTime']}"
        text = "<Trade " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + " />"
        reader.add(line, text, fields, names)
    return reader.incident(source, timezone)


def read_ibkr_csv(
    path: str | os.PathLike[str], mode: Mode = "safe", *, timezone: str = DEFAULT_TZ
) -> Incident:
    """Read an IBKR trades CSV (Activity Statement or flat export) into a timeline."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", source=source) from None
    reader = _Reader(source, mode, timezone)
    rows = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    statement: bool | None = None
    for cells in rows:
        row = rows.line_num
        if not any(c.strip() for c in cells):
            continue
        raw = ",".join(cells)
        if statement is None:
            statement = len(cells) > 1 and cells[1] == "Header"
            if not statement:
                header = [c.strip() for c in cells]
                _check_header(header, source, row)
                continue
        if statement:
            if cells[0] != "Trades" or len(cells) < 3:
                reader.ignored += 1
                continue
            if cells[1] == "Header":
                header = [c.strip() for c in cells[2:]]
                _check_header(header, source, row)
                continue
            if header is None or cells[1] != "Data" or cells[2] not in _EXECUTION_ROWS:
                reader.ignored += 1
                continue
            cells = cells[2:]
        if header is None:  # a statement's Trades data before its header: nothing to read by
            reader.issues.fail("Trades data row before a Trades header row", row=row, text=raw)
            continue
        if len(cells) != len(header):
            reader.issues.fail(
                f"{len(cells)} cells for {len(header)} columns (truncated row?)", row=row, text=raw
            )
            continue
        fields, names = _fields(header, cells)
        reader.add(row, raw, fields, names)
    if header is None:
        raise DataError("no header row: expected IBKR trade columns", source=source)
    return reader.incident(source, timezone)


def _check_header(header: list[str], source: str, row: int) -> None:
    present = set(header)
    for key in ("symbol", "datetime", "quantity", "price"):
        if not present & set(_CSV_ALIASES[key]):
            raise DataError(
                f"missing column (one of {list(_CSV_ALIASES[key])})", source=source, row=row
            )


def _fields(header: list[str], cells: list[str]) -> tuple[dict[str, str | None], dict[str, str]]:
    by_name = dict(zip(header, cells, strict=True))
    fields: dict[str, str | None] = {}
    names: dict[str, str] = {}
    for key, aliases in _CSV_ALIASES.items():
        for alias in aliases:
            if alias in by_name:
                fields[key] = by_name[alias].strip()
                names[key] = alias
                break
    return fields, names
