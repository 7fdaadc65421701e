"""What an answer's entry counts, written the same way whichever question it came from.

Two shown entries (cells, totals, lines a reader adds up) with exactly the same persons say
nothing new when they are the same question: asked again, or a one-way table's cell and the
margin of a two-way table on the same filters. When their questions differ, the same persons are
news: the persons one question takes in and the other leaves out are none. An analyst who picks
two birth-date windows that differ by one known person, and adds a filter on earnings, learns
from two equal counts that this person's earnings are outside the filter. Within one answer such
an empty cell is suppressed (`engine.answer_rules`); across answers the ledger needs to know
which entries are the same question, and this module says it.

An entry's definition is a SHA-256 digest of:

- the persons' tables: the first and every inner-joined one, as a set (left joins restrict
  nothing but through filters), without a table that holds every person of another of them
  (`person_tables`: joining the population register to a register of payments keeps the
  persons who have payments);
- the filters, each as (variable, operator, constants written as the code list writes them),
  sorted;
- a quantile's position and variable (a quantile's window is its own set of persons);
- the group labels it adds up, with every group variable whose labels it takes in full
  dropped: the margin "male, Total" of sex by marital status is the cell "male" of sex alone.

Measures are left out: a count and a mean's rows of one group are the same persons unless some
values are missing. Which values are missing or outside the code list, and whether a whole table's
persons are all in another table, are therefore what two entries of one definition can tell
(documented in the README as not protected): facts of the registers' quality, not of a person.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from safepool.query.model import AggregateModel, Measure, constant_text


@dataclass(frozen=True)
class EntryDefinitions:
    """Each entry's definition, and the ways an entry splits into other entries of its column (and
    part) along one group: a total into its margins, a margin into its cells. What a split says of
    the persons (the parts' persons are the whole's, and no one is in two parts) is checked by the
    ledger before it takes the split as implied."""

    keys: Mapping[int, str]
    splits: Mapping[int, Sequence[Sequence[int]]] = field(default_factory=dict)


def splits_of(entries: Mapping[int, frozenset[tuple]]) -> dict[int, list[list[int]]]:
    """For entries of one column and part (entry -> the inner cells' labels it adds up), each way an
    entry's cells fall, by their label of one group, into the cells of other entries."""
    by_cells = {cells: entry for entry, cells in entries.items()}
    found: dict[int, list[list[int]]] = {}
    for entry, cells in entries.items():
        width = len(next(iter(cells))) if cells else 0
        for axis in range(width):
            pieces: dict[object, set[tuple]] = {}
            for cell in cells:
                pieces.setdefault(cell[axis], set()).add(cell)
            if len(pieces) > 1 and all(frozenset(piece) in by_cells for piece in pieces.values()):
                found.setdefault(entry, []).append(sorted(by_cells[frozenset(piece)] for piece in pieces.values()))
    return found


def person_tables(model: AggregateModel, holds_every_person: Callable[[str, str], bool]) -> list[str]:
    """The tables an entry's persons must have rows in: the first and the inner-joined ones, sorted,
    without each that holds every person of another one left (`holds_every_person(table, other)`,
    over the whole pool: no filter of the question changes it); of two with the same persons the
    first by name stays, as it does when asked alone."""
    joined = [table for table, inner in zip(model.tables[1:], model.inner_join) if inner]
    kept = sorted({model.tables[0], *joined})
    for table in list(kept):
        if any(holds_every_person(table, other) and (other < table or not holds_every_person(other, table))
               for other in kept if other != table):
            kept.remove(table)
    return kept


def entry_definitions(model: AggregateModel, tables: Sequence[str], measure: Measure, grid: Sequence[tuple],
                      entries: Sequence[set[tuple]]) -> list[str]:
    """The definition of each entry (a set of inner cells' labels, each a tuple over the model's
    groups) of one column whose inner cells are `grid`; `tables` as `person_tables` gives them."""
    base = {
        "tables": list(tables),
        "filters": sorted([str(c.variable), c.operator, sorted(constant_text(v) for v in c.values)
                           if c.operator in ("in", "not in") else [constant_text(v) for v in c.values]]
                          for c in model.filters),
        "quantile": [measure.quantile, str(measure.variable)] if measure.kind == "quantile" else None,
    }
    axes = [f"{g.variable}:{g.part}" for g in model.groups]
    labels = [{cell[i] for cell in grid} for i in range(len(axes))]
    found = []
    for members in entries:
        kept, cells = _without_full_axes(list(range(len(axes))), {tuple(m) for m in members}, labels)
        text = json.dumps({**base, "groups": [axes[i] for i in kept],
                           "cells": sorted(json.dumps([str(v) for v in cell]) for cell in cells)}, sort_keys=True)
        found.append(hashlib.sha256(text.encode("utf-8")).hexdigest())
    return found


def _without_full_axes(axes: list[int], cells: set[tuple], labels: list[set]) -> tuple[list[int], set[tuple]]:
    """The axes left and the cells projected on them, once every axis along which the cells take in
    all of the grid's labels is dropped (cells are a subset of the grid, so as many cells as their
    projection times the axis's labels means every combination)."""
    dropped = True
    while dropped:
        dropped = False
        for position, axis in enumerate(axes):
            rest = {cell[:position] + cell[position + 1:] for cell in cells}
            if len(cells) == len(rest) * len(labels[axis]):
                axes, cells, dropped = axes[:position] + axes[position + 1:], rest, True
                break
    return axes, cells
