"""Rate tables: rates and other statistics by groups, with every person count they rest on.

Columns: the groups (labels), rate columns (numbers; blank where a rate is not defined, e.g. a
precision when nobody was selected), `remarks` (text about a row, blanked with it) and person
counts: "n" and every "n_..." column. Each count is the numerator or the denominator of a shown
rate (persons, positives, selected, true and false positives and negatives...), so a rate is
never shown over, or of, fewer persons than the policy's minimum frequency.

Rules: min_frequency (and the zeros policy) on every count of every row, and on the rest of "n"
beyond each other count (the persons of n not selected, not positive...: a rate near 1 reveals
them as surely as a rate near 0 reveals the few). Suppression blanks a failing row's numbers.
With `unit` (label columns), the rows of a unit (e.g. one group's metrics, whose counts follow
from each other) are suppressed together. With `partition` (label columns whose units each split
one population, e.g. the groups of an attribute in a fairness audit, for one kind of rate), a
partition with exactly one suppressed unit also loses its smallest other unit, so that the
suppressed one cannot be worked out from the population's total shown elsewhere (secondary
suppression).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from safepool.disclosure.cells import SECONDARY, SHOWN, STATUS, numbers, shown_mask
from safepool.disclosure.differencing import FrequencyCells
from safepool.disclosure.findings import Finding, invalid
from safepool.disclosure.kinds.base import (
    Boundary,
    Mitigated,
    OutputBase,
    OutputKind,
    Samples,
    blank,
    register,
    small_counts,
    suppression_note,
)
from safepool.disclosure.kinds.tables import grouped_table_problems
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.validation import numeric_problems


@dataclass
class RateTable(OutputBase):
    """Rates by groups: groups + rate columns + "n" + "n_..." counts (+ `remarks` text columns)."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    remarks: list[str] = field(default_factory=list)
    partition: str | list[str] | None = None
    unit: list[str] | None = None

    def partition_columns(self) -> list[str]:
        """The label columns whose values name a partition (none without one)."""
        return [self.partition] if isinstance(self.partition, str) else list(self.partition or [])
    kind: ClassVar[str] = "rates"


@register
class Rates(OutputKind):
    name = "rates"
    output_type = RateTable

    def count_columns(self, output: RateTable) -> list[str]:
        skip = set(output.groups) | set(output.remarks)
        return [c for c in output.cells.columns
                if isinstance(c, str) and c not in skip and (c == "n" or c.startswith("n_"))]

    def rate_columns(self, output: RateTable) -> list[str]:
        skip = set(output.groups) | set(output.remarks) | set(self.count_columns(output)) | {STATUS}
        return [c for c in output.cells.columns if c not in skip]

    def validate(self, output: RateTable, *, kept: bool = False) -> list[Finding]:
        problems = grouped_table_problems(output, counts=["n"], unique=True)
        if problems:
            return problems
        if not isinstance(output.remarks, (list, tuple)) or not all(r in output.cells.columns for r in output.remarks):
            return [invalid(f"table '{output.title}': remarks must name columns of the table")]
        unit = list(output.unit or output.groups)
        if not set(unit) <= set(output.groups) or not set(output.partition_columns()) <= set(unit):
            return [invalid(f"table '{output.title}': the unit must be some of its groups, the partition one of "
                            "the unit's")]
        labels = list(output.groups)
        counts = [c for c in self.count_columns(output) if c != "n"]
        problems = grouped_table_problems(output, counts=counts) if counts else []
        rates = self.rate_columns(output)
        if not rates:
            return problems + [invalid(f"table '{output.title}' has no rate columns")]
        return problems + _rate_problems(output.cells, rates, labels)

    def rules(self, output: RateTable, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        cells, labels, shown = output.cells, list(output.groups), shown_mask(output.cells)
        counts = self.count_columns(output)
        n = numbers(cells, "n")
        rests = {f"n_rest_of_{c}": np.maximum(n - numbers(cells, c), 0) for c in counts if c != "n"}
        cells = cells.assign(**rests)
        return [f for column in [*counts, *rests] for f in small_counts(cells, column, labels, policy, shown)]

    def blanked_columns(self, output: RateTable) -> list[str]:
        return [c for c in output.cells.columns if c not in output.groups and c != STATUS]

    def suppress(self, output: RateTable, policy: DisclosureRules, margins: bool = True,
                 hide: Collection[tuple] = ()) -> Mitigated:
        """Blank each failing row (and each row labelled as in `hide`) with the rest of its unit, and
        a second unit of a partition left with one blank unit."""
        report = self.require_checkable(output, policy)
        cells = output.cells.reset_index(drop=True)
        failing = self.failing_or_hidden(output, report, policy, hide)
        primary = np.array([bool(found) for found in failing], dtype=bool)
        units = cells.groupby(list(output.unit or output.groups), sort=False).indices
        hidden = primary.copy()
        for rows in units.values():
            hidden[rows] = hidden[rows].any()
        if output.partition_columns():
            n = numbers(cells, "n")
            by_partition: dict = {}
            for rows in units.values():
                by_partition.setdefault(tuple(cells.loc[rows[0], output.partition_columns()]), []).append(rows)
            for members in by_partition.values():
                if sum(bool(hidden[rows].any()) for rows in members) == 1 and len(members) > 1:
                    others = [rows for rows in members if not hidden[rows].any()]
                    hidden[min(others, key=lambda rows: (n[rows].max(), rows[0]))] = True
        status = [f"suppressed (primary: {', '.join(found)})" if found else SECONDARY if hide else SHOWN
                  for found, hide in zip(failing, hidden)]
        mitigated = replace(output, cells=blank(cells, self.blanked_columns(output), hidden).assign(**{STATUS: status}))
        note = suppression_note(failing, int((hidden & ~primary).sum()), False)
        return Mitigated(mitigated, "suppression", note, self.check(mitigated, policy), policy)

    def kept_fields(self, output: RateTable) -> dict[str, Any]:
        partition = output.partition if output.partition is None or isinstance(output.partition, str) \
            else list(output.partition)
        return {"groups": list(output.groups), "remarks": list(output.remarks), "partition": partition,
                "unit": list(output.unit) if output.unit else None}

    def differencing_cells(self, output: RateTable) -> list[FrequencyCells]:
        return [FrequencyCells.of_table(self.public_table(output), list(output.groups), "n")]

    def samples(self) -> Samples:
        def table(n: Any = 300, n_positive: Any = 40, rate: Any = None, **changes: Any) -> RateTable:
            cells = {"attribute": ["sex", "sex", "sex"], "group": ["female", "male", "other"],
                     "selection_rate": [0.125, 0.25, 0.375] if rate is None else rate,
                     "n": [n, 400, 500], "n_positive": [n_positive, 50, 60],
                     "flag": ["", "above tolerance", ""]}
            cells.update(changes)
            if n_positive is None:  # rates over persons only
                del cells["n_positive"]
            return RateTable("Selection by sex", pd.DataFrame(cells), ["attribute", "group"], ["flag"], "attribute")

        return Samples(
            passing=lambda policy: table(),
            bad={"empty": lambda: RateTable("r", pd.DataFrame(columns=["g", "rate", "n"]), ["g"]),
                 "text in numbers": lambda: table(rate=["high", 0.25, 0.375]),
                 "NaN": lambda: table(n=np.nan),
                 "inf": lambda: table(rate=[np.inf, 0.25, 0.375]),
                 "missing column": lambda: RateTable("r", pd.DataFrame({"g": ["a"], "rate": [0.5]}), ["g"]),
                 "no rates": lambda: RateTable("r", pd.DataFrame({"g": ["a"], "n": [50]}), ["g"])},
            boundaries=[Boundary("min_frequency", "min_frequency",
                                 lambda policy, offset: table(n=policy.min_frequency + offset, n_positive=None)),
                        Boundary("min_frequency", "min_frequency",
                                 lambda policy, offset: table(n_positive=policy.min_frequency + offset))],
            secret=lambda policy: (table(n_positive=policy.min_frequency - 1, rate=[0.0123456, 0.25, 0.375]),
                                   ["0.0123456", "0.012"]),
        )


def _rate_problems(cells: pd.DataFrame, columns: list[str], labels: list[str]) -> list[Finding]:
    """Rates are numbers, finite where given; a blank is a rate that is not defined."""
    given = cells.assign(**{c: cells[c].where(cells[c].notna(), 0.0) for c in columns if cells[c].dtype != bool})
    return numeric_problems(given, columns, labels)
