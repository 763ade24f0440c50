"""Install hook: compile the kernel core ahead of time (backstop/runners/build_ahead.py).

Everything else about the package is in pyproject.toml. The build never fails the install:
without a C compiler, or on any error, the kernels are compiled just in time on first use,
as before, and ``backstop.engine.core.ahead.status()`` says why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CORE = Path("backstop", "engine", "core")


class BuildAheadOfTimeCore(build_ext):
    """Runs ``python -m backstop.runners.build_ahead`` into the package being built."""

    def run(self) -> None:
        in_place = self.inplace or getattr(self, "editable_mode", False)
        target = ROOT / CORE if in_place else Path(self.build_lib) / CORE
        cmd = [sys.executable, "-m", "backstop.runners.build_ahead", "--target", str(target)]
        code = subprocess.run(cmd, cwd=ROOT).returncode  # ``-m`` from ROOT: this checkout
        if code != 0:
            failed = target / "_ahead.failed"
            if not failed.exists():  # the build did not even start: say so for status()
                target.mkdir(parents=True, exist_ok=True)
                failed.write_text(f"the build did not start (exit {code}); see the install log\n")
            print("backstop: kernels will be compiled just in time on first use", file=sys.stderr)

    def get_outputs(self) -> list[str]:
        return []

    def get_output_mapping(self) -> dict[str, str]:
        return {}


setup(
    ext_modules=[Extension("backstop.engine.core._ahead", sources=[])],
    cmdclass={"build_ext": BuildAheadOfTimeCore},
)
