"""Which groups of fewer persons than the minimum frequency the shown cells pin down together.

The all-answers audit (`safepool.query.audit_algebra`) finds the classes of persons that no
combination of answers tells apart and that a combination gives away alone. A group of a few
persons can be given away without any of its classes: a count and a sum over women speaking
Kurdish, the same born before 1955, and the same born later outside one district leave four
women of that district whose number and sum of children follow by subtraction. Their values
differ (so each is a class of its own), and another answer (persons by year of birth) puts them
in different cells, so no class and no set of persons in the same cells is given away.

This audit looks at who is in each cell of a set whose memberships tell what its values tell:
the count cells (`ledger_memory._alike`: a cell whose persons' values are all one value), or a
family of sums whose persons contribute the same amount to each (`safepool.query.value_families`).
A count and a sum are not taken together, so that a group pinned down and an empty one are found
alike, the empty one by `safepool.query.empty_differences`. A combination of the cells'
memberships that is one on a group G and zero elsewhere (1_G in their row space R) tells the
number of persons in G and, with the same combination of the sums beside the counts (or of a
family's sums), their sum; G must then hold at least the minimum frequency k. Persons in the same cells (a membership
group) are never told apart, so G is made of whole membership groups, each of fewer than k
persons.

Finding the smallest support in a subspace is hard in general; what makes this one tractable
is that each person p of such a G has a leverage of at least 1/|G| > 1/k in any subspace of R
that holds 1_G (the squared length of 1_G / sqrt|G| at p). So: W is R restricted to persons
of small membership groups (the combinations that are zero on every group of k or more persons),
persons whose leverage in W is below 1/(k - 1) are dropped (no G of fewer than k persons holds
them), W is restricted to the rest, and so on until no one is dropped. What is left is either
nothing (no group of fewer than k persons is pinned down) or a subspace every person of which
has a leverage of at least 1/(k - 1), a few persons on whom combinations of the answers are
concentrated. That one is searched union by union of its groups for a combination zero outside
fewer than k persons (`_small_support`), or, past `_SEARCHED` unions of one size, taken as giving
one away. This is exact for combinations that weigh every person of a group alike (+1 or -1: set
differences, however many answers they take); unequal weights are left to the class audit,
which checks single persons. Only the first W is made from the cells (one product over the
small groups' memberships); each later one is the last one restricted, from its own basis.

The rows are over members, and a member is usually a person. A study names some persons by their
parts: a control matched in two sets at other times has two baseline values, or its rows in two
quarters, each a member of its own. A group counts its persons, each once (`group_persons`): five
members of four persons in the same cells are a group of four. Not covered: one person's parts
in different groups of one union count once in each (a union's size is its groups' sizes added up,
as the leverage bound above needs).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import sparse

from safepool.query.audit_algebra import nonzero_eigenvalues
from safepool.query.deadline import AUDIT_STEP, time_left

_KEPT_LEVERAGE = 1.0 - 1e-6  # a leverage of 1/(k - 1) up to rounding keeps its person
_SEARCHED = 20_000           # unions of groups tried for a combination that is zero outside them
_CANCELLED = 1e-12           # the squared length of a combination of rows of length one that is zero
_NULL_MASS = 1e-9            # a combination with no more of its squared length on the dropped persons is zero there


def pinned(cell: np.ndarray, group: np.ndarray, group_size: np.ndarray, min_frequency: int) -> int:
    """The dimension of the combinations of cells that are concentrated on fewer persons than
    `min_frequency` (zero when none is): `cell` and `group` are the memberships of each group
    (one row per cell a group's persons are in: the cell's row number and the group's number),
    `group_size` the persons in each group (`group_persons`).

    The dimension is a function of these arrays alone, and a check's search asks it again and
    again of the same ones (each audit of a prefix takes every family and the counts afresh, most
    of them unchanged): it is remembered by a digest of them (`_FOUND`). At 2,000 persons 96% of a
    study's 7,000 group audits were repeats, 68 of its 71 seconds."""
    if min_frequency < 2 or not len(cell):
        return 0
    cell, group = np.asarray(cell, dtype=np.int64), np.asarray(group, dtype=np.int64)
    group_size = np.asarray(group_size, dtype=np.int64)
    return _FOUND.get(_digest(cell, group, group_size, min_frequency),
                      lambda: _dimension(cell, group, group_size, min_frequency))


class _Remembered:
    """The dimensions found, by the digest of what they were found of, the most recently used kept
    (a bounded dictionary under a lock: the audits of several queries may run in one process)."""

    def __init__(self, size: int) -> None:
        self._size, self._found, self._lock = size, OrderedDict[bytes, int](), threading.Lock()

    def get(self, key: bytes, find: Callable[[], int]) -> int:
        with self._lock:
            if key in self._found:
                self._found.move_to_end(key)
                return self._found[key]
        found = find()
        with self._lock:
            self._found[key] = found
            while len(self._found) > self._size:
                self._found.popitem(last=False)
        return found


_FOUND = _Remembered(65_536)  # 16-byte digests and small numbers: a few megabytes at most


def _digest(cell: np.ndarray, group: np.ndarray, group_size: np.ndarray, min_frequency: int) -> bytes:
    """A digest of a group audit's input, each array with its length (so that no two inputs share one)."""
    digest = hashlib.blake2b(str((len(cell), len(group), len(group_size), min_frequency)).encode(), digest_size=16)
    for array in (cell, group, group_size):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


def _dimension(cell: np.ndarray, group: np.ndarray, group_size: np.ndarray, min_frequency: int) -> int:
    """`pinned`, found."""
    rows = _distinct_rows(_memberships(cell, group, len(group_size)))
    small = group_size < min_frequency
    if not small.any():
        return 0
    basis = _restricted(rows, group_size, small)
    kept = np.flatnonzero(small)
    while basis.shape[1]:
        time_left(AUDIT_STEP)
        leverage = np.einsum("ij,ij->i", basis, basis) / group_size[kept]
        keep = leverage >= _KEPT_LEVERAGE / (min_frequency - 1)
        if keep.all():
            return basis.shape[1] if _small_support(basis, group_size[kept], min_frequency) else 0
        basis = basis[keep] @ _null_space(basis[~keep])
        kept = kept[keep]
    return 0


def group_persons(group: np.ndarray, person: np.ndarray, groups: int) -> np.ndarray:
    """The persons in each of `groups` groups, from each member's group and a code of its person (any
    numbers): a person of several members in one group counts once."""
    person, persons = pd.factorize(np.asarray(person))
    width = max(len(persons), 1)
    pairs = np.unique(np.asarray(group, dtype=np.int64) * width + person)  # each (group, person) once
    return np.bincount(pairs // width, minlength=groups)


def _small_support(basis: np.ndarray, size: np.ndarray, min_frequency: int) -> bool:
    """Whether a combination of the basis (groups x dimension, orthonormal) is zero outside some
    groups of fewer than `min_frequency` persons in all: when the largest eigenvalue of those groups'
    rows' Gram matrix is one (all of a unit combination's length on them). The unions of groups are
    tried by their number of groups while there are at most `_SEARCHED` of a number; beyond, the
    subspace is taken as giving some away (it is concentrated on few persons, see the module)."""
    leverage = np.einsum("ij,ij->i", basis, basis)
    for held in range(1, min(len(size), min_frequency - 1) + 1):
        count = math.comb(len(size), held)
        if count > _SEARCHED:
            return True
        unions = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(len(size)), held)),
                             dtype=np.int64, count=count * held).reshape(-1, held)
        # the largest eigenvalue is at most the trace, the union's leverages added up: a union of less
        # than one cannot hold a unit combination (most of them, whose eigenvalues took most of a search;
        # twice the margin below, for the rounding of the two sums)
        unions = unions[(size[unions].sum(axis=1) < min_frequency)
                        & (leverage[unions].sum(axis=1) >= 1.0 - 2 * _NULL_MASS)]
        for chunk in range(0, len(unions), 4096):
            time_left(AUDIT_STEP)
            rows = basis[unions[chunk:chunk + 4096]]  # unions x groups x dimension
            if (np.linalg.eigvalsh(np.matmul(rows, rows.transpose(0, 2, 1)))[:, -1] >= 1.0 - _NULL_MASS).any():
                return True
    return False


def _memberships(cell: np.ndarray, group: np.ndarray, groups: int) -> sparse.csr_matrix:
    """The cells x groups matrix of the memberships (a group once in each of its cells), made from
    them in the order of their cells (as the ledger hands them over) without sorting each row's
    groups: the rows' products add up whole numbers, exactly in any order, and `_distinct_rows`
    compares rows whatever their order (sorting the groups of every row took 10-15 ms of a
    question's audit of half a million memberships)."""
    if np.any(cell[1:] < cell[:-1]):
        order = np.argsort(cell, kind="stable")
        cell, group = cell[order], group[order]
    bounds = np.searchsorted(cell, np.arange(int(cell.max()) + 2))
    return sparse.csr_matrix((np.ones(len(cell)), group, bounds), shape=(len(bounds) - 1, groups))


def _distinct_rows(memberships: sparse.csr_matrix) -> sparse.csr_matrix:
    """The cells' rows without empty ones and repeats (a count and a sum of the same persons have
    one membership), which would only add combinations of zero. A row's groups are summed up as
    hashes (in any order, no sort of the row), and rows of the same sum and size are compared in
    full, sorted (a few hundred cells)."""
    indptr, indices = memberships.indptr, memberships.indices
    sizes = np.diff(indptr)
    filled = np.flatnonzero(sizes)
    hashed = np.add.reduceat(pd.util.hash_array(indices), indptr[filled]) if len(filled) else filled
    first: dict[tuple[int, int], list[int]] = {}  # (hash, size) -> the distinct rows of that sum and size
    kept = []
    for row, key in zip(filled.tolist(), zip(hashed.tolist(), sizes[filled].tolist())):
        seen = first.setdefault(key, [])
        if not any(np.array_equal(_groups_of(memberships, row), _groups_of(memberships, other)) for other in seen):
            seen.append(row)
            kept.append(row)
    return memberships[kept]


def _groups_of(memberships: sparse.csr_matrix, row: int) -> np.ndarray:
    """A row's groups, sorted."""
    return np.sort(memberships.indices[memberships.indptr[row]:memberships.indptr[row + 1]])


def _restricted(rows: sparse.csr_matrix, group_size: np.ndarray, small: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the row space restricted to the small groups' persons (small groups x
    dimension), in coordinates where a group's entry is its value times the root of its size (so
    that the persons' squared lengths add up): the combinations w with no person outside them
    (A_L^T w = 0, the null space of A_L A_L^T) make A_S^T w."""
    large = rows[:, ~small]
    gram = (large.multiply(group_size[~small]) @ large.T).toarray()
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0  # a cell of small groups only: every combination of it is outside A_L
    values, vectors = np.linalg.eigh(gram / np.outer(scale, scale))
    null = vectors[:, ~nonzero_eigenvalues(values)] / scale[:, None]
    if not null.shape[1]:
        return np.zeros((int(small.sum()), 0))
    restricted = np.asarray(rows[:, small].T @ null) * np.sqrt(group_size[small])[:, None]
    values, vectors = np.linalg.eigh(restricted.T @ restricted)
    # a unit combination of rows of length one that cancels (b + c - their total) leaves rounding:
    # its squared length is absolute, not relative to the largest
    keep = nonzero_eigenvalues(values) & (values > _CANCELLED)
    return restricted @ (vectors[:, keep] / np.sqrt(values[keep]))


def _null_space(basis: np.ndarray) -> np.ndarray:
    """The unit combinations of the columns of an orthonormal basis that are zero on `basis`, its
    rows of the dropped persons (their squared length there is an eigenvalue of its Gram matrix)."""
    values, vectors = np.linalg.eigh(basis.T @ basis)
    return vectors[:, values <= _NULL_MASS]
