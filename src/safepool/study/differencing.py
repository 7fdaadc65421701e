"""The study's groups of persons in the workspace's differencing ledger, before any table is recorded.

Every table of a study describes a few groups of persons: the clients and the persons eligible as
controls (the cohort flow, the balance before matching, the naive comparison), the matched clients
and controls (the balance after matching, the effects, the event study, the sensitivity). Two runs
whose cohorts differ by one person tell that person's values in every mean they both show: a
review ran the shipped study file with ages 18-62 and again with 18-61 and read one client's
benefits, children and permit grounds from the two balance tables (rounding the counts did not
help: the means of the 0/1 covariates pinned the exact number of clients). The query gateway's
answers were open to the same subtraction against a study.

So the cohort's two groups, the clients and the persons eligible as controls, enter the ledger
the query engine keeps (`safepool.query.ledger`) as counts of their persons, checked against
every earlier answer and study of any permit like a query's cells: a group that with them
singles out fewer persons than the minimum frequency withholds the whole run, audited
`withheld` (the `differencing` alert counts it), before anything is recorded; else the groups
are remembered, and later answers and studies are checked against them. Each group carries its
cohort's definition (`cohort_definition`: treatment, eligibility and period),
as a query's cell carries its own: a run of the same cohort again adds nothing and passes, and a
group of another cohort with exactly the same persons is an empty difference, withheld as one
that leaves out a few is, so that whether a narrower cohort is withheld does not tell whether it
leaves out one to four persons or none. (A group remembered before groups had definitions has
none, and no later group is the same question as one of them: a cohort run before is withheld
when run again.)

Within one run the same holds between its own tables: the balance before matching and the naive
comparison describe the clients, the balance after matching and the effects the matched ones.
When a few clients are not matched, the two means times their counts told those few's means (the
demo's shipped study told that its 4 unmatched clients were all men granted international
protection, none with earnings). So a run describes one set of clients (`described_units`): when
fewer clients than the minimum frequency are not matched, they are left out of every table before
matching too; when at least that many are not, their group is large enough to be told. The matched
clients and controls then enter the ledger beside the cohort's groups (`study_groups`): they
differ from the described clients by none or by at least the minimum frequency, so a run does
not withhold itself, and a later run whose matching differs by a few persons is withheld.

The subgroups split the effect at their horizon: a level suppressed hides more levels (the
effect kind's `parts`), so that the effect less the levels shown tells only a group that passes
the checks a level must. The naive comparison follows, at each horizon, the clients the effect follows then.

The groups are the same in two runs over the same clients whose matched controls differ, yet the
rows at a horizon follow the clients with a control observed then, who differ by a few. So every
row the run shows enters the ledger as well, as the values its arms add up (one member per person
and quarter of an outcome: `safepool.study.row_persons`), after the checks have decided what is
shown and before anything is recorded (`check_study`, called by the output register's
`publish_all`). The ledger's algebra takes every combination of those rows, of this run and the
earlier ones, across tables too (the effect and the difference in differences at one horizon
share the values of that quarter), and finds any that tells the values of fewer persons than
the minimum frequency. Each mean shown enters once more as the sum a query would add up
(`safepool.study.arm_values`; an effect table's rows as sums of a family only, see
`safepool.query.ledger.Ledger.check`), so that answers and means over nearly the same persons
are set against each other; a mean found so is hidden, as the query engine hides a cell, and the
run is checked again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from safepool.disclosure.policy import workspace_policy
from safepool.faults import Refused
from safepool.governance.context import Governance
from safepool.governance.users import Actor
from safepool.pool.ledger_keys import LedgerKeys, ledger_keys
from safepool.query.definitions import EntryDefinitions
from safepool.query.ledger import WITHHELD, withheld_entries
from safepool.query.ledger_check import check_in_ledger
from safepool.query.ledger_memory import mix
from safepool.query.person_periods import unit_keys
from safepool.study.arm_values import ArmValues, RowsFound, ShownArm
from safepool.study.row_persons import ArmPersons
from safepool.study.studyfile import StudyFile

STUDY_ACTION = "study"


class StudyWithheld(Refused):
    """The study's groups of persons would, with earlier answers, single out too few persons."""


def described_units(units: pd.DataFrame, match_status: pd.Series, min_frequency: int) -> pd.DataFrame:
    """The cohort's units that the tables before matching describe: all of them, or all but the
    clients not matched when those are fewer than the minimum frequency (`match_status`: the
    matcher's, "matched" or the reason, per treated unit)."""
    unmatched = match_status.index[match_status.to_numpy() != "matched"]
    return units.drop(index=unmatched) if 0 < unmatched.size < min_frequency else units


def study_groups(described: pd.DataFrame, matched: pd.DataFrame, person: str) -> dict[str, np.ndarray]:
    """The persons of the run's groups (unit tables with a 0/1 `treated` column): the clients and the
    persons eligible as controls that the tables before matching describe, then the matched ones
    where they are other persons."""
    groups: dict[str, np.ndarray] = {}
    for stage, units in (("", described), ("matched ", matched)):
        for name, arm in (("clients", 1), ("controls", 0)):
            persons = np.unique(units.loc[units["treated"].to_numpy() == arm, person].to_numpy())
            if not any(np.array_equal(persons, known) for known in groups.values()):
                groups[stage + name] = persons
    return groups


def _valued(arm: ShownArm) -> ShownArm:
    """The arm with only the persons it adds a value other than zero for."""
    valued = arm.values.values != 0
    periods = arm.values.periods
    return replace(arm, values=ArmValues(arm.values.persons[valued], arm.values.values[valued],
                                         None if periods is None else periods[valued]))


def _members(keys: LedgerKeys, values: ArmValues) -> tuple[np.ndarray, np.ndarray]:
    """An arm's members in the ledger: its persons' ledger keys, or their rows in a quarter of a
    register; and the ledger key of the person each member is (or is part of)."""
    found = keys.of(values.persons)
    return (found if values.periods is None else unit_keys(found, values.periods)), found


def cohort_definition(study: StudyFile) -> str:
    """What defines a run's cohort: its treatment, eligibility and period, as canonical text (not its
    matching, title, outcomes, horizons or inference: a run that matches otherwise over the same
    persons is the same cohort, and its matched groups are compared by their persons)."""
    return study.model_dump_json(include={"treatment", "eligible", "period"})


def _group_definitions(cohort: str, groups: Mapping[str, np.ndarray]) -> EntryDefinitions:
    """The definitions of the run's group cells (numbered first, in order), as the ledger takes a
    query's: the same cohort's group again is the same question; another cohort's group with the
    same persons is an empty difference, withheld as one of a few persons fewer is. The rows have
    none, and their splits are not told, so no other combination is taken as an empty difference
    (a table's rows that add up to a group are no news)."""
    return EntryDefinitions({number: hashlib.sha256(f"study group\n{name}\n{cohort}".encode("utf-8")).hexdigest()
                             for number, name in enumerate(groups)}, every_split=False)


def check_study(pool_dir: Path, governance: Governance, actor: Actor, permit: str, groups: dict[str, np.ndarray],
                rows: Mapping[str, ArmPersons], sums: Mapping[str, ShownArm], cohort: str) -> None:
    """Check the study's groups (name -> the pseudonyms of its persons in the permit's pool, each
    counted), the arms of the rows it shows (label -> their values, each a member named by its
    person's ledger key and the value's code: see `safepool.study.row_persons`) and the arms of the
    means it shows as sums (label -> each person's value, the person named by its ledger key as in
    a query's answer, with the row it is in: see `safepool.study.arm_values`) in the workspace's
    ledger and remember them; StudyWithheld (audited) when the ledger finds one, RowsFound (the
    rows, to hide) when it finds sums only. `cohort`: what defines the groups (`cohort_definition`)."""
    min_frequency = workspace_policy(governance).min_frequency
    keys = ledger_keys(pool_dir, permit)
    # (members, values, owners): a member of a row is a person's value, or its rows in a quarter
    cells = [(persons, 1.0, persons) for pids in groups.values() for persons in [np.unique(keys.of(np.asarray(pids)))]]
    cells += [(mix(owners ^ arm.values), 1.0, owners) for arm in rows.values() for owners in [keys.of(arm.persons)]]
    # a row's sum holds the persons it adds a value for (a zero adds nothing, and a query's sum over
    # persons with no rows has none of them); one of fewer than the minimum frequency of them is a
    # sum the study's own checks showed, which the group audit would take as singling them out alone
    sums = {label: _valued(arm) if arm.family else arm for label, arm in sums.items()}
    sums = {label: arm for label, arm in sums.items()
            if len(np.unique(arm.values.persons)) >= (min_frequency if arm.family else 1)}
    cells += [(members, arm.values.values, owners) for arm in sums.values()
              for members, owners in [_members(keys, arm.values)]]
    incoming = pd.concat([pd.DataFrame({"cell": number, "person": persons, "value": values, "owner": owners})
                          for number, (persons, values, owners) in enumerate(cells)], ignore_index=True)
    column_of = {number: number for number in range(len(cells))}
    family = [len(groups) + len(rows) + number for number, arm in enumerate(sums.values()) if arm.family]
    found, state = check_in_ledger(pool_dir, governance, actor, permit, incoming, column_of, min_frequency,
                                   family=family, definitions=_group_definitions(cohort, groups))
    if not found:
        return
    if min(found) >= len(groups) + len(rows):
        places = list(sums.values())
        hidden: dict[str, set[int]] = {}
        for cell in found:
            place = places[cell - len(groups) - len(rows)]
            hidden.setdefault(place.table, set()).add(place.position)
        raise RowsFound(hidden)
    governance.audit.append(
        actor=actor.name, role=actor.main_role, action=STUDY_ACTION, permit=permit, outcome=WITHHELD,
        target="cohort", rows=0,
        detail={"withheld": withheld_entries([(cell, check) for cell, check in found.items()],
                                             ["persons"] * len(groups) + ["mean"] * (len(rows) + len(sums))),
                **state})
    labels = [*rows, *sums]
    named = [labels[cell - len(groups)] for cell in sorted(found) if cell >= len(groups)]
    if len(named) < len(found):
        raise StudyWithheld(
            f"study withheld: its clients, its persons eligible as controls or its matched clients or controls "
            f"differ from the persons of an earlier answer or study by fewer than {min_frequency}, or are exactly "
            "those persons under another cohort (or, with several, single out fewer), so its tables and those "
            "would tell their values; nothing is recorded. Change the cohort (its period, ages or area) so that "
            f"they differ by at least {min_frequency} persons, or the matching (a caliper, the covariates or the "
            f"method decide which clients are matched) so that they differ by at least {min_frequency}, or by "
            f"none. A run that leaves fewer than {min_frequency} clients unmatched describes only the matched "
            "ones before matching too, so after such a run every run over the same cohort that leaves none, or "
            f"at least {min_frequency}, unmatched differs from it by those few clients: keep its matching, or "
            "change the cohort.")
    shown = "; ".join(named[:3]) + (f"; and {len(named) - 3} more" if len(named) > 3 else "")
    raise StudyWithheld(
        f"study withheld: rows it would show add up the values of persons who differ from those of an earlier "
        f"study's or answer's cells of the same values by fewer than {min_frequency} (or, with several, single out "
        f"fewer), so the two would tell their values: {shown}. Nothing is recorded. The balance table's means "
        f"before matching leave out the clients not matched when they are fewer than {min_frequency}, so a query "
        "over every client differs from them by those few. A client is followed at a horizon where "
        "a control of its matched set is observed then, so other matched controls change the clients a row "
        "follows, and a difference in differences' row tells its arms' baseline values as well (its baseline "
        "arms): keep the matching of the earlier run, or change the cohort so that the clients differ by at "
        f"least {min_frequency}.")
