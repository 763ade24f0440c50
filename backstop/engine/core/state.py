"""State containers of the compiled core as numba StructRefs.

The book, the portfolio, the verdicts and the guardrail state are each a handful of arrays
that a dozen kernels receive per signal. Passed as a NamedTuple, every array costs an
atomic incref and decref on every kernel call (numba owns its arguments); half of a
backtest's time went there (bench/PROFILE.md). A StructRef is one reference however many
arrays it holds: ~10 ns a call instead of ~120 ns for eleven arrays.

Kernels read and write the fields with the same attribute syntax as before. Python reads
them through ``StateStruct`` properties, which cache the boxed arrays (they share memory with
the struct); only the growth helpers replace an array, and they drop that cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import types
from numba.experimental import structref


class StateType(types.StructRef):
    """Base of the state structs' numba types: fields typed by the arrays given."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class StateStruct(structref.StructRefProxy):
    """Python face of a state struct: its fields as read-only attributes (shared arrays).

    ``_read`` (set by ``expose``) is the jitted function returning every field in order.
    """

    _read: Callable[[Any], tuple[np.ndarray, ...]]

    def _fields(self) -> tuple[np.ndarray, ...]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = type(self)._read(self)
            self.__dict__["_cache"] = cached
        return cached

    def forget_fields(self) -> None:
        """Call after a kernel replaced a field's array (growth): the next read re-boxes."""
        self.__dict__.pop("_cache", None)


def expose(cls: type[StateStruct], fields: tuple[str, ...], read: Callable[..., Any]) -> None:
    """Give ``cls`` a property per field, read through ``read`` (cached per instance)."""
    cls._read = staticmethod(read)  # type: ignore[assignment]
    for k, name in enumerate(fields):
        setattr(cls, name, property(lambda self, k=k: self._fields()[k]))
