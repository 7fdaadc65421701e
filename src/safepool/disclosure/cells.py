"""What every output kind shares about its cells: the status column, reading numbers, and the
contributor columns that are for the checks only.

A mitigated output carries a "status" per cell: "shown", "suppressed (...)" or "rounded to base
N". Contributor columns ("top" and "abs_total", or "top:<column>" and "abs_total:<column>" for
the mean shown in <column>) hold the persons' largest contributions and the total of their
sizes; the dominance and p% rules read them and they never appear in a public table, a file or
the register.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from safepool.faults import Invalid

STATUS = "status"
SHOWN = "shown"
SECONDARY = "suppressed (secondary)"
SMALL_OR_ZERO = "min_frequency or zeros"
# a cell the caller hides because, with earlier answers of its permit, it would single out fewer
# persons than the minimum frequency (the query ledger); suppressed and protected as a small cell
DIFFERENCING = "differencing"
ROUNDED = "rounded to base {base}"
CONTRIBUTOR_COLUMNS = ("top", "abs_total")


class DisclosureInputError(Invalid):
    """Something handed to the disclosure checks is not a statistical output or not a table."""


def is_contributor_column(column: object) -> bool:
    return isinstance(column, str) and (column in CONTRIBUTOR_COLUMNS or column.startswith(("top:", "abs_total:")))


def shown_mask(cells: pd.DataFrame) -> np.ndarray:
    """Rows that will be published: every row except those a mitigation suppressed."""
    if STATUS not in cells.columns:
        return np.ones(len(cells), dtype=bool)
    return ~_status_is(cells, "suppressed")


def rounded_mask(cells: pd.DataFrame) -> np.ndarray:
    """Rows whose counts were rounded (and are shown)."""
    if STATUS not in cells.columns:
        return np.zeros(len(cells), dtype=bool)
    return _status_is(cells, "rounded")


def _status_is(cells: pd.DataFrame, prefix: str) -> np.ndarray:
    """Rows whose status, as text, starts with `prefix`. A loop over the values: the checks ask
    this hundreds of times of tables of tens of rows, where pandas' string methods cost 4x more."""
    return np.fromiter((str(status).startswith(prefix) for status in cells[STATUS].to_numpy()), dtype=bool,
                       count=len(cells))


def numbers(cells: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats (blanks and text become NaN); the checks validate before reading."""
    return pd.to_numeric(cells[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def contributions(cells: pd.DataFrame, width: int, column: str = "top") -> np.ndarray:
    """The `width` largest absolute contributions per cell, padded with zeros, largest first."""
    matrix = np.zeros((len(cells), width))
    for row, top in enumerate(cells[column]):
        try:
            values = np.sort(np.abs(np.asarray(top, dtype=float)))[::-1][:width]
        except (TypeError, ValueError):
            continue
        matrix[row, : len(values)] = values
    return matrix


def drop_contributors(cells: object, also: Collection[str] = ()) -> pd.DataFrame:
    """The cells without their contributor columns (what may be shown), nor the columns `also`
    names. Taken by position: pandas' `drop` cost three times as much on tables of tens of rows,
    and an output's record asks this several times."""
    if not isinstance(cells, pd.DataFrame):
        raise DisclosureInputError(f"cells must be a table (DataFrame), got {type(cells).__name__}")
    dropped = set(also)
    return cells.take([at for at, column in enumerate(cells.columns)
                       if not is_contributor_column(column) and column not in dropped], axis=1)
