"""The ledger's memory gives the classes it would give if made at once from every remembered row.

Queries are remembered one after another, as the ledger does (the audit, then add): the
persons must be found where they are remembered across adds, and the classes of the next
incoming cells and the contributions kept must be the same (to the last bit and the same
numbering) as those of a memory made from all the rows at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from safepool.query import audit_algebra
from safepool.query.audit_algebra import Audit
from safepool.query.cell_numbers import distinct_numbers, places_among
from safepool.query.ledger_memory import (
    _GROUPS_HINT,
    LedgerMemory,
    _classes,
    _factorized,
    among,
    entry_hash,
    first_seen,
)
from tests.test_audit_algebra import MIN_FREQUENCY, by_rank

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
        memory.audit(cell, person, value, MIN_FREQUENCY)  # the check looks the persons up first
        memory.add(cell, person, value)
        rows.append((cell, person, value))
        first_cell = int(cell.max()) + 1
        # remembered persons are found where they are, new ones after them in the order first seen
        # (the hash table of the persons is made again when a query brings new ones)
        where = {int(p): i for i, p in enumerate(memory.persons)}
        unknown = list(dict.fromkeys(int(p) for p in pool if int(p) not in where))
        expected = [where.get(int(p), len(where) + unknown.index(int(p)) if int(p) in unknown else -1) for p in pool]
        np.testing.assert_array_equal(memory._lookup(pool), expected)
    cell, person, value = batch(rng, first_cell, pool)
    at_once = LedgerMemory.of_rows(KEY, *(np.concatenate(column) for column in zip(*rows)))
    for found, expected in zip(_classes(memory.extend(cell, person, value)).__dict__.values(),
                               _classes(at_once.extend(cell, person, value)).__dict__.values()):
        np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(memory._lookup(pool), at_once._lookup(pool))
    np.testing.assert_array_equal(memory.contribution, at_once.contribution)


def audited(memory: LedgerMemory, cell: np.ndarray, person: np.ndarray, value: np.ndarray,
            sums: np.ndarray | None = None) -> Audit:
    """The check of incoming entries as the ledger makes it (its A A^T noted for `add`)."""
    return memory.audit(cell, person, value, MIN_FREQUENCY, sums)


@pytest.mark.parametrize("dense_classes", [0, 10**9])  # in the persons; as class columns
@pytest.mark.parametrize("seed", range(20))
def test_kept_products_equal_products_made_afresh(monkeypatch, seed, dense_classes):
    """A A^T and A z kept across queries (only each query's new rows made) are the ones made from
    all rows at once, also when persons restart (values of zero first) and sums are left out; and
    the audit finds the classes a rank count finds."""
    monkeypatch.setattr(audit_algebra, "_DENSE_CLASSES", dense_classes)
    rng = np.random.default_rng(seed)
    pool = rng.choice(2**62, 60, replace=False).astype(np.uint64) * np.uint64(3)
    memory, rows, first_cell = LedgerMemory(KEY), [], 1
    for _ in range(int(rng.integers(2, 7))):
        cell, person, value = batch(rng, first_cell, pool[: int(rng.integers(10, 61))])
        audited(memory, cell, person, value)
        memory.add(cell, person, value)
        assert memory.gram is not None and len(memory.gram) == cell.max()
        rows.append((cell, person, value))
        first_cell = int(cell.max()) + 1
    cell, person, value = batch(rng, first_cell, pool)
    sums = np.unique(cell)[:1]
    at_once = LedgerMemory.of_rows(KEY, *(np.concatenate(column) for column in zip(*rows)))
    assert at_once.gram is None and at_once.shown is None
    at_once.probes = memory.probes.copy()  # the same persons in the same places: the same probes
    kept, afresh = audited(memory, cell, person, value, sums), audited(at_once, cell, person, value, sums)
    np.testing.assert_allclose(kept.gram, afresh.gram, rtol=1e-12, atol=1e-12)
    assert (kept.shown is None) == (afresh.shown is None) == (dense_classes > 0 or memory.shown is None)
    if kept.shown is not None:
        np.testing.assert_allclose(kept.shown, afresh.shown, rtol=1e-12, atol=1e-12)
    everything = [np.concatenate(column) for column in zip(*rows, (cell, person, value))]
    assert kept.given_away == afresh.given_away == by_rank(*everything, left_out=sums)


def test_a_restarting_person_leaves_the_kept_products(monkeypatch):
    """Persons whose values were all zero counted by membership; with a value that is not zero their
    earlier cells no longer count for them, in the kept A A^T and A z as in those made afresh."""
    monkeypatch.setattr(audit_algebra, "_DENSE_CLASSES", 0)  # in the persons, with the probes
    persons = np.arange(1, 25, dtype=np.uint64)
    memory = LedgerMemory(KEY)
    # persons 1-12: zero; persons 13-24: one, then each a value of its own (twelve classes of one)
    first = (np.repeat([1, 2, 3], 12), np.r_[persons, persons[12:]], np.r_[np.zeros(12), np.ones(12),
                                                                          np.arange(1.0, 13.0)])
    assert audited(memory, *first).shown is not None
    memory.add(*first)
    assert memory.shown is not None
    second = (np.full(24, 4), persons, np.arange(1.0, 25.0))
    kept = audited(memory, *second)
    assert memory._last[3].restarted.sum() == 12
    again = LedgerMemory.of_rows(KEY, *first)
    again.probes = memory.probes.copy()
    afresh = audited(again, *second)
    np.testing.assert_allclose(kept.gram, afresh.gram, atol=1e-12)
    np.testing.assert_allclose(kept.shown, afresh.shown, atol=1e-12)


def test_a_product_is_kept_only_for_the_entries_it_was_made_of():
    memory = LedgerMemory(KEY)
    cell, person, value = np.array([1, 1, 2]), np.array([5, 6, 5], dtype=np.uint64), np.ones(3)
    audited(memory, cell, person, value)
    memory.add(cell[:2], person[:2], value[:2])  # a column withheld: other entries are remembered
    assert memory.gram is None


def test_beyond_the_cells_a_product_is_kept_for_it_is_made_afresh(monkeypatch):
    """Past `_GRAM_CELLS` remembered cells the memory keeps no A A^T (its size grows with the
    square of the cells); every audit then makes it from all rows, and finds the same."""
    from safepool.query import ledger_memory

    monkeypatch.setattr(ledger_memory, "_GRAM_CELLS", 4)
    rng = np.random.default_rng(3)
    pool = np.arange(1, 41, dtype=np.uint64)
    memory, rows, first_cell = LedgerMemory(KEY), [], 1
    while first_cell <= 6:
        cell, person, value = batch(rng, first_cell, pool)
        audited(memory, cell, person, value)
        memory.add(cell, person, value)
        rows.append((cell, person, value))
        assert (memory.gram is not None) == (cell.max() <= 4)
        first_cell = int(cell.max()) + 1
    incoming = batch(rng, first_cell, pool)
    everything = [np.concatenate(column) for column in zip(*rows, incoming)]
    assert audited(memory, *incoming).given_away == by_rank(*everything)


@pytest.mark.parametrize("groups", [1, 60, _GROUPS_HINT + 1, 3 * _GROUPS_HINT])
def test_groups_are_numbered_in_the_order_first_seen_whatever_their_number(groups):
    """The hash table sized for groups grows past its first size: the numbers are the first-seen
    numbers of the (pattern, entries) pairs, with more groups than the table starts with too."""
    rng = np.random.default_rng(groups)
    pattern = rng.integers(0, 2**63, groups, dtype=np.uint64)[rng.integers(0, groups, 4 * groups + 10)]
    entries = (pattern % np.uint64(3)).astype(np.int64)
    pattern[::7] = pattern[0]  # the same pattern with other numbers of entries: other groups
    pairs = pd.Series(list(zip(pattern.tolist(), entries.tolist())))
    assert np.array_equal(_factorized(pattern, entries), pd.factorize(pairs)[0])


@pytest.mark.parametrize("cells", [1025, 3000])
def test_the_hash_of_more_than_a_thousand_cells_of_one_weight_each_is_the_hash_entry_by_entry(cells):
    """A ledger of more than 1,024 cells (a few studies' rows) hashed each cell number of one weight
    by hashing the range of numbers again, which met the same shortcut and recursed without end:
    every later study and query of the workspace was refused as "nested too deeply"."""
    numbers = np.arange(1, cells + 1, dtype=np.int64)
    hashed = entry_hash(numbers, np.ones(cells))
    one_by_one = np.concatenate([entry_hash(numbers[k:k + 1], np.ones(1)) for k in range(cells)])
    assert np.array_equal(hashed, one_by_one)
    repeated = np.repeat(numbers, 2)  # the shortcut itself: each number hashed once, then spread
    assert np.array_equal(entry_hash(repeated, np.ones(len(repeated))), np.repeat(one_by_one, 2))


@pytest.mark.parametrize("seed", range(12))
def test_persons_in_no_count_add_nothing_to_the_group_audit_of_the_counts(seed):
    """The group audit of the counts groups only the persons in a count: a period's units, in sums
    only, are left out. The same answers with and without such persons' rows (which a ledger takes
    in with every answer over a register's periods) give the same dimension, query after query,
    with the units met before, between and after the persons."""
    rng = np.random.default_rng(seed)
    persons = rng.choice(2**62, 14, replace=False).astype(np.uint64) * np.uint64(3)
    units = rng.choice(2**62, 40, replace=False).astype(np.uint64) * np.uint64(3) + np.uint64(1)
    with_units, without, first_cell, dimensions = LedgerMemory(KEY), LedgerMemory(KEY), 1, []
    for query in range(5):
        cells, who, values = [], [], []
        for cell in range(first_cell, first_cell + int(rng.integers(2, 4))):
            counted = query % 2 == 0 or cell == first_cell
            chosen = rng.choice(persons, int(rng.integers(3, len(persons))), replace=False)
            # a sum's persons have values of their own (without the units, it is no count either)
            amount = np.ones(len(chosen)) if counted else 2.0 + np.arange(len(chosen)) % 3
            if not counted:  # a sum over some persons and units
                met = rng.choice(units, int(rng.integers(1, len(units))), replace=False)
                chosen, amount = np.r_[chosen, met], np.r_[amount, rng.choice([2.0, 3.0, 5.0], len(met))]
            shuffled = rng.permutation(len(chosen))
            cells.append(np.full(len(chosen), cell))
            who.append(chosen[shuffled])
            values.append(amount[shuffled])
        cell, person, value = (np.concatenate(column) for column in (cells, who, values))
        order = np.argsort(cell, kind="stable")
        cell, person, value = cell[order].astype(np.int64), person[order], value[order]
        kept = ~np.isin(person, units)
        found = [memory.audit(*rows, MIN_FREQUENCY).pinned for memory, rows in
                 ((with_units, (cell, person, value)), (without, (cell[kept], person[kept], value[kept])))]
        assert found[0] == found[1]
        dimensions.append(found[0][1])
        with_units.add(cell, person, value)
        without.add(cell[kept], person[kept], value[kept])
        first_cell = int(cell.max()) + 1
        for memory in (with_units, without):
            assert_grouped_persons_kept(memory)
    assert len(with_units.persons) > len(without.persons)
    if seed == 0:
        assert any(dimensions)  # the groups of few persons are pinned down in these answers


def assert_grouped_persons_kept(memory: LedgerMemory) -> None:
    """The persons the memory keeps beside the entries of the group audit of counts, as it takes
    answers in, are those entries' persons, and a person is marked in a count exactly when it is."""
    marked = np.zeros(len(memory.persons), dtype=bool)
    for kind in ("counts", "counted rows"):
        kept = memory._persons_of[kind][:memory._kept_of[kind]]
        np.testing.assert_array_equal(kept, memory.person[memory._positions(kind)])
        marked[kept] = True
    np.testing.assert_array_equal(memory._in_count, marked)


def test_a_study_row_that_is_a_count_is_kept_beside_the_counts():
    """A study's row of clients at weight one (a family's cell that is a count) joins the group
    audit of the counts: its persons are kept and marked as the counts' are, answer after answer."""
    rng = np.random.default_rng(3)
    persons = rng.choice(2**62, 30, replace=False).astype(np.uint64)
    memory = LedgerMemory(KEY)
    cell = np.r_[np.ones(12), np.full(9, 2)].astype(np.int64)
    memory.add(cell, np.r_[np.sort(persons[:12]), np.sort(persons[10:19])], np.ones(21), family=np.array([2]))
    assert memory._kept_of["counted rows"] == 9
    assert_grouped_persons_kept(memory)
    memory.add(np.full(15, 3, dtype=np.int64), np.sort(persons[15:]), np.arange(15) + 1.0)  # a sum: no count
    memory.add(np.full(8, 4, dtype=np.int64), np.sort(persons[22:]), np.ones(8))
    assert memory._kept_of["counts"] == 20 and len(memory.persons) == 30
    assert_grouped_persons_kept(memory)


def test_among_finds_the_chosen_cell_numbers_by_table_or_by_search():
    """`among` agrees with `np.isin` for numbers close together (a table), negative ones, numbers
    far apart (a search: no table of their whole range) and no numbers at all."""
    rng = np.random.default_rng(7)
    for cell, chosen in ((rng.integers(0, 40, 1000), [3, 5, 39, 80]), (rng.integers(-5, 5, 100), {-5, 0, 4}),
                         (np.array([0, 2**40, 7]), [2**40]), (np.empty(0, dtype=np.int64), [1])):
        cell = np.asarray(cell, dtype=np.int64)
        expected = np.isin(cell, np.asarray(list(chosen), dtype=np.int64))
        assert np.array_equal(among(cell, chosen), expected)


def test_new_persons_given_by_rank_are_numbered_in_the_order_first_seen_as_factorize_numbers_them():
    rng = np.random.default_rng(11)
    for distinct, entries in ((1, 5), (50, 40), (400, 900)):
        rank = rng.integers(0, distinct, entries)
        assert np.array_equal(first_seen(rank, distinct), pd.factorize(rank)[0])
    everyone = np.unique(rng.integers(1, 2**60, 500, dtype=np.uint64))
    memory = LedgerMemory(("P", 0, 0, "d"))
    memory.add(np.ones(100, dtype=np.int64), everyone[rng.choice(len(everyone), 100, replace=False)], np.ones(100))
    # two cells over overlapping persons, each cell's in the order of their keys, half of them new
    rank = np.r_[np.sort(rng.choice(len(everyone), 300, replace=False)),
                 np.sort(rng.choice(len(everyone), 250, replace=False))]
    person = everyone[rank]
    assert np.array_equal(memory._lookup(person, (everyone, rank)), memory._lookup(person))


def test_persons_given_by_rank_are_found_as_a_search_finds_them_and_wrong_ranks_are_not_used():
    rng = np.random.default_rng(5)
    everyone = np.unique(rng.integers(1, 2**60, 400, dtype=np.uint64))  # distinct, sorted
    memory = LedgerMemory(("P", 0, 0, "d"))
    first = rng.choice(len(everyone), 150, replace=False)
    memory.add(np.ones(150, dtype=np.int64), everyone[first], np.ones(150))  # 150 persons remembered
    rank = np.sort(rng.choice(len(everyone), 300, replace=False))
    person = everyone[rank]
    searched = memory._lookup(person)
    assert np.array_equal(memory._lookup(person, (everyone, rank)), searched)
    assert np.array_equal(memory._lookup(person, (everyone, rank)), searched)  # kept: gathered again
    memory.add(np.full(300, 2, dtype=np.int64), person, np.ones(300))  # persons remembered since
    again = np.sort(rng.choice(len(everyone), 350, replace=False))
    assert np.array_equal(memory._lookup(everyone[again], (everyone, again)), memory._lookup(everyone[again]))
    wrong = again.copy()
    wrong[[0, 1]] = wrong[[1, 0]]  # ranks that do not give the persons: searched instead
    assert np.array_equal(memory._lookup(everyone[again], (everyone, wrong)), memory._lookup(everyone[again]))
    assert np.array_equal(memory._lookup(everyone[again], (everyone, again[:-1])), memory._lookup(everyone[again]))


def test_a_person_given_by_rank_is_searched_for_until_found_and_then_only_gathered():
    """Ranked among every person of a pool (`LedgerKeys.ordered`), each person is searched for by
    the questions that bring it until the memory holds it, and gathered by rank after that."""
    rng = np.random.default_rng(8)
    everyone = np.unique(rng.integers(1, 2**60, 400, dtype=np.uint64))
    everyone.flags.writeable = False  # as the pool's keys are handed over
    memory = LedgerMemory(("P", 0, 0, "d"))
    memory.add(np.ones(100, dtype=np.int64), everyone[:100], np.ones(100))
    asked = np.arange(50, 150)  # 50 remembered, 50 not
    expected = memory._lookup(everyone[asked])  # searched for, every one
    searched: list[int] = []
    find = memory._table.find
    memory._table.find = lambda keys: (searched.append(len(keys)), find(keys))[1]
    assert np.array_equal(memory._lookup(everyone[asked], (everyone, asked)), expected)
    assert sum(searched) == 100
    searched.clear()
    memory._lookup(everyone[asked], (everyone, asked))  # nothing taken since: nothing searched
    assert sum(searched) == 0
    memory.add(np.full(20, 2, dtype=np.int64), everyone[100:120], np.ones(20))
    searched.clear()
    others = np.arange(0, 300, 3)
    found = memory._lookup(everyone[others], (everyone, others))
    assert sum(searched) == len([r for r in others if not 50 <= r < 100])  # all but those found before
    memory._table.find = find
    assert np.array_equal(found, memory._lookup(everyone[others]))
    # an answer audited by rank and then remembered: its new persons are noted where they are
    brought = np.arange(300, 400)
    cell = np.full(100, memory.highest + 1, dtype=np.int64)
    memory.audit(cell, everyone[brought], np.ones(100), MIN_FREQUENCY, ranked=(everyone, brought))
    memory.add(cell, everyone[brought], np.ones(100))
    memory._table.find = lambda keys: (searched.append(len(keys)), find(keys))[1]
    searched.clear()
    assert np.array_equal(memory._lookup(everyone[brought], (everyone, brought)), find(everyone[brought]))
    assert sum(searched) == 0


@pytest.mark.parametrize("numbers", [
    np.repeat(np.arange(3, 40, dtype=np.int64), 500),  # cell numbers, each of many rows: by counting
    np.array([5, -3, 2**40, 5, 7], dtype=np.int64),    # below zero or far apart: sorted and searched
    np.empty(0, dtype=np.int64),
])
def test_numbers_are_placed_among_their_distinct_ones_as_a_search_places_them(numbers):
    distinct = distinct_numbers(numbers)
    assert np.array_equal(distinct, np.unique(numbers))
    assert np.array_equal(places_among(numbers, distinct), np.searchsorted(np.unique(numbers), numbers))
