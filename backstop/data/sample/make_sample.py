"""Regenerate the bundled sample: ``python -m backstop.data.sample.make_sample [OUT]``.

The sample is synthetic GBM data (3 symbols ``SYN000``..``SYN002`` x 20,000 one-minute bars,
seed 7), small enough to ship in the wheel and deterministic, so rerunning this script gives
the same bars. Without ``OUT`` it overwrites ``sample_bars.parquet`` beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from backstop.data.synthetic import gbm_bars, write_synthetic

N_BARS = 20_000
SYMBOLS = ["SYN000", "SYN001", "SYN002"]
SEED = 7
START = "2020-01-02 09:30"
TZ = "America/New_York"
GENERATOR = f"seed={SEED} symbols=SYN000..SYN002 n_bars={N_BARS} start='{START}' tz={TZ}"
DEFAULT_OUT = Path(__file__).with_name("sample_bars.parquet")


def make_sample(out: Path = DEFAULT_OUT) -> Path:
    """Generate the sample bars and write them, marked synthetic, to ``out``."""
    bars = gbm_bars(N_BARS, SYMBOLS, seed=SEED, start=START, tz=TZ)
    return write_synthetic(out, bars, GENERATOR)


def main(argv: list[str] | None = None) -> int:
    """Write the sample to the path given, or beside this file; print where it went."""
    args = sys.argv[1:] if argv is None else argv
    out = make_sample(Path(args[0]) if args else DEFAULT_OUT)
    print(f"wrote {out.name} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
