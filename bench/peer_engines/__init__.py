"""Adapters that run the "SMA cross bracket" workload on other backtest libraries.

Each adapter is a small class with ``name``, ``version()``, ``notes()``, ``prepare(data)``
(untimed: turn in-memory arrays into the library's own input) and ``run(prepared)`` (timed:
the backtest itself, returning closed round trips and their P&L). Libraries are imported
only inside those methods, so each adapter loads in whichever environment has its library.
"""

from __future__ import annotations

from typing import Any, Protocol


class Peer(Protocol):
    """What peers.py needs from an adapter."""

    name: str

    def version(self) -> str:
        """The library's version string."""
        ...

    def notes(self) -> list[str]:
        """How the library expresses the workload, and where it cannot."""
        ...

    def prepare(self, data: Any) -> Any:
        """Build the library's input from per-symbol arrays (not timed)."""
        ...

    def run(self, prepared: Any) -> tuple[int, float]:
        """Run the backtest; return (closed round trips, total P&L of those)."""
        ...


ENGINES = ("vectorbt_nb", "vectorbt_rs", "backtesting", "backtrader", "nautilus")


def make_peer(name: str) -> Peer:
    """The adapter for an engine name from ENGINES."""
    if name == "vectorbt_nb":
        from .vbt import VectorbtPeer

        return VectorbtPeer("numba")
    if name == "vectorbt_rs":
        from .vbt import VectorbtPeer

        return VectorbtPeer("rust")
    if name == "backtesting":
        from .btpy import BacktestingPeer

        return BacktestingPeer()
    if name == "backtrader":
        from .btrader import BacktraderPeer

        return BacktraderPeer()
    if name == "nautilus":
        from .nautilus import NautilusPeer

        return NautilusPeer()
    raise ValueError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
