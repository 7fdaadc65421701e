"""Input checks that come before any disclosure rule.

A rule applied to a malformed table could pass it by accident (a NaN compares false with
every threshold), so each output's shape is checked first: the table exists and has rows,
the columns the rules need are there, and the numbers are numbers, finite and in range.
Each problem becomes an "invalid" finding naming the column and the cells, never a value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.findings import Finding, cell_labels, invalid, row_labels

__all__ = ["contributor_problems", "duplicate_problems", "group_problems", "numeric_problems", "shown_mask",
           "table_problems"]


def table_problems(cells: object, required: list[str], where: str) -> list[Finding]:
    """A DataFrame with rows and the `required` columns, or the findings saying why not."""
    if not isinstance(cells, pd.DataFrame):
        return [invalid(f"{where} is not a table (got {type(cells).__name__})")]
    if len(cells) == 0:
        return [invalid(f"{where} is empty: no cells to check")]
    missing = [column for column in required if column not in cells.columns]
    if missing:
        return [invalid(f"{where} lacks column(s) {', '.join(missing)}")]
    if cells.columns.duplicated().any():
        return [invalid(f"{where} has repeated column names")]
    return []


def numeric_problems(
    cells: pd.DataFrame,
    columns: list[str],
    labels: list[str],
    *,
    counts: bool = False,
) -> list[Finding]:
    """Cells of `columns` that are not numbers, not finite, or (for counts) not whole and >= 0.

    Suppressed rows may hold blanks; every shown row must hold a usable number.
    """
    shown = shown_mask(cells)
    problems: list[Finding] = []
    for column in columns:
        raw = cells[column]
        if raw.dtype == bool:
            problems.append(invalid(f"column {column} holds true/false, not numbers"))
            continue
        if raw.dtype.kind in "iuf":  # numbers already (the usual case): only NaN and infinities to find
            values = raw.to_numpy(dtype=float, na_value=np.nan)
            not_number = np.zeros(len(values), dtype=bool)
        else:
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            not_number = shown & np.isnan(values) & raw.notna().to_numpy()
        not_finite = shown & ~np.isfinite(values) & ~not_number
        for mask, what in ((not_number, "are not numbers"), (not_finite, "are missing, NaN or infinite")):
            if mask.any():
                problems.append(invalid(f"column {column}: {int(mask.sum())} cell(s) {what}", cell_labels(cells, labels, mask)))
        if counts:
            usable = shown & np.isfinite(values)
            bad = usable & ((values < 0) | (values != np.round(values)))
            if bad.any():
                problems.append(
                    invalid(f"column {column}: {int(bad.sum())} cell(s) are not whole numbers >= 0", cell_labels(cells, labels, bad))
                )
    return problems


def duplicate_problems(cells: pd.DataFrame, key: list[str], where: str) -> list[Finding]:
    """Two rows for the same cell make margins and suppression ambiguous."""
    if not key:
        repeated = np.zeros(len(cells), dtype=bool) if len(cells) == 1 else np.ones(len(cells), dtype=bool)
    elif len(set(row_labels(cells, key))) == len(cells):  # each cell once (plain labels equal where pandas' are)
        repeated = np.zeros(len(cells), dtype=bool)
    else:
        repeated = cells.duplicated(subset=key, keep=False).to_numpy()
    if repeated.any():
        return [invalid(f"{where}: {int(repeated.sum())} rows repeat the same cell", cell_labels(cells, key, repeated))]
    return []


def group_problems(groups: object, cells: pd.DataFrame, where: str) -> list[Finding]:
    """The group columns are a list of column names the table has."""
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, str) for g in groups):
        return [invalid(f"{where}: groups must be a list of column names")]
    missing = [g for g in groups if g not in cells.columns]
    if missing:
        return [invalid(f"{where} lacks group column(s) {', '.join(missing)}")]
    return []


def contributor_problems(cells: pd.DataFrame, labels: list[str], needed: int, *, top: str = "top",
                         total: str = "abs_total", persons: str | None = "n") -> list[Finding]:
    """Each shown cell has its largest contributions (`top`) and the total of their sizes (`total`).

    `needed` is how many contributions the rules read (fewer when the cell has fewer persons, if
    the `persons` column says how many).
    """
    shown = shown_mask(cells)
    n = pd.to_numeric(cells[persons], errors="coerce").to_numpy(dtype=float, na_value=np.nan) if persons \
        else np.full(len(cells), np.nan)
    abs_total = pd.to_numeric(cells[total], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.zeros(len(cells), dtype=bool)
    for row, (largest, count, size) in enumerate(zip(cells[top], n, abs_total)):
        if shown[row]:
            wanted = min(needed, int(count)) if np.isfinite(count) and count >= 0 else needed
            bad[row] = not _usable_top(largest, wanted, size)
    if bad.any():
        return [
            invalid(
                f"columns {top}/{total}: {int(bad.sum())} cell(s) lack finite contributor values "
                f"(at least {needed} largest, within the absolute total)",
                cell_labels(cells, labels, bad),
            )
        ]
    return []


def _usable_top(top: object, needed: int, total: float) -> bool:
    if isinstance(top, (str, bytes)) or not hasattr(top, "__len__"):
        return False
    try:
        values = np.abs(np.asarray(top, dtype=float))
    except (TypeError, ValueError):
        return False
    if values.ndim != 1 or len(values) < needed or not np.isfinite(values).all() or not np.isfinite(total):
        return False
    return bool(values.sum() <= total * (1 + 1e-9) + 1e-9)
