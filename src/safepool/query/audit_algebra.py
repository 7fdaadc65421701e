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

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

# a class is given away when its leverage is one; a column that is a combination of others
# with coefficients of squared length a has leverage at most 1 - 1/(1 + a)
_LEVERAGE_ONE = 1.0 - 1e-4
_EIGEN_FLOOR = 1e-12  # eigenvalues of B B^T below this share of the largest are zero
_BLOCK = 4_000_000    # numbers in one block of projected columns or of dense class rows (32 MB)
# what a sparse product's pair of entries and a dense block's number cost, in dense multiply-adds
_SPARSE_PAIR = 300
_DENSE_NUMBER = 75
# Before the exact leverages, a class is ruled out when k random vectors projected on the null
# space of B have, at the class, a mean square above _RULED_OUT: that mean is (1 - leverage)
# times a chi-square of k degrees over k, so a class with a leverage of _LEVERAGE_ONE or more
# (1 - leverage <= 1e-4) would need a chi-square of 8 degrees above 4,000 to be ruled out
# (never, to any precision), and a class given away exactly projects to zero every time. A class
# of leverage 0.5 or less stays in with a chance below 1e-3 (its leverage is then computed).
_PROBES = 8
_RULED_OUT = 0.05
_SEED = 20261130


@dataclass(frozen=True)
class PersonClasses:
    """Persons compressed by their pattern over the cells: one entry per (class, cell)."""

    entry_class: np.ndarray   # class of each entry, numbered 0..classes-1
    entry_cell: np.ndarray    # the cell's number
    entry_weight: np.ndarray  # what the class contributes to the cell, relative to its first cell
    size: np.ndarray          # persons in each class
    # each class column's length over all its cells, when some cells are left out of the entries
    # because they are sums of other cells (they add nothing to the row space; None: none left out)
    column_norm: np.ndarray | None = None

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
    cells, cell_index = _numbered(classes.entry_cell)
    n_cells, n_classes = len(cells), len(classes.size)
    weight = _unit_columns_and_rows(cell_index, classes.entry_class, classes.entry_weight, n_cells, n_classes,
                                    classes.column_norm)
    by_class = sparse.csr_matrix((weight, (classes.entry_class, cell_index)), shape=(n_classes, n_cells))
    cell_component, class_component = _components(cell_index, classes.entry_class, n_cells, n_classes)
    touched = np.unique(cell_component[np.isin(cells, new_cells)])
    small = (classes.size > 0) & (classes.size < min_frequency)
    with_entries = np.diff(by_class.indptr) > 0
    found = 0
    for label in touched:
        candidates = np.flatnonzero(small & (class_component == label))
        if candidates.size:
            rows = np.flatnonzero(cell_component == label)
            members = np.flatnonzero(with_entries & (class_component == label))
            values, vectors = _eigen(by_class, rows, members)
            candidates = _not_ruled_out(by_class, rows, members, candidates, values, vectors)
            if candidates.size:
                found += int((_leverages(by_class, rows, candidates, values, vectors)
                              >= _LEVERAGE_ONE).sum())
    return found


def _numbered(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values in order and the position of each value among them, by counting (cell
    numbers lie in a narrow range, so this is linear where sorting would not be)."""
    low = values.min()
    present = np.bincount(values - low) > 0
    position = np.cumsum(present) - 1
    return np.flatnonzero(present) + low, position[values - low]


def _unit_columns_and_rows(cell_index: np.ndarray, entry_class: np.ndarray, weight: np.ndarray, n_cells: int,
                           n_classes: int, columns: np.ndarray | None = None) -> np.ndarray:
    """The weights with every class column (of length `columns`, when given), then every cell row,
    scaled to length one: scaling a column does not change whether it is a combination of the
    others, scaling a row does not change the row space; unit lengths keep B B^T well conditioned."""
    if columns is None:
        columns = np.sqrt(np.bincount(entry_class, weights=weight * weight, minlength=n_classes))
    weight = weight / np.where(columns > 0, columns, 1.0)[entry_class]
    rows = np.sqrt(np.bincount(cell_index, weights=weight * weight, minlength=n_cells))
    return weight / np.where(rows > 0, rows, 1.0)[cell_index]


def _components(cell_index: np.ndarray, entry_class: np.ndarray, n_cells: int, n_classes: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Connected parts of the cells-and-classes graph, as a component per cell and per class: each
    class links its cells through one of them (its anchor)."""
    anchor = np.zeros(n_classes, dtype=np.int64)
    anchor[entry_class] = cell_index  # any of the class's cells
    linked = cell_index.astype(np.int64) * n_cells + anchor[entry_class]
    if n_cells <= 4096:  # each linked pair of cells once, by counting
        pairs = np.flatnonzero(np.bincount(linked, minlength=n_cells * n_cells))
    else:
        pairs = np.unique(linked)
    links = sparse.csr_matrix((np.ones(len(pairs), dtype=np.int32), (pairs // n_cells, pairs % n_cells)),
                              shape=(n_cells, n_cells))
    _, cell_component = connected_components(links, directed=False)
    return cell_component, cell_component[anchor]


def _eigen(by_class: sparse.csr_matrix, rows: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of B B^T (cells x cells) of one component (its cells `rows`,
    its classes with entries `members`)."""
    with _one_thread():  # a few hundred cells: threads only wait for each other on a busy machine
        return np.linalg.eigh(_gram(by_class, rows, members))


def _gram(by_class: sparse.csr_matrix, rows: np.ndarray, members: np.ndarray) -> np.ndarray:
    """B B^T of one component. The sparse product handles each pair of a class's entries on its own;
    blocks of the class rows made dense and multiplied by BLAS do every multiply-add of the cells but
    many times faster each (3-4 times faster in all over the answers of a few queries, where a class
    is in a tenth of the cells; slower for a class in a few hundredths). The cheaper is chosen by
    counting both."""
    entries = np.diff(by_class.indptr)[members].astype(np.float64)
    n_cells = float(len(rows))
    if len(members) * n_cells * (n_cells + _DENSE_NUMBER) < _SPARSE_PAIR * float(entries @ entries):
        return _dense_gram(by_class, rows, members)
    return _sparse_gram(by_class, rows)


def _sparse_gram(by_class: sparse.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """For all cells, B^T is `by_class` as it is (the same numbers as B's transpose, not converted again)."""
    by_cell = by_class.T.tocsr()
    whole = len(rows) == by_cell.shape[0]
    block = by_cell if whole else by_cell[rows]
    return (block @ (by_class if whole else block.T)).toarray()


def _dense_gram(by_class: sparse.csr_matrix, rows: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Summed over blocks of the component's class rows of at most _BLOCK numbers each."""
    whole = len(rows) == by_class.shape[1]
    gram = np.zeros((len(rows), len(rows)))
    step = max(1, _BLOCK // by_class.shape[1])
    for start in range(0, len(members), step):
        chosen = members[start:start + step]
        block = (by_class[chosen[0]:chosen[-1] + 1] if chosen[-1] - chosen[0] + 1 == len(chosen)
                 else by_class[chosen]).toarray()
        if not whole:
            block = block[:, rows]
        gram += block.T @ block
    return gram


def _one_thread():
    """BLAS limited to one thread where threadpoolctl is installed (else as it is)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _basis(n_cells: int, rows: np.ndarray, values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """V diag(1 / sqrt(eigenvalue)) over the eigenvalues that are not zero, as rows of all cells."""
    keep = values > max(values.max(), 0.0) * max(_EIGEN_FLOOR, 10 * len(values) * np.finfo(float).eps)
    basis = np.zeros((n_cells, int(keep.sum())))
    basis[rows] = vectors[:, keep] / np.sqrt(values[keep])
    return basis


def _not_ruled_out(by_class: sparse.csr_matrix, rows: np.ndarray, members: np.ndarray, columns: np.ndarray,
                   values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The chosen classes that random vectors, projected on the null space of B, do not rule out
    (see _RULED_OUT): x = z - B^T basis basis^T B z for random z over the classes of the component,
    a few products with B instead of one with every basis vector per class. The exact leverages
    are computed for the rest only, so the answer is the same. B z is `by_class` transposed as it
    is (each cell's sum over its classes in their order, as in B's rows)."""
    if len(columns) <= _PROBES:
        return columns
    basis = _basis(by_class.shape[1], rows, values, vectors)
    probes = np.zeros((by_class.shape[0], _PROBES))
    probes[members] = np.random.default_rng(_SEED).standard_normal((len(members), _PROBES))
    projected = basis @ (basis.T @ np.asarray(by_class.T @ probes))  # cells x probes
    chosen = by_class[columns] if 4 * len(columns) < by_class.shape[0] else by_class
    residual = np.asarray(chosen @ projected)
    residual = probes[columns] - (residual if chosen is not by_class else residual[columns])
    return columns[np.einsum("ij,ij->i", residual, residual) <= _RULED_OUT * _PROBES]


def _leverages(by_class: sparse.csr_matrix, rows: np.ndarray, columns: np.ndarray, values: np.ndarray,
               vectors: np.ndarray) -> np.ndarray:
    """b_c^T (B B^T)^+ b_c for the chosen class columns of one component (its cells `rows`), from
    the eigenvectors of B B^T (cells x cells): the squared length of each column in the basis
    V diag(1 / sqrt(eigenvalue)), computed a block of columns at a time."""
    basis = _basis(by_class.shape[1], rows, values, vectors)
    chosen = by_class[columns]
    step = max(1, _BLOCK // max(basis.shape[1], 1))
    found = np.empty(len(columns))
    for start in range(0, len(columns), step):
        projected = chosen[start:start + step] @ basis
        found[start:start + step] = np.einsum("ij,ij->i", projected, projected)
    return found
