"""Each person's sum over a set of cells, the rows of an entry that adds up cells.

A shown total or line of cells holds, for every person with rows in one of its cells, the sum of
the person's values over those cells. The query engine makes such entries from the pool's
per-person rows, and the ledger makes the rows of a total it cannot keep as the cells it adds up
from the rows it was handed: both with `entry_rows`, so a total's rows are the same whichever
side makes them (the same persons, and each sum added in the order of the cells).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from safepool.query.cell_numbers import by_cell

Entry = tuple[int, int, list[int]]  # its number, part (0 for values, 1 for rows), its cell numbers


class EntryRows(NamedTuple):
    """An entry's rows: its number on each, the persons (sorted), their sums, and each person's rank
    among the distinct persons of all the rows (`rows["distinct"]`, when the caller ranked them)."""

    entry: np.ndarray
    person: np.ndarray
    total: np.ndarray
    rank: np.ndarray


def entry_rows(rows: dict[str, np.ndarray], entries: list[Entry]) -> list[EntryRows]:
    """Per entry and person with rows in one of its cells, the sum over those cells of the person's
    part (`EntryRows`, sorted by person). `rows` holds cell (numbers from 0),
    person and the parts some entry needs ("value", "rows"), a person once per cell; with "distinct"
    and "rank" when the caller put them in order with `cell_person_order`. The rows are put in
    order of cell and person once (unless they come so): an entry of one cell is a slice of
    them; an entry of several cells is added up by counting on each person's rank among all
    persons, in the order of its cells (no sort per entry)."""
    cell = np.asarray(rows["cell"], dtype=np.int64)
    person = np.asarray(rows["person"], dtype=np.uint64)
    order: np.ndarray | None = None  # (none: the rows are in that order already, and are not gathered)
    if "rank" in rows:  # in the order of cell and person, ranked by the caller (`cell_person_order`)
        distinct, rank = rows["distinct"], rows["rank"]
    elif _in_cell_order(cell, person):
        distinct, rank = _ranked(person)
    else:
        order, cell, distinct, rank = cell_person_order(cell, person)
    values = {part: _in_order(np.asarray(rows[name], dtype=np.float64), order)
              for part, name in enumerate(("value", "rows")) if any(p == part for _, p, _ in entries)}
    highest = max(int(cell[-1]) if len(cell) else -1, max((max(n) for _, _, n in entries if n), default=-1))
    bounds = np.searchsorted(cell, np.arange(highest + 2))
    found: list[EntryRows] = []
    for entry, part, numbers in entries:
        if len(numbers) == 1:
            taken = slice(bounds[numbers[0]], bounds[numbers[0] + 1])
            present, total = rank[taken], values[part][taken]
        else:
            taken = np.concatenate([np.arange(bounds[n], bounds[n + 1]) for n in numbers] or [np.empty(0, np.int64)])
            ranks = rank[taken]
            seen = np.zeros(len(distinct), dtype=bool)
            seen[ranks] = True
            present = np.flatnonzero(seen)
            total = np.bincount(ranks, weights=values[part][taken], minlength=len(distinct))[present]
        found.append(EntryRows(np.full(len(present), entry, dtype=np.int64), distinct[present], total, present))
    return found


def _in_order(column: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """The column in `order` (as it is when there is none)."""
    return column if order is None else column[order]


def _in_cell_order(cell: np.ndarray, person: np.ndarray) -> bool:
    """Whether the rows are sorted by cell and, within a cell, by person."""
    return bool(np.all((cell[1:] > cell[:-1]) | ((cell[1:] == cell[:-1]) & (person[1:] > person[:-1]))))


def _ranked(person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct persons in order and each row's rank among them (`person_order`: in rows of
    cell order each cell's persons come sorted, and sorting such runs took 16 ms for 600,000 rows
    of 300,000 persons, against 35-45 ms for a hash table of them and a sort of those found)."""
    order = person_order(person)
    rank = np.empty(len(person), dtype=np.int64)
    rank[order.by_person] = order.rank
    return order.distinct, rank


@dataclass(frozen=True)
class PersonOrder:
    """Rows' persons put in order once: the order of the rows by person, each row's rank (in that
    order) among distinct persons, and those persons, sorted: the rows' own (`person_order`), or
    every person of the pool the rows come from (`ranked_order`), so that the ledger's memory looks
    each person of a pool up once, whichever question brings it (`LedgerMemory._found_by_rank`).
    It depends on the persons alone, so the same persons in the same rows (a pool's table asked
    again) can reuse it."""

    by_person: np.ndarray
    rank: np.ndarray
    distinct: np.ndarray


def person_order(person: np.ndarray) -> PersonOrder:
    """The rows' `PersonOrder` (see `by_person_order`)."""
    by_person, ordered = by_person_order(person)
    first = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.empty(0, dtype=bool)
    return PersonOrder(by_person, np.cumsum(first) - 1, ordered[first])


def cell_person_order(cell: np.ndarray, persons: np.ndarray | PersonOrder
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The order of the rows by cell and person (a person once per cell), the cells in it, the
    distinct persons (sorted) and each ordered row's rank among them: sorted by person once (or as
    `persons` already are, a `PersonOrder`), then stably by cell."""
    persons = persons if isinstance(persons, PersonOrder) else person_order(persons)
    cell = cell[persons.by_person]
    then = by_cell(cell)  # by cell, then person (a pair occurs once)
    return persons.by_person[then], cell[then], persons.distinct, persons.rank[then]


def ranked_order(rank: np.ndarray, values: np.ndarray) -> PersonOrder:
    """The `PersonOrder` of rows whose persons are given as ranks among distinct sorted `values` (the
    row's person is `values[rank]`), ranked among all of `values` (a pool's persons: see
    `PersonOrder`), found by counting rather than sorting: when each person comes once (a person's
    row of a table, counted by variables of the person), a scatter places them (1 ms for 300,000
    rows, against 13 for a sort); otherwise the ranks are sorted with each row's number in their
    low bits (in the order of the rows within a person, as `by_person_order` gives them)."""
    rank = np.asarray(rank, dtype=np.int64)
    counts = np.bincount(rank, minlength=len(values))
    if not len(rank) or counts.max() == 1:
        at = np.full(len(values), -1, dtype=np.int64)
        at[rank] = np.arange(len(rank))
        by_person = at[counts > 0]
    elif (bits := int(len(rank) - 1).bit_length()) + int(len(values)).bit_length() <= 64:
        by_person = by_person_order(rank.astype(np.uint64) << np.uint64(bits))[0]  # the ranks above the row bits
    else:  # (rows and persons too many for one number of 64 bits)
        by_person = np.argsort(rank, kind="stable")
    return PersonOrder(by_person, rank[by_person], values)


def by_person_order(person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order of the rows by person (rows of one person in any order) and the persons in it.
    NumPy sorts plain numbers several times faster than it finds their order, so each row's number
    replaces the low bits of its person and the numbers are sorted; persons equal in the bits kept
    can come out of order, and then (rarely) the order is found by `argsort`."""
    bits = max(int(len(person) - 1).bit_length(), 1)
    low = np.uint64(2**bits - 1)
    order = (np.sort((person & ~low) | np.arange(len(person), dtype=np.uint64)) & low).astype(np.int64)
    ordered = person[order]
    if not np.all(ordered[1:] >= ordered[:-1]):
        order = np.argsort(person)
        ordered = person[order]
    return order, ordered
