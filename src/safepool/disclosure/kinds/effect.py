"""Effect tables: estimates by groups with the persons in each arm ("n_treated", "n_control").

Columns: the groups (labels), estimate columns (numbers), `remarks` (text about a cell's numbers,
e.g. "not defined" where a statistic does not exist: blanked with the cell, never labels), and
counts: "n_treated", "n_control" and any other "n_..." column (matched sets, clusters), which
are rounded with every other count when a release rounds. A mean the table shows (e.g.
"mean_treated") may come with its contributors in "top:<column>" and "abs_total:<column>";
then the dominance and p% rules apply to that mean. Contributor columns never appear in the
public table, a file or the register.

Rules: min_frequency on each arm of each row (the treated and the control persons), dominance
and p% on each mean that has contributors. Suppression blanks a failing row's numbers.

`parts` names group columns whose levels split one total that another output shows (a study's
subgroups split the matched clients of its effect at that horizon): each mean times its count,
subtracted from the total's, would tell a hidden level. So within the rows that differ only in
those columns, a hidden row hides more, the fewest persons first, until the hidden rows taken as
one row pass the rules each row must (each arm's persons; each mean's contributors, merged), or
all are hidden (secondary suppression).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from safepool.disclosure.cells import STATUS, is_contributor_column, numbers, shown_mask
from safepool.disclosure.findings import Finding, cell_labels, finding, invalid
from safepool.disclosure.kinds.base import Boundary, OutputBase, OutputKind, Samples, contributor_rules, register
from safepool.disclosure.kinds.magnitude import CONTRIBUTOR_SETTINGS
from safepool.disclosure.kinds.tables import grouped_table_problems
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.validation import contributor_problems, numeric_problems

ARMS = ("n_treated", "n_control")


@dataclass
class EffectTable(OutputBase):
    """Effect estimates by groups: groups + estimate columns + "n_treated" + "n_control".

    `remarks` are text columns about a cell's numbers (e.g. "not defined" where a statistic
    does not exist): not labels, so suppressing the cell blanks them with its numbers."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    remarks: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "effect"


def contributed_means(cells: pd.DataFrame) -> list[str]:
    """The shown columns whose contributors the table carries ("top:<column>")."""
    return [c[len("top:"):] for c in cells.columns if isinstance(c, str) and c.startswith("top:")]


@register
class Effect(OutputKind):
    name = "effect"
    output_type = EffectTable
    contributor_settings = CONTRIBUTOR_SETTINGS

    def count_columns(self, output: EffectTable) -> list[str]:
        skip = set(output.groups) | set(output.remarks)
        return [c for c in output.cells.columns
                if isinstance(c, str) and c not in skip and (c in ARMS or c == "n" or c.startswith("n_"))]

    def estimates(self, output: EffectTable) -> list[str]:
        skip = set(output.groups) | set(output.remarks) | set(self.count_columns(output)) | {STATUS}
        return [c for c in output.cells.columns if c not in skip and not is_contributor_column(c)]

    def validate(self, output: EffectTable, *, kept: bool = False) -> list[Finding]:
        problems = grouped_table_problems(output, counts=list(ARMS))
        if problems:
            return problems
        if not isinstance(output.remarks, (list, tuple)) or not all(r in output.cells.columns for r in output.remarks):
            return [invalid(f"table '{output.title}': remarks must name columns of the table")]
        if not isinstance(output.parts, (list, tuple)) or not set(output.parts) <= set(output.groups):
            return [invalid(f"table '{output.title}': parts must name group columns of the table")]
        cells, labels = output.cells, list(output.groups)
        estimates = self.estimates(output)
        if not estimates:
            return [invalid(f"table '{output.title}' has no estimate columns")]
        other_counts = [c for c in self.count_columns(output) if c not in ARMS]
        problems = numeric_problems(cells, estimates, labels) + numeric_problems(cells, other_counts, labels,
                                                                                 counts=True)
        if problems or kept:
            return problems
        for mean in contributed_means(cells):
            if mean not in estimates or f"abs_total:{mean}" not in cells.columns:
                return [invalid(f"table '{output.title}': contributors top:{mean} need abs_total:{mean} and an "
                                f"estimate column {mean}")]
            problems += contributor_problems(cells, labels, 2, top=f"top:{mean}", total=f"abs_total:{mean}",
                                             persons=_arm_of(mean))
        return problems

    def rules(self, output: EffectTable, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        cells, labels, shown = output.cells, list(output.groups), shown_mask(output.cells)
        few = shown & ((numbers(cells, "n_treated") < policy.min_frequency)
                       | (numbers(cells, "n_control") < policy.min_frequency))
        findings = [finding("min_frequency", cell_labels(cells, labels, few),
                            f"the treated or the control arm has fewer than {policy.min_frequency} persons")]
        if kept:
            return findings
        for mean in contributed_means(cells):
            findings += contributor_rules(cells, labels, policy, shown, top=f"top:{mean}", total=f"abs_total:{mean}",
                                          what=mean)
        return findings

    def has_contributors(self, output: EffectTable) -> bool:
        return bool(contributed_means(output.cells))

    def kept_fields(self, output: EffectTable) -> dict[str, Any]:
        return {"groups": list(output.groups), "remarks": list(output.remarks), "parts": list(output.parts)}

    def protects(self, output: EffectTable, margins: bool) -> bool:
        return bool(output.parts)

    def secondary(self, output: EffectTable, policy: DisclosureRules, failing: list[list[str]]) -> np.ndarray:
        """The failing rows, and in each split of a total more rows until the hidden ones pass
        together (see the module)."""
        cells = output.cells.reset_index(drop=True)
        hidden = np.array([bool(found) for found in failing], dtype=bool)
        fewest = np.column_stack([np.asarray(numbers(cells, arm), dtype=float) for arm in ARMS]).min(axis=1)
        split_by = [c for c in output.groups if c not in output.parts]
        blocks = cells.groupby(split_by, sort=False, dropna=False).indices.values() if split_by else [cells.index]
        for rows in blocks:
            rows = np.asarray(rows)
            for row in rows[np.lexsort((rows, fewest[rows]))]:
                if not hidden[rows].any() or self._pass_together(cells, rows[hidden[rows]], policy):
                    break
                hidden[row] = True
        return hidden

    def _pass_together(self, cells: pd.DataFrame, rows: np.ndarray, policy: DisclosureRules) -> bool:
        """Whether the rows' persons taken as one row, which the total less the rows shown tells,
        pass the rules each row must: each arm's persons, and each mean's contributors."""
        group = cells.iloc[rows]
        together: dict[str, list[Any]] = {arm: [float(np.asarray(numbers(group, arm), dtype=float).sum())]
                                          for arm in ARMS}
        for mean in contributed_means(cells):
            together[f"top:{mean}"] = [[value for top in group[f"top:{mean}"] for value in top]]
            together[f"abs_total:{mean}"] = [float(np.asarray(numbers(group, f"abs_total:{mean}")).sum())]
        return not any(found.cells for found in self.rules(EffectTable("", pd.DataFrame(together), []), policy))

    def samples(self) -> Samples:
        def table(n_treated: Any = 300, n_control: int = 900, top: list[float] | None = None,
                  total: float = 1000.0, **changes: Any) -> EffectTable:
            cells = {"horizon": [4, 8], "estimate": [0.05, 0.07], "std_error": [0.01, 0.02],
                     "p_value": ["0.031", "not defined"], "mean_treated": [0.4, 0.45],
                     "top:mean_treated": [top or [1.0, 1.0], [1.0, 1.0]], "abs_total:mean_treated": [total, 135.0],
                     "n_treated": [n_treated, 300], "n_control": [n_control, 900]}
            cells.update(changes)
            return EffectTable("Effects by horizon", pd.DataFrame(cells), ["horizon"], ["p_value"])

        def dominance(policy: DisclosureRules, offset: int) -> EffectTable:
            held = policy.dominance_k * 1000 + offset
            return table(top=[held / policy.dominance_n] * policy.dominance_n + [1.0])

        return Samples(
            passing=lambda policy: table(),
            bad={"empty": lambda: EffectTable("e", pd.DataFrame(columns=["h", "att", *ARMS]), ["h"]),
                 "text in numbers": lambda: table(estimate=["big", 0.07]),
                 "NaN": lambda: table(n_treated=np.nan),
                 "inf": lambda: table(estimate=[np.inf, 0.07]),
                 "missing column": lambda: EffectTable("e", pd.DataFrame({"h": [1], "att": [0.1], "n_treated": [50]}),
                                                       ["h"]),
                 "no estimates": lambda: EffectTable("e", pd.DataFrame({"h": [1], "n_treated": [50], "n_control": [50]}),
                                                     ["h"])},
            boundaries=[Boundary("min_frequency", "min_frequency",
                                 lambda policy, offset: table(n_treated=policy.min_frequency + offset)),
                        Boundary("min_frequency", "min_frequency",
                                 lambda policy, offset: table(n_control=policy.min_frequency + offset)),
                        Boundary("dominance", "dominance_k", dominance, fails="above", policy={"p_ratio": 0.0})],
            secret=lambda policy: (table(n_treated=policy.min_frequency - 1, estimate=[7.625, 0.07],
                                         p_value=["0.0312", "not defined"], top=[98765.25, 2.5], total=98790.5),
                                   ["7.625", "0.0312", "0.031", "98765.25", "98790.5", "top:", "abs_total"]),
        )


def _arm_of(mean: str) -> str | None:
    return "n_treated" if mean.endswith("_treated") else "n_control" if mean.endswith("_control") else None
