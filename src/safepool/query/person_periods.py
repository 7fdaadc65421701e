"""What one person adds to a sum over a register with several rows per person: one period's rows.

A person's value in a cell of a sum is the sum of the person's rows in that cell. Over a register
with several rows per person (a quarter's earnings, a month's benefits, a visit), two answers
whose filters take different rows of the same persons hold different amounts for them, and the
ledger takes them as different values. A review so read the earnings of two men from five
answers: the men's earnings in two quarters, less the earnings of those born before them in each
quarter and of those born after them in each quarter. No combination of those answers singles out
one person, and no two of them hold the same amounts, so neither the all-answers audit nor the
group audit of families of sums saw the pair.

So a question that adds up values (or counts rows) of such a register takes each person's rows
in exactly one period of it: a quarter (a year for a register written by year). The period is
fixed by the question's filters on one of the register's dates (`quarter = '2023Q1'`, `month >=
202301 AND month < 202304`, `tax_year = 2023`). In the ledger, each person then stands in such a
cell for the person's rows in that period (`unit_keys`: the person's ledger key mixed with the
register and the period), so two answers about one period hold the same amount for each person
(the same rows), and answers about other periods hold other unknowns: every combination of cells
splits into combinations of one period each, in which each person is one member, so the ledger's
counts of members are counts of persons.

Where the register holds several rows per person in a period (benefits by month and benefit, or
visits), a filter or grouping on another of its variables would take part of a person's rows in
the period, which is the route again with the parts; such a question is refused, and may count
persons instead. Two registers with several rows per person are never joined in such a question:
each row of one would be counted once for every row of the other; but a register that the question
fixes to one row per person (a date of it filtered to one period in which it holds one row per
person, and no measure adding up its values) only selects and groups persons, and may join one
with several rows (benefits of those employed in a quarter). A study's rows enter the ledger
with the same keys for the outcomes of such registers (`safepool.study.row_persons`), so they meet
the queries about the same quarters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from safepool.dictionary import Variable
from safepool.query.compile import PersonRows
from safepool.query.ledger_memory import mix
from safepool.query.model import AggregateModel, Condition, Dictionary, VariableRef, next_period, period_start, \
    refuse, resolution

COUNTED = ("sum", "mean", "share", "quantile", "rows")  # measures that add up values or rows
_BOUNDS = ("=", ">=", ">", "<", "<=", "between", "in")


@dataclass(frozen=True)
class PersonPeriod:
    """The register whose rows a question adds up, and the one period of it the question takes."""

    table: str
    grain: str  # "quarter" or "year"
    period: int  # a quarter as year * 4 + quarter - 1, or a year

    def takes(self, kind: str, table: str | None) -> bool:
        """Whether a measure's amounts are this register's rows (a value of it, or its rows counted)."""
        return kind == "rows" or (kind in COUNTED and table == self.table)


def named_codes(name: str, numbers: np.ndarray | int) -> np.ndarray:
    """A code for each number under a name (a hash of the name above the number's 32 bits), the
    same in every process and run."""
    named = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    return (np.uint64(named) << np.uint64(32)) | (np.asarray(numbers).astype(np.int64).astype(np.uint64)
                                                  & np.uint64(0xFFFFFFFF))


def period_grain(variable: Variable) -> str:
    """The period a sum over a date's rows takes: a year for a date written by year, else a quarter."""
    return "year" if resolution(variable) == "year" else "quarter"


def period_salt(table: str, grain: str, period: np.ndarray | int) -> np.ndarray:
    """A code for each period of a register."""
    return named_codes(f"{table}/{grain}", period)


def unit_keys(keys: np.ndarray, salts: np.ndarray) -> np.ndarray:
    """The ledger's members for persons' rows in periods: each ledger key mixed with its period's code."""
    return mix(np.asarray(keys, dtype=np.uint64) ^ salts)


def person_period(model: AggregateModel, dictionary: Dictionary, one_per_person: Callable[[str], bool],
                  one_per_period: Callable[[VariableRef], bool]) -> PersonPeriod | None:
    """The register and period a question's sums take, None when its measures take no register
    with several rows per person; refuses a question that would add up parts of such rows."""
    counted = [m for m in model.measures if m.kind in COUNTED]
    several = [table for table in model.tables if not one_per_person(table)] if counted else []
    if not several:
        return None
    what = counted[0].describe()
    if len(several) > 1:  # a register fixed to one row per person by its filters multiplies nothing
        several = [table for table in several if not _fixed(model, dictionary, table, one_per_period)] or several
    if len(several) > 1:
        raise refuse(f"{what}: {several[0]} and {several[1]} both have several rows per person, and each row of "
                     "one would be counted once for every row of the other; join at most one of them, or count "
                     "persons")
    table = several[0]
    dates = [name for name, v in dictionary[table].items() if v.level == "date"]
    for name in dates:
        found = _one_period(model.filters, VariableRef(table, name), dictionary[table][name])
        if found is not None:
            grain, first = found
            unit = PersonPeriod(table, grain, first.year * 4 + (first.month - 1) // 3 if grain == "quarter"
                                else first.year)
            if not one_per_period(VariableRef(table, name)):
                _whole_rows(model, unit, name, what)
            return unit
    choices = " or ".join(f"{table}.{name}" for name in dates) or "none"
    raise refuse(f"{what}: {table} has several rows per person, and a sum over them must take one period: "
                 f"filter one of its dates ({choices}) to one whole quarter (one year for a date written by "
                 f"year), e.g. {dates[0] if dates else 'date'} = '2023Q1', or count persons")


def person_rows(model: AggregateModel, dictionary: Dictionary, one_per_person: Callable[[str], bool],
                one_per_period: Callable[[VariableRef], bool]) -> PersonRows:
    """How the pool hands over each person's rows of the question (`Compiler.per_person`):
    - ONE_EACH when every table holds at most one row per person in it (so does a join of them): a
      register of one row per person, or one the question fixes to one row per person
      (`_one_row_here`); each row is its person's, nothing is added up;
    - FIRST_ADDED_UP when only the first table may hold several rows per person and every measured
      value is in it: a person's rows of that table are added up before the others are joined
      (each then adds one row per person, and the adding up is over the table's own rows);
    - else JOINED: added up by cell and person after the join."""
    first, *others = model.tables
    if one_per_person(first) or _one_row_here(model, dictionary, first, one_per_period):
        return PersonRows.ONE_EACH if _one_row_each(model, dictionary, others, one_per_person, one_per_period) \
            else PersonRows.JOINED
    if others and _one_row_each(model, dictionary, others, one_per_person, one_per_period) and all(
            m.variable is None or m.variable.table == first for m in model.measures):
        return PersonRows.FIRST_ADDED_UP
    return PersonRows.JOINED


def _one_row_each(model: AggregateModel, dictionary: Dictionary, tables: list[str],
                  one_per_person: Callable[[str], bool], one_per_period: Callable[[VariableRef], bool]) -> bool:
    """Whether each of `tables` holds at most one row per person in the question."""
    return all(one_per_person(table) or _one_row_here(model, dictionary, table, one_per_period) for table in tables)


def _fixed(model: AggregateModel, dictionary: Dictionary, table: str,
           one_per_period: Callable[[VariableRef], bool]) -> bool:
    """Whether, in this question, `table` has at most one row per person and no measure adds up its
    values. It then only selects and groups persons, as a register of one row per person does, and
    may join another register with several rows per person."""
    if any(m.kind in COUNTED and m.variable is not None and m.variable.table == table for m in model.measures):
        return False
    return _one_row_here(model, dictionary, table, one_per_period)


def _one_row_here(model: AggregateModel, dictionary: Dictionary, table: str,
                  one_per_period: Callable[[VariableRef], bool]) -> bool:
    """Whether one of the table's dates is filtered to one whole period in which it holds one row per
    person (employment in one quarter, taxes in one year)."""
    return any(_one_period(model.filters, VariableRef(table, name), variable) is not None
               and one_per_period(VariableRef(table, name))
               for name, variable in dictionary[table].items() if variable.level == "date")


def _one_period(filters: tuple[Condition, ...], ref: VariableRef, variable: Variable) -> tuple[str, dt.date] | None:
    """(grain, first day) when the filters on a date take exactly one whole quarter (a year when the
    date is written by year), else None."""
    step = resolution(variable)
    low: dt.date | None = None
    high: dt.date | None = None
    for condition in filters:
        if condition.variable != ref or condition.operator not in _BOUNDS:
            continue
        values = condition.values
        if condition.operator == "in" and len(values) != 1:
            continue
        bounds = {"=": (values[0], next_period(values[0], step)), "in": (values[0], next_period(values[0], step)),
                  ">=": (values[0], None), ">": (next_period(values[0], step), None), "<": (None, values[0]),
                  "<=": (None, next_period(values[0], step)),
                  "between": (values[0], next_period(values[-1], step))}[condition.operator]
        if bounds[0] is not None:
            low = bounds[0] if low is None else max(low, bounds[0])
        if bounds[1] is not None:
            high = bounds[1] if high is None else min(high, bounds[1])
    grain = period_grain(variable)
    if low is None or high is None or not period_start(low, grain) or high != next_period(low, grain):
        return None
    return grain, low


def _whole_rows(model: AggregateModel, unit: PersonPeriod, date: str, what: str) -> None:
    """Refuse a filter or grouping that takes part of a person's rows in the period, in a register
    with several rows per person in one."""
    for condition in model.filters:
        ref = condition.variable
        bound = condition.operator in _BOUNDS and (condition.operator != "in" or len(condition.values) == 1)
        if ref.table == unit.table and (ref.name != date or not bound):
            raise refuse(f"{what}: {unit.table} has several rows per person in a {unit.grain}, and the filter on "
                         f"{ref} would take part of a person's rows; filter only {unit.table}.{date} to the "
                         f"{unit.grain}, or count persons")
    whole_parts = ("quarter", "year") if unit.grain == "quarter" else ("year",)
    for group in model.groups:
        ref = group.variable
        if ref.table == unit.table and (ref.name != date or group.part not in whole_parts):
            raise refuse(f"{what}: {unit.table} has several rows per person in a {unit.grain}, and grouping by "
                         f"{group.describe()} would split a person's rows; group by the other tables' "
                         "variables, or count persons")
