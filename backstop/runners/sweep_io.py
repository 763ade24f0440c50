"""The command line's side of sweeps: grid values and constraints from text, results to DuckDB.

``--param fast=5:50:5`` is ``range(5, 50, 5)`` (the stop is excluded, as in Python; a float
start, stop or step gives floats); ``--param slow=50,100,200`` lists values. A constraint is
``NAME OP NAME_OR_NUMBER`` with OP one of ``< <= > >= == !=`` (``--constraint 'fast<slow'``).
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import re
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from backstop.engine.profile import split_key_values
from backstop.errors import BackstopError, ConfigError

_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*([A-Za-z_]\w*|[-+.\w]+)\s*$")
MAX_COMBINATIONS_PER_PARAM = 100_000


def _number(text: str, key: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(key, f"expected a number, got {text!r}") from None


def parse_values(key: str, raw: str) -> list[int | float]:
    """``start:stop[:step]`` (stop excluded) or ``a,b,c`` -> the list of values."""
    raw = raw.strip()
    if ":" in raw:
        parts = [_number(p, key) for p in raw.split(":")]
        if len(parts) not in (2, 3):
            raise ConfigError(key, f"expected start:stop or start:stop:step, got {raw!r}")
        start, stop = parts[0], parts[1]
        step = parts[2] if len(parts) == 3 else 1
        if step <= 0:
            raise ConfigError(key, f"step must be positive, got {step}")
        count = int(-(-(stop - start) // step)) if stop > start else 0
        if count == 0:
            raise ConfigError(key, f"{raw!r} holds no values (the stop is excluded)")
        if count > MAX_COMBINATIONS_PER_PARAM:
            raise ConfigError(key, f"{raw!r} holds {count:,} values; narrow it")
        return [start + i * step for i in range(count)]
    values = [_number(p, key) for p in raw.split(",") if p.strip()]
    if not values:
        raise ConfigError(key, "no values given")
    return values


def parse_grid(items: list[str]) -> dict[str, list[int | float]]:
    """``--param`` items (``KEY=VALUES``) -> the grid, in the order given."""
    raw = split_key_values(items, "--param", "KEY=VALUES")
    if not raw:
        raise ConfigError("--param", "give at least one parameter to sweep, e.g. fast=5:50:5")
    return {key: parse_values(key, text) for key, text in raw.items()}


def parse_constraints(items: list[str], names: list[str]) -> Any:
    """``--constraint`` items -> one function of a combination (all must hold), or None."""
    checks = []
    for item in items:
        m = _CONSTRAINT.match(item)
        if not m:
            raise ConfigError("--constraint", f"expected NAME OP NAME_OR_NUMBER, got {item!r}")
        left, op, right = m.groups()
        for side in (left, right):
            if (side[0].isalpha() or side[0] == "_") and side not in names:
                raise ConfigError("--constraint", f"{side!r} is not a swept parameter")
        rhs = right if right in names else _number(right, "--constraint")
        checks.append((left, _OPS[op], rhs))
    if not checks:
        return None

    def holds(combo: dict[str, Any]) -> bool:
        return all(f(combo[a], combo[b] if isinstance(b, str) else b) for a, f, b in checks)

    return holds


def sweep_id(fingerprint: str, strategy: str, grid: dict[str, Any], extra: str) -> str:
    """A deterministic name for a sweep's default output file."""
    blob = json.dumps([fingerprint, strategy, grid, extra], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def write_results(
    path: Path, table: pl.DataFrame, best: dict[str, Any], meta: dict[str, Any], *, force: bool
) -> Path:
    """Tables ``sweep`` (every combination, grid order, with its ``row``), ``best`` (one row)
    and ``meta`` (one row: what was swept over what) in one DuckDB file, written whole to a
    temporary file and renamed into place. An existing file is replaced only with ``force``."""
    if path.exists() and not force:
        raise BackstopError(f"{path}: exists; pass --force to replace it, or choose --out")
    if path.is_dir():
        raise BackstopError(f"{path}: is a directory, not a results file")
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        con = duckdb.connect(str(partial))
        try:
            for name, frame in (
                ("sweep", table.with_row_index("row")),
                ("best", pl.DataFrame([best], infer_schema_length=None)),
                ("meta", pl.DataFrame({k: [json.dumps(v, default=str)] for k, v in meta.items()})),
            ):
                con.register("_frame", frame.to_arrow())
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM _frame")
                con.unregister("_frame")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(partial, path)
    except (duckdb.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BackstopError(f"{path}: results not written ({' '.join(str(exc).split())})") from None
    return path
