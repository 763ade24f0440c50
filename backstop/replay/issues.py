"""Strict or tolerant: one place that decides what a bad line does.

Every parser reports an unreadable line through a ``LineIssues`` of its file. In strict mode
the first one raises a ``DataError`` naming ``file:line`` (and the symbol and column, where
known); in tolerant mode it becomes a ``SkippedLine`` with the same message, so the caller
can count and list what was left out. Nothing is dropped without a record.

Timestamps that go backwards within one file get the same treatment, with one difference in
tolerant mode: the line is kept (sorted into place by the timeline) and a ``ParseWarning``
says so, because the event itself was readable.
"""

from __future__ import annotations

from typing import Literal

from backstop.errors import DataError
from backstop.replay.timeline import ParseWarning, SkippedLine
from backstop.replay.times import LocalZone, format_ns

Mode = Literal["strict", "tolerant"]
MODES: tuple[Mode, ...] = ("strict", "tolerant")
_TEXT_LIMIT = 300


def check_mode(mode: str) -> Mode:
    """Refuse a mode other than ``"strict"`` or ``"tolerant"``."""
    if mode == "strict":
        return "strict"
    if mode == "tolerant":
        return "tolerant"
    raise ValueError(f"mode must be 'strict' or 'tolerant', got {mode!r}")


class LineIssues:
    """Collects (tolerant) or raises (strict) the problems found in one file."""

    __slots__ = ("_last", "_zone", "mode", "path", "skipped", "warnings")

    def __init__(self, path: str, mode: Mode, zone: LocalZone | None = None) -> None:
        """Track problems of the file at ``path``; ``zone`` renders times in messages."""
        self.path = path
        self.mode = check_mode(mode)
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
    ) -> None:
        """Report an unreadable line: raise in strict mode, record a skip in tolerant mode.

        ``where`` overrides the skip's source (a JSON path instead of a line number).
        """
        if self.mode == "strict":
            raise DataError(problem, source=self.path, row=row, symbol=symbol, column=column)
        reason = str(DataError(problem, symbol=symbol, column=column))
        source = where if where is not None else self.where(row if row is not None else "?")
        self.skipped.append(SkippedLine(source, reason, text[:_TEXT_LIMIT]))

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
