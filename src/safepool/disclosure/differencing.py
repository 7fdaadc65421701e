"""Differencing: does an output, set beside a table already released, reveal a small group?

Two frequency tables of nested populations (the same people with a narrower filter, or totals
that differ by a few persons) each pass the minimum frequency, yet their difference is a group
of its own. For every grouping the two tables share (each subset of their common group columns,
the empty one being the grand total) both are summed to that grouping, or its shown total taken,
and compared cell by cell:

  * both sums fully shown, and they differ by 1 to min_frequency - 1 persons: subtracting one
    from the other reveals that small group;
  * the populations look the same (no fully shown pair of sums differs, at any grouping) and
    one table has exactly one suppressed cell under a sum that the other shows in full: that
    suppressed cell can be solved for.

When one table is larger in some cell and smaller in another, the populations are not nested
and a difference is not a group of persons, so nothing is concluded. A flag names both outputs
and the groups' labels, never a count. The other tables are those released, or approved for
release, under any permit of the workspace: their shown cells are public, or about to be, and a
reader can set tables of two permits side by side.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import pandas as pd

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.findings import json_safe
from safepool.disclosure.margins import TOTAL

Label = str | int | float | bool | None
_SHOWN_IN_MESSAGE = 5


@dataclass(frozen=True)
class FrequencyCells:
    """A frequency table as it would be shown: group labels and person counts (None: suppressed)."""

    groups: tuple[str, ...]
    rows: tuple[tuple[tuple[Label, ...], int | None], ...]

    @classmethod
    def of_output(cls, output: Any) -> FrequencyCells | None:
        """The first person-count table an output shows (its kind says which), or None."""
        from safepool.disclosure.kinds import kind_of

        found = kind_of(output).differencing_cells(output)
        return found[0] if found else None

    @classmethod
    def of_table(cls, public: pd.DataFrame, groups: list[str], column: str) -> FrequencyCells:
        """Person counts by group from a public table; rows repeating a group (a quantile table's
        quantiles) give one cell, shown if any of them shows its count."""
        cells: dict[tuple[Label, ...], int | None] = {}
        for row, shown in zip(public[list(groups) + [column]].to_dict("records"), shown_mask(public)):
            labels = tuple(json_safe(row[g]) for g in groups)
            count = _count(row[column]) if shown else None
            cells[labels] = count if cells.get(labels) is None else cells[labels]
        return cls(groups=tuple(groups), rows=tuple(cells.items()))

    def to_record(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "rows": [[list(labels), count] for labels, count in self.rows]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FrequencyCells:
        return cls(groups=tuple(record["groups"]),
                   rows=tuple((tuple(labels), count) for labels, count in record["rows"]))


@dataclass(frozen=True)
class DifferencingFlag:
    """Output `output`, set beside the released (or approved) output `other`, reveals `cells`."""

    output: str
    other: str
    cells: list[dict[str, Any]] = field(default_factory=list)  # {"by": [...], "group": {...}, "how": ...}
    message: str = ""

    def to_record(self) -> dict[str, Any]:
        return {"output": self.output, "other": self.other, "cells": self.cells, "message": self.message}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DifferencingFlag:
        return cls(output=record["output"], other=record["other"], cells=list(record["cells"]),
                   message=record["message"])


def flags_against(output_id: str, cells: FrequencyCells, released: Mapping[str, FrequencyCells],
                  min_frequency: int) -> list[DifferencingFlag]:
    """Compare one output's cells with each released table; one flag per revealing pair."""
    found = (compare(output_id, cells, other_id, other, min_frequency) for other_id, other in released.items()
             if other_id != output_id)
    return [flag for flag in found if flag is not None]


def compare(output_id: str, cells: FrequencyCells, other_id: str, other: FrequencyCells,
            min_frequency: int) -> DifferencingFlag | None:
    """The groups that subtracting `other` from `cells` (or the reverse) reveals, if any."""
    common = [g for g in cells.groups if g in other.groups]
    sums = {by: (_sums(cells, by), _sums(other, by)) for by in _groupings(common)}
    directions = {difference > 0 for pair in sums.values() for difference in _shown_differences(*pair)
                  if difference != 0}
    if len(directions) > 1:
        return None  # one is larger here and smaller there: not nested populations
    revealed = [cell for by, pair in sums.items()
                for cell in _revealed_at(by, *pair, same_people=not directions, min_frequency=min_frequency)]
    if not revealed:
        return None
    return DifferencingFlag(output=output_id, other=other_id, cells=revealed,
                            message=_message(output_id, other_id, revealed, min_frequency))


Sums = dict[tuple[Label, ...], tuple[int, int]]


def _groupings(common: list[str]) -> Iterator[tuple[str, ...]]:
    for size in range(len(common), -1, -1):
        yield from combinations(common, size)


def _shown_differences(a: Sums, b: Sums) -> list[int]:
    return [a[k][0] - b[k][0] for k in a if k in b and a[k][1] == 0 and b[k][1] == 0]


def _revealed_at(by: tuple[str, ...], sums_a: Sums, sums_b: Sums, *, same_people: bool,
                 min_frequency: int) -> list[dict[str, Any]]:
    revealed = []
    for key in (k for k in sums_a if k in sums_b):
        (known_a, hidden_a), (known_b, hidden_b) = sums_a[key], sums_b[key]
        group = dict(zip(by, key))
        if hidden_a == 0 and hidden_b == 0:
            if 0 < abs(known_a - known_b) < min_frequency:
                revealed.append({"by": list(by), "group": group, "how": "difference"})
        elif same_people and sorted((hidden_a, hidden_b)) == [0, 1]:
            solved = known_b - known_a if hidden_a else known_a - known_b
            if solved >= 0:
                revealed.append({"by": list(by), "group": group, "how": "suppressed cell recoverable"})
    return revealed


def _sums(cells: FrequencyCells, by: tuple[str, ...]) -> Sums:
    """Per cell of the grouping `by`: (sum of the shown counts, number of suppressed cells).

    Total rows (labelled "Total", as mitigation adds them) are not summed with the cells: a shown
    total for exactly the grouping `by` is that sum, known in full."""
    positions = [cells.groups.index(g) for g in by]
    sums: Sums = {}
    totals: Sums = {}
    for labels, count in cells.rows:
        key = tuple(labels[p] for p in positions)
        is_total = [label == TOTAL for label in labels]
        if not any(is_total):
            known, hidden = sums.get(key, (0, 0))
            sums[key] = (known + count, hidden) if count is not None else (known, hidden + 1)
        elif count is not None and all(total == (i not in positions) for i, total in enumerate(is_total)):
            totals[key] = (count, 0)
    return sums | totals


def _message(output_id: str, other_id: str, revealed: list[dict[str, Any]], min_frequency: int) -> str:
    differences = [c for c in revealed if c["how"] == "difference"]
    solved = [c for c in revealed if c["how"] != "difference"]
    parts = []
    if differences:
        parts.append(f"subtracting one from the other reveals {len(differences)} group(s) of fewer than "
                     f"{min_frequency} persons ({_describe(differences)})")
    if solved:
        parts.append(f"{len(solved)} suppressed cell(s) can be solved for ({_describe(solved)})")
    return f"output {output_id} set beside output {other_id}: " + "; ".join(parts)


def _describe(cells: list[dict[str, Any]]) -> str:
    names = [", ".join(f"{k}={v}" for k, v in c["group"].items()) or "the whole table" for c in cells]
    more = len(names) - _SHOWN_IN_MESSAGE
    return "; ".join(names[:_SHOWN_IN_MESSAGE]) + (f"; and {more} more" if more > 0 else "")


def _count(value: Any) -> int | None:
    number = json_safe(value)
    return None if number is None else int(round(float(number)))
