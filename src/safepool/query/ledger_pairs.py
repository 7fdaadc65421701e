"""Pairs of cells that differ by too few persons: each incoming cell against the remembered cells
of a near size, compared in the ledger's memory.

Two cells give away the persons whose contribution differs between them (present in one and not
the other, or in both with another value) when those number between one and the minimum
frequency minus one; two cells that differ by no one are one question asked twice (the same
definition) or an empty difference (another). Two cells whose sizes differ by the minimum
frequency or more differ by at least that many persons, so a cell is compared only with the
remembered cells of a near size: its persons looked up, and their values set against each of
those cells' values person by person. An answer takes the same steps whether its cells have near
ones or not (the comparison of a cell with none is a look at the sizes); the persons compared
are few but for a cell near a large one.

The memory keeps what this needs beside the all-answers audit's entries: each entry's value as
shown, the rows of remembered sums of other cells (`RowBuffers`), and each remembered cell's size
and definition, and the cells a sum kept as a definition adds up (`RememberedCells`). Cells of a
family only (a study's rows) are no pair of anything (see `safepool.query.ledger`).

This was a statement on the ledger file: its fixed cost (12-16 ms, the file opened for it) was
paid by every first ask of a question, though hardly any cell has a remembered one of a near size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from safepool.query.empty_differences import Identity
from safepool.query.growing import appended

if TYPE_CHECKING:
    from safepool.query.ledger_memory import LedgerMemory

RELATIVE_TOLERANCE = 1e-9  # two values this close (relative to the larger, or to one) are the same value


class RowBuffers:
    """Rows (cell, person index, value) in the order of their cells, kept in buffers that grow."""

    def __init__(self) -> None:
        self._cell = np.empty(0, dtype=np.int64)
        self._person = np.empty(0, dtype=np.int64)
        self._value = np.empty(0, dtype=np.float64)
        self._kept = 0

    def append(self, cell: np.ndarray, person: np.ndarray, value: np.ndarray) -> None:
        self._cell = appended(self._cell, self._kept, cell)
        self._person = appended(self._person, self._kept, person)
        self._value = appended(self._value, self._kept, value)
        self._kept += len(cell)

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._cell[:self._kept], self._person[:self._kept], self._value[:self._kept]


@dataclass
class RememberedCells:
    """Every remembered cell's size and definition by its number, and the cells each sum kept as a
    definition adds up."""

    size: np.ndarray = field(default_factory=lambda: np.full(1, -1, dtype=np.int64))  # -1: no cell
    definition: dict[int, str | None] = field(default_factory=dict)
    members: dict[int, np.ndarray] = field(default_factory=dict)
    # (size, signature) of every remembered cell with the definitions of the cells that have them, and
    # (definition, size, signature) of every one: a cell asked again is found by these
    signed: dict[tuple[int, int], set[str | None]] = field(default_factory=dict)
    identities: set[Identity] = field(default_factory=set)

    def take(self, cells: pd.DataFrame, members: Mapping[int, Sequence[int]]) -> None:
        """Take cells (columns cell, size, signature, definition) and the members of those that are
        sums kept as definitions."""
        # a cell without a definition has None (pandas reads a missing one beside others as NaN)
        definitions = [definition if isinstance(definition, str) else None for definition in cells["definition"]]
        for size, signature, definition in zip(cells["size"].tolist(), cells["signature"].tolist(), definitions):
            self.signed.setdefault((int(size), int(signature)), set()).add(definition)
            self.identities.add((definition, int(size), int(signature)))
        number = cells["cell"].to_numpy(dtype=np.int64)
        if len(number) and int(number.max()) >= len(self.size):
            grown = np.full(int(number.max()) + 1, -1, dtype=np.int64)
            grown[:len(self.size)] = self.size
            self.size = grown
        self.size[number] = cells["size"].to_numpy(dtype=np.int64)
        self.definition.update(zip(number.tolist(), definitions))
        self.members.update({int(cell): np.asarray(list(of), dtype=np.int64) for cell, of in members.items()})


def near_pairs(memory: LedgerMemory, rows_of: Callable[[int], tuple[np.ndarray, np.ndarray]], cells: pd.DataFrame,
               min_frequency: int) -> dict[int, tuple[bool, frozenset[str | None]]]:
    """For each of `cells` (cell, size): whether it differs from a remembered cell by 1 to
    min_frequency - 1 persons, and the definitions of the remembered cells it equals. `rows_of`:
    a cell's persons and values by its number (asked only of cells near a remembered one's size)."""
    remembered = memory.remembered
    number = np.flatnonzero((remembered.size >= 0) & ~_family(memory, len(remembered.size)))
    order = np.argsort(remembered.size[number], kind="stable")
    number, size = number[order], remembered.size[number][order]
    found: dict[int, tuple[bool, frozenset[str | None]]] = {}
    for fresh, fresh_size in zip(cells["cell"].to_numpy(dtype=np.int64).tolist(),
                                 cells["size"].to_numpy(dtype=np.int64).tolist()):
        low, high = np.searchsorted(size, [fresh_size - min_frequency + 1, fresh_size + min_frequency])
        close, equal = False, set()
        if high > low:
            person, value = rows_of(fresh)
            person = memory.known(person)
            known = person >= 0  # a person the memory does not hold is in no remembered cell
            person, value = person[known], value[known]
            for old, old_size in zip(number[low:high].tolist(), size[low:high].tolist()):
                theirs, their_value = memory.rows_of(old)
                _, mine, at = np.intersect1d(person, theirs, return_indices=True)  # (it sorts both)
                if not len(mine):
                    continue  # no person in common: neither tells the other's persons apart
                a, b = value[mine], their_value[at]
                same = int(np.count_nonzero(np.abs(a - b) <= RELATIVE_TOLERANCE * np.maximum(
                    np.maximum(np.abs(a), np.abs(b)), 1.0)))
                differing = fresh_size + old_size - len(mine) - same
                close |= 0 < differing < min_frequency
                if differing == 0:
                    equal.add(remembered.definition.get(old))
        found[fresh] = (close, frozenset(equal))
    return found


def _family(memory: LedgerMemory, cells: int) -> np.ndarray:
    """Whether each cell number below `cells` is a cell of a family only."""
    marked = np.zeros(cells, dtype=bool)
    kept = min(cells, len(memory.family))
    marked[:kept] = memory.family[:kept]
    return marked
