"""Extremes: the minimum or maximum of a group (columns: the groups, "statistic", "value", "n").

A minimum or maximum is one person's value, so it fails unless the policy allows extremes
(`allow_extremes`), and then only for groups of at least min_frequency persons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from safepool.disclosure.cells import numbers, shown_mask
from safepool.disclosure.findings import Finding, cell_labels, finding, invalid
from safepool.disclosure.kinds.base import Boundary, OutputBase, OutputKind, Samples, register
from safepool.disclosure.kinds.tables import grouped_table_problems
from safepool.disclosure.rules import DisclosureRules


@dataclass
class ExtremeTable(OutputBase):
    """Minimum or maximum by groups: groups + "statistic" ("min"/"max") + "value" + "n"."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    kind: ClassVar[str] = "extreme"


@register
class Extreme(OutputKind):
    name = "extreme"
    output_type = ExtremeTable

    def labels(self, output: ExtremeTable) -> list[str]:
        return list(output.groups) + ["statistic"]

    def validate(self, output: ExtremeTable, *, kept: bool = False) -> list[Finding]:
        problems = grouped_table_problems(output, numeric=["value"], counts=["n"], extra=["statistic"],
                                          key_extra=["statistic"])
        if problems:
            return problems
        cells = output.cells
        unknown = shown_mask(cells) & ~cells["statistic"].isin(["min", "max"]).to_numpy()
        if unknown.any():
            return [invalid("column statistic: must be min or max", cell_labels(cells, self.labels(output), unknown))]
        return []

    def rules(self, output: ExtremeTable, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        cells, labels, shown = output.cells, self.labels(output), shown_mask(output.cells)
        few = shown & (numbers(cells, "n") < policy.min_frequency)
        extremes = (
            Finding("extremes", "pass", [], "extremes: allowed in this environment")
            if policy.allow_extremes
            else finding("extremes", cell_labels(cells, labels, shown), "a minimum or maximum (one person's value) is shown")
        )
        return [finding("min_frequency", cell_labels(cells, labels, few),
                        f"an extreme is of fewer than {policy.min_frequency} persons"), extremes]

    def count_columns(self, output: ExtremeTable) -> list[str]:
        return ["n"]

    def blanked_columns(self, output: ExtremeTable) -> list[str]:
        return ["value", "n"]

    def samples(self) -> Samples:
        def table(n: Any = 40, value: Any = 91.0, statistic: str = "max") -> ExtremeTable:
            return ExtremeTable("Oldest client by area", pd.DataFrame(
                {"area": ["north", "south"], "statistic": [statistic, "max"], "value": [value, 88.0], "n": [n, 50]}),
                ["area"])

        def boundary(policy: DisclosureRules, offset: int) -> ExtremeTable:
            return table(n=policy.min_frequency + offset)

        return Samples(
            passing=lambda policy: table(),
            bad={"empty": lambda: ExtremeTable("x", pd.DataFrame(columns=["area", "statistic", "value", "n"]), ["area"]),
                 "text in numbers": lambda: table(value="old"),
                 "NaN": lambda: table(value=np.nan),
                 "inf": lambda: table(value=np.inf),
                 "missing column": lambda: ExtremeTable("x", pd.DataFrame({"area": ["a"], "value": [1.0], "n": [9]}),
                                                        ["area"]),
                 "another statistic": lambda: table(statistic="mode")},
            boundaries=[Boundary("min_frequency", "min_frequency", boundary, policy={"allow_extremes": True})],
            secret=lambda policy: (table(n=policy.min_frequency - 1, value=1234.625), ["1234.625"]),
            policy={"allow_extremes": True},  # without it every extreme fails
        )
