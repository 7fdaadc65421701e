"""Which sums the group audit takes together: cells compared person by person, families grown."""

from __future__ import annotations

import numpy as np
import pytest

from safepool.query.value_families import compared, families, family


def random_cells(rng: np.random.Generator, persons: int, cells: int) -> list[dict[int, float]]:
    """Cells over the persons: some of one measure (a person's amount the same in each), some of
    another, some of the first but one person's amount changed (the cell an attacker would make
    to tell a person apart), with members contributing zero."""
    first, second = rng.integers(0, 4, persons).astype(float), rng.normal(size=persons)
    found = []
    for number in range(cells):
        members = rng.choice(persons, size=int(rng.integers(1, persons)), replace=False)
        amounts = (first if number % 3 else second)[members].copy()
        if number % 5 == 4:
            amounts[rng.integers(len(amounts))] += 0.5
        found.append(dict(zip(members.tolist(), amounts.tolist())))
    return found


def brute_force(cells: list[dict[int, float]], new: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The relations by sets: shared persons, and whether every one of them has one amount."""
    consistent = np.zeros((len(new), len(cells)), dtype=bool)
    conflicting = np.zeros_like(consistent)
    for j, one in enumerate(new):
        for i, other in enumerate(cells):
            shared = set(cells[one]) & set(other)
            if i == one or not shared:
                continue
            same = all(cells[one][p] == other[p] for p in shared)
            consistent[j, i], conflicting[j, i] = same, not same
    return consistent, conflicting


def entries(cells: list[dict[int, float]], numbers: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, person, amount) of the cells, row by row and persons in order, as the ledger hands them."""
    rows = [(row, person, cells[number][person]) for row, number in enumerate(numbers)
            for person in sorted(cells[number])]
    row, person, amount = zip(*rows)
    return np.array(row), np.array(person), np.array(amount)


@pytest.mark.parametrize("sampled", ["none", "every third", "everyone"])
@pytest.mark.parametrize("seed", range(6))
def test_cells_are_compared_as_brute_force_compares_them(seed, sampled):
    """Old and new cells of one measure, of another, and of the first with one person's amount
    changed: the relations agree with a comparison by sets, whichever persons are compared first
    (a sample that misses the changed person still finds the conflict)."""
    rng = np.random.default_rng(seed)
    persons = 40
    cells = random_cells(rng, persons, 12)
    new = [9, 10, 11]  # the new cells are the last rows
    mask = {"none": np.zeros(persons, dtype=bool), "every third": np.arange(persons) % 3 == 0,
            "everyone": np.ones(persons, dtype=bool)}[sampled]
    found = compared(entries(cells, list(range(12))), entries(cells, new), 12, mask)
    expected = brute_force(cells, new)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
    assert expected[1].any() and expected[0].any()  # both kinds occur


def test_a_person_in_several_new_cells_is_compared_in_each():
    """Cells by year: a person in two new cells with two amounts is compared in both layers."""
    cells = [{0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 5.0}, {0: 1.0, 2: 3.0}, {1: 2.0, 2: 3.0}]
    new = [1, 2, 3]
    found = compared(entries(cells, [0, 1, 2, 3]), entries(cells, new), 4, np.zeros(3, dtype=bool))
    expected = brute_force(cells, new)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])


def test_a_family_grows_along_consistent_overlaps_and_never_takes_a_conflict():
    """All women (1), those born early (2, sharing no one with 3) and those born late outside a
    district (3): 3 joins 1, and through it 2. A cell in conflict with 1 (4, another amount) stays
    out, though it is consistent with 2, and so does 6, reached only through 4."""
    consistent = {3: {1}, 1: {2, 3}, 2: {1, 4}, 4: {2, 6}, 6: {4}}
    conflicting = {4: {1}, 1: {4}}
    asked: list[int] = []

    def relations_of(cell: int) -> tuple[set[int], set[int]]:
        asked.append(cell)
        return consistent.get(cell, set()), conflicting.get(cell, set())

    assert family(3, relations_of) == frozenset({1, 2, 3})
    assert 6 not in asked  # reached only through a cell left out: never worked out
    assert family(4, relations_of) == frozenset({2, 4, 6})
    assert family(5, relations_of) == frozenset({5})


def grown_by_rescanning(start: int, relations: dict[int, tuple[set[int], set[int]]], left_out: set[int],
                        taken: frozenset[int] = frozenset()) -> frozenset[int]:
    """The growth rule read literally: every step takes the smallest waiting cell, the waiting cells
    made again from every overlap of the family so far."""
    grown = {start, *taken}
    waiting = sorted(set().union(*(relations[cell][0] for cell in grown)) - grown)
    while waiting:
        cell = waiting.pop(0)
        if cell not in grown and cell not in left_out and not relations[cell][1] & grown:
            grown.add(cell)
        waiting = sorted(set(waiting) | (relations[cell][0] - grown)) if cell in grown else waiting
    return frozenset(grown)


@pytest.mark.parametrize("seed", range(40))
def test_a_family_is_the_growth_rule_read_literally(seed):
    """The heap and the cells turned away for good (`family`) give the family the rule gives, from
    a cell and from a family with a row of a family only added (`families`), on random overlaps
    and conflicts."""
    rng = np.random.default_rng(seed)
    cells = int(rng.integers(5, 40))
    relations: dict[int, tuple[set[int], set[int]]] = {cell: (set(), set()) for cell in range(cells)}
    for a in range(cells):
        for b in range(a + 1, cells):
            kind = rng.choice(3, p=[0.6, 0.3, 0.1])  # nothing shared, consistent, in conflict
            if kind:
                relations[a][kind - 1].add(b)
                relations[b][kind - 1].add(a)
    rows = {int(cell) for cell in rng.choice(cells, size=int(rng.integers(0, 4)), replace=False)}
    for start in range(cells):
        base = family(start, relations.__getitem__, rows.__contains__)
        assert base == grown_by_rescanning(start, relations, rows)
        if start in rows:
            continue
        found = families(start, relations.__getitem__, rows.__contains__)
        with_rows = {grown_by_rescanning(row, relations, rows, base) for row in rows
                     if row in set().union(*(relations[m][0] for m in base)) and not relations[row][1] & base}
        assert found == {base} | with_rows
