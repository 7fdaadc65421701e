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
b_c^T (B B^T)^+ b_c equals one (B: the class columns, each weighted by its persons, with every
cell row scaled to length one; B B^T is the cells x cells matrix of what two cells share; no
scaling of rows or columns changes which classes are given away). Classes of fewer persons than
the minimum frequency must never be given away.

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
    # what the persons of each class weigh together: the sum of their scales squared (a person
    # contributes its scale times its class's weights; None: every person's scale is one)
    class_weight: np.ndarray | None = None
    # the persons' B B^T over the cells numbered 1..len(known_gram), kept from earlier queries
    # (rows and columns of cells without entries are zero); None: made here for every cell
    known_gram: np.ndarray | None = None

    @classmethod
    def from_entries(cls, entry_class: np.ndarray, entry_cell: np.ndarray, entry_weight: np.ndarray,
                     entry_size: np.ndarray) -> PersonClasses:
        """From entries that each carry their class's size."""
        entry_class = np.asarray(entry_class, dtype=np.int64)
        size = np.zeros(entry_class.max() + 1 if entry_class.size else 0, dtype=np.int64)
        size[entry_class] = np.asarray(entry_size, dtype=np.int64)
        return cls(entry_class, np.asarray(entry_cell, dtype=np.int64), np.asarray(entry_weight, dtype=float), size)


@dataclass(frozen=True)
class Audit:
    """What the algebra found: the classes given away, and the persons' B B^T over the cells (their
    numbers in order) for the caller to keep, so that the next audit makes only the new cells' rows."""

    given_away: int
    cells: np.ndarray
    gram: np.ndarray


def given_away(classes: PersonClasses, new_cells: np.ndarray, min_frequency: int) -> int:
    """How many classes of 1 to min_frequency - 1 persons the cells give away (see `audit`)."""
    return audit(classes, new_cells, min_frequency).given_away


def audit(classes: PersonClasses, new_cells: np.ndarray, min_frequency: int) -> Audit:
    """See `_audit`; BLAS runs on this thread alone: a few hundred cells leave its other threads
    only waiting, and their waiting takes the core (or its other half) the audit runs on."""
    with _one_thread():
        return _audit(classes, new_cells, min_frequency)


def _audit(classes: PersonClasses, new_cells: np.ndarray, min_frequency: int) -> Audit:
    """How many classes of 1 to min_frequency - 1 persons the cells give away, looking only at the
    parts of the cells-and-persons graph that hold a new cell (the rest was checked before).

    B B^T is the persons' (each class column weighted by the square root of its class weight), so
    it is the sum over persons of their contributions' outer products: it does not change when
    later cells split a class, and the rows of the cells in `classes.known_gram` are taken from
    it. Then every cell row is scaled to length one (which keeps the row space and the given-away
    classes, and B B^T well conditioned)."""
    if classes.entry_class.size == 0:
        return Audit(0, np.empty(0, dtype=np.int64), np.zeros((0, 0)))
    cells, cell_index = _numbered(classes.entry_cell)
    n_cells, n_classes = len(cells), len(classes.size)
    class_weight = classes.size.astype(float) if classes.class_weight is None else classes.class_weight
    by_class = sparse.csr_matrix((classes.entry_weight * np.sqrt(class_weight)[classes.entry_class],
                                  (classes.entry_class, cell_index)), shape=(n_classes, n_cells))
    known = classes.known_gram
    n_known = 0 if known is None else int(np.searchsorted(cells, len(known), side="right"))
    gram = np.empty((n_cells, n_cells))
    if n_known:
        gram[:n_known, :n_known] = known[np.ix_(cells[:n_known] - 1, cells[:n_known] - 1)]
    if n_known < n_cells:
        fresh = _gram_rows(by_class, n_known)
        gram[n_known:] = fresh
        gram[:n_known, n_known:] = fresh[:, :n_known].T
    found = Audit(0, cells, gram)
    cell_component, class_component = _components(by_class)
    touched = np.unique(cell_component[np.isin(cells, new_cells)])
    small = (classes.size > 0) & (classes.size < min_frequency)
    if not np.any(small & np.isin(class_component, touched)):
        return found
    scale = 1.0 / np.sqrt(np.diag(gram))  # every cell has an entry that is not zero
    by_class.data *= scale[by_class.indices]
    scaled = gram * np.outer(scale, scale)
    with_entries = np.diff(by_class.indptr) > 0
    given = 0
    for label in touched:
        candidates = np.flatnonzero(small & (class_component == label))
        if candidates.size:
            rows = np.flatnonzero(cell_component == label)
            members = np.flatnonzero(with_entries & (class_component == label))
            values, vectors = np.linalg.eigh(scaled[np.ix_(rows, rows)])
            candidates = _not_ruled_out(by_class, rows, members, candidates, values, vectors)
            if candidates.size:
                given += int((_leverages(by_class, rows, candidates, values, vectors) >= _LEVERAGE_ONE).sum())
    return Audit(given, cells, gram)


def _numbered(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values in order and the position of each value among them, by counting (cell
    numbers lie in a narrow range, so this is linear where sorting would not be)."""
    low = values.min()
    present = np.bincount(values - low) > 0
    position = np.cumsum(present) - 1
    return np.flatnonzero(present) + low, position[values - low]


def _components(by_class: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Connected parts of the cells-and-classes graph (classes x cells), as a component per cell
    and per class: each class links its cells through the first of them (its anchor)."""
    n_cells = by_class.shape[1]
    lengths = np.diff(by_class.indptr)
    anchor = np.zeros(by_class.shape[0], dtype=np.int64)
    anchor[lengths > 0] = by_class.indices[by_class.indptr[:-1][lengths > 0]]
    linked = by_class.indices.astype(np.int64) * n_cells + np.repeat(anchor, lengths)
    if n_cells <= 4096:  # each linked pair of cells once, by counting
        pairs = np.flatnonzero(np.bincount(linked, minlength=n_cells * n_cells))
    else:
        pairs = np.unique(linked)
    links = sparse.csr_matrix((np.ones(len(pairs), dtype=np.int32), (pairs // n_cells, pairs % n_cells)),
                              shape=(n_cells, n_cells))
    _, cell_component = connected_components(links, directed=False)
    return cell_component, cell_component[anchor]


def _gram_rows(by_class: sparse.csr_matrix, start: int) -> np.ndarray:
    """Rows start.. of B B^T (cells x cells), from the classes with entries in those cells. The
    sparse product handles each pair of a class's entries on its own; blocks of the class rows made
    dense and multiplied by BLAS do every multiply-add but many times faster each (3-4 times faster
    in all where a class is in a tenth of the cells; slower for a class in a few hundredths). The
    cheaper is chosen by counting both."""
    n_cells = by_class.shape[1]
    part = by_class[:, start:] if start else by_class
    entries = np.diff(by_class.indptr).astype(np.float64)
    in_part = np.diff(part.indptr).astype(np.float64)
    chosen = np.flatnonzero(in_part > 0)
    if len(chosen) * float(n_cells) * (n_cells - start + _DENSE_NUMBER) < _SPARSE_PAIR * float(in_part @ entries):
        return _dense_gram_rows(by_class, chosen, start)
    return (part.T.tocsr() @ by_class).toarray()


def _dense_gram_rows(by_class: sparse.csr_matrix, chosen: np.ndarray, start: int) -> np.ndarray:
    """Summed over blocks of the chosen class rows of at most _BLOCK numbers each."""
    n_cells = by_class.shape[1]
    gram = np.zeros((n_cells - start, n_cells))
    step = max(1, _BLOCK // n_cells)
    for first in range(0, len(chosen), step):
        rows = chosen[first:first + step]
        block = (by_class[rows[0]:rows[-1] + 1] if rows[-1] - rows[0] + 1 == len(rows) else by_class[rows]).toarray()
        gram += block[:, start:].T @ block
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
