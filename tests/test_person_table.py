"""The ledger memory's table of persons: every key taken is found at its position, whatever order
and however many takes it came in; a key not taken is not found."""

from __future__ import annotations

import numpy as np
import pytest

from safepool.query.person_table import PersonTable


@pytest.mark.parametrize("seed", range(5))
def test_found_at_their_positions_after_several_takes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 2**64, 5_000, dtype=np.uint64))
    persons = keys[rng.permutation(len(keys))]
    table, taken = PersonTable(), 0
    for end in sorted(rng.choice(np.arange(1, len(persons)), size=4, replace=False)) + [len(persons)]:
        table.take(persons[:end], taken)
        taken = end
        asked = persons[rng.permutation(taken)]
        assert np.array_equal(persons[table.find(asked)], asked)
        later = persons[taken:]
        assert (table.find(later) == -1).all()  # not taken yet


def test_small_keys_an_empty_table_and_no_keys() -> None:
    table = PersonTable()
    assert table.find(np.array([1, 2], dtype=np.uint64)).tolist() == [-1, -1]
    persons = np.array([7, 3, 2**64 - 1, 0], dtype=np.uint64)
    table.take(persons, 0)
    assert table.find(np.array([0, 7, 5, 2**64 - 1, 3], dtype=np.uint64)).tolist() == [3, 0, -1, 2, 1]
    assert len(table.find(np.empty(0, dtype=np.uint64))) == 0
    table.take(persons, len(persons))  # nothing new
    assert table.find(np.array([3], dtype=np.uint64)).tolist() == [1]
