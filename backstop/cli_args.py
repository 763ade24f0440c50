"""Argument helpers the ``backstop`` sub-commands share: KEY=VALUE lists, BacktestConfig
options from text, and values made JSON-safe. Every refusal is a ConfigError naming the key."""

from __future__ import annotations

import math
from typing import Any

from backstop.engine.profile import split_key_values
from backstop.errors import ConfigError


def key_values(items: list[str], what: str) -> dict[str, str]:
    """``KEY=VALUE`` items of option ``what`` (``--param``, ``--set``...)."""
    return split_key_values(items, what)


def config_values(raw: dict[str, str]) -> dict[str, Any]:
    from dataclasses import fields

    from backstop.engine.config import BacktestConfig

    types = {f.name: f.type for f in fields(BacktestConfig)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in types:
            raise ConfigError(key, f"unknown option (known: {sorted(types)})")
        kind = str(types[key])
        try:
            if kind == "bool":
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1", "yes")
            elif kind == "int":
                out[key] = int(value)
            elif kind == "float":
                out[key] = float(value)
            else:
                out[key] = value
        except ValueError:
            raise ConfigError(key, f"expected {kind}, got {value!r}") from None
    return out


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):
        return jsonable(value.item())
    return value
