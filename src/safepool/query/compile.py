"""The SQL the engine runs for a checked `AggregateModel`, written once for DuckDB.

Nothing of the analyst's text reaches it: table and variable names are the dictionary's (plain
identifiers, quoted), group labels and codes are the dictionary's own text, and constants are
numbers, dates or codes the model has already checked. Group labels are computed from code
lists, bins and date parts in SQL, so no value read from the data can become a label.

Three statements follow from a model:
- `base`: one row per row of the joined tables that passes the filters, with the person's
  pseudonym, each group's label and each measured value (the others' common table expression);
- `per_person`: per cell and person (the pseudonym, which the engine turns into the person's
  ledger key, `safepool.pool.ledger_keys`), rows and the sum of each measured value;
- `quantile_values`: for a quantile, each row's cell keys, person and value, from which the window
  of at least the minimum frequency of values around the quantile position is found
  (`safepool.query.quantile_window`).
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

import numpy as np

from safepool.query.model import MISSING, PERSON, UNKNOWN_CODE, AggregateModel, Condition, Dictionary, Grouping, \
    Measure, VariableRef, bin_labels, cell_labels, constant_text, distinct_labels
from safepool.dictionary import TimeFormat, Variable
from safepool.duckdb_connection import quote_literal

_OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class PersonRows(Enum):
    """How the pool hands over each person's rows of a question (`Compiler.per_person`; which one a
    question takes: `safepool.query.person_periods.person_rows`)."""

    JOINED = "added up by cell and person after the join"
    FIRST_ADDED_UP = "the first table's rows added up by person before the join"
    ONE_EACH = "one row per person already"


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Compiler:
    """SQL for one model over one pool's dictionary; table i is aliased t{i}."""

    def __init__(self, model: AggregateModel, dictionary: Dictionary) -> None:
        self.model = model
        self.dictionary = dictionary
        self.alias = {table: f"t{i}" for i, table in enumerate(model.tables)}

    @property
    def keys(self) -> list[str]:
        """Each group's key column: a number per label (grouping on numbers is cheaper than on text)."""
        return [f"k{i}" for i in range(len(self.model.groups))]

    def labels(self) -> list[str]:
        """Each group's label g0.. from its key k0.. (the same label for one key, in one statement)."""
        return [f"{self._label_of_key(group, f'k{i}')} AS g{i}" for i, group in enumerate(self.model.groups)]

    def _variable(self, table: str, name: str) -> tuple[Variable, str]:
        return self.dictionary[table][name], f"{self.alias[table]}.{quote_name(name)}"

    def _over_base(self, sql: str) -> str:
        """`sql` with `base` as its common table expression: nothing is left in the connection (a
        temporary view was made, and dropped again, by every question: 1-2 ms)."""
        return f"WITH base AS ({self.base()}) {sql}"

    def base(self) -> str:
        """Rows in scope: person, group labels g0.., measured values x0.. (NULL where not measured)."""
        first = self.alias[self.model.tables[0]]
        columns = [f"{first}.{PERSON} AS pid"]
        columns += [f"{self._key(group)} AS k{i}" for i, group in enumerate(self.model.groups)]
        columns += [f"{value} AS x{j}" for j, value in self._measured().items()]
        joins = [f"{quote_name(self.model.tables[0])} AS {first}", *self._joins(f"{first}.{PERSON}")]
        return f"SELECT {', '.join(columns)} FROM {' '.join(joins)} WHERE {self._where()}"

    def _measured(self) -> dict[int, str]:
        """Each measured value (by its measure's position) as a DOUBLE."""
        return {j: f"CAST({self._variable(m.variable.table, m.variable.name)[1]} AS DOUBLE)"
                for j, m in enumerate(self.model.measures) if m.variable is not None}

    def _joins(self, person: str) -> list[str]:
        """The tables after the first, each joined on `person` (inner or left, as the model says)."""
        joins = []
        for i, table in enumerate(self.model.tables[1:]):
            inner = self.model.inner_join[i] if i < len(self.model.inner_join) else False
            joins.append(f"{'' if inner else 'LEFT '}JOIN {quote_name(table)} AS {self.alias[table]} "
                         f"ON {self.alias[table]}.{PERSON} = {person}")
        return joins

    def _where(self, first: bool | None = None) -> str:
        """The filters (only those of the first table, with `first`; only the others', with False)."""
        table = self.model.tables[0]
        return " AND ".join(self._condition(c) for c in self.model.filters
                            if first is None or (c.variable.table == table) == first) or "true"

    def outside_keys(self, variable: VariableRef) -> str:
        """The kinds of value of a variable in its whole table that fall in no piece a filter or
        group can name, as the keys of `_key` (missing -1, not in the code list -2, before the
        years -3, after them -4): one row per kind found."""
        declared = self.dictionary[variable.table][variable.name]
        part = {"categorical": "code", "numeric": "bin"}.get(declared.level, "year")
        key = self._key(Grouping(variable, part, "k"))  # type: ignore[arg-type]
        return (f"SELECT DISTINCT k FROM (SELECT {key} AS k FROM {quote_name(variable.table)} AS "
                f"{self.alias[variable.table]}) WHERE k < 0")

    def grid(self) -> np.ndarray:
        """Every combination of the groups' keys an answer has a cell for (one row each, a column per
        group; one row of none without groups): the labels of each group's code list, bins or
        declared years that its variable's filters leave possible. Known from the model alone, so
        which cells an answer has never tells anything about the data: a cell no one is in is
        there, and checked like any other. Rows whose label is missing, outside the code list or
        outside the years belong to no cell."""
        keys = [self._possible_keys(group) for group in self.model.groups]
        if not keys:
            return np.zeros((1, 0), dtype=np.int64)
        mesh = np.meshgrid(*[np.asarray(k, dtype=np.int64) for k in keys], indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=1)

    def _possible_keys(self, group: Grouping) -> list[int]:
        """The keys of the group's labels that some value meeting its variable's filters has (the
        model counts the same cells against the budget)."""
        variable, _ = self._variable(group.variable.table, group.variable.name)
        return [key for key, _ in cell_labels(group, variable, self.model.filters)]

    def per_person(self, rows: PersonRows = PersonRows.JOINED) -> str:
        """Per cell and person: rows (n_rows), and per measured value its rows (r j) and sum (c j).
        The person is the pseudonym (a BIGINT). The same columns and values whichever way `rows`
        the pool adds up: ONE_EACH hands the rows over as they are, without the grouping by person
        (a hash table of every person: 37 against 9 ms for 300,000 persons); FIRST_ADDED_UP groups
        the first table's rows by person and its own groups before joining the others (visits of
        one quarter by sex and language, 300,000 persons, on a pool opened afresh: 34-37 against
        81-86 ms). Rows of no cell (a missing label, a code not in the list, a date outside the
        years: a key below 0) come too, and the engine leaves them out (`engine.in_cells`): a
        filter on the keys was pushed by DuckDB's optimizer below the join into the scan of a
        table of one row per person, which then became the join's hash table (the same visits
        22-24 ms against 9)."""
        if rows is PersonRows.ONE_EACH:
            sums = [part for j in self._measured()
                    for part in (f"CAST(x{j} IS NOT NULL AS BIGINT) AS r{j}", f"x{j} AS c{j}")]
            columns = [*self.keys, 'pid AS person', 'CAST(1 AS BIGINT) AS n_rows', *sums]
            return self._over_base(f"SELECT {', '.join(columns)} FROM base")
        if rows is PersonRows.FIRST_ADDED_UP:
            return self._first_added_up()
        sums = self._sums({j: f"x{j}" for j in self._measured()})
        inner = f"SELECT {', '.join([*self.keys, 'pid', 'count(*) AS n_rows', *self._named(sums)])} FROM base " \
                f"GROUP BY {', '.join([*self.keys, 'pid'])}"
        return self._over_base(f"SELECT {', '.join([*self.keys, 'pid AS person', 'n_rows', *sums])} FROM ({inner})")

    @staticmethod
    def _sums(values: dict[int, str]) -> dict[str, str]:
        """Each measured value's rows (r j) and sum (c j): name -> aggregate."""
        return {name: aggregate for j, value in values.items()
                for name, aggregate in ((f"r{j}", f"count({value})"), (f"c{j}", f"sum({value})"))}

    @staticmethod
    def _named(sums: dict[str, str]) -> list[str]:
        return [f"{aggregate} AS {name}" for name, aggregate in sums.items()]

    def _first_added_up(self) -> str:
        """`per_person` with the first table's rows added up by person (and the groups of its own
        variables) before the other tables, of one row per person each, are joined: each of those
        adds the same columns to every row of a person, so the sums are those of the joined rows."""
        table = self.model.tables[0]
        alias = self.alias[table]
        own = [i for i, group in enumerate(self.model.groups) if group.variable.table == table]
        sums = self._sums(self._measured())
        added = [f"{alias}.{PERSON} AS pid", *[f"{self._key(self.model.groups[i])} AS k{i}" for i in own],
                 "count(*) AS n_rows", *self._named(sums)]
        first = f"SELECT {', '.join(added)} FROM {quote_name(table)} AS {alias} WHERE {self._where(True)} " \
                f"GROUP BY {', '.join(str(i) for i in range(1, len(own) + 2))}"
        keys = [f"a.k{i}" if i in own else f"{self._key(group)} AS k{i}" for i, group in enumerate(self.model.groups)]
        joined = f"SELECT {', '.join([*keys, 'a.pid AS person', 'a.n_rows', *(f'a.{name}' for name in sums)])} " \
                 f"FROM ({first}) AS a {' '.join(self._joins('a.pid'))} WHERE {self._where(False)}"
        return joined

    def quantile_values(self, j: int) -> str:
        """Each row's cell keys, person and value of the quantile measured as `x{j}`, for the rows
        with a value (those in a cell: `engine.in_cells`; each cell's window is found from them:
        `safepool.query.quantile_window`)."""
        return self._over_base(f"SELECT {', '.join([*self.keys, 'pid AS person'])}, x{j} AS x FROM base "
                               f"WHERE x{j} IS NOT NULL")

    # -- labels -----------------------------------------------------------------------------

    def _key(self, group: Grouping) -> str:
        """A number per label of the group: codes and bins by the position of their label among the
        group's distinct labels (codes with one label share it), dates as yyyy, yyyymm or yyyyq;
        missing -1, not in the code list -2, before the years -3, after them -4."""
        variable, column = self._variable(group.variable.table, group.variable.name)
        if group.part in ("code", "bin"):
            labels = self._labels(group)
            number = {MISSING: -1, UNKNOWN_CODE: -2, **{label: i for i, label in enumerate(labels)}}
            if group.part == "code":
                # an integer variable's codes are written as its numbers are (the dictionary checks
                # that), so they are compared as numbers: no text made of every row
                native = variable.type == "integer"
                cases = " ".join(f"WHEN {code if native else quote_literal(code)} THEN {number[label]}"
                                 for code, label in (variable.codes or {}).items())
                value = column if native else f"CAST({column} AS VARCHAR)"
                return f"CASE WHEN {column} IS NULL THEN -1 ELSE CASE {value} {cases} ELSE -2 END END"
            edges = variable.bins or []
            names = bin_labels(edges, variable.unit or "")
            cases = " ".join(f"WHEN {column} < {edge!r} THEN {number[label]}" for edge, label in zip(edges, names))
            return f"CASE WHEN {column} IS NULL THEN -1 {cases} ELSE {number[names[-1]]} END"
        date = date_sql(variable, column)
        first, last = variable.years or (0, 0)
        d = f"({date})"
        number = {"year": f"year({d})", "month": f"year({d}) * 100 + month({d})",
                  "quarter": f"year({d}) * 10 + quarter({d})"}[group.part]
        return (f"CASE WHEN {date} IS NULL THEN -1 WHEN year({date}) < {first} THEN -3 "
                f"WHEN year({date}) > {last} THEN -4 ELSE {number} END")

    def _labels(self, group: Grouping) -> list[str]:
        """The distinct labels of a code or bin group, in the order first given."""
        variable, _ = self._variable(group.variable.table, group.variable.name)
        return distinct_labels(group, variable)

    def _label_of_key(self, group: Grouping, key: str) -> str:
        """The label of a key number, as `_label` gives it for the row."""
        variable, _ = self._variable(group.variable.table, group.variable.name)
        if group.part in ("code", "bin"):
            cases = " ".join(f"WHEN {i} THEN {quote_literal(label)}" for i, label in enumerate(self._labels(group)))
            return (f"CASE {key} WHEN -1 THEN {quote_literal(MISSING)} WHEN -2 THEN {quote_literal(UNKNOWN_CODE)} "
                    f"{cases} END")
        first, last = variable.years or (0, 0)
        text = {"year": f"CAST({key} AS VARCHAR)",
                "month": f"CAST({key} // 100 AS VARCHAR) || '-' || lpad(CAST({key} % 100 AS VARCHAR), 2, '0')",
                "quarter": f"CAST({key} // 10 AS VARCHAR) || 'Q' || CAST({key} % 10 AS VARCHAR)"}[group.part]
        return (f"CASE {key} WHEN -1 THEN {quote_literal(MISSING)} WHEN -3 THEN {quote_literal(f'before {first}')} "
                f"WHEN -4 THEN {quote_literal(f'after {last}')} ELSE {text} END")

    # -- filters ----------------------------------------------------------------------------

    def _condition(self, condition: Condition) -> str:
        variable, column = self._variable(condition.variable.table, condition.variable.name)
        if condition.operator in ("is null", "is not null"):
            return f"{column} {condition.operator.upper()}"
        native = [_native(variable, v) for v in condition.values]
        if all(v is not None for v in native):  # compared as stored: no conversion of every row
            values = native
        else:
            if variable.level == "categorical":
                column = f"CAST({column} AS VARCHAR)"
            elif variable.level == "date":
                column = date_sql(variable, column)
            values = [_constant(variable, v) for v in condition.values]
        if condition.operator in ("in", "not in"):
            return f"coalesce({column} {condition.operator.upper()} ({', '.join(values)}), false)"
        if condition.operator == "between":
            return f"{column} BETWEEN {values[0]} AND {values[1]}"
        return f"{column} {_OPERATORS[condition.operator]} {values[0]}"


def date_sql(variable: Variable, column: str) -> str:
    """A date variable as a DATE (the first day of its period when written as yyyymm, yyyyq or year)."""
    fmt = variable.date_format
    if fmt in (None, TimeFormat.date):
        return column if variable.type == "date" else f"CAST({column} AS DATE)"  # a DATE keeps its zone maps
    if fmt == TimeFormat.yyyymm:
        return f"make_date(CAST({column} AS BIGINT) // 100, CAST({column} AS BIGINT) % 100, 1)"
    if fmt == TimeFormat.yyyyq:
        text = f"CAST({column} AS VARCHAR)"
        return (f"make_date(CAST(substr({text}, 1, 4) AS BIGINT), "
                f"3 * CAST(substr({text}, 6, 1) AS BIGINT) - 2, 1)")
    return f"make_date(CAST({column} AS BIGINT), 1, 1)"


def _native(variable: Variable, value: object) -> str | None:
    """A constant as the column stores it, when comparing there means the same: an integer code of
    an integer column, or a date that is the first day of a period written yyyymm, yyyyq or year
    (those orders agree with the dates'); None when the constant must be compared converted."""
    if variable.level == "categorical":
        text = constant_text(value)
        return text if variable.type == "integer" and text.lstrip("-").isdigit() else None
    if variable.level != "date" or not isinstance(value, dt.date):
        return None
    fmt = variable.date_format
    if fmt == TimeFormat.yyyymm and value.day == 1:
        return str(value.year * 100 + value.month)
    if fmt == TimeFormat.yyyyq and value.day == 1 and value.month % 3 == 1:
        return quote_literal(f"{value.year}Q{(value.month + 2) // 3}")
    if fmt == TimeFormat.year and value.day == 1 and value.month == 1:
        return str(value.year)
    return None


def _constant(variable: Variable, value: object) -> str:
    """A checked constant as SQL: a code as text, a number, or a DATE."""
    if variable.level == "categorical":
        return quote_literal(constant_text(value))
    if isinstance(value, dt.date):
        return f"DATE {quote_literal(value.isoformat())}"
    return repr(float(value))  # type: ignore[arg-type]
