"""Bars in, checked: the bar schema, validation, file and frame loaders, synthetic data.

Every loader normalizes to ``BAR_SCHEMA`` (ts as int64 ns UTC, symbol, open, high, low, close,
volume), refuses bad bars with a ``DataError`` naming source, row and symbol, and returns rows
sorted by (ts, symbol) as the engine consumes them.
"""

from __future__ import annotations

from backstop.data.bundled import SAMPLE_BARS_PATH, sample_bars
from backstop.data.loaders import load_bars, load_bars_frame
from backstop.data.schema import BAR_COLUMNS, BAR_SCHEMA, normalize_bars
from backstop.data.synthetic import WORKLOAD_SIZES, gbm_bars, write_synthetic, write_workload
from backstop.data.validate import validate_bars

__all__ = [
    "BAR_COLUMNS",
    "BAR_SCHEMA",
    "SAMPLE_BARS_PATH",
    "WORKLOAD_SIZES",
    "gbm_bars",
    "load_bars",
    "load_bars_frame",
    "normalize_bars",
    "sample_bars",
    "validate_bars",
    "write_synthetic",
    "write_workload",
]
