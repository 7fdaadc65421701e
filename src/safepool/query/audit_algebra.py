"""Which small groups of persons a set of shown sums gives away, found by linear algebra.

A shown cell is a sum over persons of what each contributes to it. Put the contributions of
every shown cell in a matrix A (cells x persons): any combination w of shown values adds up
to sum_p (w^T A)_p, so the answers pin down something about a group of persons alone exactly
when a vector that is zero outside the group lies in the row space of A. Three answers are
enough: "everyone" minus "women but one" minus "men" is one person's value.

Persons whose columns are proportional (in the same cells, contributing in the same ratios)
cannot be told apart by any combination: they form one class, and only a class as a whole can
be given away. Class c (its persons' columns s_p w_c) is given away exactly when the vector u_c
(s_p on its persons, zero elsewhere) lies in the row space, which is when its leverage
u_c^T A^T (A A^T)^+ A u_c / |u_c|^2 equals one; the same as b_c^T (A A^T)^+ b_c for the class
column b_c = w_c |u_c|. A A^T is the cells x cells matrix of what two cells share: small, and
kept between queries, so that a query makes only its own cells' rows. Every cell row is scaled
to length one (which keeps the row space and the given-away classes, and A A^T well
conditioned). Classes of fewer persons than the minimum frequency must never be given away.

The contributions are the persons' real values, not 0/1 memberships: when they are the same
value in every cell, both give the same row space, and the values also catch answers that
weigh one person differently (a sum with and without one person's rows doubled) or split a
person's rows between answers. What no linear audit sees: non-linear combinations (a mean
without its count is a ratio, treated conservatively as both sums shown) and contributions
that happen to be proportional by chance (persons merged into one class are told apart by
no combination of these answers, so merging is never unsafe).

The work is in the persons, not in the classes: random vectors z over the persons projected on
the null space of A tell, at each class, whether it can be given away (below), two sparse
products with A per check and no matrix of the classes to build.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from threadpoolctl import ThreadpoolController

# a class is given away when its leverage is one; a column that is a combination of others
# with coefficients of squared length a has leverage at most 1 - 1/(1 + a)
_LEVERAGE_ONE = 1.0 - 1e-4
_EIGEN_FLOOR = 1e-12  # eigenvalues of A A^T below this share of the largest are zero
_DENSE_CLASSES = 4_000_000  # class columns worked on dense up to this many numbers (32 MB)
# Before the exact leverages, a class is ruled out when PROBES random vectors projected on the
# null space of A have, at the class, a mean square above _RULED_OUT: that mean is (1 - leverage)
# times a chi-square of PROBES degrees over PROBES, so a class with a leverage of _LEVERAGE_ONE or
# more (1 - leverage <= 1e-4) would need a chi-square of 4 degrees above 400 to be ruled out (a
# chance below 1e-84), and a class given away exactly projects to zero every time. A class of
# leverage 0.5 or less stays in with a chance below 1e-3 (its leverage is then computed). After
# the demo's ten questions at 300,000 persons about 30 of 165,000 small classes stay in, against
# 12 with 8 probes and a bound of 0.05, whose passes over the persons took twice as long.
PROBES = 4
_DENSE_ROWS = 8  # cells of a question made dense over the persons for their products, up to this many
_RULED_OUT = 0.01
_BLAS: list[ThreadpoolController] = []  # NumPy's BLAS library, found at the first `one_blas_thread`


@dataclass(frozen=True)
class PersonClasses:
    """Persons compressed by their pattern over the cells (proportional contributions)."""

    of_person: np.ndarray  # the class of each person, numbered 0..classes-1
    size: np.ndarray       # persons in each class
    scale: np.ndarray      # each person's contributions are its scale times its class's weights
    weight: np.ndarray     # each class's persons' scales squared, summed (|u_c|^2)


@dataclass(frozen=True)
class Contributions:
    """What the persons contribute to every cell: remembered cells 1..R as rows of `remembered`
    (R x persons; a row of zeros for a cell left out, such as a sum of other cells), incoming
    cells R+1..R+K as rows of `incoming`, and A A^T of the remembered cells when it is known."""

    remembered: sparse.csr_matrix
    incoming: sparse.csr_matrix
    known_gram: np.ndarray | None = None
    known_shown: np.ndarray | None = None  # the remembered cells' rows of A z, for the probes z, when known


@dataclass(frozen=True)
class Audit:
    """What the algebra found: the classes given away, and A A^T over every cell (numbered from 1)
    and A z when the probes were used, for the caller to keep, so that the next audit makes only
    the new cells' rows."""

    given_away: int
    gram: np.ndarray
    shown: np.ndarray | None = None
    # set by the ledger's memory (`safepool.query.empty_differences`): dependencies among the cells
    # that their definitions do not imply, and the rank of A A^T
    empty_differences: int = 0
    rank: int | None = None
    # set by the ledger's memory (`safepool.query.group_audit`): the dimension of the combinations
    # concentrated on fewer persons than the minimum frequency, and how much the new cells add to it and
    # to the families' and rows' audits (above zero exactly when they add anything: a study's rows
    # are audited only when the rest adds nothing)
    pinned: tuple[int, int] | None = None  # (the minimum frequency, the dimension)
    groups_given_away: int = 0
    # of the incoming cells that complete a family or a study's row found giving away (each family's
    # highest-numbered incoming cell, the row's own), the lowest: where a search likely finds the first
    completing: int | None = None


def audit(contributions: Contributions, classes: PersonClasses, probes: Callable[[], np.ndarray],
          min_frequency: int) -> Audit:
    """How many classes of 1 to min_frequency - 1 persons the cells give away; `probes()` gives
    PROBES random numbers per person (standard normal), asked for only when needed. Few classes
    (their columns fit in _DENSE_CLASSES numbers) are worked on as dense class columns; many (once
    sums of money are shown nearly every person is a class of its own) in the persons, with the
    probes. BLAS runs on this thread alone: a few hundred cells leave its other threads only
    waiting, and their waiting takes the core (or its other half) the audit runs on."""
    with one_blas_thread():
        small = np.flatnonzero((classes.size > 0) & (classes.size < min_frequency))
        n_cells = contributions.remembered.shape[0] + contributions.incoming.shape[0]
        columns, shown = None, None
        if n_cells * len(classes.size) <= _DENSE_CLASSES:
            columns = _columns(contributions, classes, np.arange(len(classes.size)))
            gram = _gram_of_columns(contributions.known_gram, columns)
        else:
            drawn = probes() if small.size > PROBES else None
            gram, shown = _gram(contributions, drawn)
        rows = np.flatnonzero(np.diag(gram) > 0)  # cells with an entry that is not zero
        if small.size == 0 or rows.size == 0:
            return Audit(0, gram, shown)
        scale = 1.0 / np.sqrt(np.diag(gram)[rows])
        values, vectors = np.linalg.eigh(gram[np.ix_(rows, rows)] * np.outer(scale, scale))
        basis = _basis(values, vectors) * scale[:, None]  # D V diag(1 / sqrt(eigenvalue)): A A^T's pseudo-inverse root
        if columns is not None:
            chosen = columns[np.ix_(rows, small)]
        else:
            small = _not_ruled_out(contributions, classes, drawn, shown, rows, basis, small) if drawn is not None \
                else small
            chosen = _columns(contributions, classes, small)[rows]
        projected = basis.T @ chosen  # b_c^T (A A^T)^+ b_c: each column's squared length in the basis
        return Audit(int((np.einsum("ij,ij->j", projected, projected) >= _LEVERAGE_ONE).sum()), gram, shown)


def _gram(contributions: Contributions, probes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """A A^T over every cell (the known rows kept, the others made; all of them when none is known)
    and, with `probes`, A z (the remembered cells' rows kept when known)."""
    old, new = contributions.remembered, contributions.incoming
    n_old, n_new = old.shape[0], new.shape[0]
    gram = np.empty((n_old + n_new, n_old + n_new))
    gram[:n_old, :n_old] = products(old, old) if contributions.known_gram is None else contributions.known_gram
    across = products(new, old)
    gram[n_old:, :n_old] = across
    gram[:n_old, n_old:] = across.T
    gram[n_old:, n_old:] = products(new, new)
    if probes is None:
        return gram, None
    known = contributions.known_shown
    return gram, np.concatenate([old @ probes if known is None else known, new @ probes])


def products(rows: sparse.csr_matrix, other: sparse.csr_matrix) -> np.ndarray:
    """rows @ other^T as a dense array (rows x other's rows), by a product that goes over `other`
    once, each of its entries meeting the entries of `rows` of the same person: with `rows` as
    dense persons-long columns when they are few (a question of a few cells: one multiply-add per
    entry and column, no sparse result to build), else turned to a sparse persons x rows matrix (a
    person is in a few cells, so this is fewer multiply-adds than dense columns, which also cost
    more to make than they save; measured on the demo's ten questions at 300,000 persons)."""
    if rows.shape[0] == 0 or other.shape[0] == 0:
        return np.zeros((rows.shape[0], other.shape[0]))
    if rows.shape[0] <= _DENSE_ROWS:  # the rows of a question of a few cells
        return np.asarray(other @ rows.T.toarray()).T
    return np.asarray((other @ rows.T.tocsr()).todense()).T


def one_blas_thread() -> AbstractContextManager[Any]:
    """BLAS limited to one thread inside the `with` block (for every thread of the process: the
    limit is the library's). The library is found once per process: finding it walks every library
    the process loaded (1-12 ms, the more the later in a query's process), where setting the limit
    takes hundredths of a millisecond."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController().select(user_api="blas"))
    return _BLAS[0].limit(limits=1)


def nonzero_eigenvalues(values: np.ndarray) -> np.ndarray:
    """Which eigenvalues of a Gram matrix (rows scaled to length one) are not zero: those above
    _EIGEN_FLOOR of the largest, or the rounding of a matrix of that size."""
    return values > max(values.max(), 0.0) * max(_EIGEN_FLOOR, 10 * len(values) * np.finfo(float).eps)


def _basis(values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """V diag(1 / sqrt(eigenvalue)) over the eigenvalues that are not zero."""
    keep = nonzero_eigenvalues(values)
    return vectors[:, keep] / np.sqrt(values[keep])


def _not_ruled_out(contributions: Contributions, classes: PersonClasses, probes: np.ndarray, shown: np.ndarray,
                   rows: np.ndarray, basis: np.ndarray, small: np.ndarray) -> np.ndarray:
    """The small classes that the probes, projected on the null space of A, do not rule out (see
    _RULED_OUT): x = z - A^T (A A^T)^+ A z for the random z over the persons (`shown`: A z), and at
    class c the sum of s_p x_p over its persons, over |u_c|. Two products with A and none per
    class; the exact leverages are computed for the rest only, so the answer is the same."""
    old, new = contributions.remembered, contributions.incoming
    n_old = old.shape[0]
    back = np.zeros((n_old + new.shape[0], probes.shape[1]))
    back[rows] = basis @ (basis.T @ shown[rows])  # (A A^T)^+ A z
    residual = old.T @ back[:n_old]
    if new.shape[0]:
        residual += new.T @ back[n_old:]
    np.subtract(probes, residual, out=residual)
    persons = len(classes.of_person)
    of_class = sparse.csc_matrix((classes.scale, classes.of_person, np.arange(persons + 1)),
                                 shape=(len(classes.size), persons))  # classes x persons: s_p at the person's class
    squares = np.einsum("ij,ij->i", at := of_class @ residual, at) / classes.weight
    return small[squares[small] <= _RULED_OUT * probes.shape[1]]


def _columns(contributions: Contributions, classes: PersonClasses, chosen: np.ndarray) -> np.ndarray:
    """The class columns b_c = w_c |u_c| of the chosen classes over every cell (cells x chosen), from
    one person of each: its column over its scale is the class's weights w_c."""
    person = np.empty(len(classes.size), dtype=np.int64)
    person[classes.of_person] = np.arange(len(classes.of_person))  # any person of each class
    who = person[chosen]
    found = sparse.vstack([contributions.remembered[:, who], contributions.incoming[:, who]]).toarray()
    return found * (np.sqrt(classes.weight[chosen]) / classes.scale[who])


def _gram_of_columns(known: np.ndarray | None, columns: np.ndarray) -> np.ndarray:
    """A A^T from the class columns (B B^T = A A^T: a class's column is its persons' outer products
    summed); the known rows kept."""
    if known is None:
        return columns @ columns.T
    gram = np.empty((len(columns), len(columns)))
    n_old = len(known)
    gram[:n_old, :n_old] = known
    gram[n_old:] = columns[n_old:] @ columns.T
    gram[:n_old, n_old:] = gram[n_old:, :n_old].T
    return gram
