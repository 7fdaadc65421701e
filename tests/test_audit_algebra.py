"""The differencing algebra finds the same classes whichever way it multiplies.

B B^T (cells x cells) is made either by a sparse product or from dense blocks of class rows,
whichever is cheaper; the two sum in another order, so they agree to rounding only. On generated
answers (random groups, unions and complements of them, repeated cells, several components, values
with zeros and ties, groups of 1 to 5 persons singled out by three answers) both must give away
exactly the classes that a rank count over the dense class columns gives away.
"""

from __future__ import annotations

import numpy as np
import pytest

from safepool.query import audit_algebra
from safepool.query.audit_algebra import given_away
from safepool.query.ledger_memory import LedgerMemory

MIN_FREQUENCY = 5


def answers(rng: np.random.Generator) -> list[np.ndarray]:
    """Cells as vectors over persons (NaN: not in the cell), made the way differencing attacks are."""
    persons = int(rng.integers(8, 60))
    values = rng.choice([1.0, 1.0, 2.0, 0.0, 3.5], persons) if rng.random() < 0.5 else np.ones(persons)
    groups = [rng.random(persons) < rng.uniform(0.2, 0.9) for _ in range(int(rng.integers(1, 8)))]
    for _ in range(int(rng.integers(0, 6))):
        a, b = (groups[int(i)] for i in rng.integers(0, len(groups), 2))
        groups.append(rng.choice([a | b, a & ~b, ~a, a.copy()]))
    if rng.random() < 0.5:  # everyone, everyone but a few of one group, the other group
        few = int(rng.integers(1, 6))
        women = rng.random(persons) < 0.5
        left_out = np.flatnonzero(women)[:few]
        some = women.copy()
        some[left_out] = False
        groups += [np.ones(persons, dtype=bool), some, ~women]
    if rng.random() < 0.3:  # a second component: persons no other cell holds
        extra = rng.random(12) < 0.6
        values = np.r_[values, np.ones(12)]
        groups = [np.r_[g, np.zeros(12, dtype=bool)] for g in groups] + [np.r_[np.zeros(persons, dtype=bool), extra],
                                                                          np.r_[np.zeros(persons, dtype=bool), ~extra]]
    return [np.where(g, values, np.nan) for g in groups if g.any()]


def classes_of(cells: list[np.ndarray]):
    """The cells' persons compressed into classes, as the ledger's memory makes them."""
    cell = np.concatenate([np.full(int((~np.isnan(v)).sum()), i + 1) for i, v in enumerate(cells)])
    person = np.concatenate([np.flatnonzero(~np.isnan(v)) for v in cells]).astype(np.uint64)
    value = np.concatenate([v[~np.isnan(v)] for v in cells])
    return LedgerMemory(("P", 0, 0, "")).classes(cell, person, value), np.arange(1, len(cells) + 1)


def by_rank(classes) -> int:
    """Small classes whose column is no combination of the others: removing it lowers the rank."""
    columns = np.zeros((len(classes.size), int(classes.entry_cell.max()) + 1))
    columns[classes.entry_class, classes.entry_cell] = classes.entry_weight
    rank = np.linalg.matrix_rank(columns)
    return sum(1 for c in np.flatnonzero((classes.size > 0) & (classes.size < MIN_FREQUENCY))
               if np.linalg.matrix_rank(np.delete(columns, c, axis=0)) < rank)


@pytest.mark.parametrize("seed", range(6))
def test_dense_and_sparse_products_give_away_the_same_classes(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(audit_algebra, "_BLOCK", 40)  # several blocks, some of classes not in a row
    found = []
    for _ in range(40):
        classes, cells = classes_of(answers(rng))
        expected = by_rank(classes)
        for sparse_pair in (0, 10**9):  # always sparse, always dense
            monkeypatch.setattr(audit_algebra, "_SPARSE_PAIR", sparse_pair)
            assert given_away(classes, cells, MIN_FREQUENCY) == expected
        found.append(expected)
    assert any(found) and not all(found)  # the cases hold both given-away classes and none


@pytest.mark.parametrize("start", [0, 1, 3])
def test_both_products_make_the_same_rows(monkeypatch, start):
    monkeypatch.setattr(audit_algebra, "_BLOCK", 100)
    classes, _ = classes_of(answers(np.random.default_rng(11)))
    cells, cell_index = audit_algebra._numbered(classes.entry_cell)
    from scipy import sparse
    by_class = sparse.csr_matrix((classes.entry_weight, (classes.entry_class, cell_index)),
                                 shape=(len(classes.size), len(cells)))
    dense = by_class.toarray()
    expected = dense[:, start:].T @ dense
    for sparse_pair in (0, 10**9):  # always sparse, always dense
        monkeypatch.setattr(audit_algebra, "_SPARSE_PAIR", sparse_pair)
        np.testing.assert_allclose(audit_algebra._gram_rows(by_class, start), expected, atol=1e-12)


def test_three_answers_give_away_one_person_either_way(monkeypatch):
    women = np.r_[np.ones(30), np.zeros(30)].astype(bool)
    everyone = np.full(60, 2.0)
    cells = [everyone, np.where(women & (np.arange(60) != 3), everyone, np.nan), np.where(~women, everyone, np.nan)]
    classes, numbers = classes_of(cells)
    for sparse_pair in (0, 10**9):
        monkeypatch.setattr(audit_algebra, "_SPARSE_PAIR", sparse_pair)
        assert given_away(classes, numbers, MIN_FREQUENCY) == 1
        assert given_away(*classes_of([everyone, np.where(np.arange(60) != 3, everyone, np.nan)]),
                          MIN_FREQUENCY) == 1  # with and without one person
        assert given_away(*classes_of([cells[0], cells[2]]), MIN_FREQUENCY) == 0
