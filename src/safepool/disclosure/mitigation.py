"""Making a failing output safe: suppression (primary and secondary) or rounding.

A mitigated output is the same kind of output with the failing cells blanked (NaN) and a
"status" column saying, cell by cell, what was done; its note says it in a sentence, and its
report is the check of the mitigated output as it will be shown.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from safepool.disclosure.checks import check, numbers
from safepool.disclosure.findings import CheckReport, json_safe
from safepool.disclosure.margins import grid_of, with_margins
from safepool.disclosure.outputs import (
    STATUS,
    DisclosureInputError,
    Document,
    EffectTable,
    ExtremeTable,
    Figure,
    FrequencyTable,
    MagnitudeTable,
    ModelResult,
    QuantileTable,
    StatOutput,
)
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.secondary import protect

SHOWN = "shown"
SECONDARY = "suppressed (secondary)"
SMALL_OR_ZERO = "min_frequency or zeros"


@dataclass
class Mitigated:
    """An output after mitigation, with what was done to it and its check as shown."""

    output: StatOutput
    method: str
    note: str
    report: CheckReport


def suppress(output: StatOutput, rules: DisclosureRules, margins: bool = True) -> Mitigated:
    """Blank every failing cell; with `margins`, add the table's totals and protect against them.

    `margins` applies to one- and two-way frequency and magnitude tables: their row, column and
    grand totals are added to the output, and secondary suppression makes sure no suppressed
    cell (or total) can be worked out from what is shown.
    """
    if isinstance(output, Document):
        raise DisclosureInputError(f"document '{output.title}' is mitigated through its parts, not as a whole")
    if isinstance(output, Figure):
        inner = suppress(output.table, rules, margins)
        figure = Figure(output.title, inner.output, _spec_with_data(output.spec, inner.output))
        return Mitigated(figure, "suppression", inner.note, check(figure, rules))
    _require_checkable(output, rules)
    additive = isinstance(output, (FrequencyTable, MagnitudeTable)) and margins and len(output.groups) > 0
    if additive:
        output = with_margins(output, max(rules.dominance_n, 2))
    cells = _cells(output)
    failing = _failing_rules(output, check(output, rules), rules)
    primary = np.array([bool(found) for found in failing])
    hidden = _secondary(output, rules, failing) if additive else primary
    status = [
        f"suppressed (primary: {', '.join(found)})" if found else SECONDARY if hide else SHOWN
        for found, hide in zip(failing, hidden)
    ]
    mitigated = _with_cells(output, _blank(cells, _blanked_columns(output), hidden).assign(**{STATUS: status}))
    note = _suppression_note(failing, int((hidden & ~primary).sum()), additive)
    return Mitigated(mitigated, "suppression", note, check(mitigated, rules))


def round_counts(output: FrequencyTable, rules: DisclosureRules) -> Mitigated:
    """Counts rounded to the nearest multiple of the rounding base, halves rounded up.

    Conventional (deterministic) rounding: the same table always rounds the same way, so
    repeating a request cannot average the rounding away. A rounded count that still fails
    (when the base is below the minimum frequency) is suppressed.
    """
    if not isinstance(output, FrequencyTable):
        raise DisclosureInputError(f"only frequency tables can be rounded, not {type(output).__name__}")
    _require_checkable(output, rules)
    base = rules.rounding_base
    rounded = np.floor(numbers(output.cells, "count") / base + 0.5) * base
    label = f"rounded to base {base}"
    table = _with_cells(output, output.cells.assign(count=rounded.astype(int), **{STATUS: label}))
    failing = _failing_rules(table, check(table, rules), rules)
    still = np.array([bool(found) for found in failing])
    status = [f"suppressed (primary: {', '.join(found)})" if found else label for found in failing]
    table = _with_cells(table, _blank(table.cells, ["count"], still).assign(**{STATUS: status}))
    note = (f"Counts rounded to the nearest multiple of {base} (halves up), so each shown count may differ "
            f"from the true count by up to {base // 2}.")
    if still.any():
        note += f" {int(still.sum())} rounded count(s) still below {rules.min_frequency} persons were suppressed."
    return Mitigated(table, "rounding", note, check(table, rules))


def _require_checkable(output: StatOutput, rules: DisclosureRules) -> None:
    """Mitigation needs a valid, not yet mitigated output; invalid input is an error, not a pass."""
    cells = output.coefficients if isinstance(output, ModelResult) else getattr(output, "cells", None)
    if isinstance(cells, pd.DataFrame) and STATUS in cells.columns:
        raise DisclosureInputError(f"output '{output.title}' has already been mitigated")
    report = check(output, rules)
    problems = [f.message for f in report.findings if f.rule == "invalid"]
    if problems:
        raise DisclosureInputError(f"output '{output.title}' cannot be mitigated: " + "; ".join(problems))


def _cells(output: StatOutput) -> pd.DataFrame:
    return (output.coefficients if isinstance(output, ModelResult) else output.cells).reset_index(drop=True)


def _with_cells(output: StatOutput, cells: pd.DataFrame) -> StatOutput:
    return replace(output, coefficients=cells) if isinstance(output, ModelResult) else replace(output, cells=cells)


def _label_columns(output: StatOutput) -> list[str] | None:
    """Columns that name a cell in findings; None for a model, which passes or fails whole."""
    if isinstance(output, ModelResult):
        return None
    extra = {QuantileTable: ["quantile"], ExtremeTable: ["statistic"]}.get(type(output), [])
    return list(output.groups) + extra


def _failing_rules(output: StatOutput, report: CheckReport, rules: DisclosureRules) -> list[list[str]]:
    """For each row of the output, the rules it fails (empty when it passes).

    When zeros are suppressed, small and zero counts share one name ("min_frequency or
    zeros"): naming the zeros rule on a suppressed cell would publish its value.
    """
    cells, columns = _cells(output), _label_columns(output)
    failed = [replace(f, rule=SMALL_OR_ZERO) if rules.zeros == "suppress" and f.rule in ("zeros", "min_frequency") else f
              for f in report.findings if f.verdict == "fail"]
    if columns is None:
        return [list(dict.fromkeys(f.rule for f in failed))] * len(cells)
    by_cell: dict[tuple, list[str]] = {}
    for found in failed:
        for cell in found.cells:
            named = by_cell.setdefault(tuple(cell[c] for c in columns), [])
            named += [found.rule] if found.rule not in named else []
    keys = cells[columns].itertuples(index=False) if columns else [()] * len(cells)
    return [by_cell.get(tuple(json_safe(v) for v in key), []) for key in keys]


def _secondary(table: FrequencyTable | MagnitudeTable, rules: DisclosureRules, failing: list[list[str]]) -> np.ndarray:
    """Rows to hide so that no hidden cell follows from the totals shown.

    Counts (of a frequency table, or the persons behind means) are protected on the count,
    sums on their value. A count whose status says it failed the minimum frequency is known to
    lie in 1..threshold-1 (0.. when zeros share the label); its target is that whole range.
    """
    primary = np.array([bool(found) for found in failing])
    counted = isinstance(table, FrequencyTable) or table.statistic == "mean"
    quantity = "count" if isinstance(table, FrequencyTable) else "value" if not counted else "n"
    grid, rows_at, cols_at = grid_of(table, quantity)
    lower, upper = grid.lower[rows_at, cols_at], grid.upper[rows_at, cols_at]
    if counted:
        small = np.array(["min_frequency" in found for found in failing])
        either = np.array([SMALL_OR_ZERO in found for found in failing])
        lower = np.where(small, 1.0, lower)
        upper = np.where(small | either, rules.min_frequency - 1.0, upper)
        target = np.where(np.isfinite(upper - lower), upper - lower, float(rules.min_frequency))
    else:
        target = rules.p_ratio * np.abs(numbers(table.cells, "value"))
    grid.lower[rows_at, cols_at], grid.upper[rows_at, cols_at] = lower, upper
    primary_grid = np.zeros(grid.values.shape, dtype=bool)
    primary_grid[rows_at, cols_at] = primary
    targets = np.zeros(grid.values.shape)
    targets[rows_at, cols_at] = target
    return protect(grid, primary_grid, targets)[rows_at, cols_at]


def _blanked_columns(output: StatOutput) -> list[str]:
    """The numbers of a cell that suppression removes (labels stay)."""
    if isinstance(output, FrequencyTable):
        return ["count"]
    if isinstance(output, (MagnitudeTable, QuantileTable, ExtremeTable)):
        return ["value", "n"]
    keep = ["term"] if isinstance(output, ModelResult) else list(output.groups)
    return [c for c in _cells(output).columns if c not in keep]


def _blank(cells: pd.DataFrame, columns: list[str], hidden: np.ndarray) -> pd.DataFrame:
    cells = cells.reset_index(drop=True).copy()
    for column in columns:
        values = pd.to_numeric(cells[column], errors="coerce").astype(float)
        cells[column] = values.mask(hidden)
    return cells


def _suppression_note(failing: list[list[str]], secondary: int, margins: bool) -> str:
    primary = Counter(rule for found in failing if found for rule in found)
    cells = sum(1 for found in failing if found)
    totals = " Row, column and grand totals are shown as cells labelled Total." if margins else ""
    if not cells:
        return "No cell failed the disclosure checks; nothing was suppressed." + totals
    reasons = ", ".join(f"{rule} ({count})" for rule, count in sorted(primary.items()))
    note = f"Suppressed {cells} cell(s) that failed the disclosure checks: {reasons}."
    if secondary:
        note += (f" Suppressed {secondary} further cell(s) (secondary suppression) so that no suppressed "
                 "cell can be worked out from the totals shown.")
    return note + totals


def _spec_with_data(spec: dict, table: StatOutput) -> dict:
    """The chart spec with any inline data replaced by the mitigated table's public cells."""
    spec = copy.deepcopy(spec)
    data = spec.get("data")
    if isinstance(data, dict) and "values" in data:
        public = table.public_table()
        data["values"] = [{k: json_safe(v) for k, v in row.items()} for row in public.to_dict("records")]
    return spec
