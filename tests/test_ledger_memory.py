"""The ledger's memory gives the classes it would give if made at once from every remembered row.

Queries are remembered one after another, as the ledger does (classes for the check, then add):
the persons kept in order across adds must be those a fresh sort gives, and the classes of the
next incoming cells, with some of them sums left out, must be the same (to the last bit and the
same numbering) as those of a memory made from all the rows at once.
"""

from __future__ import annotations

import numpy as np
import pytest

from safepool.query.ledger_memory import LedgerMemory

KEY = ("P", 0, 0, "")


def batch(rng: np.random.Generator, first_cell: int, pool: np.ndarray) -> tuple[np.ndarray, ...]:
    """A query's cells (numbered from first_cell) over persons drawn from pool, sorted by cell and person."""
    cells, persons, values = [], [], []
    for cell in range(first_cell, first_cell + int(rng.integers(1, 5))):
        members = np.sort(rng.choice(pool, int(rng.integers(1, len(pool))), replace=False))
        cells.append(np.full(len(members), cell))
        persons.append(members)
        values.append(rng.choice([0.0, 1.0, 2.0, 4.0, 0.5], len(members)))  # ratios exact in binary
    return (np.concatenate(cells).astype(np.int64), np.concatenate(persons).astype(np.uint64),
            np.concatenate(values))


@pytest.mark.parametrize("seed", range(20))
def test_classes_after_adds_equal_classes_made_at_once(seed):
    rng = np.random.default_rng(seed)
    pool = rng.choice(2**62, 60, replace=False).astype(np.uint64) * np.uint64(3)  # pseudonyms in no order
    memory, rows, first_cell = LedgerMemory(KEY), [], 1
    for query in range(int(rng.integers(2, 7))):
        cell, person, value = batch(rng, first_cell, pool[: int(rng.integers(10, 61))])
        memory.classes(cell, person, value)  # the check sorts the persons known so far
        memory.add(cell, person, value)
        rows.append((cell, person, value))
        first_cell = int(cell.max()) + 1
        if query:  # merged with the new persons by add, not sorted again
            ordered, order = memory._sorted
            np.testing.assert_array_equal(order, np.argsort(memory.persons))
            np.testing.assert_array_equal(ordered, np.sort(memory.persons))
    cell, person, value = batch(rng, first_cell, pool)
    sums = np.unique(cell)[:1]
    at_once = LedgerMemory.of_rows(KEY, *(np.concatenate(column) for column in zip(*rows)))
    for found, expected in zip(memory.classes(cell, person, value, sums).__dict__.values(),
                               at_once.classes(cell, person, value, sums).__dict__.values()):
        np.testing.assert_array_equal(found, expected)
    unsummed = at_once.classes(cell, person, value)
    kept = ~np.isin(unsummed.entry_cell, sums)
    summed = memory.classes(cell, person, value, sums)
    np.testing.assert_array_equal(summed.entry_class, unsummed.entry_class[kept])
    np.testing.assert_array_equal(summed.entry_cell, unsummed.entry_cell[kept])
    np.testing.assert_array_equal(summed.entry_weight, unsummed.entry_weight[kept])
    np.testing.assert_array_equal(memory._lookup(pool), at_once._lookup(pool))
