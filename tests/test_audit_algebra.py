"""The differencing algebra finds exactly the classes a rank count finds, whichever way it works.

A A^T (cells x cells) is made by sparse products of the cells' rows; classes are ruled out by
random probes before their exact leverages are computed. On generated answers
(random groups, unions and complements of them, repeated cells, several components, values with
zeros and ties, groups of 1 to 5 persons singled out by three answers), some cells remembered
and the rest incoming, every way must give away exactly the classes that a rank count over the
dense class columns gives away, with the classes made here from the rows alone: worked on as
dense class columns (few classes) and in the persons (many).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from safepool.query import audit_algebra
from safepool.query.ledger_memory import LedgerMemory

MIN_FREQUENCY = 5
KEY = ("P", 0, 0, "")


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


def rows_of(cells: list[np.ndarray], first: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells as ledger rows (cell numbered from `first`, person, value), sorted by cell and person."""
    cell = np.concatenate([np.full(int((~np.isnan(v)).sum()), first + i) for i, v in enumerate(cells)])
    person = np.concatenate([np.flatnonzero(~np.isnan(v)) for v in cells]).astype(np.uint64)
    value = np.concatenate([v[~np.isnan(v)] for v in cells])
    return cell.astype(np.int64), person, value


def by_rank(cell: np.ndarray, person: np.ndarray, value: np.ndarray, left_out: np.ndarray = ()) -> int:
    """Small classes whose column is no combination of the others (removing it lowers the rank),
    made from the rows alone: a person counts by membership while all its values are zero, else by
    its values; persons whose rows are proportional form a class; cells `left_out` (sums of others)
    count in the classes but not in the rank."""
    persons = np.unique(person)
    at = np.searchsorted(persons, person)
    values = np.zeros((len(persons), int(cell.max()) + 1))
    values[at, cell] = value
    member = np.zeros_like(values, dtype=bool)
    member[at, cell] = True
    all_zero = ~np.any(values != 0, axis=1)
    values[all_zero] = member[all_zero]
    first = values[np.arange(len(persons)), np.argmax(values != 0, axis=1)]
    keys = [tuple(np.round(row / f, 9) + 0.0) for row, f in zip(values, first)]
    classes: dict[tuple, int] = {}
    for key in keys:
        classes[key] = classes.get(key, 0) + 1
    columns = np.array(list(classes))
    columns[:, np.asarray(left_out, dtype=np.int64)] = 0.0
    rank = np.linalg.matrix_rank(columns)
    return sum(1 for c, size in enumerate(classes.values())
               if size < MIN_FREQUENCY and np.linalg.matrix_rank(np.delete(columns, c, axis=0)) < rank)


def audited(cells: list[np.ndarray], remembered: int) -> int:
    """The first `remembered` cells remembered (audited and added, as the ledger does), the rest
    audited as incoming: how many classes the audit gives away."""
    memory = LedgerMemory(KEY)
    if remembered:
        memory.audit(*rows_of(cells[:remembered]), MIN_FREQUENCY)
        memory.add(*rows_of(cells[:remembered]))
    return memory.audit(*rows_of(cells[remembered:], remembered + 1), MIN_FREQUENCY).given_away


@pytest.mark.parametrize("seed", range(6))
def test_every_way_gives_away_the_classes_a_rank_count_finds(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(40):
        cells = answers(rng)
        expected = by_rank(*rows_of(cells))
        remembered = int(rng.integers(0, len(cells)))
        for dense_classes in (10**9, 0):  # as class columns; in the persons
            monkeypatch.setattr(audit_algebra, "_DENSE_CLASSES", dense_classes)
            assert audited(cells, remembered) == expected
        found.append(expected)
    assert any(found) and not all(found)  # the cases hold both given-away classes and none


def test_probes_rule_out_only_classes_that_are_not_given_away(monkeypatch):
    """Worked on in the persons, with every small class's leverage computed (no probes) the audit
    finds the same as with the probes."""
    rng = np.random.default_rng(7)
    probed = 0
    for _ in range(30):
        cells = answers(rng)
        monkeypatch.setattr(audit_algebra, "_DENSE_CLASSES", 0)
        ruled = []
        monkeypatch.setattr(audit_algebra, "_not_ruled_out", lambda *a, f=audit_algebra._not_ruled_out: ruled.append(
            1) or f(*a))
        with_probes = audited(cells, 0)
        probed += bool(ruled)
        monkeypatch.setattr(audit_algebra, "PROBES", 10**9)
        assert audited(cells, 0) == with_probes == by_rank(*rows_of(cells))
        monkeypatch.undo()
    assert probed > 10  # most cases hold more small classes than probes


@pytest.mark.parametrize("density", [0.02, 0.3])
@pytest.mark.parametrize("cells", [5, 40])  # a few made dense over the persons, more kept sparse
def test_the_products_of_cells_are_the_dense_ones(density, cells):
    rng = np.random.default_rng(11)
    rows = sparse.random(cells, 200, density=density, format="csr", random_state=rng)
    other = sparse.random(9, 200, density=0.2, format="csr", random_state=rng)
    expected = rows.toarray() @ other.toarray().T
    np.testing.assert_allclose(audit_algebra.products(rows, other), expected, atol=1e-12)


def test_three_answers_give_away_one_person_every_way(monkeypatch):
    women = np.r_[np.ones(30), np.zeros(30)].astype(bool)
    everyone = np.full(60, 2.0)
    cells = [everyone, np.where(women & (np.arange(60) != 3), everyone, np.nan), np.where(~women, everyone, np.nan)]
    for dense_classes in (10**9, 0):
        monkeypatch.setattr(audit_algebra, "_DENSE_CLASSES", dense_classes)
        for remembered in range(3):
            assert audited(cells, remembered) == 1
        assert audited([everyone, np.where(np.arange(60) != 3, everyone, np.nan)], 1) == 1  # with and without one
        assert audited([cells[0], cells[2]], 1) == 0
