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

A difference in differences tells more than its means: its estimate less their difference is
the difference of the arms' baseline means (quarter t + baseline), over the same persons. Every
row of one outcome differences the same baseline values, so two rows whose clients differ by a
few (horizons 10 and 11 of an event study, or -8 and -7 when few clients were observed eight
quarters before entry) tell, n times each subtracted, those few clients' baseline values less
their controls'. So a difference in differences' row enters the ledger with two more arms, its
clients' and its controls' baseline values (`BASELINE_ARMS`), one member per person and value
(a control in two sets at other times is two values, and a member must stand for one value in
every row it is in, or two rows that differ by one set would differ by more members). Taking
each arm's sum as told, where the row tells only their difference, is on the safe side. Within
one run the study does not show the rows that would single out fewer than the minimum frequency
this way (`baseline_hidden`): rows are taken in order, the effects' first, and a row is left out
when a combination of its baseline arms and those taken would pin down a smaller group, as the
ledger's group audit finds it (`safepool.query.group_audit.pinned`); the disclosure checks hide
it, as they hide a small row. On the test demo (2,000 persons) the event study's rows at 7 before
and 6, 9, 10 and 11 quarters after entry are hidden so; on the README's demo none is.

The members are hashed from the person's ledger key and the value's outcome and quarter
(`safepool.study.differencing`), so they never meet a query answer's persons. But an analyst can
add up the same values with queries: the outcome in quarter t + h of every client, one query per
entry quarter, less a row's clients' sum (its mean times its count) tells the values of the few
clients the row leaves out (those not matched, and those whose control is not observed then). So
each level arm enters the ledger once more, as the sum of its persons' values as a query would
add them up (`ArmPersons.sums`: each person once, keyed as an answer's persons are, with its
weights times its values; see `safepool.study.arm_values`), as a cell of a family only: the
ledger's group audit of families of sums sets it against sums of the same values, and nothing
else does (its algebra, taking one person's values in two cells as known ratios, would take a
hundred quarters of the same clients' outcomes as telling each of them apart). A row whose sums
the ledger finds is hidden, as the query engine hides a cell. Left out: a baseline arm (told
only less the row's own values), and an arm of fewer persons with a value than the minimum
frequency (a sum the study's own checks showed, which the group audit would take as singling
them out by itself). A hidden row tells nothing and stays out. A share's arm enters twice: as the
count of its persons with the value 1, and as the count of those with 0 (`ArmPersons.others`),
since the mean pins the count and so both (counts of the clients not employed, one entry quarter
at a time, told the one client a row left out had not been employed at entry).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from safepool.query.group_audit import group_persons, pinned
from safepool.query.ledger_memory import mix
from safepool.query.person_periods import named_codes, period_salt
from safepool.study.arm_values import ArmValues, ShownArm

ROW_PERSONS = "row persons"  # the column that carries them beside a table until the analysis splits it off
ARMS = {True: "clients", False: "controls"}
BASELINE_ARMS = {True: "clients' baseline", False: "controls' baseline"}  # what a difference in differences adds


@dataclass(frozen=True)
class ArmPersons:
    """One arm of one row as the sum it shows: its persons (pseudonyms, each once) and, for each,
    a code of the values of that person the sum takes (`value_code`, combined when it takes more
    than one, as a control in two matched sets at other times); a baseline arm holds a person
    once per value instead. `amounts`: what each member adds to the arm's weighted sum (its
    weights times its values), for the same sum as a query would add it up (`sums`); `weights`:
    the member's weights; `indicator`: whether every value of the outcome is 0 or 1 (a share)."""

    persons: np.ndarray
    values: np.ndarray
    amounts: np.ndarray
    weights: np.ndarray
    indicator: bool = False
    units: ArmValues | None = None

    def sums(self) -> ArmValues:
        """The arm as the sum of its persons' values: each person once, with what it adds; for an
        outcome that adds up a register's rows in a quarter, each person's rows in each quarter
        (`units`), as a query's sum of that register over that quarter takes them."""
        return self.units if self.units is not None else self._per_person(self.amounts)

    def others(self) -> ArmValues | None:
        """For a share, the arm as the count of its persons whose value is 0, each with what it adds
        (its weights less its amounts): the mean pins the count, so the share's complement is shown
        as well as the share (counts of clients not employed, one entry quarter at a time, told a
        client's status at entry so). None for other outcomes, where the mean tells no count."""
        return self._per_person(self.weights - self.amounts) if self.indicator else None

    def _per_person(self, added: np.ndarray) -> ArmValues:
        persons, at = np.unique(self.persons, return_inverse=True)
        return ArmValues(persons, np.bincount(at.ravel(), weights=added, minlength=len(persons)))


def value_code(outcome: str, quarters: np.ndarray) -> np.ndarray:
    """A code for each value of `outcome` in the given quarters (integers), the same in every run."""
    return named_codes(outcome, quarters)


def row_persons(cells: pd.DataFrame, source: pd.DataFrame, person: str, outcome: str,
                baseline: int | None = None, rows_of: str | None = None) -> pd.DataFrame:
    """Per horizon of effect `cells` (horizon, treated, row: the row of `source`, which holds the
    `person` and the unit's time t; w, level: the weight and value the mean takes, and y what the
    estimator differences, the level less the baseline's for a difference in differences), each
    arm's persons, the codes of their values and what they add: columns horizon and ROW_PERSONS
    (arm name -> ArmPersons); with the `baseline` horizon of a difference in differences, its
    arms' baseline values too (BASELINE_ARMS). `rows_of`: the register whose rows the outcome adds
    up in a quarter, if it does (`safepool.study.cohort.outcome_rows`)."""
    rows = cells["row"].to_numpy()
    horizon = cells["horizon"].to_numpy().astype(np.int64)
    at = source["t"].to_numpy().astype(np.int64)[rows]
    weight, level = cells["w"].to_numpy(float), cells["level"].to_numpy(float)
    values = pd.DataFrame({"horizon": horizon, "treated": cells["treated"].to_numpy(bool),
                           "person": source[person].to_numpy()[rows], "weight": weight})
    indicator = bool(np.isin(level, (0.0, 1.0)).all())
    arms = level_arms(values.assign(code=value_code(outcome, at + horizon), amount=weight * level,
                                    quarter=at + horizon), indicator, rows_of)
    if baseline is not None:
        base = level - cells["y"].to_numpy(float)
        arms |= baseline_arms(values.assign(code=value_code(outcome, at + baseline), amount=weight * base))
    horizons = sorted({int(h) for h, _ in arms})
    per_row = [{name: arms[(h, name)] for name in (*ARMS.values(), *BASELINE_ARMS.values()) if (h, name) in arms}
               for h in horizons]
    return pd.DataFrame({"horizon": horizons, ROW_PERSONS: per_row})


def level_arms(values: pd.DataFrame, indicator: bool = False, rows_of: str | None = None
               ) -> dict[tuple[int, str], ArmPersons]:
    """(horizon, arm name) -> the arm's persons, each once, with its values' codes combined and its
    amounts and weights added (columns horizon, treated, person, weight, code, amount): the mean
    counts persons, and a value taken twice (a control in two sets at one time) is one value, added
    twice. `indicator`: the outcome is a share (see `ArmPersons`); `rows_of`: the register whose
    rows in a quarter the outcome adds up (each arm's `units`, from column quarter)."""
    keys = ["horizon", "treated", "person"]
    units = _units(values, rows_of) if rows_of is not None and not indicator else {}
    added = values.groupby(keys, sort=True)[["amount", "weight"]].sum()
    values = values.drop_duplicates([*keys, "code"]).sort_values(keys, kind="stable")
    first = np.flatnonzero(~values.duplicated(keys).to_numpy())
    combined = np.add.reduceat(mix(values["code"].to_numpy(np.uint64)), first) if len(first) else np.zeros(0, np.uint64)
    members = values.iloc[first].assign(code=combined, amount=added["amount"].to_numpy(),
                                        weight=added["weight"].to_numpy())
    return {(int(h), ARMS[bool(treated)]): replace(_arm(frame, indicator), units=units.get((int(h), bool(treated))))
            for (h, treated), frame in members.groupby(["horizon", "treated"], sort=True)}


def _units(values: pd.DataFrame, rows_of: str) -> dict[tuple[int, bool], ArmValues]:
    """(horizon, treated) -> the arm's amounts per person and quarter of `rows_of`'s rows."""
    added = values.groupby(["horizon", "treated", "person", "quarter"], sort=True, as_index=False)["amount"].sum()
    return {(int(h), bool(treated)): ArmValues(frame["person"].to_numpy(), frame["amount"].to_numpy(float),
                                               period_salt(rows_of, "quarter", frame["quarter"].to_numpy()))
            for (h, treated), frame in added.groupby(["horizon", "treated"], sort=True)}


def baseline_arms(values: pd.DataFrame) -> dict[tuple[int, str], ArmPersons]:
    """(horizon, baseline arm name) -> the arm's baseline values, one member per person and value
    (a person may be there with several), in an order of their own."""
    members = values.groupby(["horizon", "treated", "person", "code"], sort=True, as_index=False)[
        ["amount", "weight"]].sum()
    return {(int(h), BASELINE_ARMS[bool(treated)]): _arm(frame)
            for (h, treated), frame in members.groupby(["horizon", "treated"], sort=True)}


def _arm(members: pd.DataFrame, indicator: bool = False) -> ArmPersons:
    return ArmPersons(members["person"].to_numpy(), members["code"].to_numpy(np.uint64),
                      members["amount"].to_numpy(float), members["weight"].to_numpy(float), indicator)


def split_row_persons(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The table without its ROW_PERSONS column, and that column (same rows; a table of no rows
    may come without it)."""
    if ROW_PERSONS not in table.columns:
        return table, pd.Series([], dtype=object)
    return table.drop(columns=[ROW_PERSONS]), table[ROW_PERSONS].reset_index(drop=True)


def shown_row_cells(persons: Mapping[str, pd.Series], shown: Mapping[str, np.ndarray], labels: Mapping[str, pd.Series]
                    ) -> tuple[dict[str, ArmPersons], dict[str, ShownArm]]:
    """The arms of every shown row (`shown`: per table, which of its rows are shown after the
    checks), each named by its table's `labels` (one text per row) and arm, in the tables' order:
    as members standing for its values, and as the sum of its persons' values, with its place."""
    members: dict[str, ArmPersons] = {}
    sums: dict[str, ShownArm] = {}
    for name, column in persons.items():
        for position, (arms, visible, label) in enumerate(zip(column, shown[name], labels[name])):
            if visible:
                for arm, persons_of_arm in arms.items():
                    members[f"{label}, {arm}"] = persons_of_arm
                    if arm in ARMS.values():  # a baseline's sum is told only less the row's own
                        sums[f"{label}, {arm} (sum)"] = ShownArm(name, position, persons_of_arm.sums(), family=True)
                        others = persons_of_arm.others()
                        if others is not None:
                            sums[f"{label}, {arm} (others)"] = ShownArm(name, position, others, family=True)
    return members, sums


@dataclass
class BaselineCells:
    """The baseline arms of the rows taken so far, as the ledger's group audit takes cells: each
    member with the cells it is in (a bit per cell)."""

    min_frequency: int
    cells_of: dict[tuple[str, object, int], int] = field(default_factory=dict)  # (arm, person, code) -> cells
    taken: int = 0

    def take(self, arms: Mapping[str, ArmPersons]) -> bool:
        """Take a row's baseline arms unless a combination of them and the cells taken would tell the
        values of fewer than the minimum frequency of persons (`group_audit.pinned`); whether taken.
        A control in two sets at other times is two members (two values) but one person, so five
        members of four persons in the same cells are a group of four (`group_persons`)."""
        cells_of = dict(self.cells_of)
        for number, name in enumerate(name for name in BASELINE_ARMS.values() if name in arms):
            bit = 1 << (self.taken + number)
            for member in zip(arms[name].persons.tolist(), arms[name].values.tolist()):
                cells_of[(name, *member)] = cells_of.get((name, *member), 0) | bit
        groups = {held: number for number, held in enumerate(dict.fromkeys(cells_of.values()))}
        sizes = group_persons(np.array([groups[held] for held in cells_of.values()], dtype=np.int64),
                              pd.Series([person for _, person, _ in cells_of]), len(groups))
        cell = [number for held in groups for number in range(held.bit_length()) if held >> number & 1]
        group = [index for held, index in groups.items() for _ in range(held.bit_count())]
        if pinned(np.asarray(cell, np.int64), np.asarray(group, np.int64), sizes, self.min_frequency):
            return False
        self.cells_of, self.taken = cells_of, self.taken + len(BASELINE_ARMS)
        return True


def did_rows(tables: Mapping[str, pd.DataFrame], outcome: str, baseline: int) -> Iterator[tuple[str, int]]:
    """The difference in differences' rows of one outcome (table name, row), in the order they are
    taken: the effects' first, as they are the study's answer, then the event study's from the
    baseline outwards (the quarters next to entry say most of its course)."""
    for name, table in ((name, table) for name, table in tables.items() if not table.empty):
        rows = np.flatnonzero(((table["outcome"] == outcome) & (table["method"] == "did")).to_numpy())
        distance = np.abs(table["horizon"].to_numpy()[rows].astype(np.int64) - baseline)
        order = rows if name == "effects" else rows[np.lexsort((table["horizon"].to_numpy()[rows], distance))]
        yield from ((name, int(row)) for row in order)


def baseline_hidden(tables: Mapping[str, pd.DataFrame], persons: Mapping[str, pd.Series], baseline: int,
                    min_frequency: int) -> dict[str, np.ndarray]:
    """Per table (effect tables with their ROW_PERSONS apart, in `persons`), the rows of a difference in
    differences not to show: with the rows taken before them, their baseline values would single out
    fewer than `min_frequency` clients or controls (see the module)."""
    hidden = {name: np.zeros(len(table), dtype=bool) for name, table in tables.items()}
    for outcome in pd.unique(pd.concat([table.get("outcome", pd.Series(dtype=str)) for table in tables.values()])):
        taken = BaselineCells(min_frequency)
        for name, row in did_rows(tables, str(outcome), baseline):
            hidden[name][row] = not taken.take(persons[name].iloc[row])
    return hidden
