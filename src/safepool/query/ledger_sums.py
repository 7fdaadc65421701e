"""Totals and margins the ledger keeps as sums of other cells instead of as rows.

Most rows of a table with margins belong to its totals: in a one-way table the grand total holds
every person once more, in a two-way table the margins and the total hold them three times more.
A total that adds up shown cells of its column is, person by person, the sum of their rows, so
it adds nothing to the all-answers algebra and its rows can be made from theirs whenever they are
needed (to compare it with a remembered cell, or to compare a new cell with it). The query
engine therefore hands such totals over without rows, as the cells they add up; the ledger keeps
one as a definition (in the file's table `sum_members`) when:

- it and the cells it adds up belong to one column, and those cells are shown cells with rows,
  none of them a sum itself;
- no person is in two of those cells (then each person's row of the total is the person's row of
  the one cell, so the total's size is the sum of theirs and its signature the xor of theirs);
- none of those cells holds a value of zero (a person whose values are all zero counts by
  membership, which does not add up over cells).

Any other total gets its rows made here (each person's sum over the cells) and is handled like a
cell with rows. Nothing a reader can see changes: which cells are remembered, compared and given
away is the same as with the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from operator import xor

import numpy as np
import pandas as pd

from safepool.query.person_sums import entry_rows

Sums = Mapping[int, Sequence[int]]


def in_cell_order(incoming: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by cell (stably), as the engine hands them over."""
    cell = incoming["cell"].to_numpy(dtype=np.int64)
    if len(cell) < 2 or not np.any(cell[1:] < cell[:-1]):
        return incoming
    return incoming.iloc[np.argsort(cell, kind="stable")].reset_index(drop=True)


def split_sums(incoming: pd.DataFrame, column_of: Mapping[int, int], sums: Sums
               ) -> tuple[pd.DataFrame, dict[int, list[int]]]:
    """The rows with those of totals that cannot be kept as definitions made and added, and the
    totals that can (cell -> the cells it adds up). `incoming` is sorted by cell; totals that
    come with rows of their own are left as they are (the ledger checks them)."""
    bounds = _bounds(incoming)
    rowless = {int(cell): sorted({int(m) for m in members}) for cell, members in sums.items()
               if int(cell) not in bounds}
    if not rowless:
        return incoming, {}
    value = incoming["value"].to_numpy(dtype=float)
    person = incoming["person"].to_numpy(dtype=np.uint64)
    zeros = {int(c) for c in np.unique(incoming["cell"].to_numpy(dtype=np.int64)[value == 0])}
    disjoint: list[set[int]] = []  # sets of cells no person is in two of
    defined: dict[int, list[int]] = {}
    made: dict[int, list[int]] = {}
    for cell, members in sorted(rowless.items(), key=lambda item: -len(item[1])):  # a total before its margins
        if (_structured(cell, members, column_of, bounds, sums) and not zeros.intersection(members)
                and _disjoint(members, disjoint, bounds, person)):
            defined[cell] = members
        else:
            made[cell] = members
    if made:
        incoming = _with_sums(incoming, bounds, made)
    return incoming, defined


def sum_rows(incoming: pd.DataFrame, defined: Sums) -> pd.DataFrame:
    """The rows of totals kept as definitions: the rows of the cells each adds up (no person is in
    two of them), under the total's number; gathered at once (a frame put together of each cell's
    rows took 2-5 ms of a question with margins)."""
    bounds = _bounds(incoming)
    taken = {int(cell): [np.arange(*bounds[m]) for m in members] for cell, members in defined.items()}
    if not taken:
        return incoming.iloc[:0]
    rows = incoming.iloc[np.concatenate([at for ats in taken.values() for at in ats])].reset_index(drop=True)
    sizes = [sum(len(at) for at in ats) for ats in taken.values()]
    return rows.assign(cell=np.repeat(np.fromiter(taken, dtype=np.int64, count=len(taken)), sizes))


def with_sum_rows(incoming: pd.DataFrame, defined: Sums) -> pd.DataFrame:
    """The rows (sorted by cell) with those of the totals kept as definitions added in their places
    (`sum_rows`): a total tried without the cells it adds up stands for its persons."""
    return in_cell_order(pd.concat([incoming, sum_rows(incoming, defined)], ignore_index=True))


def cell_rows(incoming: pd.DataFrame, defined: Sums) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    """Each cell's persons and values by its number, the rows of a total kept as a definition made
    from those of the cells it adds up only when asked for: most cells an answer compares with the
    remembered ones are never asked for (no remembered cell is near their size)."""
    bounds = _bounds(incoming)
    person = incoming["person"].to_numpy(dtype=np.uint64)
    value = incoming["value"].to_numpy(dtype=np.float64)

    def rows_of(cell: int) -> tuple[np.ndarray, np.ndarray]:
        parts = [slice(*bounds[m]) for m in defined[cell]] if cell in defined else [slice(*bounds.get(cell, (0, 0)))]
        return np.concatenate([person[at] for at in parts]), np.concatenate([value[at] for at in parts])

    return rows_of


def sum_signatures(signatures: pd.DataFrame, defined: Sums) -> pd.DataFrame:
    """Size and signature of each total kept as a definition, from those of the cells it adds up:
    their sizes added, their signatures xor-ed (the same rows, under another number)."""
    if not defined:
        return signatures
    size = dict(zip(signatures["cell"].tolist(), signatures["size"].tolist()))
    signature = dict(zip(signatures["cell"].tolist(), signatures["signature"].to_numpy(dtype=np.uint64).tolist()))
    added = pd.DataFrame({
        "cell": np.fromiter(defined, dtype=np.int64, count=len(defined)),
        "size": np.array([sum(size[m] for m in members) for members in defined.values()], dtype=np.int64),
        "signature": np.array([reduce(xor, (signature[m] for m in members), 0) for members in defined.values()],
                              dtype=np.uint64)})
    return pd.concat([signatures, added], ignore_index=True)


def _bounds(incoming: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """Where each cell's rows are in rows sorted by cell."""
    cell = incoming["cell"].to_numpy(dtype=np.int64)
    if len(cell) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    ends = np.r_[starts[1:], len(cell)]
    return {int(cell[s]): (int(s), int(e)) for s, e in zip(starts, ends)}


def _structured(cell: int, members: list[int], column_of: Mapping[int, int], bounds: Mapping[int, tuple[int, int]],
                sums: Sums) -> bool:
    """Whether the total and its cells belong to one column, and those are cells with rows that are
    not sums themselves."""
    return (cell in column_of and bool(members) and cell not in members
            and all(m in column_of and column_of[m] == column_of[cell] and m in bounds and m not in sums
                    for m in members))


def _disjoint(members: list[int], known: list[set[int]], bounds: Mapping[int, tuple[int, int]],
              person: np.ndarray) -> bool:
    """Whether no person is in two of the cells: known for a part of a set found so before (margins
    are parts of their table's total), else found by sorting their persons. The engine hands each
    cell's persons over in the order of their keys, and a stable sort merges such runs (5 ms for
    300,000 persons, against 9 for a hash table of them and 20 for a sort of persons in no order);
    cells in no order are looked up in a hash table."""
    chosen = set(members)
    if any(chosen <= found for found in known):
        return True
    runs = [person[slice(*bounds[m])] for m in members]
    persons = np.concatenate(runs)
    if all(np.all(run[1:] > run[:-1]) for run in runs):
        merged = np.sort(persons, kind="stable")
        disjoint = not np.any(merged[1:] == merged[:-1])
    else:
        disjoint = pd.Index(persons).is_unique
    if disjoint:
        known.append(chosen)
    return disjoint


def _with_sums(incoming: pd.DataFrame, bounds: Mapping[int, tuple[int, int]], made: Sums) -> pd.DataFrame:
    """The rows with each total's rows added in its place among the cells: each person's sum over the
    cells it adds up, in the order of the cells, made as the query engine makes a total's rows.
    Rows that come ranked (column rank, see `Ledger.check`) are added up by their ranks, and the
    total's rows are ranked the same way."""
    rows = {"cell": incoming["cell"].to_numpy(dtype=np.int64), "person": incoming["person"].to_numpy(dtype=np.uint64),
            "value": incoming["value"].to_numpy(dtype=float)}
    rows |= _ranks(incoming, rows["person"])
    pieces = {cell: {name: rows[name][start:end] for name in ("person", "value", "rank") if name in rows}
              for cell, (start, end) in bounds.items()}
    summed = entry_rows(rows, [(int(cell), 0, [m for m in members if m in bounds]) for cell, members in made.items()])
    for cell, found in zip(made, summed):
        pieces[int(cell)] = {"person": found.person, "value": found.total + 0.0, "rank": found.rank}
    cells = sorted(pieces)
    frame = {"cell": np.repeat(np.asarray(cells, dtype=np.int64), [len(pieces[c]["person"]) for c in cells])}
    frame |= {name: np.concatenate([pieces[c][name] for c in cells]) for name in ("person", "value", "rank")
              if name in rows}
    return pd.DataFrame(frame, copy=False)


def ranks_of(incoming: pd.DataFrame) -> np.ndarray | None:
    """The rows' ranks among distinct persons (column rank, see `Ledger.check`), when every row has
    one: whole numbers, none below zero; else None (rows the ledger made carry none)."""
    if "rank" not in incoming.columns or incoming["rank"].dtype.kind not in "iu":
        return None
    rank = incoming["rank"].to_numpy()
    return rank if not len(rank) or rank.min() >= 0 else None


def _ranks(incoming: pd.DataFrame, person: np.ndarray) -> dict[str, np.ndarray]:
    """The rows' ranks and the distinct persons they point into, when the rows come ranked and each
    rank stands for one person (else nothing: `entry_rows` ranks them itself). Ranks no row has
    are left as zero: nothing reads them."""
    rank = ranks_of(incoming)
    if rank is None or not len(rank):
        return {}
    distinct = np.zeros(int(rank.max()) + 1, dtype=np.uint64)
    distinct[rank] = person
    return {"rank": rank, "distinct": distinct} if np.array_equal(distinct[rank], person) else {}
