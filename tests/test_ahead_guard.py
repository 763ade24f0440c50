"""The compile layer never breaks ``import backstop``, and a changed kernel dependency always
recompiles.

The ahead-of-time core uses numba internals (``Dispatcher._insert``, pickled numba types). A
numba release that changes them must cost only speed: the kernels compile just in time and
``ahead.status()`` says why. These tests simulate such changes in a child process (the API
removed before backstop is imported; a manifest whose types cannot be read) and run kernels
there.
"""

from __future__ import annotations

import ast
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backstop.engine.core import _PACKAGE, ahead, kernel_sources

ROOT = _PACKAGE.parent

# after the lines a test puts first: import backstop, call two kernels, report the status
PROBE = textwrap.dedent(
    """
    import numpy as np
    import backstop
    from backstop.engine.core import ahead
    from backstop.strategies.ticks import grid_scale_nb
    from backstop.engine.core.records import bar_room_nb
    print(grid_scale_nb(np.array([1.25, 2.5]), 1e9), bar_room_nb(4, 3))
    print(ahead.in_use())
    print(ahead.status())
    """
)


def _probe(prelude: str, cwd: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(prelude) + PROBE],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout.splitlines()


# numba itself calls Dispatcher._insert for every just-in-time compile, so the simulations
# change it only as backstop sees it: gone when looked up on the class (what ahead.py checks
# first), or with another signature when ahead.py calls it.
MISSING = """
    import numba.core.dispatcher as d
    real = d.Dispatcher._insert

    class Gone:
        def __get__(self, obj, cls=None):
            if obj is None:
                raise AttributeError("_insert")
            return real.__get__(obj, cls)

    d.Dispatcher._insert = Gone()
"""
CHANGED = """
    import sys
    import numba.core.dispatcher as d
    real = d.Dispatcher._insert

    def _insert(self, *args, **kwargs):
        if sys._getframe(1).f_globals["__name__"] == "backstop.engine.core.ahead":
            raise TypeError("_insert() missing 1 required argument: 'new_argument'")
        return real(self, *args, **kwargs)

    d.Dispatcher._insert = _insert
"""


@pytest.mark.parametrize(
    ("prelude", "why"),
    [
        (MISSING, "numba's Dispatcher has no _insert (a numba API changed)"),
        (CHANGED, "(TypeError: _insert() missing 1 required argument: 'new_argument')"),
    ],
    ids=["missing", "changed"],
)
def test_a_numba_whose_private_api_changed_still_imports_and_runs(prelude: str, why: str) -> None:
    out = _probe(prelude, ROOT)
    assert out[0] == _probe("", ROOT)[0]  # the same kernels give the same numbers
    assert out[1] == "False"
    if ahead.in_use():  # with a fitting build, the status names what failed
        assert why in out[2]
        assert out[2].startswith("ahead-of-time core not used: ")
        assert out[2].endswith("kernels compile just in time")


@pytest.mark.skipif(not ahead.in_use(), reason=ahead.status())
def test_a_manifest_whose_types_cannot_be_read_falls_back(tmp_path: Path) -> None:
    """A copy of the package whose manifest entries hold bytes no numba can unpickle."""
    copy = tmp_path / "backstop"
    shutil.copytree(_PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.nbi"))
    manifest_path = copy / "engine" / "core" / ahead.MANIFEST.name
    manifest = pickle.loads(manifest_path.read_bytes())
    for entries in manifest["entries"].values():
        entries[:] = [(symbol, b"not a pickle") for symbol, _ in entries]
    manifest_path.write_bytes(pickle.dumps(manifest))
    out = _probe("", tmp_path)
    assert out[0] == _probe("", ROOT)[0]
    assert out[1] == "False"
    assert "ahead-of-time core not used: attaching" in out[2]


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def _is_kernel(node: ast.AST) -> bool:
    """A function compiled by numba: decorated with ``kernel`` or ``njit`` (called or not)."""
    if not isinstance(node, ast.FunctionDef):
        return False
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name) and target.id in ("kernel", "njit"):
            return True
    return False


def _imports(tree: ast.Module) -> dict[str, Path]:
    """Module-level ``from backstop... import name``: name -> the file it comes from."""
    out: dict[str, Path] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backstop"):
            for alias in node.names:
                source = _module_file(f"{node.module}.{alias.name}") or _module_file(node.module)
                if source is not None:
                    out[alias.asname or alias.name] = source
    return out


def _compiled_in(path: Path, seen: set[Path]) -> None:
    """Add ``path`` and every module whose values its kernels (or, for a module that
    provides names to kernels, its module-level code) can compile in."""
    if path in seen:
        return
    seen.add(path)
    tree = ast.parse(path.read_text())
    imported = _imports(tree)
    kernels = [n for n in ast.walk(tree) if _is_kernel(n)]
    used = {n.id for k in kernels for n in ast.walk(k) if isinstance(n, ast.Name)}
    for name, source in imported.items():
        if name in used and source != path:
            _provider(source, seen)


def _provider(path: Path, seen: set[Path]) -> None:
    """A module some kernel takes a name from: its constants may be computed from anything
    it imports at module level, so all of that counts too (transitively)."""
    if path in seen:
        return
    _compiled_in(path, seen)
    for source in set(_imports(ast.parse(path.read_text())).values()):
        _provider(source, seen)


def test_every_module_the_kernels_import_is_in_the_sources_digest() -> None:
    """A changed enum (or any module whose values a kernel compiles in: the modules its
    kernels take names from, and what those import) changes the digest, which drops
    numba's cache and refuses a stale ahead-of-time build."""
    covered = set(kernel_sources())
    seen: set[Path] = set()
    for path in sorted(covered):
        if path.parent.name in ("core", "sim", "strategies"):
            _compiled_in(path, seen)
    assert _PACKAGE / "domain" / "enums.py" in seen
    assert seen <= covered, sorted(str(p.relative_to(ROOT)) for p in seen - covered)


def test_every_module_that_defines_a_kernel_is_in_the_sources_digest() -> None:
    defining = {
        path
        for path in _PACKAGE.rglob("*.py")
        if any(_is_kernel(node) for node in ast.walk(ast.parse(path.read_text())))
    }
    assert _PACKAGE / "strategies" / "sma_cross.py" in defining
    assert _PACKAGE / "brokers" / "sim" / "matcher.py" in defining
    uncovered = defining - set(kernel_sources())
    assert not uncovered, sorted(str(p.relative_to(ROOT)) for p in uncovered)
