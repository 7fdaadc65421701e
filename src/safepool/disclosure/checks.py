"""The disclosure rules, applied by the kind of output.

Every rule reads the cells that will be shown (rows a mitigation suppressed are skipped) and
produces one finding: pass, fail, or review (a person must look). Input that cannot be checked
fails with an "invalid" finding before any rule runs, so nothing passes by default. Which rules
apply is the output's kind's business (safepool.disclosure.kinds).
"""

from __future__ import annotations

from typing import Any

from safepool.disclosure.cells import contributions, numbers
from safepool.disclosure.findings import CheckReport, Finding
from safepool.disclosure.kinds import kind_of
from safepool.disclosure.rules import DisclosureRules

__all__ = ["CheckReport", "Finding", "check", "contributions", "numbers"]


def check(output: Any, rules: DisclosureRules) -> CheckReport:
    """Apply every rule for the output's kind; raises DisclosureInputError if it is no output."""
    return kind_of(output).check(output, rules)
