"""Distinct numbers and their places, by a table when they are small and not negative.

Cell numbers of a ledger, and pairs of cells (a remembered cell's row times the new cells plus a
new cell), are few and close together beside the entries that carry them (300,000 persons per
question): counting them over their range, and placing them by a table over it, takes a fraction
of the time of a sort of the entries. Other numbers are sorted and searched.
"""

from __future__ import annotations

import numpy as np


def distinct_numbers(numbers: np.ndarray) -> np.ndarray:
    """The distinct numbers in order (by counting when they are small and not negative, as cell
    numbers are: no sort of a million entries)."""
    if len(numbers) and numbers.min() >= 0 and numbers.max() < 4 * len(numbers) + 1024:
        return np.flatnonzero(np.bincount(numbers))
    return np.unique(numbers)


def places_among(numbers: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """Each number's place in `distinct` (sorted, distinct, holding every one of `numbers`): by a
    table when they are small and not negative, as cell numbers are (a search of 600,000 entries
    took 2.5 ms, the table 0.5), else by a search."""
    if len(distinct) and distinct[0] >= 0 and distinct[-1] < 4 * len(numbers) + 1024:
        table = np.zeros(int(distinct[-1]) + 1, dtype=np.int64)
        table[distinct] = np.arange(len(distinct))
        return table[numbers]
    return np.searchsorted(distinct, numbers).astype(np.int64)


def by_cell(cell: np.ndarray) -> np.ndarray:
    """The stable order of rows by their cell numbers: as 16-bit numbers when they span fewer than
    2**15 (a few thousand cells), which NumPy sorts by counting, several times quicker than 64-bit
    ones (300,000 rows)."""
    if len(cell) and int(cell.max()) - int(cell.min()) < 2**15:
        return np.argsort((cell - cell.min()).astype(np.int16), kind="stable")
    return np.argsort(cell, kind="stable")
