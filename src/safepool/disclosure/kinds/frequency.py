"""Frequency tables: counts of persons by groups (columns: the groups and "count").

Rules: min_frequency on every shown count, and the zeros policy. Mitigation: suppression with
totals and secondary suppression (one- and two-way tables), or rounding of the counts. Its
counts are what differencing compares with the tables already released.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.differencing import FrequencyCells
from safepool.disclosure.findings import Finding
from safepool.disclosure.kinds.base import (
    Boundary,
    Mitigated,
    OutputBase,
    OutputKind,
    Samples,
    register,
    small_counts,
)
from safepool.disclosure.kinds.tables import grouped_table_problems, protect_grid
from safepool.disclosure.margins import with_margins
from safepool.disclosure.rules import DisclosureRules


@dataclass
class FrequencyTable(OutputBase):
    """Counts of persons by groups: columns groups + "count"."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    kind: ClassVar[str] = "frequency"


@register
class Frequency(OutputKind):
    name = "frequency"
    output_type = FrequencyTable

    def validate(self, output: FrequencyTable, *, kept: bool = False) -> list[Finding]:
        return grouped_table_problems(output, counts=["count"], unique=True)

    def rules(self, output: FrequencyTable, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        return small_counts(output.cells, "count", list(output.groups), policy, shown_mask(output.cells))

    def count_columns(self, output: FrequencyTable) -> list[str]:
        return ["count"]

    def blanked_columns(self, output: FrequencyTable) -> list[str]:
        return ["count"]

    def additive(self, output: FrequencyTable, margins: bool) -> bool:
        return margins and len(output.groups) > 0

    def with_margins(self, output: FrequencyTable, policy: DisclosureRules) -> FrequencyTable:
        return with_margins(output, max(policy.dominance_n, 2))

    def secondary(self, output: FrequencyTable, policy: DisclosureRules, failing: list[list[str]]) -> np.ndarray:
        return protect_grid(output, "count", policy, failing, counted=True)

    def round_counts(self, output: FrequencyTable, policy: DisclosureRules) -> Mitigated:
        """Counts rounded to the nearest multiple of the rounding base instead of suppressed; a
        rounded count that still fails (a base below the minimum frequency) is suppressed."""
        report = self.require_checkable(output, policy)
        return self.rounded(Mitigated(output, "none", "", report, policy), policy)

    def mitigate(self, output: FrequencyTable, policy: DisclosureRules, *, margins: bool,
                 rounding: bool, hide: Collection[tuple] = ()) -> Mitigated:
        """A release that rounds rounds a frequency table's counts instead of suppressing them;
        cells its caller hides (`hide`) are suppressed first, as failing cells are."""
        if not rounding or hide:
            return super().mitigate(output, policy, margins=margins, rounding=rounding, hide=hide)
        report = self.require_checkable(output, policy)
        if self.additive(output, margins):
            output = self.with_margins(output, policy)
            report = self.check(output, policy)
        return self.rounded(Mitigated(output, "none", "", report, policy), policy)

    def differencing_cells(self, output: FrequencyTable) -> list[FrequencyCells]:
        return [FrequencyCells.of_table(self.public_table(output), list(output.groups), "count")]

    def samples(self) -> Samples:
        def table(counts: list[Any], areas: list[str] | None = None) -> FrequencyTable:
            areas = areas or [f"area{k}" for k in range(len(counts))]
            return FrequencyTable("Persons by area", pd.DataFrame({"area": areas, "count": counts}), ["area"])

        def boundary(policy: DisclosureRules, offset: int) -> FrequencyTable:
            return table([policy.min_frequency + offset, 100, 120])

        def secret(policy: DisclosureRules) -> tuple[FrequencyTable, list[str]]:
            return table([policy.min_frequency - 1, 4321, 5677, 3311]), []

        return Samples(
            passing=lambda policy: table([policy.min_frequency, 40, 55]),
            bad={"empty": lambda: table([], []),
                 "text in numbers": lambda: table([12, "many"]),
                 "NaN": lambda: table([12, np.nan]),
                 "inf": lambda: table([12, np.inf]),
                 "missing column": lambda: FrequencyTable("t", pd.DataFrame({"area": ["a"], "n": [9]}), ["area"])},
            boundaries=[Boundary("min_frequency", "min_frequency", boundary)],
            secret=secret,
        )
