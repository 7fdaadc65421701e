"""An insight run's shown cells in the workspace's differencing ledger, before anything is recorded.

Every table an insight run shows counts persons in groups (persons per grid cell, per customer
group, per path) or adds up their values (a group's mean use of a service). Two runs whose
populations differ by one person tell that person's values: an attacking review ran the same
segments at ages 0-120 and 0-94, and the customer groups' counts and mean costs, subtracted, gave
the one resident aged 95 and, through a price list chosen to pack three services into one number,
her use of each. Each table passed its own checks; the runs were never set beside each other.

So an analysis names the persons behind each table it shows (`PersonsBehind`), and after the
checks have decided what is shown, every shown cell enters the ledger the query engine keeps
(`safepool.query.ledger`): a count as its persons, a mean as the values it adds up (a person with
no value adds zero, as the mean takes it). The ledger sets them against every earlier answer,
study and insight run of any permit. When it finds a cell that, with them, singles out fewer
persons than the minimum frequency, that cell is hidden as a failing cell is (audited `withheld`:
the `differencing` alert counts it) and what the run would show then is checked again, as the
query engine hides a cell; nothing is recorded before the check passes, and then the cells shown
are remembered.

Each cell carries a definition, as a query's cell does: what decides its persons (the analysis's
population settings and, per label it filters on, the settings that decide that label: the risk
points, the clustering), never a value read from the data. The same run again adds nothing and
passes; a cell of another definition holding exactly the same persons and values is an empty
difference (no one is in what the two definitions leave apart), hidden as one that leaves out a
few is, so that a hidden cell does not tell which.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.findings import json_safe
from safepool.disclosure.kinds.base import Mitigated
from safepool.disclosure.margins import TOTAL
from safepool.disclosure.policy import workspace_policy
from safepool.features import PERSON
from safepool.governance.context import Governance
from safepool.governance.users import Actor
from safepool.pool.ledger_keys import LedgerKeys
from safepool.query.definitions import EntryDefinitions
from safepool.query.ledger import WITHHELD, Ledger, withheld_entries

INSIGHT_ACTION = "insight"


class CellsFound(Exception):
    """Cells the ledger found, per output (their group labels, as `publish_all`'s `hide` takes
    them): the runner hides them, as the checks hide a cell, and checks what it would show then.
    Each round hides one more shown cell at least, so it ends; nothing is recorded before the
    check passes."""

    def __init__(self, cells: dict[str, set[tuple]]) -> None:
        super().__init__("cells found by the differencing ledger")
        self.cells = cells


@dataclass(frozen=True)
class PersonsBehind:
    """Who is behind a table's cells: `frame` has a row per person and cell of a group column
    (PERSON, the group columns, and the columns its means add up), `groups` the table's label
    columns, `population` the settings that decide who is in the frame, `decided_by` per group
    or measure column the settings that decide its labels or values (none for a feature's own
    value), and `measure` the label column that names the column a mean adds up (a magnitude
    table's "feature"; None for a count).

    A table of counts shows, per row, each count `counted(row)` names (by default its one
    "count"): the frame's rows in the row's groups that also have the labels it gives (a rate
    table's n_positive: outcome "started"). A person with several such rows (a training unit in
    several quarters) adds one per row, as the count does. A count's definition is made of the
    labels its rows have, never of the column's name, so that one set of persons shown in two
    tables (a cohort's test persons who started, a performance table's n_positive) is one question."""

    frame: pd.DataFrame
    groups: tuple[str, ...]
    population: str
    decided_by: Mapping[str, str] = field(default_factory=dict)
    measure: str | None = None
    counted: Callable[[Mapping[str, Any]], Mapping[str, Mapping[str, str]]] = lambda _row: {"count": {}}


@dataclass
class LedgerEntries:
    """The ledger's incoming cells of a run: their entries (one frame per cell: person, value),
    each cell's column (one per table and count) and definition, each column's measure ("persons"
    or "mean"), and where each cell is shown: its output, group labels and count column (None for
    a mean), once per place. A cell of the run shown again under the same definition (the test
    persons of a need run, in five tables) enters once, with every place it is shown in."""

    cells: list[pd.DataFrame] = field(default_factory=list)
    column_of: dict[int, int] = field(default_factory=dict)
    definitions: dict[int, str] = field(default_factory=dict)
    measures: list[str] = field(default_factory=list)
    places: dict[int, list[tuple[str, tuple, str | None]]] = field(default_factory=dict)

    def incoming(self) -> pd.DataFrame:
        """The entries as the ledger takes a query's: cell, person (ledger key), value."""
        return pd.concat(self.cells, ignore_index=True)


def ledger_entries(keys: LedgerKeys, mitigated: Mapping[str, Mitigated], behind: Mapping[str, PersonsBehind]
                   ) -> LedgerEntries:
    """Every shown cell of the tables with persons behind them, as the ledger takes a query's."""
    entries = LedgerEntries()
    owners_of: dict[int, np.ndarray] = {}  # the ledger keys of a frame's persons, looked up once per frame
    labels_of: dict[tuple[int, str], np.ndarray] = {}  # a frame's labels of a column, as text
    entered: dict[str, int] = {}  # the cell entered under each definition
    for name, persons in ((n, p) for n, p in behind.items() if n in mitigated):
        output = mitigated[name].output
        cells = output.cells
        frame = persons.frame
        owners = owners_of.get(id(frame))
        if owners is None:
            owners = owners_of[id(frame)] = keys.of(frame[PERSON].to_numpy())
        measures = sorted({str(m) for m in cells[persons.measure]} - {TOTAL}) if persons.measure else []
        columns: dict[str | None, int] = {}
        for row in cells.loc[shown_mask(cells)].to_dict("records"):
            filters = {g: str(row[g]) for g in persons.groups if g != persons.measure and str(row[g]) != TOTAL}
            measured = str(row[persons.measure]) if persons.measure else None
            place = (name, tuple(json_safe(row[g]) for g in output.groups))
            for count, labels in ({None: {}} if persons.measure else persons.counted(row)).items():
                where = {**filters, **labels}
                definition = _definition(persons, where, measured)
                if definition in entered:  # the same persons again
                    entries.places[entered[definition]].append((*place, count))
                    continue
                inside = np.ones(len(owners), dtype=bool)
                for g, wanted in where.items():
                    inside &= _labels(frame, g, labels_of) == wanted
                if persons.measure is None:  # a person adds one per row of theirs in the cell
                    members, values = np.unique(owners[inside], return_counts=True)
                else:  # a total over the measures adds up each person's values of every one
                    added = measures if measured == TOTAL else [measured]
                    members = owners[inside]
                    values = np.nan_to_num(frame[added].to_numpy(dtype=float)[inside], nan=0.0).sum(axis=1)
                if not len(members):  # a cell of nobody holds no one to tell apart
                    continue
                if count not in columns:
                    columns[count] = len(entries.measures)
                    entries.measures.append("mean" if persons.measure else "persons")
                number = len(entries.cells)
                entries.cells.append(pd.DataFrame({"cell": number, "person": members,
                                                   "value": np.asarray(values, dtype=float)}))
                entries.column_of[number] = columns[count]
                entries.definitions[number], entered[definition] = definition, number
                entries.places[number] = [(*place, count)]
    return entries


def _labels(frame: pd.DataFrame, column: str, known: dict[tuple[int, str], np.ndarray]) -> np.ndarray:
    """A frame's labels of a column as text, made once per frame and column."""
    key = (id(frame), column)
    if key not in known:
        known[key] = frame[column].astype(str).to_numpy()
    return known[key]


def _definition(persons: PersonsBehind, labels: Mapping[str, str], measured: str | None) -> str:
    """What decides a cell's persons and values, from settings and labels only (the key "filters"
    kept from the first version, so that the cells a ledger remembers keep their definitions)."""
    text = json.dumps({"population": persons.population,
                       "filters": sorted([g, label, persons.decided_by.get(g, "")] for g, label in labels.items()),
                       "measure": None if measured is None else [measured, persons.decided_by.get(measured, "")]},
                      sort_keys=True)
    return hashlib.sha256(f"insight cell\n{text}".encode("utf-8")).hexdigest()


def check_insight(ledger: Ledger, governance: Governance, actor: Actor, keys: LedgerKeys,
                  behind: Mapping[str, PersonsBehind], mitigated: Mapping[str, Mitigated]) -> None:
    """Check the run's shown cells (`mitigated`: its outputs as they would be recorded; `keys`: the
    pool's ledger keys) in the workspace's ledger, opened for the run (`opened_ledger`), which
    remembers them; when it finds cells, audit them `withheld` and raise CellsFound with their
    labels (the runner hides them and checks what it would show then)."""
    min_frequency = workspace_policy(governance).min_frequency
    entries = ledger_entries(keys, mitigated, behind)
    if not entries.column_of:
        return
    found = ledger.check(entries.incoming(), entries.column_of, min_frequency,
                         definitions=EntryDefinitions(entries.definitions, every_split=False))
    if not found:
        return
    governance.audit.append(
        actor=actor.name, role=actor.main_role, action=INSIGHT_ACTION, permit=ledger.permit, outcome=WITHHELD,
        target="insight run", rows=0,
        detail={"withheld": withheld_entries([(entries.column_of[cell], check) for cell, check in found.items()],
                                             entries.measures), **ledger.state()})
    hidden: dict[str, set[tuple]] = {}
    for cell in found:
        for name, labels, _ in entries.places[cell]:
            hidden.setdefault(name, set()).add(labels)
    raise CellsFound(hidden)
