"""Strict, safe or tolerant: one place that decides what a bad line does.

Every parser reports an unreadable line through a ``LineIssues`` of its file. In strict mode
the first one raises a ``DataError`` naming ``file:line`` (and the symbol and column, where
known); in tolerant mode it becomes a ``SkippedLine`` with the same message, so the caller
can count and list what was left out. Nothing is dropped without a record.

Safe mode (the default) is strict where a skip would change the P&L without anyone asking
for it: in a broker export (``truth=True``: the broker's record of fills is never guessed
around) and on a log line that holds an order or a fill (the parser says so with
``holds_order``). Any other unreadable log line (chatter, a foreign line) is skipped as in
tolerant mode.

Timestamps that go backwards within one file get the same treatment, with one difference in
tolerant mode: the line is kept (sorted into place by the timeline) and a ``ParseWarning``
says so, because the event itself was readable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from backstop.errors import DataError
from backstop.replay.timeline import ParseWarning, SkippedLine
from backstop.replay.times import LocalZone, format_ns

Mode = Literal["strict", "safe", "tolerant"]
MODES: tuple[Mode, ...] = ("strict", "safe", "tolerant")
DEFAULT_MODE: Mode = "safe"
"""Unreadable broker truth and order lines are errors unless tolerance is asked for."""
_TEXT_LIMIT = 300


def check_mode(mode: str) -> Mode:
    """Refuse a mode other than ``"strict"``, ``"safe"`` or ``"tolerant"``."""
    for known in MODES:
        if mode == known:
            return known
    raise ValueError(f"mode must be 'strict', 'safe' or 'tolerant', got {mode!r}")


class LineIssues:
    """Collects (tolerant) or raises (strict) the problems found in one file."""

    __slots__ = ("_last", "_zone", "mode", "path", "skipped", "truth", "warnings")

    def __init__(
        self, path: str, mode: Mode, zone: LocalZone | None = None, *, truth: bool = False
    ) -> None:
        """Track problems of the file at ``path``; ``zone`` renders times in messages.

        ``truth`` marks a broker export: in safe mode every unreadable record of it raises.
        """
        self.path = path
        self.mode = check_mode(mode)
        self.truth = truth
        self.skipped: list[SkippedLine] = []
        self.warnings: list[ParseWarning] = []
        self._last: tuple[int, int] | None = None
        self._zone = zone

    def where(self, row: int | str) -> str:
        """The ``source`` string of line (or record) ``row`` of this file."""
        return f"{self.path}:{row}"

    def fail(
        self,
        problem: str,
        *,
        row: int | None,
        text: str,
        where: str | None = None,
        symbol: str | None = None,
        column: str | None = None,
        holds_order: bool = False,
    ) -> None:
        """Report an unreadable line: raise in strict mode, record a skip in tolerant mode.

        In safe mode it raises for a broker export and for a line that ``holds_order`` (an
        order intent or a fill the P&L would silently lose), else it records a skip.
        ``where`` overrides the skip's source (a JSON path instead of a line number).
        """
        if self.raises(holds_order):
            if self.mode == "safe":
                problem += (
                    " (broker truth)" if self.truth else " (the line holds an order or a fill)"
                )
                problem += "; replay --tolerant skips it and lists it in the report"
            raise DataError(problem, source=self.path, row=row, symbol=symbol, column=column)
        reason = str(DataError(problem, symbol=symbol, column=column))
        source = where if where is not None else self.where(row if row is not None else "?")
        self.skipped.append(SkippedLine(source, reason, text[:_TEXT_LIMIT]))

    def raises(self, holds_order: bool = False) -> bool:
        """Say whether an unreadable line (one that ``holds_order`` or not) raises here."""
        if self.mode == "strict":
            return True
        return self.mode == "safe" and (self.truth or holds_order)

    @property
    def last_ns(self) -> int | None:
        """The latest timestamp accepted so far in this file (decides ambiguous local times)."""
        return None if self._last is None else self._last[0]

    def check_order(self, ts: int, row: int, text: str) -> None:
        """Check that ``ts`` does not go back in time within this file.

        Strict: a backwards timestamp raises. Tolerant: the line is kept and a warning recorded.
        """
        last = self._last
        if last is not None and ts < last[0]:
            problem = (
                f"timestamp {self._fmt(ts)} is earlier than line {last[1]} ({self._fmt(last[0])})"
            )
            if self.mode == "strict":
                raise DataError(f"out of order: {problem}", source=self.path, row=row)
            self.warnings.append(
                ParseWarning(
                    self.where(row),
                    f"out of order, kept and sorted into place: {problem}",
                    text[:_TEXT_LIMIT],
                )
            )
            return
        self._last = (ts, row)

    def warn(self, row: int | str, reason: str, text: str) -> None:
        """Record a warning about a line that was kept."""
        self.warnings.append(ParseWarning(self.where(row), reason, text[:_TEXT_LIMIT]))

    def _fmt(self, ts: int) -> str:
        return format_ns(ts, self._zone)


ORDER_KINDS = frozenset({"order_intent", "broker_order", "broker_fill"})
"""Event kinds that change positions or P&L: a line holding one is never skipped silently."""

_ORDER_WORDS = re.compile(
    r"\b(?:order|fill|placing|placed|bought|sold|execution|exec_id|execid)"
    r"|\"kind\"\s*:\s*\"(?:order_intent|broker_order|broker_fill)\"",
    re.IGNORECASE,
)


def mentions_order(text: str, prefixes: tuple[str, ...] = ()) -> bool:
    """Say whether an unreadable line looks like it held an order or a fill.

    It does when it names one (the words order, fill, placing, placed, bought, sold,
    execution, or a JSONL ``"kind"`` of an order or a fill) or holds one of ``prefixes``
    (the literal start of a dialect's order patterns). Safe mode refuses such a line rather
    than let a truncated order vanish from the P&L.
    """
    return _ORDER_WORDS.search(text) is not None or any(p in text for p in prefixes)


def read_text(path: str | os.PathLike[str]) -> str:
    """Read a text input as UTF-8, a leading byte-order mark dropped (Windows editors write one).

    Raises ``ValueError`` saying why it cannot be read (missing, a folder, not UTF-8 and where),
    for the caller to turn into its ``DataError`` or ``ConfigError``.
    """
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise ValueError(
            f"cannot read: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start}; save it as "
            "UTF-8)"
        ) from None
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or exc}") from None
