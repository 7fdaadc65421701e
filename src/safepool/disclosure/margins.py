"""Row, column and grand totals of a one- or two-way table, and its layout as a grid.

Totals are published with the table, so they are cells too: they are checked like any other
cell and secondary suppression protects the inner cells against them. Totals are labelled
"Total" in the group columns.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from typing import Any

from safepool.disclosure.cells import DisclosureInputError, contributions, numbers
from safepool.disclosure.secondary import Grid

TOTAL = "Total"

AdditiveTable = Any  # a frequency or magnitude table: title, cells, groups (and a magnitude's statistic)


def with_margins(table: AdditiveTable, top_width: int) -> AdditiveTable:
    """The table followed by its totals (over each group column, then the grand total)."""
    groups = list(table.groups)
    if len(groups) not in (1, 2):
        raise DisclosureInputError(
            f"table '{table.title}': totals and secondary suppression need one or two group columns, not {len(groups)}"
        )
    for column in groups:
        if (table.cells[column].astype(str) == TOTAL).any():
            raise DisclosureInputError(f"table '{table.title}': group column {column} already has a '{TOTAL}' label")
    cells = table.cells.reset_index(drop=True)
    parts = [cells]
    if len(groups) == 2:
        parts += [_totals(table, cells, groups[0], top_width), _totals(table, cells, groups[1], top_width)]
    parts.append(_totals(table, cells, None, top_width))
    return replace(table, cells=pd.concat(parts, ignore_index=True))


def _totals(table: AdditiveTable, cells: pd.DataFrame, by: str | None, top_width: int) -> pd.DataFrame:
    """One total row per value of the column `by` (one row in all without it), in the order the values
    first come, a blank label a value of its own. Added up with numpy: a table is a few dozen
    cells, and a pandas group-by cost more than the rest of the table's suppression."""
    group, first = _groups(cells, by)
    totals: dict[str, Any] = {}
    if by is not None:
        totals[by] = cells[by].iloc[first].reset_index(drop=True)
    if table.kind == "frequency":
        totals["count"] = _summed(pd.to_numeric(cells["count"]), group, len(first))
    else:
        persons, value = pd.to_numeric(cells["n"]), pd.to_numeric(cells["value"])
        n = _summed(persons, group, len(first))
        weighted = _summed(value * persons if table.statistic == "mean" else value, group, len(first))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, weighted / np.where(n > 0, n, 1), 0.0)
        totals["n"] = n
        totals["abs_total"] = _summed(pd.to_numeric(cells["abs_total"]), group, len(first))
        totals["value"] = mean if table.statistic == "mean" else weighted
        merged = [[] for _ in first]
        for at, top in zip(group, cells["top"]):
            merged[at].extend(np.abs(np.asarray(top, dtype=float)).tolist())
        totals["top"] = [list(row) for row in contributions(pd.DataFrame({"top": merged}), top_width)]
    for column in table.groups:
        if column != by:
            totals[column] = TOTAL
    # made once, in the table's column order (a frame grown column by column cost more than the sums)
    return pd.DataFrame({c: totals[c] for c in cells.columns if c in totals}, index=range(len(first)))


def _groups(cells: pd.DataFrame, by: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group (numbered in the order the groups first come) and each group's first row."""
    if by is None:
        return np.zeros(len(cells), dtype=np.int64), np.arange(min(len(cells), 1))
    group = pd.factorize(cells[by], use_na_sentinel=False)[0]
    return group, np.unique(group, return_index=True)[1]


def _summed(values: pd.Series, group: np.ndarray, groups: int) -> np.ndarray:
    """The values added up per group, blanks left out (whole numbers stay whole)."""
    numbers = values.to_numpy()
    if numbers.dtype.kind in "biu":
        found = np.zeros(groups, dtype=np.int64)
        np.add.at(found, group, numbers.astype(np.int64))
        return found
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    return np.bincount(group, weights=np.where(np.isnan(numbers), 0.0, numbers), minlength=groups)


def grid_of(table: AdditiveTable, quantity: str) -> tuple[Grid, np.ndarray, np.ndarray]:
    """The table (with totals) as a grid, and each row's grid position (row index, column index).

    A one-way table is a single grid row ending in its total; in a two-way table the last
    row and column hold the totals. Combinations absent from the table are known zeros and
    cannot be suppressed.
    """
    cells, groups = table.cells, list(table.groups)
    if len(groups) == 1:
        rows_at = np.zeros(len(cells), dtype=int)
        cols_at, n_cols = _positions(cells[groups[0]])
        shape = (1, n_cols)
    else:
        rows_at, n_rows = _positions(cells[groups[0]])
        cols_at, n_cols = _positions(cells[groups[1]])
        shape = (n_rows, n_cols)
    values = np.zeros(shape)
    candidate = np.zeros(shape, dtype=bool)
    values[rows_at, cols_at] = numbers(cells, quantity)
    candidate[rows_at, cols_at] = True
    sign = np.ones(shape)
    if shape[0] > 1:
        sign[-1, :] *= -1
    sign[:, -1] *= -1
    lower = np.full(shape, 0.0 if (values >= 0).all() else -np.inf)
    return Grid(values, sign, candidate, lower, np.full(shape, np.inf)), rows_at, cols_at


def _positions(labels: pd.Series) -> tuple[np.ndarray, int]:
    """Grid index of each label, with the total last."""
    is_total = (labels.astype(str) == TOTAL).to_numpy()
    inner, uniques = pd.factorize(labels[~is_total], use_na_sentinel=False)
    positions = np.full(len(labels), len(uniques))
    positions[~is_total] = inner
    return positions, len(uniques) + 1
