"""The kernel core compiled ahead of time at install (backstop.engine.core.ahead).

The install builds it; these tests check that this checkout runs it, that it journals
exactly what the just-in-time kernels journal, that calls with other argument types still
compile, and that a build which does not fit (other sources, CPU, numba) or failed is not
used and says why.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from backstop.engine.core import _sources_digest, ahead
from backstop.engine.core.records import bar_room_nb
from backstop.runners import build_ahead

AOT_OFF = os.environ.get(ahead.ENV_SWITCH) == "0"

# one run through the guardrails of a strict preset, on several symbols (panel SMA kernel,
# engine exits, kill checks), journaled and hashed
RUN = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    from backstop.data import gbm_bars
    from backstop.runners.backtest import Backtest
    from backstop.engine.core import ahead
    from backstop.engine.journal import journal_digest, write_journal
    from backstop.engine.profile import RiskProfile

    runs = [
        Backtest(gbm_bars(4_000, 9, seed=5, sigma=0.004), "sma_cross", fast=5, slow=20),
        Backtest(gbm_bars(3_000, 1, seed=6, sigma=0.004), "sma_cross", fast=4, slow=15,
                 profile=RiskProfile.preset("post-incident")),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for k, bt in enumerate(runs):
            result = bt.run()
            path = write_journal(result, Path(tmp) / str(k) / "journal.duckdb")
            print(result.round_trips, journal_digest(path))
    print(ahead.in_use())
    """
)


def _run(env: dict[str, str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", RUN], env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.split("\n")


@pytest.mark.skipif(AOT_OFF, reason=f"{ahead.ENV_SWITCH}=0 switches the build off")
def test_this_checkout_runs_the_ahead_of_time_core() -> None:
    """The install built it from these sources; if not, the status says why (after editing
    a kernel: python -m backstop.runners.build_ahead)."""
    assert ahead.in_use(), ahead.status()
    assert bar_room_nb.signatures == []  # served by the build: nothing compiled for it


@pytest.mark.skipif(AOT_OFF, reason=f"{ahead.ENV_SWITCH}=0 switches the build off")
def test_ahead_of_time_and_just_in_time_kernels_journal_the_same_bytes() -> None:
    env = dict(os.environ)
    aot = _run(env)
    env[ahead.ENV_SWITCH] = "0"
    jit = _run(env)
    assert aot[-2:] == ["True", ""] and jit[-2:] == ["False", ""]
    assert int(aot[0].split()[0]) > 50 and int(aot[1].split()[0]) > 5
    assert aot[:2] == jit[:2]


def test_other_argument_types_compile_just_in_time() -> None:
    """The build serves exactly the types it recorded; numba compiles any others."""
    before = len(bar_room_nb.signatures)
    assert bar_room_nb(np.int32(10), np.int32(3)) == bar_room_nb(10, 3)
    assert len(bar_room_nb.signatures) == before + 1


def test_a_build_from_other_sources_or_for_another_machine_does_not_fit() -> None:
    import numba

    fits = {
        "digest": _sources_digest(),
        "cpu": ahead.host_cpu(),
        "numba": numba.__version__,
        "python": sys.version_info[:2],
    }
    assert ahead._fit(fits) is None
    assert "other kernel sources" in ahead._fit({**fits, "digest": "0" * 64})
    assert "another CPU" in ahead._fit({**fits, "cpu": ("pentium", "+sse")})
    assert "numba 0.1" in ahead._fit({**fits, "numba": "0.1"})
    assert "another Python" in ahead._fit({**fits, "python": (3, 10)})


def test_switching_it_off_is_reported() -> None:
    env = dict(os.environ, **{ahead.ENV_SWITCH: "0"})
    code = "from backstop.engine.core import ahead; print(ahead.in_use(), ahead.status())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("False BACKSTOP_AOT=0")


def test_a_failed_build_leaves_no_extension_and_says_why(tmp_path: Path, monkeypatch) -> None:
    stale = tmp_path / "_ahead.cpython-311-x86_64-linux-gnu.so"
    stale.write_bytes(b"old build")
    (tmp_path / "_ahead.manifest").write_bytes(pickle.dumps({}))
    monkeypatch.setattr(build_ahead.sys, "executable", "/bin/false")
    assert build_ahead.build(tmp_path) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_ahead.failed"]
    assert "the build failed (exit 1)" in (tmp_path / "_ahead.failed").read_text()


@pytest.mark.skipif(AOT_OFF, reason=f"{ahead.ENV_SWITCH}=0 switches the build off")
def test_a_run_of_many_symbols_compiles_nothing() -> None:
    """48 symbols or more outgrow the guard's first event buffer (W has 100): the kernel that
    swaps in a grown one must be in the build too, or each such run starts numba's compiler
    to load it from the cache (0.3-0.9 s)."""
    code = textwrap.dedent(
        """
        from backstop.data import gbm_bars
        from backstop.engine.core import ahead
        from backstop.runners.backtest import Backtest

        Backtest(gbm_bars(120, 50), "sma_cross", fast=5, slow=20).run()
        print(ahead.in_use(), sorted(k for k, d in ahead.KERNELS.items() if d.signatures))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "True []"
