"""Locate and load the bundled synthetic sample bars, from a checkout or an installed wheel.

The file is found through ``importlib.resources``, so it resolves inside site-packages as well
as in a source tree. It is synthetic GBM data, not market data (see ``sample/README.md``).
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

import polars as pl

from backstop.data.loaders import load_bars

_SAMPLE = files("backstop.data.sample").joinpath("sample_bars.parquet")

SAMPLE_BARS_PATH: Path = Path(str(_SAMPLE))
"""Where the bundled sample lives when the package is installed as plain files (the usual case)."""


def sample_bars() -> pl.DataFrame:
    """Load the bundled sample (3 synthetic symbols x 20,000 one-minute bars), validated."""
    with as_file(_SAMPLE) as path:
        return load_bars(path)
