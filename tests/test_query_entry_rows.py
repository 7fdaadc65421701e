"""Per-entry contributions (`entry_rows`, the engine's and the ledger's) against a plain sum per
person, from rows in any order and from rows in cell order, and the order by person it starts from
(`by_person_order`), on its fast path and its fallback, and the same order found by counting on
ranks (`ranked_order`)."""

from __future__ import annotations

import numpy as np
import pytest

from safepool.query.person_sums import by_person_order, cell_person_order, entry_rows, person_order, ranked_order


def _plain(rows: dict[str, np.ndarray], entry: int, part: int, numbers: list[int]):
    """(entry, person, sum) of one entry, person by person in plain Python, sorted by person."""
    totals: dict[int, float] = {}
    name = ("value", "rows")[part]
    for number in numbers:  # in the order of the cells, as the engine adds them
        for cell, person, value in zip(rows["cell"], rows["person"], rows[name]):
            if cell == number:
                totals[int(person)] = totals.get(int(person), 0.0) + float(value)
    persons = sorted(totals)
    return [entry] * len(persons), persons, [totals[p] for p in persons]


def _assert_plain_sums(rows: dict[str, np.ndarray], plain: dict[str, np.ndarray], entries: list) -> None:
    """`entry_rows` of `rows` gives each entry the persons and sums `_plain` finds in `plain` (the
    same rows, in any order)."""
    for (entry, part, numbers), (e, who, total, rank) in zip(entries, entry_rows(rows, entries)):
        want = _plain(plain, entry, part, numbers)
        assert e.tolist() == want[0] and who.tolist() == want[1]
        if "distinct" in rows:  # each person's rank among the distinct persons the caller gave
            assert rows["distinct"][rank].tolist() == who.tolist()
        assert np.allclose(total, want[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_each_entry_holds_each_persons_sum_over_its_cells(seed):
    rng = np.random.default_rng(seed)
    persons = rng.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    pairs = sorted({(int(c), int(p)) for c, p in zip(rng.integers(0, 6, 150), rng.integers(0, 40, 150))})
    order = rng.permutation(len(pairs))  # the engine hands rows over in no particular order
    rows = {"cell": np.array([pairs[i][0] for i in order], dtype=np.int64),
            "person": persons[[pairs[i][1] for i in order]],
            "value": rng.normal(size=len(pairs)).round(3), "rows": rng.integers(1, 4, len(pairs)).astype(float)}
    entries = [(0, 0, [2]), (1, 1, [2]), (2, 0, [0, 3, 5]), (3, 1, [1, 4]), (4, 0, [0, 1, 2, 3, 4, 5]), (5, 0, [7])]
    _assert_plain_sums(rows, rows, entries)


@pytest.mark.parametrize("seed", range(2))
def test_rows_that_come_in_cell_order_give_the_same_entries(seed):
    """The ledger hands its rows over sorted by cell and person: they are ranked without a sort."""
    rng = np.random.default_rng(seed)
    persons = rng.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    pairs = sorted({(int(c), int(persons[p])) for c, p in zip(rng.integers(0, 6, 150), rng.integers(0, 40, 150))})
    rows = {"cell": np.array([c for c, _ in pairs], dtype=np.int64),
            "person": np.array([p for _, p in pairs], dtype=np.uint64), "value": rng.normal(size=len(pairs)).round(3)}
    entries = [(0, 0, [2]), (2, 0, [0, 3, 5]), (4, 0, [0, 1, 2, 3, 4, 5]), (5, 0, [7])]
    _assert_plain_sums(rows, rows, entries)


@pytest.mark.parametrize("seed", range(2))
def test_rows_ranked_by_the_engine_give_the_same_entries(seed):
    """The engine puts its rows in order with `cell_person_order` and hands the ranks over."""
    rng = np.random.default_rng(seed)
    persons = rng.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    pairs = list({(int(c), int(p)) for c, p in zip(rng.integers(0, 6, 150), rng.integers(0, 40, 150))})
    cell, person = np.array([c for c, _ in pairs], dtype=np.int64), persons[[p for _, p in pairs]]
    value = rng.normal(size=len(pairs)).round(3)
    order, in_order, distinct, rank = cell_person_order(cell, person)
    assert np.array_equal(in_order, cell[order]) and np.array_equal(distinct[rank], person[order])
    assert np.all(distinct[1:] > distinct[:-1])
    ranked = {"cell": in_order, "person": person[order], "distinct": distinct, "rank": rank, "value": value[order]}
    entries = [(0, 0, [2]), (2, 0, [0, 3, 5]), (4, 0, [0, 1, 2, 3, 4, 5]), (5, 0, [7])]
    _assert_plain_sums(ranked, {"cell": cell, "person": person, "value": value}, entries)


def test_only_the_parts_entries_need_are_read():
    rows = {"cell": np.array([0, 0]), "person": np.array([2, 1], dtype=np.uint64), "value": np.array([1.0, 2.0])}
    (entry, who, total, _), = entry_rows(rows, [(0, 0, [0])])  # no "rows" column: no entry of part 1
    assert who.tolist() == [1, 2] and total.tolist() == [2.0, 1.0]


@pytest.mark.parametrize("persons", [
    [], [7], [9, 3, 9, 1, 3],
    [5, 3, 5, 3, 0, 6, 2, 4],  # equal but for the low bits the row numbers take: sorted by argsort instead
    [2**64 - 1, 0, 2**63, 2**63 + 1, 1],
])
def test_the_order_by_person_sorts_every_person(persons):
    person = np.array(persons, dtype=np.uint64)
    order, ordered = by_person_order(person)
    assert sorted(order.tolist()) == list(range(len(persons)))
    assert ordered.tolist() == sorted(persons) and person[order].tolist() == sorted(persons)


def test_the_order_by_person_of_many_random_persons():
    person = np.random.default_rng(5).integers(0, 2**64, 100_000, dtype=np.uint64, endpoint=False)
    person[::7] = person[3]  # one person in many rows
    order, ordered = by_person_order(person)
    assert np.array_equal(ordered, np.sort(person)) and np.array_equal(person[order], ordered)
    assert np.array_equal(np.sort(order), np.arange(len(person)))


@pytest.mark.parametrize("rows", [0, 1, 300, 5_000])
@pytest.mark.parametrize("once", [True, False])
def test_the_order_counted_on_ranks_is_the_order_by_person(rows, once):
    """`ranked_order` (persons given as ranks among sorted distinct values) puts the rows in the
    order `person_order` gives for the persons themselves, whether each person comes once (the
    scatter) or in several rows (the sort of ranks), and keeps them ranked among all the values
    (persons no row has among them)."""
    rng = np.random.default_rng(rows)
    values = np.unique(rng.integers(0, 2**64, 2 * rows + 3, dtype=np.uint64, endpoint=False))
    rank = rng.permutation(len(values))[:rows] if once else rng.integers(0, len(values) // 3 + 1, rows)
    counted, sorted_ = ranked_order(rank, values), person_order(values[rank])
    assert np.array_equal(counted.by_person, sorted_.by_person) and counted.distinct is values
    assert np.array_equal(counted.distinct[counted.rank], sorted_.distinct[sorted_.rank])
    assert np.array_equal(counted.rank, rank[counted.by_person])
