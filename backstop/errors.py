"""One hierarchy of typed errors, each naming what was wrong and where.

The CLI turns a ``BackstopError`` into one line on stderr and exit code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class BackstopError(Exception):
    """Base of every error backstop raises on purpose (bad input, bad config, refused action)."""


class DataError(BackstopError):
    """Bars or signals that cannot be used: names the source, row (or line), symbol and problem."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        row: int | None = None,
        symbol: str | None = None,
        column: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.row = row
        self.symbol = symbol
        self.column = column
        where = []
        if source is not None:
            where.append(f"{source}:{row}" if row is not None else source)
        elif row is not None:
            where.append(f"row {row}")
        if symbol is not None:
            where.append(f"symbol {symbol}")
        if column is not None:
            where.append(f"column {column}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)


class ConfigError(BackstopError):
    """A configuration value or parameter that is unknown or out of range; names the key."""

    def __init__(self, key: str, problem: str, *, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {problem}")


class OrderStateError(BackstopError):
    """An order event that the order state machine does not allow from the current state."""


def check(condition: bool, error: BackstopError) -> None:
    """Raise ``error`` unless ``condition`` holds: the one guard helper for public boundaries.

    Never ``assert`` to validate input: asserts vanish under ``python -O``.
    """
    if not condition:
        raise error
