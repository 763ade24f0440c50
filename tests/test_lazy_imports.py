"""The command starts without the heavy optional libraries: each is imported where it is used.

``import backstop.cli`` (every ``backstop`` command pays it) and a whole ``backstop backtest
--json`` run, each in a fresh interpreter, must leave plotting, notebook, dataframe-display,
cluster and broker-client libraries out of ``sys.modules``. An eager import in any module the
command loads (a plot helper, a live adapter, the Ray pool) fails this test by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import backstop

ROOT = Path(backstop.__file__).resolve().parents[1]

# imported on first use only: none of them is needed to run and journal a backtest
LAZY = (
    "matplotlib",
    "pandas",
    "ray",
    "alpaca",
    "ib_async",
    "exchange_calendars",
    "IPython",
    "pyarrow.parquet",
)

_PROBE = """
import contextlib, gc, io, json, sys
import backstop.cli
seen = {"import": sorted(m for m in sys.argv[2].split(",") if m in sys.modules)}
seen["cli_loaded"] = "backstop.cli" in sys.modules
seen["gc_enabled"] = gc.isenabled()  # paused while backstop imports, then on again
if sys.argv[1] == "run":
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = backstop.cli.main(["backtest", "--journal", sys.argv[3], "--json"])
    seen["code"] = code
    seen["round_trips"] = json.loads(out.getvalue())["round_trips"]
    seen["run"] = sorted(m for m in sys.argv[2].split(",") if m in sys.modules)
print(json.dumps(seen))
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter that imports this checkout's backstop."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


def _probe(tmp_path: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_optional_library(tmp_path: Path) -> None:
    seen = _probe(tmp_path, "import", ",".join((*LAZY, "rich")))
    assert seen["cli_loaded"] is True  # the probe ran in a real backstop process
    assert seen["import"] == []
    assert seen["gc_enabled"] is True


def test_importing_backstop_leaves_a_paused_collector_paused() -> None:
    code = "import gc; gc.disable(); import backstop; print(gc.isenabled())"
    p = _python(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_a_backtest_with_json_output_loads_none_of_them(tmp_path: Path) -> None:
    seen = _probe(tmp_path, "run", ",".join((*LAZY, "rich")), str(tmp_path / "j"))
    assert seen["code"] == 0
    assert seen["round_trips"] > 0  # the bundled sample really ran
    assert seen["import"] == []
    # rich draws the terminal table only: --json prints one JSON object without it
    assert seen["run"] == []


def test_importing_backstop_imports_each_public_name_on_first_use() -> None:
    """``import backstop`` loads no engine (so a command can start reading its bars first);
    every name of ``__all__`` is then there, the object its own module defines."""
    code = (
        "import sys, importlib, backstop; "
        "print(sorted(m for m in ('polars', 'numba', 'duckdb', 'numpy') if m in sys.modules)); "
        "print(all(getattr(backstop, n) is getattr(importlib.import_module(backstop._HOME[n]), n)"
        " for n in backstop.__all__)); "
        "print(sorted(backstop._HOME) == sorted(backstop.__all__), set(backstop.__all__) <= "
        "set(dir(backstop)))"
    )
    p = _python(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["[]", "True", "True True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'backstop' has no attribute 'Backtester'"):
        _ = backstop.Backtester  # type: ignore[attr-defined]
