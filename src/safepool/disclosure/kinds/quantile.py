"""Quantile tables: smoothed quantiles by groups (columns: the groups, "quantile", "value", "n").

A quantile is a local mean, as statistics offices publish them: the mean of at least
min_frequency values around the quantile's position in the group (`local_mean` computes one),
never a single person's value. `n` is the persons of the group. The table may carry the
window's contributors ("top": its largest per-person values, "abs_total": the sum of their
sizes), and then the dominance and p% rules apply to each quantile exactly as to a magnitude;
without them a person must review the table (verdict "review"): nothing shows that the window's
mean is not dominated by one or two persons. Contributor columns never appear in the public
table, a file or the register.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from safepool.disclosure.cells import numbers, shown_mask
from safepool.disclosure.findings import Finding, cell_labels, finding, invalid, needs_review
from safepool.disclosure.kinds.base import OutputBase, Samples, contributor_rules, register
from safepool.disclosure.kinds.magnitude import CONTRIBUTOR_SETTINGS, PersonsColumn, magnitude_samples, persons_field
from safepool.disclosure.kinds.tables import grouped_table_problems
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.validation import contributor_problems


@dataclass
class QuantileTable(OutputBase):
    """Smoothed quantiles by groups: groups + "quantile" + "value" + "n" (+ "top", "abs_total"). With
    `persons_shown` false, "n" is for the checks only (`magnitude.PersonsColumn`)."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    persons_shown: bool = True
    kind: ClassVar[str] = "quantile"


def local_mean(values: np.ndarray, quantile: float, width: int) -> tuple[float, np.ndarray] | None:
    """The mean of the `width` sorted values centred on the quantile's position, and those values.

    None when the group has fewer than `width` values: its quantile cannot be shown at all."""
    ordered = np.sort(np.asarray(values, dtype=float))
    if width < 1 or len(ordered) < width:
        return None
    position = quantile * (len(ordered) - 1)
    start = int(np.clip(np.floor(position - (width - 1) / 2 + 0.5), 0, len(ordered) - width))
    window = ordered[start:start + width]
    return float(window.mean()), window


@register
class Quantile(PersonsColumn):
    name = "quantile"
    output_type = QuantileTable
    contributor_settings = CONTRIBUTOR_SETTINGS

    def labels(self, output: QuantileTable) -> list[str]:
        return list(output.groups) + ["quantile"]

    def validate(self, output: QuantileTable, *, kept: bool = False) -> list[Finding]:
        problems = grouped_table_problems(output, numeric=["quantile", "value"], counts=["n"],
                                          key_extra=["quantile"], unique=True)
        if problems:
            return problems
        cells = output.cells
        q = numbers(cells, "quantile")
        outside = shown_mask(cells) & ((q <= 0) | (q >= 1))
        if outside.any():
            return [invalid("column quantile: a quantile lies strictly between 0 and 1 (minimum and maximum are "
                            "extremes)", cell_labels(cells, self.labels(output), outside))]
        present = [c for c in ("top", "abs_total") if c in cells.columns]
        if kept or not present:
            return []
        if len(present) == 1:
            return [invalid(f"table '{output.title}': contributor columns top and abs_total come together")]
        return contributor_problems(cells, self.labels(output), 2)

    def rules(self, output: QuantileTable, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        cells, labels, shown = output.cells, self.labels(output), shown_mask(output.cells)
        few = shown & (numbers(cells, "n") < policy.min_frequency)
        findings = [finding("min_frequency", cell_labels(cells, labels, few),
                            f"a quantile is of a group of fewer than {policy.min_frequency} persons")]
        if kept:
            return findings
        if self.has_contributors(output):
            return findings + contributor_rules(cells, labels, policy, shown, what="the values around the quantile")
        if shown.any():
            findings.append(needs_review("dominance", "the values around each quantile were not given, so "
                                         "nothing shows that one or two persons do not dominate them"))
        return findings

    def has_contributors(self, output: QuantileTable) -> bool:
        return "top" in output.cells.columns and "abs_total" in output.cells.columns

    def kept_fields(self, output: QuantileTable) -> dict[str, Any]:
        return {"groups": list(output.groups), **persons_field(output)}

    def blanked_columns(self, output: QuantileTable) -> list[str]:
        return [c for c in ("value", "n", "top", "abs_total") if c in output.cells.columns]

    def samples(self) -> Samples:
        def make(title: str, cells: pd.DataFrame) -> QuantileTable:
            return QuantileTable(title, cells.assign(quantile=0.5) if "area" in cells else cells, ["area"])

        base = magnitude_samples(make)
        bad = dict(base.bad)
        bad["missing column"] = lambda: QuantileTable(
            "q", pd.DataFrame({"area": ["a"], "quantile": [0.5], "value": [7.0]}), ["area"])
        bad["quantile outside 0..1"] = lambda: QuantileTable(
            "q", pd.DataFrame({"area": ["a"], "quantile": [1.0], "value": [7.0], "n": [40]}), ["area"])
        return Samples(passing=base.passing, bad=bad, boundaries=base.boundaries, secret=base.secret)


def local_quantiles(values: np.ndarray, quantiles: list[float], policy: DisclosureRules) -> list[dict[str, Any]]:
    """Rows of a quantile table for one group: each quantile as a local mean with its window's
    contributors (for the checks only). A group too small for a window gives no rows."""
    rows = []
    for q in quantiles:
        found = local_mean(values, q, policy.min_frequency)
        if found is None:
            continue
        mean, window = found
        top = sorted(np.abs(window), reverse=True)[: max(policy.dominance_n, 2)]
        rows.append({"quantile": q, "value": mean, "n": int(len(values)), "top": [float(v) for v in top],
                     "abs_total": float(np.abs(window).sum())})
    return rows
