#!/usr/bin/env bash
# Build the peer-benchmark virtual environments from scratch (safe to re-run).
#
#   bench/.peers-venv           vectorbt + vectorbt-rust, backtesting.py, backtrader,
#                               polars, pyarrow, numpy, pandas 3, numba
#   bench/.peers-venv-nautilus  nautilus_trader (needs pandas < 3), polars, pyarrow, numpy,
#                               numba
#
# Two environments because vectorbt 1.2 requires pandas >= 3.0.3 while nautilus_trader
# 1.221 (the last release for Python 3.11) requires pandas < 3. peers.py starts the nautilus
# engine with the second one by itself. Neither is a dependency of backstop.
#
# Usage: bash bench/setup_peers.sh [PYTHON]    (PYTHON defaults to python3; 3.11 tested)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${1:-python3}"

main_venv="$here/.peers-venv"
nt_venv="$here/.peers-venv-nautilus"

# Versions that installed and ran here (Python 3.11, linux x86_64).
main_pins=(
  "vectorbt==1.2.0"
  "backtesting==0.6.6"
  "backtrader==1.9.78.123"
  "polars==2.1.0"
  "pyarrow==26.0.1"
  "numpy==2.4.6"
  "pandas==3.1.1"
  "numba==0.68.1"
)
rust_pin="vectorbt-rust==1.2.0"
nt_pins=(
  "nautilus_trader==1.221.0"
  "polars==2.1.0"
  "pyarrow==26.0.1"
  "numpy==2.4.6"
  "pandas==2.3.3"
  "numba==0.68.1"
)

fresh_venv() {
  local dir="$1"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --upgrade pip
}

echo "== $main_venv"
fresh_venv "$main_venv"
"$main_venv/bin/python" -m pip install --quiet "${main_pins[@]}"
# The rust kernels are optional for vectorbt: carry on without them if they do not install
# (peers.py then reports vectorbt_rs as failed).
if ! "$main_venv/bin/python" -m pip install --quiet "$rust_pin" "${main_pins[@]}"; then
  echo "WARNING: $rust_pin did not install; vectorbt_rs will be unavailable" >&2
fi

echo "== $nt_venv"
fresh_venv "$nt_venv"
"$nt_venv/bin/python" -m pip install --quiet "${nt_pins[@]}"

for venv in "$main_venv" "$nt_venv"; do
  "$venv/bin/python" -m pip check
done
"$main_venv/bin/python" -c "import vectorbt, backtesting, backtrader, polars; print('peers venv ok')"
"$nt_venv/bin/python" -c "import nautilus_trader, polars; print('nautilus venv ok')"
