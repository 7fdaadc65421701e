"""Helpers of the grouped-table kinds (frequency, magnitude, quantile, extreme, effect): input
checks before any rule, and secondary suppression of additive tables."""

from __future__ import annotations

from typing import Any

import numpy as np

from safepool.disclosure.cells import DIFFERENCING, SMALL_OR_ZERO, numbers
from safepool.disclosure.findings import Finding, invalid
from safepool.disclosure.margins import grid_of
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.secondary import protect
from safepool.disclosure.validation import duplicate_problems, group_problems, numeric_problems, table_problems


def grouped_table_problems(output: Any, *, numeric: list[str] | None = None, counts: list[str] | None = None,
                           extra: list[str] | None = None, key_extra: list[str] | None = None,
                           unique: bool = False) -> list[Finding]:
    """Invalid findings for a grouped table, or none (then the rules may read the cells)."""
    numeric, counts, extra, key_extra = numeric or [], counts or [], extra or [], key_extra or []
    if not isinstance(getattr(output, "title", None), str):
        return [invalid("the title must be text")]
    where = f"table '{output.title}'"
    problems = table_problems(output.cells, numeric + counts + extra, where)
    if problems:
        return problems
    problems = group_problems(output.groups, output.cells, where)
    if problems:
        return problems
    labels = list(output.groups) + key_extra
    problems = numeric_problems(output.cells, numeric, labels) + numeric_problems(output.cells, counts, labels,
                                                                                  counts=True)
    if unique:
        problems += duplicate_problems(output.cells, labels, where)
    return problems


def protect_grid(table: Any, quantity: str, policy: DisclosureRules, failing: list[list[str]], *,
                 counted: bool) -> np.ndarray:
    """Rows to hide so that no hidden cell follows from the totals shown.

    Counts (of a frequency table, or the persons behind means) are protected on the count, sums on
    their value. A count whose status says it failed the minimum frequency is known to lie in
    1..threshold-1 (0.. when zeros share the label); its target is that whole range. A cell hidden
    for differencing (`DIFFERENCING`) is protected as a small cell of threshold-1 persons."""
    primary = np.array([bool(found) for found in failing])
    grid, rows_at, cols_at = grid_of(table, quantity)
    lower, upper = grid.lower[rows_at, cols_at], grid.upper[rows_at, cols_at]
    if counted:
        small = np.array(["min_frequency" in found for found in failing])
        either = np.array([SMALL_OR_ZERO in found for found in failing])
        # a cell hidden for the caller's differencing check has persons enough, but is protected as a
        # small cell of threshold-1 persons is (under the policy's rule for zeros): its protection
        # must not tell it from one
        differencing = np.array([DIFFERENCING in found for found in failing]) & ~small & ~either
        grid.values[rows_at, cols_at] = np.where(differencing, policy.min_frequency - 1.0,
                                                 grid.values[rows_at, cols_at])
        if policy.zeros == "suppress":  # a small cell's status is the one of an empty cell too
            either = either | differencing
        else:
            small = small | differencing
        lower = np.where(small, 1.0, lower)
        upper = np.where(small | either, policy.min_frequency - 1.0, upper)
        target = np.where(np.isfinite(upper - lower), upper - lower, float(policy.min_frequency))
    else:
        target = policy.p_ratio * np.abs(numbers(table.cells, "value"))
    grid.lower[rows_at, cols_at], grid.upper[rows_at, cols_at] = lower, upper
    primary_grid = np.zeros(grid.values.shape, dtype=bool)
    primary_grid[rows_at, cols_at] = primary
    targets = np.zeros(grid.values.shape)
    targets[rows_at, cols_at] = target
    return protect(grid, primary_grid, targets)[rows_at, cols_at]
