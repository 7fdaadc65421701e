"""The values behind each mean a study shows, as the differencing ledger takes them.

A mean a study shows is a sum of its persons' values divided by their number, and the count and
the mean, multiplied, give the sum. An analyst can add up the same values with queries over
nearly the same persons (every client, one query per entry quarter), and the difference tells
the values of the few persons between: an attacking review read one client's benefits at entry
so, from a run whose one unmatched client every effect row at entry left out. So each arm of
each mean shown enters the workspace's ledger as the sum it is: its persons, each keyed by its
ledger key as a query answer's persons are, with what each adds to the sum (`ArmValues`). A
mean the ledger finds is hidden, as the query engine hides a cell (`RowsFound`), and the study
checks what it would show then.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArmValues:
    """One arm of one mean as the sum it shows: its persons (pseudonyms, in order) and what each adds
    to the sum; with `periods`, each member is a person's rows in one quarter of a register (the
    code of that register and quarter: `safepool.query.person_periods`), as a query's sum takes them."""

    persons: np.ndarray
    values: np.ndarray
    periods: np.ndarray | None = None


@dataclass(frozen=True)
class ShownArm:
    """An arm of a mean a study shows, with its place: the table and the row it is in; `family`
    when the ledger takes it in the audit of families of sums only (an effect table's row: see
    `safepool.query.ledger.Ledger.check`)."""

    table: str
    position: int
    values: ArmValues
    family: bool = False


class RowsFound(Exception):
    """Rows whose means the ledger found (with nothing else), per table: the study hides them, as the
    checks hide a row, and checks what it would show then. Each round hides one more row at least,
    so it ends; nothing is recorded or audited before the check passes."""

    def __init__(self, rows: dict[str, set[int]]) -> None:
        super().__init__("rows to hide")
        self.rows = rows
