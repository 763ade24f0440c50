"""Argument helpers the ``backstop`` sub-commands share: KEY=VALUE lists, BacktestConfig
options from text, the instrument file, and values made JSON-safe. Every refusal is a
ConfigError naming the key (or a DataError naming the file's line)."""

from __future__ import annotations

import math
from typing import Any

from backstop.engine.profile import split_key_values
from backstop.errors import ConfigError

INSTRUMENTS_HELP = (
    "instrument file (.csv or .toml): symbol -> sector, tick, lot, multiplier, currency, "
    "future (README)"
)


def instruments_arg(path: str | None) -> dict[str, Any] | None:
    """The instruments ``--instruments FILE`` names (None without the option)."""
    if not path:
        return None
    from backstop.domain.instrument_file import read_instruments

    return read_instruments(path)


def learning_arg(path: str | None) -> Any:
    """The learning state ``--learning-in FILE`` restores (None without the option)."""
    if not path:
        return None
    from backstop.engine.learning_state import LearningState

    return LearningState.load(path)


def save_learning(result: Any, path: str) -> None:
    """Write the run's learning state to ``--learning-out FILE``."""
    try:
        result.learning_state().save(path)
    except OSError as exc:
        raise ConfigError("--learning-out", f"cannot write {path}: {exc.strerror}") from None


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
