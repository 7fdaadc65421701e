"""Making a failing output safe: suppression (primary and secondary) or rounding.

A mitigated output is the same kind of output with the failing cells blanked (NaN) and a
"status" column saying, cell by cell, what was done; its note says it in a sentence, and its
report is the check of the mitigated output as it will be shown. How each kind is mitigated is
its kind's business (safepool.disclosure.kinds); publishing (OutputRegister.publish) mitigates
under the workspace's policy.
"""

from __future__ import annotations

from typing import Any

from safepool.disclosure.cells import SECONDARY, SHOWN, SMALL_OR_ZERO
from safepool.disclosure.kinds import Mitigated, kind_of
from safepool.disclosure.rules import DisclosureRules

__all__ = ["SECONDARY", "SHOWN", "SMALL_OR_ZERO", "Mitigated", "round_counts", "suppress"]


def suppress(output: Any, rules: DisclosureRules, margins: bool = True) -> Mitigated:
    """Blank every failing cell; with `margins`, add the table's totals and protect against them.

    `margins` applies to one- and two-way frequency and magnitude tables: their row, column and
    grand totals are added to the output, and secondary suppression makes sure no suppressed
    cell (or total) can be worked out from what is shown. A figure is suppressed through its
    table; a document through its parts (DisclosureInputError here).
    """
    return kind_of(output).suppress(output, rules, margins)


def round_counts(output: Any, rules: DisclosureRules) -> Mitigated:
    """A frequency table's counts rounded to the nearest multiple of the rounding base, halves up,
    instead of suppressed; a rounded count that still fails is suppressed."""
    return kind_of(output).round_counts(output, rules)
