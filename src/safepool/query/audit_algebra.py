"""Which small groups of persons a set of shown sums gives away, found by linear algebra.

A shown cell is a sum over persons of what each contributes to it. Put the contributions of
every shown cell in a matrix M (cells x persons): any combination w of shown values adds up
to sum_p (w^T M)_p, so the answers pin down something about a group of persons alone exactly
when a vector that is zero outside the group lies in the row space of M. Three answers are
enough: "everyone" minus "women but one" minus "men" is one person's value.

Persons whose columns are proportional (in the same cells, contributing in the same ratios)
cannot be told apart by any combination, so they are compressed into one class with one
column b_c. Only a class as a whole can be given away, and it is given away exactly when its
column is not a combination of the other classes' columns, which is when its leverage
b_c^T (B B^T)^+ b_c equals one (B: the class columns, each scaled to length one; B B^T is the
cells x cells matrix of what two cells share). Classes of fewer persons than the minimum
frequency must never be given away.

The contributions are the persons' real values, not 0/1 memberships: when they are the same
value in every cell, both give the same row space, and the values also catch answers that
weigh one person differently (a sum with and without one person's rows doubled) or split a
person's rows between answers. What no linear audit sees: non-linear combinations (a mean
without its count is a ratio, treated conservatively as both sums shown) and contributions
that happen to be proportional by chance (persons merged into one class are told apart by
no combination of these answers, so merging is never unsafe).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

# a class is given away when its leverage is one; a column that is a combination of others
# with coefficients of squared length a has leverage at most 1 - 1/(1 + a)
_LEVERAGE_ONE = 1.0 - 1e-4
_EIGEN_FLOOR = 1e-12  # eigenvalues of B B^T below this share of the largest are zero


@dataclass(frozen=True)
class PersonClasses:
    """Persons compressed by their pattern over the cells: one entry per (class, cell)."""

    entry_class: np.ndarray   # class of each entry, numbered 0..classes-1
    entry_cell: np.ndarray    # the cell's number
    entry_weight: np.ndarray  # what the class contributes to the cell, relative to its first cell
    size: np.ndarray          # persons in each class

    @classmethod
    def from_entries(cls, entry_class: np.ndarray, entry_cell: np.ndarray, entry_weight: np.ndarray,
                     entry_size: np.ndarray) -> PersonClasses:
        """From entries that each carry their class's size."""
        entry_class = np.asarray(entry_class, dtype=np.int64)
        size = np.zeros(entry_class.max() + 1 if entry_class.size else 0, dtype=np.int64)
        size[entry_class] = np.asarray(entry_size, dtype=np.int64)
        return cls(entry_class, np.asarray(entry_cell, dtype=np.int64), np.asarray(entry_weight, dtype=float), size)


def given_away(classes: PersonClasses, new_cells: np.ndarray, min_frequency: int) -> int:
    """How many classes of 1 to min_frequency - 1 persons the cells give away, looking only at
    the parts of the cells-and-persons graph that hold a new cell (the rest was checked before)."""
    if classes.entry_class.size == 0:
        return 0
    cells, cell_index = np.unique(classes.entry_cell, return_inverse=True)
    n_cells, n_classes = len(cells), len(classes.size)
    matrix = _unit_columns_and_rows(sparse.csr_matrix(
        (classes.entry_weight, (cell_index, classes.entry_class)), shape=(n_cells, n_classes)))
    graph = sparse.bmat([[None, matrix != 0], [(matrix != 0).T, None]], format="csr")
    _, component = connected_components(graph, directed=False)
    cell_component, class_component = component[:n_cells], component[n_cells:]
    touched = set(cell_component[np.isin(cells, new_cells)].tolist())
    small = (classes.size > 0) & (classes.size < min_frequency)
    found = 0
    for label in touched:
        candidates = np.flatnonzero(small & (class_component == label))
        if candidates.size:
            rows = np.flatnonzero(cell_component == label)
            found += int((_leverages(matrix[rows], candidates) >= _LEVERAGE_ONE).sum())
    return found


def _unit_columns_and_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Scaling a column does not change whether it is a combination of the others, scaling a row
    does not change the row space; unit lengths keep B B^T well conditioned."""
    columns = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    matrix = matrix @ sparse.diags(1.0 / np.where(columns > 0, columns, 1.0))
    rows = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sparse.csr_matrix(sparse.diags(1.0 / np.where(rows > 0, rows, 1.0)) @ matrix)


def _leverages(matrix: sparse.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """b_c^T (B B^T)^+ b_c for the chosen columns, from the eigenvectors of B B^T (cells x cells)."""
    gram = (matrix @ matrix.T).toarray()
    values, vectors = np.linalg.eigh(gram)
    keep = values > max(values.max(), 0.0) * max(_EIGEN_FLOOR, 10 * len(gram) * np.finfo(float).eps)
    projected = vectors[:, keep].T @ matrix[:, columns].toarray()
    return ((projected ** 2) / values[keep][:, None]).sum(axis=0)
