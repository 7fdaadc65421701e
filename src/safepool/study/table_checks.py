"""Checks on the plain tables the matcher and the estimators take.

Every check names the column and the place (which step asked), never a value: a value in a
study table can belong to a person.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from safepool.faults import Invalid


class StudyTableError(Invalid):
    """A study table cannot be used as given: names the step and the column."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        super().__init__(f"{where}: {problem}")


def require_frame(df: object, where: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise StudyTableError(where, f"expected a pandas DataFrame, got {type(df).__name__}")
    return df


def require_columns(df: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise StudyTableError(where, f"missing column(s) {', '.join(map(str, missing))}")


def numeric_matrix(df: pd.DataFrame, columns: list[str], where: str, allow_missing: bool = False) -> np.ndarray:
    """The columns as a float matrix; booleans count as 0/1, anything else non-numeric is refused.

    Column by column into one Fortran-ordered matrix (each column contiguous, as pandas' own
    to_numpy lays out a frame, so every sum over it runs in the same order): one copy, not two."""
    require_columns(df, columns, where)
    matrix = np.empty((len(columns), len(df)))
    for j, column in enumerate(columns):
        series = df[column]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            raise StudyTableError(where, f"column {column} is not numeric (one-hot encode categories first)")
        matrix[j] = series.to_numpy(dtype="float64", na_value=np.nan)
        if not allow_missing and np.isnan(matrix[j]).any():
            raise StudyTableError(where, f"column {column} has {int(np.isnan(matrix[j]).sum())} missing value(s)")
    return matrix.T


COLUMN_BLOCK = 8  # columns reduced at once by by_column_blocks


def by_column_blocks(x: np.ndarray, reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`reduce` (one value per column, as x.var(axis=0)) over x a few columns at a time, so that
    its temporaries are a block's size instead of the matrix's (at 300,000 persons the matching
    held 150-300 MB more without it). No block is a single column: NumPy sums a lone contiguous
    column in another order than the columns of a block, and the results must not change by a bit."""
    starts = list(range(0, x.shape[1], COLUMN_BLOCK))
    if len(starts) > 1 and x.shape[1] - starts[-1] == 1:
        starts.pop()  # the lone last column goes with the block before it
    out = np.empty(x.shape[1])
    for start, stop in zip(starts, starts[1:] + [x.shape[1]]):
        out[start:stop] = reduce(x[:, start:stop])
    return out


def treatment_indicator(df: pd.DataFrame, column: str, where: str) -> np.ndarray:
    """The treatment column as a boolean array; it must be 0/1 (or bool) with nothing missing."""
    require_columns(df, [column], where)
    series = df[column]
    if series.isna().any():
        raise StudyTableError(where, f"treatment column {column} has missing values")
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise StudyTableError(where, f"treatment column {column} is not 0/1")
    values = series.astype("float64").to_numpy()
    if not np.isin(values, (0.0, 1.0)).all():
        raise StudyTableError(where, f"treatment column {column} has values other than 0 and 1")
    return values == 1.0


def is_binary(values: np.ndarray) -> bool:
    """True when every observed value is 0 or 1 (an indicator, not a measurement)."""
    observed = values[~np.isnan(values)]
    return observed.size > 0 and bool(np.isin(observed, (0.0, 1.0)).all())
