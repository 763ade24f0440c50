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
    """Python face of a state struct: its fields as attributes (shared arrays, not copies).

    ``_read`` (set by ``expose``) is the jitted function returning every field in order; the
    first read of any field boxes them all, and each field is then a plain instance attribute
    (the event driver reads them hundreds of thousands of times in a replay).
    """

    _read: Callable[[Any], tuple[np.ndarray, ...]]
    _names: tuple[str, ...] = ()

    def _fields(self) -> tuple[np.ndarray, ...]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = type(self)._read(self)
            self.__dict__["_cache"] = cached
            self.__dict__.update(zip(self._names, cached, strict=True))
        return cached

    def forget_fields(self) -> None:
        """Call after a kernel replaced a field's array (growth): the next read re-boxes."""
        self.__dict__.pop("_cache", None)
        for name in self._names:
            self.__dict__.pop(name, None)


class _Field:
    """A state field read through ``StateStruct._fields``. It defines no ``__set__``, so once
    the fields are boxed the instance attribute answers without calling it."""

    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k

    def __get__(self, obj: StateStruct | None, cls: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._fields()[self.k]


def expose(cls: type[StateStruct], fields: tuple[str, ...], read: Callable[..., Any]) -> None:
    """Give ``cls`` an attribute per field, read through ``read`` (cached per instance)."""
    cls._read = staticmethod(read)  # type: ignore[assignment]
    cls._names = tuple(fields)
    for k, name in enumerate(fields):
        setattr(cls, name, _Field(k))
