"""Magnitude tables: sums or means by groups (columns: the groups, "value", "n", "top", "abs_total").

"top" holds each cell's largest contributions (one per person) and "abs_total" the sum of the
absolute contributions: the dominance and p% rules read them, nothing else does, and they never
appear in the public table, a file or the register. Rules: min_frequency on the persons behind
each cell, dominance and p%. Mitigation: suppression with totals and secondary suppression
(sums protected on their value, means on their persons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from safepool.disclosure.cells import DIFFERENCING, SMALL_OR_ZERO, shown_mask
from safepool.disclosure.differencing import FrequencyCells
from safepool.disclosure.findings import Finding, invalid
from safepool.disclosure.kinds.base import (
    Boundary,
    OutputBase,
    OutputKind,
    Samples,
    contributor_rules,
    register,
    small_counts,
)
from safepool.disclosure.kinds.tables import grouped_table_problems, protect_grid
from safepool.disclosure.margins import with_margins
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.validation import contributor_problems

CONTRIBUTOR_SETTINGS = frozenset({"dominance_n", "dominance_k", "p_ratio"})
FREQUENCY_RULES = ("min_frequency", "zeros", SMALL_OR_ZERO, DIFFERENCING)  # the rules a cell's persons fail


@dataclass
class MagnitudeTable(OutputBase):
    """Sums or means by groups: groups + "value" + "n" + "top" + "abs_total". With `persons_shown`
    false, "n" is for the checks only (`unshown_persons`)."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    statistic: Literal["sum", "mean"]
    persons_shown: bool = True
    kind: ClassVar[str] = "magnitude"


class PersonsColumn(OutputKind):
    """The persons behind each cell ("n") of a table whose value is another number, shown unless the
    output says not (`persons_shown`). The query engine's outputs show only what their answer
    shows, which is all the differencing ledger knows of them: the "n" of a mean of yearly incomes
    (several rows per person) was never in the ledger, and with persons by bins of children less
    one district it told a review a named man's number of children."""

    def count_columns(self, output: Any) -> list[str]:
        return [] if self.unshown_columns(output) else ["n"]

    def unshown_columns(self, output: Any) -> list[str]:
        return [] if output.persons_shown else ["n"]

    def differencing_cells(self, output: Any) -> list[FrequencyCells]:
        """The persons by group a table shows, for the release's comparison (none if it shows none)."""
        if self.unshown_columns(output):
            return []
        return [FrequencyCells.of_table(self.public_table(output), list(output.groups), "n")]


def persons_field(output: MagnitudeTable | Any) -> dict[str, bool]:
    """What the register keeps of `persons_shown` (nothing for the default)."""
    return {} if output.persons_shown else {"persons_shown": False}


@register
class Magnitude(PersonsColumn):
    name = "magnitude"
    output_type = MagnitudeTable
    contributor_settings = CONTRIBUTOR_SETTINGS

    def validate(self, output: MagnitudeTable, *, kept: bool = False) -> list[Finding]:
        if getattr(output, "statistic", None) not in ("sum", "mean"):
            return [invalid(f"table '{output.title}': statistic must be sum or mean")]
        contributors = [] if kept else ["top", "abs_total"]
        problems = grouped_table_problems(output, numeric=["value"], counts=["n"], extra=contributors, unique=True)
        if problems or kept:
            return problems
        return contributor_problems(output.cells, list(output.groups), 2)

    def rules(self, output: MagnitudeTable, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        cells, labels, shown = output.cells, list(output.groups), shown_mask(output.cells)
        findings = small_counts(cells, "n", labels, policy, shown)
        return findings if kept else findings + contributor_rules(cells, labels, policy, shown)


    def blanked_columns(self, output: MagnitudeTable) -> list[str]:
        return ["value", "n"]

    def additive(self, output: MagnitudeTable, margins: bool) -> bool:
        return margins and len(output.groups) > 0

    def with_margins(self, output: MagnitudeTable, policy: DisclosureRules) -> MagnitudeTable:
        return with_margins(output, max(policy.dominance_n, 2))

    def secondary(self, output: MagnitudeTable, policy: DisclosureRules, failing: list[list[str]]) -> np.ndarray:
        """Means are protected on the persons behind them. Sums on their values, and on the persons
        too: a cell's status says how many persons it has (too few, or none: 0 to the threshold less
        one; shown: at least the threshold), so a shown total over cells that are all small but one
        would tell that the one has someone in it."""
        counted = protect_grid(output, "n", policy, failing if output.statistic == "mean" else
                               [[rule for rule in found if rule in FREQUENCY_RULES] for found in failing], counted=True)
        if output.statistic == "mean":
            return counted
        return counted | protect_grid(output, "value", policy, failing, counted=False)

    def has_contributors(self, output: MagnitudeTable) -> bool:
        return True

    def kept_fields(self, output: MagnitudeTable) -> dict[str, Any]:
        return {"groups": list(output.groups), "statistic": output.statistic, **persons_field(output)}

    def samples(self) -> Samples:
        return magnitude_samples(lambda title, cells: MagnitudeTable(title, cells, ["area"], "sum"))


def magnitude_samples(make: Any) -> Samples:
    """Samples of a table with value, n and contributors by area (shared with quantiles via `make`)."""

    def table(n: int = 50, top: list[float] | None = None, abs_total: float = 5000.0, **changes: Any) -> Any:
        cells = {"area": ["north", "south", "east"], "value": [abs_total, 6000.0, 7000.0], "n": [n, 60, 70],
                 "top": [top or [100.0, 90.0], [120.0, 110.0], [130.0, 120.0]],
                 "abs_total": [abs_total, 6000.0, 7000.0]}
        cells.update(changes)
        return make("Earnings by area", pd.DataFrame(cells))

    def frequency(policy: DisclosureRules, offset: int) -> Any:
        return table(n=policy.min_frequency + offset)

    def dominance(policy: DisclosureRules, offset: int) -> Any:
        held = policy.dominance_k * 1000 + offset
        top = [held / policy.dominance_n] * policy.dominance_n + [1.0]
        return table(top=top, abs_total=1000.0)

    def p_ratio(policy: DisclosureRules, offset: int) -> Any:
        largest, second = 1000.0, 400.0
        return table(top=[largest, second, 1.0], abs_total=largest + second + policy.p_ratio * largest + offset)

    def secret(policy: DisclosureRules) -> tuple[Any, list[str]]:
        return table(n=40, top=[98765.25, 1.5], abs_total=98790.5), ["98765.25", "98790.5", "top", "abs_total"]

    return Samples(
        passing=lambda policy: table(),
        bad={"empty": lambda: make("t", pd.DataFrame(columns=["area", "value", "n", "top", "abs_total"])),
             "text in numbers": lambda: table(n="fifty"),
             "NaN": lambda: table(value=[np.nan, 6000.0, 7000.0]),
             "inf": lambda: table(value=[np.inf, 6000.0, 7000.0]),
             "missing column": lambda: make("t", pd.DataFrame({"area": ["a"], "value": [1.0], "n": [9]}))},
        boundaries=[Boundary("min_frequency", "min_frequency", frequency),
                    Boundary("dominance", "dominance_k", dominance, fails="above", policy={"p_ratio": 0.0}),
                    Boundary("p_ratio", "p_ratio", p_ratio, policy={"dominance_k": 1.0})],
        secret=secret,
    )
