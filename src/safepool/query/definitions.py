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

- the persons' tables: the first, every inner-joined one and every one whose variables it
  filters or groups on, as a set, without a table that holds every person of another of them
  (`person_tables`: joining the population register to a register of payments keeps the
  persons who have payments);
- what it selects of each variable its filters or group labels name: the set of the pieces the
  dictionary tells apart (codes; each policy bin's lower edge, and the values above it; the
  periods of the declared years, as fine as the variable is written) whose values meet the
  filters and fall in the labels it adds up, and none for a variable it selects in full. Values
  in no piece (missing, not in the code list, outside the declared years) count as pieces of
  their own where the variable's table holds any: a filter that takes every piece still leaves
  out missing values (a missing immigration date means born in Finland), and so does a group,
  even in its total. So
  `sex = 1`, `sex IN (1)` and the cell "male" of a table by sex are one selection, and so are a
  total over every label and no group at all: the margin "male, Total" of sex by marital status
  is the cell "male" of sex alone. An entry that adds up cells that are no box of pieces (a
  total of a table with cells suppressed) is the list of its cells' selections;
- a quantile's position and variable (a quantile's window is its own set of persons); and any
  filter the pieces do not decide (a test for missing values, a date outside the declared
  years), as written.

Measures are left out: the ledger takes two cells for one only when their definitions and their
persons' contributions agree (a count and a mean's rows of one group, unless values are missing
or a person has two rows). Whether a whole table's persons are all in another table, and whether
a variable's table holds values outside its pieces at all, are what two entries of one
definition can tell (documented in the README as not protected): facts of whole registers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from safepool.dictionary import Variable
from safepool.query.model import AggregateModel, Condition, Dictionary, Grouping, Measure, VariableRef, \
    constant_text, group_labels, holds


@dataclass(frozen=True)
class EntryDefinitions:
    """Each entry's definition, and the ways an entry splits into other entries of its column (and
    part) along one group: a total into its margins, a margin into its cells. Each person's
    contribution to the whole is the sum of theirs to the parts (the engine adds them up so, as a
    reader adds up shown cells), so the ledger takes a split as implied."""

    keys: Mapping[int, str]
    splits: Mapping[int, Sequence[Sequence[int]]] = field(default_factory=dict)
    # whether the splits are every relation the entries' definitions imply, so that any other
    # combination whose contributions cancel is an empty difference (a query's entries); a study's
    # groups are defined, its rows are not, so only a group asked again is compared (the pairs)
    every_split: bool = True


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
    """The tables an entry's persons must have rows in: the first, the inner-joined ones and those
    whose variables a filter or group names (a left-joined table's rows are needed then), sorted,
    without each that holds every person of another one left (`holds_every_person(table, other)`,
    over the whole pool: no filter of the question changes it; of two with the same persons the
    first by name stays)."""
    joined = [table for table, inner in zip(model.tables[1:], model.inner_join) if inner]
    named = {c.variable.table for c in model.filters} | {g.variable.table for g in model.groups}
    kept = sorted({model.tables[0], *joined, *named})
    for table in list(kept):
        if any(holds_every_person(table, other) and (other < table or not holds_every_person(other, table))
               for other in kept if other != table):
            kept.remove(table)
    return kept


def entry_definitions(model: AggregateModel, dictionary: Dictionary, tables: Sequence[str],
                      outside: Callable[[VariableRef], frozenset[str]], measure: Measure,
                      entries: Sequence[set[tuple]]) -> list[str]:
    """The definition of each entry (a set of inner cells' labels, each a tuple over the model's
    groups) of one column; `tables` as `person_tables` gives them, `outside(variable)` the kinds of
    value outside the pieces its table holds (see `OUTSIDE`)."""
    variables = {ref: dictionary[ref.table][ref.name] for ref in
                 {*(c.variable for c in model.filters), *(g.variable for g in model.groups)}}
    grouped = {g.variable for g in model.groups}
    selected, full = {}, {}
    for ref, variable in variables.items():
        conditions = [c for c in model.filters if c.variable == ref]
        pieces = _selected(variable, conditions)
        # whether the table holds values outside the pieces matters only where a selection could be
        # full (a group's total, a filter taking every piece); elsewhere every kind is counted possible
        kinds = outside(ref) if ref in grouped or pieces == all_pieces(variable) else _possible_outside(variable)
        full[ref] = all_pieces(variable) | kinds
        # a group leaves out what falls in none of its labels, even in its total
        selected[ref] = pieces if ref in grouped else pieces | _outside_selected(variable, conditions, kinds)
    unresolved = sorted(_written(c) for c in model.filters if not _inside(variables[c.variable], c))
    quantile = [measure.quantile, str(measure.variable)] if measure.kind == "quantile" else None
    pieces_of = [label_pieces(g, variables[g.variable]) for g in model.groups]
    found = []
    for members in entries:
        boxes = []
        for cell in members:
            box = dict(selected)
            for group, label_of, label in zip(model.groups, pieces_of, cell):
                box[group.variable] = box[group.variable] & label_of.get(str(label), frozenset())
            boxes.append(box)
        written = [{str(ref): sorted(chosen) for ref, chosen in box.items() if chosen != full[ref]}
                   for box in _merged(boxes)]
        text = json.dumps({"tables": list(tables), "quantile": quantile, "outside": unresolved,
                           "boxes": sorted(json.dumps(b, sort_keys=True) for b in written)}, sort_keys=True)
        found.append(hashlib.sha256(text.encode("utf-8")).hexdigest())
    return found


def _merged(boxes: list[dict]) -> list[dict]:
    """The boxes (variable -> pieces) with all that agree on every variable but one made one (their
    pieces of it joined), variable by variable until none merge: cells along a line become the
    line's box."""
    merging = True
    while merging and len(boxes) > 1:
        merging = False
        for ref in list(boxes[0]):
            groups: dict[tuple, dict] = {}
            for box in boxes:
                rest = tuple(sorted((str(other), tuple(sorted(chosen))) for other, chosen in box.items() if other != ref))
                if rest in groups:
                    groups[rest] = {**groups[rest], ref: groups[rest][ref] | box[ref]}
                    merging = True
                else:
                    groups[rest] = box
            boxes = list(groups.values())
    return boxes


def all_pieces(variable: Variable) -> frozenset[str]:
    """The finest pieces of a variable's values that its filters and groups tell apart (see
    `_representatives`)."""
    return frozenset(_representatives(variable))


def label_pieces(group: Grouping, variable: Variable) -> dict[str, frozenset[str]]:
    """Each label of a group and the pieces it takes in (none for a label outside them: missing,
    not in the code list, before or after the declared years)."""
    pieces = list(_representatives(variable))
    if group.part == "code":
        return {label: frozenset(code for code, named in (variable.codes or {}).items() if named == label)
                for label in group_labels(group, variable)}
    if group.part == "bin":  # a bin is its lower edge and the values above it below the next edge
        return {label: frozenset(p for p in pieces if p.split(" ", 1)[1] in (f"{i}", f"{i}+"))
                for i, label in enumerate(group_labels(group, variable))}
    width = {"year": 4, "quarter": 6, "month": 7}[group.part]
    found: dict[str, set[str]] = {}
    for piece in pieces:
        found.setdefault(piece[:width], set()).add(piece)
    return {label: frozenset(within) for label, within in found.items()}


def _representatives(variable: Variable) -> dict[str, list[object]]:
    """Each piece of a variable's values and values that stand for it (filters compare with codes,
    bin edges and first days of periods only, so these decide every filter): a code; each bin's
    lower edge on its own ("bin i", as `x = e` and `x > e` tell it apart) and the values above it
    ("bin i+"), of an integer variable only those that hold an integer (`children > 1` and
    `children >= 2` are one selection when the next edge is 2); a period of the finest part the
    variable is written in, by its first day."""
    if variable.level == "categorical":
        return {str(code): [code] for code in variable.codes or {}}
    if variable.level == "numeric":
        edges = [float(edge) for edge in variable.bins or []]
        if variable.type != "integer":
            found: dict[str, list[object]] = {"bin 0+": [edges[0] - 1.0]} if edges else {}
            for i, (low, high) in enumerate(zip(edges, [*edges[1:], edges[-1] + 2.0]), start=1):
                found[f"bin {i}"], found[f"bin {i}+"] = [low], [(low + high) / 2]
            return found
        found = {"bin 0+": [math.ceil(edges[0]) - 1.0]} if edges else {}
        for i, (low, high) in enumerate(zip(edges, [*edges[1:], math.inf]), start=1):
            if low.is_integer():
                found[f"bin {i}"] = [low]
            if math.floor(low) + 1.0 < high:  # an integer above the edge and below the next
                found[f"bin {i}+"] = [math.floor(low) + 1.0]
        return found
    first, last = variable.years or (0, -1)
    finest = variable.date_parts()[-1] if variable.date_parts() else "month"
    months = {"year": [1], "quarter": [1, 4, 7, 10], "month": list(range(1, 13))}[finest]
    name = {"year": lambda y, m: f"{y}", "quarter": lambda y, m: f"{y}Q{(m + 2) // 3}",
            "month": lambda y, m: f"{y}-{m:02d}"}[finest]
    return {name(y, m): [dt.date(y, m, 1)] for y in range(first, last + 1) for m in months}


OUTSIDE = {-1: "missing", -2: "not in the code list", -3: "before the years", -4: "after the years"}


def _possible_outside(variable: Variable) -> frozenset[str]:
    """The kinds of value outside the pieces a variable of its level can have."""
    return frozenset({"categorical": ["missing", "not in the code list"], "numeric": ["missing"],
                      "date": ["missing", "before the years", "after the years"]}.get(variable.level, ["missing"]))


def _selected(variable: Variable, conditions: Sequence[Condition]) -> frozenset[str]:
    """The pieces whose values meet every condition on the variable."""
    return frozenset(piece for piece, values in _representatives(variable).items()
                     if any(all(holds(c, v) for c in conditions) for v in values))


def _outside_selected(variable: Variable, conditions: Sequence[Condition], kinds: frozenset[str]) -> set[str]:
    """The kinds of value outside the pieces that meet every condition: a missing value meets
    only `is null`; a code not in the list, or a date before or after the declared years, meets
    what a stand-in for it meets."""
    first, last = variable.years or (2000, 2000)
    stand_in = {"not in the code list": "\x00", "before the years": dt.date(max(first - 1, 1), 1, 1),
                "after the years": dt.date(min(last + 1, 9999), 1, 1)}
    return {kind for kind in kinds
            if (all(c.operator == "is null" for c in conditions) if kind == "missing"
                else all(holds(c, stand_in[kind]) for c in conditions))}


def _inside(variable: Variable, condition: Condition) -> bool:
    """Whether the pieces decide the condition: a date compared with a day outside the declared
    years (or a test for missing values) is not, and is kept in the definition as written."""
    if condition.operator in ("is null", "is not null"):
        return False
    if variable.level != "date":
        return True
    first, last = variable.years or (0, -1)
    return all(not isinstance(v, dt.date) or dt.date(first, 1, 1) <= v <= dt.date(last + 1, 1, 1)
               for v in condition.values)


def _written(condition: Condition) -> list:
    return [str(condition.variable), condition.operator, sorted(constant_text(v) for v in condition.values)]
