"""One line of the readiness checklist: a named check that passed, failed or was skipped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist: its name, whether it passed, and why (or why skipped)."""

    name: str
    passed: bool
    detail: str
    skipped: bool = False

    @property
    def mark(self) -> str:
        """PASS, FAIL or SKIP."""
        return "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"

    def line(self) -> str:
        """``MARK name: detail``, as printed."""
        return f"{self.mark} {self.name}: {self.detail}"


def skipped(name: str, why: str) -> Check:
    """A check that does not apply here (it does not fail the list)."""
    return Check(name, True, why, skipped=True)
