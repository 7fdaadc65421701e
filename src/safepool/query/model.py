"""The aggregate query model: the only questions the pool answers.

A question is measures of declared variables, grouped by categorical variables, policy bins of
numeric variables or parts of dates, over rows filtered by comparisons of declared variables with
constants, from pool tables joined on the person. The structured request, a request file and SQL
are three syntaxes that all become an `AggregateModel`; whatever cannot be said in it (CASE,
arithmetic or casts inside an aggregate, functions of values, grouping by a raw value) is refused
by the syntax that met it, before anything runs.

Because groups come from the data dictionary (code lists, bins, date parts within declared
years), every label an answer can carry is known before the query runs, and so is the number
of its cells: the budget is checked here.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from safepool.faults import Invalid
from safepool.dictionary import TimeFormat, Variable

PERSON = "pid"
MISSING = "(missing)"
UNKNOWN_CODE = "(not in the code list)"
TOTAL = "Total"

MeasureKind = Literal["persons", "rows", "sum", "mean", "share", "quantile"]
GroupPart = Literal["code", "bin", "year", "quarter", "month"]
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "in", "not in", "between", "is null", "is not null"]
OPERATORS: tuple[str, ...] = Operator.__args__  # type: ignore[attr-defined]
QUANTILE_RANGE = (0.1, 0.9)  # nearer the ends a local mean still approaches the group's extremes
MAX_GROUPS = 2  # totals and secondary suppression protect one- and two-way tables
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,59}$"

Dictionary = dict[str, dict[str, Variable]]  # pool table -> variable name -> its dictionary entry


class QueryRefused(Invalid):
    """A query the model cannot express or the policy does not allow; names the part, never a value."""


def refuse(reason: str) -> QueryRefused:
    return QueryRefused(f"query refused: {reason}")


@dataclass(frozen=True)
class VariableRef:
    """A declared variable of a pool table."""

    table: str
    name: str

    def __str__(self) -> str:
        return f"{self.table}.{self.name}"


@dataclass(frozen=True)
class Grouping:
    """One grouping term: a categorical variable's codes, a numeric variable's bins, or a date part."""

    variable: VariableRef
    part: GroupPart
    name: str  # the column name in the answer

    def describe(self) -> str:
        return str(self.variable) if self.part == "code" else f"{self.part}({self.variable})"


@dataclass(frozen=True)
class Measure:
    """One answer column: persons (no variable), rows (no variable), or a measure of a numeric variable."""

    kind: MeasureKind
    variable: VariableRef | None
    name: str
    quantile: float | None = None

    def describe(self) -> str:
        if self.kind in ("persons", "rows"):
            return self.kind
        if self.kind == "quantile":
            return f"quantile {self.quantile:g} of {self.variable}"
        return f"{self.kind} of {self.variable}"


@dataclass(frozen=True)
class Condition:
    """A comparison of a declared variable with constants (already converted to its type)."""

    variable: VariableRef
    operator: Operator
    values: tuple[object, ...] = ()


@dataclass(frozen=True)
class AggregateModel:
    """A checked question: tables (the first, then those joined on the person), groups, measures, filters."""

    tables: tuple[str, ...]
    groups: tuple[Grouping, ...]
    measures: tuple[Measure, ...]
    filters: tuple[Condition, ...]
    inner_join: tuple[bool, ...] = ()  # per joined table: inner (True) or left (False)

    def variables(self) -> dict[str, list[str]]:
        """Variables read, by table (for the permit check)."""
        used: dict[str, set[str]] = {t: set() for t in self.tables}
        refs = [g.variable for g in self.groups] + [m.variable for m in self.measures if m.variable] + \
               [c.variable for c in self.filters]
        for ref in refs:
            used[ref.table].add(ref.name)
        return {table: sorted(names) for table, names in used.items()}

    def describe(self) -> str:
        what = ", ".join(m.describe() for m in self.measures)
        by = f" by {', '.join(g.describe() for g in self.groups)}" if self.groups else ""
        return f"{what}{by} ({', '.join(self.tables)})"


# -- checking a model against the dictionary -----------------------------------------------------


def declared(dictionary: Dictionary, table: str, name: str) -> Variable:
    """The dictionary entry of table.name, or a refusal naming what is missing."""
    if table not in dictionary:
        raise refuse(f"table {table} is not in this permit's pool")
    if name not in dictionary[table]:
        raise refuse(f"table {table} has no declared variable {name}")
    return dictionary[table][name]


def resolve(dictionary: Dictionary, tables: dict[str, str], name: str, qualifier: str | None = None) -> VariableRef:
    """The declared variable a name means among the query's tables (alias -> pool table)."""
    if name.lower() == PERSON:
        raise refuse("the pseudonym pid may only join tables or be counted as count(DISTINCT pid); it may "
                     "not be shown, grouped by, filtered on or aggregated")
    if qualifier is not None:
        if qualifier not in tables:
            raise refuse(f"{qualifier}.{name} names a table that is not in the query")
        declared(dictionary, tables[qualifier], name)
        return VariableRef(tables[qualifier], name)
    owners = [table for table in tables.values() if name in dictionary.get(table, {})]
    if not owners:
        raise refuse(f"no table in the query has a declared variable {name}")
    if len(owners) > 1:
        raise refuse(f"{name} is a variable of several tables ({', '.join(owners)}); qualify it with its table")
    return VariableRef(owners[0], name)


def check_model(model: AggregateModel, dictionary: Dictionary, max_cells: int) -> AggregateModel:
    """Refuse anything the dictionary or the budget does not allow; return the model with its
    constants in the variables' own terms (dates as dates, codes as their text)."""
    if not model.tables:
        raise refuse("the query reads no table")
    if len(set(model.tables)) != len(model.tables):
        raise refuse("a table is named twice; each table is joined once, on the person")
    for table in model.tables:
        if table not in dictionary:
            raise refuse(f"table {table} is not in this permit's pool")
    if not model.measures:
        raise refuse("the query has no measure")
    if len(model.groups) > MAX_GROUPS:
        raise refuse(f"at most {MAX_GROUPS} grouping terms are allowed (totals and secondary suppression "
                     "protect one- and two-way tables)")
    names = [g.name for g in model.groups] + [m.name for m in model.measures]
    taken = {"status", PERSON}
    for name in names:
        if name.lower() in taken:
            raise refuse(f"the answer column name {name} is used twice or reserved; give it another name")
        taken.add(name.lower())
    for group in model.groups:
        _check_grouping(group, declared(dictionary, group.variable.table, group.variable.name))
    for measure in model.measures:
        _check_measure(measure, dictionary)
    filters = []
    for condition in model.filters:
        variable = declared(dictionary, condition.variable.table, condition.variable.name)
        for converted in in_periods(condition, variable):
            for whole in in_whole_months(converted, variable):
                _check_condition(whole, variable)
                filters.append(whole)
    checked = replace(model, filters=tuple(filters))
    size = answer_size(checked, dictionary)
    if size.cells > max_cells:
        raise refuse(f"the answer would have {size.cells:,} cells, {size.explain()}; the policy's budget is "
                     f"{max_cells:,}: filter a grouped variable to fewer labels, group more coarsely or ask for "
                     "fewer measures")
    return checked


def _check_grouping(group: Grouping, variable: Variable) -> None:
    where = f"grouping by {group.describe()}"
    if variable.level == "text":
        raise refuse(f"{where}: {group.variable} is free text and is never grouped")
    if variable.level == "categorical" and group.part != "code":
        raise refuse(f"{where}: {group.variable} is categorical; group by it directly")
    if variable.level == "numeric":
        if group.part != "bin":
            raise refuse(f"{where}: {group.variable} is a numeric value; group by its policy bins, "
                         f"bin({group.variable.name})")
        if not variable.bins:
            raise refuse(f"{where}: the policy defines no bins for {group.variable}")
    if variable.level == "date" and group.part not in variable.date_parts():
        parts = ", ".join(f"{p}({group.variable.name})" for p in variable.date_parts())
        raise refuse(f"{where}: {group.variable} is a date; group by {parts}")


def _check_measure(measure: Measure, dictionary: Dictionary) -> None:
    if measure.kind in ("persons", "rows"):
        return
    assert measure.variable is not None
    variable = declared(dictionary, measure.variable.table, measure.variable.name)
    if variable.level != "numeric":
        raise refuse(f"{measure.kind} of {measure.variable}: only numeric variables are summed, averaged or "
                     f"ranked, and {measure.variable} is {variable.level}")
    if measure.kind == "quantile":
        low, high = QUANTILE_RANGE
        if measure.quantile is None or not low <= measure.quantile <= high:
            raise refuse(f"{measure.name}: a quantile must lie between {low} and {high}")


def _check_condition(condition: Condition, variable: Variable) -> None:
    where = f"the filter on {condition.variable}"
    if variable.level == "text":
        raise refuse(f"{where}: {condition.variable} is free text and cannot be filtered on")
    if condition.operator in ("is null", "is not null"):
        if condition.values:
            raise refuse(f"{where}: '{condition.operator}' takes no value")
        return
    if condition.operator in ("in", "not in"):
        if not condition.values:
            raise refuse(f"{where}: '{condition.operator}' takes a list of values")
    elif condition.operator == "between":
        if len(condition.values) != 2:
            raise refuse(f"{where}: 'between' takes two values")
    elif len(condition.values) != 1:
        raise refuse(f"{where}: '{condition.operator}' takes one value")
    if _written_to_the_day(variable) and condition.operator not in _WHOLE_PERIODS:
        raise refuse(f"{where}: a date written to the day is compared with < or >= the first day of a month, "
                     "<= or > the last day of a month, or between a first and a last day, so that the filter "
                     f"takes whole months (a day of its own could single out a person){_whole_months_hint(condition)}")
    for value in condition.values:
        _check_constant(where, variable, condition.operator, value)


def _check_constant(where: str, variable: Variable, comparison: str, value: object) -> None:
    """A constant of the dictionary's own resolution: a code of the code list, an edge of the policy's
    bins, the first day of the finest period a date may be grouped by. A threshold or a day of the
    analyst's own would let a series of answers close in on one person's value."""
    if variable.level == "categorical":
        if comparison not in ("=", "!=", "in", "not in"):
            raise refuse(f"{where}: a categorical variable is compared with =, !=, in or not in")
        if constant_text(value) not in (variable.codes or {}):
            raise refuse(f"{where}: a value is not a code of its code list")
    elif variable.level == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise refuse(f"{where}: compare a numeric variable with finite numbers")
        edges = variable.bins or []
        if not edges:
            raise refuse(f"{where}: the policy defines no bins for {variable.name}, so it is not filtered on")
        if float(value) not in {float(edge) for edge in edges}:
            raise refuse(f"{where}: a numeric variable is compared with the edges of its policy bins "
                         f"({', '.join(_number(edge) for edge in edges)}), never with a number of its own")
    elif variable.level == "date":
        if not isinstance(value, dt.date):
            raise refuse(f"{where}: compare a date with dates written YYYY-MM-DD")
        finest = variable.date_parts()[-1]
        if not period_start(value, finest):
            raise refuse(f"{where}: a date is compared with the first day of a {finest} "
                         f"({_FIRST_DAYS[finest]}), never with a day of its own")


_WHOLE_PERIODS = ("<", ">=", "is null", "is not null")  # what a date written to the day is compared by


def _written_to_the_day(variable: Variable) -> bool:
    return variable.level == "date" and variable.date_format in (None, TimeFormat.date)


def in_whole_months(condition: Condition, variable: Variable) -> tuple[Condition, ...]:
    """A filter on a date written to the day as the `<` and `>=` the model compares such dates by,
    where it says the same at the level of days: `<= last day` is `< the next first day`, `> last day`
    is `>= the next first day`, and `between first day and last day` is both. So a range written the
    way SQL writes one takes whole months as `>=` and `<` do, and nothing else reaches the pool."""
    if not _written_to_the_day(variable) or not all(isinstance(v, dt.date) for v in condition.values):
        return (condition,)
    ref, values = condition.variable, condition.values
    ends = [_day_after_month_end(v) for v in values]
    if condition.operator in ("<=", ">") and len(values) == 1 and ends[0]:
        return (Condition(ref, "<" if condition.operator == "<=" else ">=", (ends[0],)),)
    if condition.operator == "between" and len(values) == 2 and ends[1]:
        return Condition(ref, ">=", (values[0],)), Condition(ref, "<", (ends[1],))
    return (condition,)


def _day_after_month_end(day: object) -> dt.date | None:
    """The first day of the next month when `day` is the last day of its month, else None."""
    if not isinstance(day, dt.date):
        return None
    following = day + dt.timedelta(days=1) if day < dt.date.max else None
    return following if following is not None and following.day == 1 else None


def _month_after(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _whole_months_hint(condition: Condition) -> str:
    """The accepted form of a refused comparison of a date written to the day, in the analyst's own
    constants taken to whole months (a constant is not a value the pool holds)."""
    days = [v for v in condition.values if isinstance(v, dt.date)]
    if len(days) != len(condition.values) or not days or days[-1].year >= dt.MAXYEAR:
        return ""
    name, first, last = condition.variable.name, days[0].replace(day=1), _month_after(days[-1])
    month_end = last - dt.timedelta(days=1)
    forms = {"between": f"{name} >= {first} and {name} < {last}, or {name} between {first} and {month_end}",
             "<=": f"{name} < {last}, or {name} <= {month_end}",
             ">": f"{name} >= {last}, or {name} > {month_end}",
             "=": f"{name} >= {first} and {name} < {last} for that month, or group by month({name})"}
    form = forms.get(condition.operator, f"group by month({name}), or take a range of months with >= and <")
    return f"; write {form}"


_FIRST_DAYS = {"month": "YYYY-MM-01", "quarter": "YYYY-01-01, -04-01, -07-01 or -10-01", "year": "YYYY-01-01"}


def period_start(day: dt.date, part: str) -> bool:
    """Whether `day` is the first day of a `part` (year, quarter or month)."""
    return day.day == 1 and (part == "month" or (day.month - 1) % (3 if part == "quarter" else 12) == 0)


def holds(condition: Condition, value: object) -> bool:
    """Whether a value that is not missing (a code as text, a number, a date) meets the condition; the
    grid of an answer keeps the labels whose values can meet their variable's filters."""
    if condition.operator in ("is null", "is not null"):
        return condition.operator == "is not null"
    constants = [constant_text(v) if isinstance(value, str) else v for v in condition.values]
    if condition.operator in ("in", "not in"):
        return (value in constants) == (condition.operator == "in")
    if condition.operator == "between":
        return bool(constants[0] <= value <= constants[1])
    return bool(_COMPARISONS[condition.operator](value, constants[0]))


_COMPARISONS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
                ">=": operator.ge}


def in_periods(condition: Condition, variable: Variable) -> tuple[Condition, ...]:
    """A filter with its constants converted (`_period`), where a date's constant names a period
    (YYYY, YYYYQn or YYYYMM) taken as that whole period, as a reader takes it: `month <= 2020` is
    up to December 2020 (`< 2021-01-01`), `> 2020Q1` from April, `= 2020` and `between 2019 and
    2020` the years. `<` and `>=` take the first day. A period coarser than the variable's own
    resolution (a year of months) is not one value, so `!=`, `in` and `not in` refuse it."""
    read = [_period(variable, value) for value in condition.values]
    firsts = tuple(first for first, _ in read)
    nexts = [following for _, following in read]
    ref, comparison = condition.variable, condition.operator
    if not any(nexts):
        return (Condition(ref, comparison, firsts),)
    if comparison in ("<=", ">"):
        return (Condition(ref, "<" if comparison == "<=" else ">=", (nexts[0],)),)
    if comparison == "between" and len(read) == 2:
        last = Condition(ref, "<", (nexts[1],)) if nexts[1] else Condition(ref, "<=", firsts[1:])
        return Condition(ref, ">=", firsts[:1]), last
    several = [text for text, (first, following) in zip(condition.values, read)
               if following and following != next_period(first, resolution(variable))]
    if several and comparison == "=":
        return Condition(ref, ">=", firsts), Condition(ref, "<", (nexts[0],))
    if several and comparison in ("!=", "in", "not in"):
        raise refuse(f"the filter on {ref}: {constant_text(several[0])} is a period of several values of {ref.name}, "
                     f"compared with '{comparison}'; write a range (>= and <, or between), or group by it")
    return (Condition(ref, comparison, firsts),)


def _period(variable: Variable, value: object) -> tuple[object, dt.date | None]:
    """A constant as the filter compares it, and the first day after it when it names a period: a date
    variable's constant as the first day of its period (a day is its own); other constants as they
    are."""
    if variable.level != "date" or isinstance(value, dt.date) or value is None:
        return value, None
    text = constant_text(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text), None
        if re.fullmatch(r"\d{4}Q[1-4]", text):
            first = dt.date(int(text[:4]), 3 * int(text[5]) - 2, 1)
            return first, next_period(first, "quarter")
        if re.fullmatch(r"\d{6}", text):
            first = dt.datetime.strptime(text, "%Y%m").date()
            return first, next_period(first, "month")
        if re.fullmatch(r"\d{4}", text):
            first = dt.date(int(text), 1, 1)
            return first, next_period(first, "year")
    except ValueError:
        pass
    raise refuse(f"a constant compared with the date {variable.name} is not a date (write YYYY-MM-DD, "
                 "YYYYQn, YYYYMM or YYYY)")


def next_period(first: dt.date, part: str) -> dt.date | None:
    """The first day of the period after the one `first` begins (None past the calendar's end)."""
    months = {"year": 12, "quarter": 3, "month": 1}.get(part)
    if months is None:  # a day
        return first + dt.timedelta(days=1) if first < dt.date.max else None
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1) if index // 12 <= dt.MAXYEAR else None


def resolution(variable: Variable) -> str:
    """The finest period a date variable's values tell apart: a day, unless written as a period."""
    return "day" if _written_to_the_day(variable) else variable.date_parts()[-1]


def constant_text(value: object) -> str:
    """A constant as the code list writes codes (integers without a decimal point)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- labels and cells --------------------------------------------------------------------------


def group_labels(group: Grouping, variable: Variable) -> list[str]:
    """Every label the group can show, in order; the data can only ever pick one of these."""
    if group.part == "code":
        return list((variable.codes or {}).values()) + [UNKNOWN_CODE, MISSING]
    if group.part == "bin":
        return bin_labels(variable.bins or [], variable.unit or "") + [MISSING]
    first, last = variable.years or (0, -1)
    years = range(first, last + 1)
    inside = {"year": [str(y) for y in years],
              "quarter": [f"{y}Q{q}" for y in years for q in range(1, 5)],
              "month": [f"{y}-{m:02d}" for y in years for m in range(1, 13)]}[group.part]
    return [f"before {first}"] + inside + [f"after {last}", MISSING]


def bin_labels(edges: list[float], unit: str) -> list[str]:
    """Readable labels of the bins the edges make: below the first, between edges, from the last."""
    if not edges:
        return []
    shown = [_number(e) for e in edges]
    suffix = f" {unit}" if unit else ""
    labels = [f"under {shown[0]}{suffix}"]
    labels += [f"{low} to under {high}{suffix}" for low, high in zip(shown, shown[1:])]
    labels.append(f"{shown[-1]}{suffix} or more")
    return labels


def bin_values(edges: list[float]) -> list[list[float]]:
    """Values that stand for each bin of the edges (filters compare with edges only, so these
    decide every filter): below the first edge; each bin's lower edge and a value inside it."""
    if not edges:
        return []
    edges = [float(edge) for edge in edges]
    highs = [*edges[1:], edges[-1] + 2.0]
    return [[edges[0] - 1.0]] + [[low, (low + high) / 2] for low, high in zip(edges, highs)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def distinct_labels(group: Grouping, variable: Variable) -> list[str]:
    """The distinct labels of a code or bin group's cells, in the dictionary's order (codes with one
    label share it); a cell's key is its label's position here."""
    given = list((variable.codes or {}).values()) if group.part == "code" \
        else bin_labels(variable.bins or [], variable.unit or "")
    return [label for label in dict.fromkeys(given) if label not in (MISSING, UNKNOWN_CODE)]


def cell_labels(group: Grouping, variable: Variable, filters: Sequence[Condition]) -> list[tuple[int, str]]:
    """The (key, label) of each cell the group gives an answer, in order: the labels of its code list,
    bins or declared years that some value meeting its variable's filters has. Filters compare with
    codes, bin edges and first days of periods only, so a few values stand for each label: its codes;
    a bin's lower edge and a value inside it; a period's first days of months. Values missing, not in
    the code list or outside the years belong to no cell. Keys: a label's place among the distinct
    labels (codes, bins), or the period as yyyy, yyyyq or yyyymm (dates)."""
    conditions = [c for c in filters if c.variable == group.variable]

    def possible(values: Iterable[object]) -> bool:
        return any(all(holds(c, v) for c in conditions) for v in values)

    if group.part in ("code", "bin"):
        labels = distinct_labels(group, variable)
        if group.part == "code":
            codes = (variable.codes or {}).items()
            return [(i, label) for i, label in enumerate(labels) if possible(c for c, named in codes if named == label)]
        values = bin_values(variable.bins or [])
        return [(i, label) for i, (label, stand_ins) in enumerate(zip(labels, values)) if possible(stand_ins)]
    first, last = variable.years or (0, -1)
    found: dict[int, str] = {}
    for year in range(first, last + 1):
        for month in range(1, 13):
            quarter = (month + 2) // 3
            key, label = (year, str(year)) if group.part == "year" else \
                (year * 10 + quarter, f"{year}Q{quarter}") if group.part == "quarter" else \
                (year * 100 + month, f"{year}-{month:02d}")
            if key not in found and possible([dt.date(year, month, 1)]):
                found[key] = label
    return list(found.items())


@dataclass(frozen=True)
class AnswerSize:
    """How many cells an answer can have: each group's possible labels (and its total), for every measure."""

    groups: tuple[tuple[str, int], ...]  # (group term, labels its filters leave possible)
    measures: int

    @property
    def cells(self) -> int:
        return math.prod(labels + 1 for _, labels in self.groups) * self.measures

    def explain(self) -> str:
        """The count as it was made: 'sex (2 + total) x month(paid_on) (60 + total) x 2 measures'."""
        factors = [f"{term} ({labels:,} + total)" for term, labels in self.groups]
        return " x ".join(factors + [f"{self.measures} measure{'s' if self.measures != 1 else ''}"])


def answer_size(model: AggregateModel, dictionary: Dictionary) -> AnswerSize:
    """The most cells an answer can have, known from the model alone: every combination of the
    labels its filters leave possible, plus totals, for every measure."""
    groups = tuple((_term(group), len(cell_labels(group, dictionary[group.variable.table][group.variable.name],
                                                  model.filters)))
                   for group in model.groups)
    return AnswerSize(groups, len(model.measures))


def _term(group: Grouping) -> str:
    """A group term as the analyst writes it: sex, bin(amount), month(paid_on)."""
    return group.variable.name if group.part == "code" else f"{group.part}({group.variable.name})"
