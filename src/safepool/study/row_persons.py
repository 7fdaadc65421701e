"""The values behind each row of a study's effect tables, for the differencing ledger.

A row shows each arm's mean of one outcome at one horizon, with its persons counted. Which
clients a row follows depends on the matched controls too: a client enters a horizon's row only
where a control of its set is observed then. Two runs over the same clients whose controls differ
(the review ran the shipped study and again with `refine: false`) so followed, at entry, clients
who differed by three, and the counts times the means, subtracted, gave those three's benefits.
The groups a run describes (`safepool.study.differencing.study_groups`) were the same in both
runs, so the ledger had passed the second one.

So every shown row's arms enter the ledger as what their sums add up: each arm is a cell whose
members are its persons, each standing for the values of that person the mean takes: a row at
horizon h of a unit whose time is t shows the mean of the outcome in quarter t + h, for the
effect and for the difference in differences alike (the latter's estimate differences changes
from the baseline, but its means are levels: a review read one client's benefits at entry from
the two rows at horizon 0 of one run, whose clients differed by that one, when the difference in
differences had been taken as other values). A value is an unknown the tables tell only in sums,
and a member is one person, so the ledger's checks of groups of fewer persons than the minimum
frequency are exact for the means:

- the same row of another run whose persons differ by a few tells those few's values (the route
  above), and is found; the same row over the same persons is the same question and passes;
- rows of other horizons or outcomes take other values, so they do not pin a group by their
  persons alone, as a cell of persons would have (rows at horizons 10 and 11 follow clients who
  differ by a few in any event study, and tell nothing of theirs);
- combinations of rows across tables and runs are found as the ledger finds combinations of
  query answers (the effect, the difference in differences, the event study and the unmatched
  comparison at one horizon take the same values).

Not entered (open): what a difference in differences' estimate adds to its means, the weighted
difference between the arms' baseline means; two rows whose clients differ by a few tell a
difference of those few clients' and their controls' baseline values.

The members are hashed from the person's ledger key and the value's outcome and quarter
(`safepool.study.differencing`), so they never meet a query answer's persons: an answer's cells
are persons, and the query engine's and the study's values are not set against each other. A
hidden row tells nothing and stays out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from safepool.query.ledger_memory import mix

ROW_PERSONS = "row persons"  # the column that carries them beside a table until the analysis splits it off
ARMS = {True: "clients", False: "controls"}


@dataclass(frozen=True)
class ArmPersons:
    """One arm of one row as the sum it shows: its persons (pseudonyms, each once) and, for each,
    a code of the values of that person the sum takes (`value_code`, combined when it takes more
    than one, as a control in two matched sets at other times)."""

    persons: np.ndarray
    values: np.ndarray


def value_code(outcome: str, quarters: np.ndarray) -> np.ndarray:
    """A code for each value of `outcome` in the given quarters (integers), the same in every run."""
    named = int.from_bytes(hashlib.sha256(outcome.encode()).digest()[:4], "big")
    return (np.uint64(named) << np.uint64(32)) | (np.asarray(quarters).astype(np.int64).astype(np.uint64)
                                                  & np.uint64(0xFFFFFFFF))


def row_persons(cells: pd.DataFrame, source: pd.DataFrame, person: str, outcome: str) -> pd.DataFrame:
    """Per horizon of effect `cells` (horizon, treated, row: the row of `source`, which holds the
    `person` and the unit's time t), each arm's persons and the codes of their values: columns
    horizon and ROW_PERSONS (arm name -> ArmPersons)."""
    rows = cells["row"].to_numpy()
    horizon = cells["horizon"].to_numpy().astype(np.int64)
    at = source["t"].to_numpy().astype(np.int64)[rows] + horizon
    codes = value_code(outcome, at)
    values = pd.DataFrame({"horizon": horizon, "treated": cells["treated"].to_numpy(bool),
                           "person": source[person].to_numpy()[rows], "code": codes})
    values = values.drop_duplicates().sort_values(["horizon", "treated", "person"], kind="stable")
    first = np.flatnonzero(~values.duplicated(["horizon", "treated", "person"]).to_numpy())
    combined = np.add.reduceat(mix(values["code"].to_numpy(np.uint64)), first) if len(first) else np.zeros(0, np.uint64)
    members = values.iloc[first].assign(code=combined)
    arms = {key: ArmPersons(frame["person"].to_numpy(), frame["code"].to_numpy(np.uint64))
            for key, frame in members.groupby(["horizon", "treated"], sort=True)}
    horizons = sorted({int(h) for h, _ in arms})
    per_row = [{name: arms[(h, treated)] for treated, name in ARMS.items() if (h, treated) in arms} for h in horizons]
    return pd.DataFrame({"horizon": horizons, ROW_PERSONS: per_row})


def split_row_persons(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The table without its ROW_PERSONS column, and that column (same rows; a table of no rows
    may come without it)."""
    if ROW_PERSONS not in table.columns:
        return table, pd.Series([], dtype=object)
    return table.drop(columns=[ROW_PERSONS]), table[ROW_PERSONS].reset_index(drop=True)


def shown_row_cells(persons: Mapping[str, pd.Series], shown: Mapping[str, np.ndarray], labels: Mapping[str, pd.Series]
                    ) -> dict[str, ArmPersons]:
    """The arms of every shown row (`shown`: per table, which of its rows are shown after the
    checks), each named by its table's `labels` (one text per row) and arm, in the tables' order."""
    cells: dict[str, ArmPersons] = {}
    for name, column in persons.items():
        for arms, visible, label in zip(column, shown[name], labels[name]):
            if visible:
                cells.update({f"{label}, {arm}": persons_of_arm for arm, persons_of_arm in arms.items()})
    return cells
