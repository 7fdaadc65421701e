"""SQL restricted to aggregates, checked on the DuckDB syntax tree before anything runs.

The guard accepts exactly one SELECT over pool tables joined on the person, whose output
columns are GROUP BY keys or one allowed aggregate each, and whose every node is on an
allow-list (aggregates, plain scalar functions and operators). Everything else is refused by
name: row-level selects, the pseudonym column outside a join or count(DISTINCT pid), DDL, DML,
PRAGMA and other commands, several statements, comments, subqueries, window functions, table
functions, and any function that could read files, reach the network or the environment.

What runs is never the analyst's text: the engine regenerates SQL from the checked tree, so a
difference between this parser and DuckDB's cannot smuggle anything past the guard.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from safepool.errors import SafepoolError

PERSON = "pid"
DIALECT = "duckdb"

MeasureKind = Literal["persons", "count", "sum", "mean", "quantile"]

QUANTILE_RANGE = (0.1, 0.9)  # tails closer to the ends approach a group's minimum or maximum

ALLOWED_AGGREGATES = "count(*), count(x), count(DISTINCT pid), sum, avg/mean, median, quantile_cont, quantile"
SINGLE_PERSON_AGGREGATES = frozenset({
    "max", "min", "any_value", "arbitrary", "first", "last", "arg_max", "arg_min", "max_by", "min_by", "argmax",
    "argmin", "array_agg", "list", "string_agg", "listagg", "group_concat", "mode", "histogram", "quantile_disc",
    "approx_quantile", "reservoir_quantile", "approx_top_k", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or",
})

_STRUCTURE = (exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Alias, exp.DataType,
              exp.DataTypeParam, exp.Interval)
_UNIT_OWNERS = (exp.Extract, exp.DateTrunc, exp.TimestampTrunc, exp.Interval)  # where a bare word (Var) is a unit
_OPERATORS = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.EQ, exp.NEQ, exp.GT, exp.GTE,
              exp.LT, exp.LTE, exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Case,
              exp.If, exp.Coalesce, exp.Nullif, exp.Cast, exp.TryCast, exp.DPipe)
_SCALAR_FUNCTIONS = (exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Log, exp.Exp, exp.Pow, exp.Year,
                     exp.Month, exp.Quarter, exp.Day, exp.DayOfWeek, exp.Week, exp.Extract, exp.DateTrunc,
                     exp.TimestampTrunc, exp.Lower, exp.Upper, exp.Length, exp.Substring, exp.Trim, exp.Least,
                     exp.Greatest)
_AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Median, exp.Quantile, exp.PercentileCont)
_MEAN_ALIASES = frozenset({"mean"})

_CLAUSES = {
    "with_": "WITH (common table expressions)", "distinct": "SELECT DISTINCT", "into": "SELECT INTO",
    "having": "HAVING", "qualify": "QUALIFY", "windows": "WINDOW", "order": "ORDER BY", "sort": "SORT BY",
    "limit": "LIMIT", "offset": "OFFSET", "sample": "TABLESAMPLE", "laterals": "LATERAL", "pivots": "PIVOT",
    "exclude": "EXCLUDE", "prewhere": "PREWHERE", "connect": "CONNECT BY", "locks": "FOR UPDATE",
}
_SELECT_PARTS = {"expressions", "from_", "joins", "where", "group", "kind"}


class QueryRefused(SafepoolError):
    """A query that may not run; the message names what was refused (never a value from the query)."""


@dataclass(frozen=True)
class TableRef:
    name: str   # the pool table
    alias: str  # how the query names it


@dataclass(frozen=True)
class GroupKey:
    name: str
    expression: exp.Expression


@dataclass(frozen=True)
class Measure:
    """One output column: an allowed aggregate of one argument (None for count(*))."""

    name: str
    kind: MeasureKind
    argument: exp.Expression | None
    quantile: float | None = None


@dataclass(frozen=True)
class AggregateQuery:
    """A checked query: the pieces the engine rebuilds its own SQL from."""

    statement: exp.Select
    tables: tuple[TableRef, ...]
    keys: tuple[GroupKey, ...]
    measures: tuple[Measure, ...]
    columns: dict[str, list[str]]  # table -> columns read (without the pseudonym), for the permit check

    @property
    def person(self) -> exp.Column:
        """The pseudonym of the row's person: the first table's, never NULL even after a LEFT JOIN."""
        return exp.column(PERSON, table=self.tables[0].alias, quoted=True)

    def rebuild(self, outputs: list[exp.Expression]) -> str:
        """The checked FROM, joins and WHERE with other output columns, grouped by every non-aggregate."""
        select = self.statement.copy()
        select.set("expressions", outputs)
        select.set("group", exp.Group(all=True) if any(not _has_aggregate(o) for o in outputs) else None)
        return select.sql(dialect=DIALECT, comments=False)


def refuse(reason: str) -> QueryRefused:
    return QueryRefused(f"query refused: {reason}")


@contextmanager
def _quiet_parser() -> Iterator[None]:
    """sqlglot logs a warning when it falls back to a generic command; the refusal says enough."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def parse_statement(sql: str) -> exp.Select:
    """The one SELECT statement in `sql`, or a refusal naming what else was there."""
    if not sql.strip():
        raise refuse("the query is empty")
    try:
        with _quiet_parser():
            statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None) or [{}]
        where = errors[0]
        position = f" at line {where['line']}, column {where['col']}" if "line" in where else ""
        raise refuse(f"not valid SQL{position}") from None
    if len(statements) != 1:
        raise refuse(f"exactly one statement is allowed, found {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Select):
        raise refuse(f"only a SELECT statement is allowed, not {_statement_kind(statement)}")
    if any(node.comments for node in statement.walk()):
        raise refuse("comments are not allowed in a query")
    for part, value in statement.args.items():
        if value and part not in _SELECT_PARTS:
            raise refuse(f"{_CLAUSES.get(part, part.upper().rstrip('_'))} is not allowed")
    if statement.args.get("kind"):
        raise refuse(f"SELECT {statement.args['kind']} is not allowed")
    return statement


def tables_of(statement: exp.Select) -> list[str]:
    """Pool tables the statement names (checked against the permit before the pool is opened)."""
    return [ref.name for ref in _table_refs(statement)]


def check_sql(sql: str | exp.Select, schema: dict[str, list[str]]) -> AggregateQuery:
    """Check a query against the allow-list and the pool's `schema` (table -> columns)."""
    statement = parse_statement(sql) if isinstance(sql, str) else sql.copy()
    tables = _table_refs(statement)
    known = {name.lower(): name for name in schema}
    for ref in tables:
        if ref.name.lower() not in known:
            raise refuse(f"table {ref.name} is not in this permit's pool")
    names = _output_names(statement)
    resolver = _Resolver(tables, {known[r.name.lower()]: schema[known[r.name.lower()]] for r in tables})
    _check_joins(statement, tables, resolver)
    group = _group_expressions(statement, resolver)
    columns: dict[str, set[str]] = {}
    where = statement.args.get("where")
    for part in statement.expressions:
        _check_nodes(part, resolver, columns, in_where=False)
    if where is not None:
        _check_nodes(where.this, resolver, columns, in_where=True)
    for key in group:
        _check_nodes(key, resolver, columns, in_where=False)
    for key in group:
        if _has_aggregate(key):
            raise refuse("GROUP BY may not contain an aggregate")
    keys, measures = _outputs(statement, names, group)
    return AggregateQuery(statement=statement, tables=tuple(tables), keys=keys, measures=measures,
                          columns={table: sorted(names) for table, names in columns.items()})


# -- tables and joins ------------------------------------------------------------------------


def _statement_kind(statement: exp.Expression) -> str:
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    return statement.key.upper()


def _table_ref(node: exp.Expression | None) -> TableRef:
    if isinstance(node, (exp.Subquery, exp.Query)):
        raise refuse("subqueries are not allowed")
    if not isinstance(node, exp.Table):
        raise refuse(f"{_describe(node)} is not allowed in FROM")
    if not isinstance(node.this, exp.Identifier):
        raise refuse(f"table function {_describe(node.this)} is not allowed")
    if node.args.get("db") or node.args.get("catalog"):
        raise refuse(f"table {node.sql(dialect=DIALECT)} names a database or schema; use the pool table's name")
    extra = [part for part, value in node.args.items() if value and part not in ("this", "alias")]
    if extra:
        raise refuse(f"{_CLAUSES.get(extra[0], extra[0].upper())} is not allowed on table {node.name}")
    alias = node.args.get("alias")
    if alias is not None and alias.args.get("columns"):
        raise refuse(f"column aliases on table {node.name} are not allowed")
    return TableRef(name=node.name, alias=node.alias or node.name)


def _table_refs(statement: exp.Select) -> list[TableRef]:
    source = statement.args.get("from_")
    if source is None:
        raise refuse("the query reads no table (FROM is missing)")
    refs = [_table_ref(source.this)] + [_table_ref(join.this) for join in statement.args.get("joins") or []]
    aliases = [ref.alias.lower() for ref in refs]
    if len(set(aliases)) != len(aliases):
        raise refuse("two tables have the same name in the query; give each its own alias")
    return refs


def _check_joins(statement: exp.Select, tables: list[TableRef], resolver: _Resolver) -> None:
    """Joins only match rows of the same person, so every row still belongs to one person."""
    for index, join in enumerate(statement.args.get("joins") or [], start=1):
        name = tables[index].alias
        kind, side = (join.args.get("kind") or "").upper(), (join.args.get("side") or "").upper()
        if join.args.get("method") or kind not in ("", "INNER") or side not in ("", "LEFT"):
            shape = " ".join(part for part in (join.args.get("method"), side, kind) if part)
            raise refuse(f"{shape} JOIN is not allowed; join tables with [LEFT] JOIN ... USING (pid)")
        extra = [p for p, v in join.args.items() if v and p not in ("this", "on", "using", "kind", "side")]
        if extra:
            raise refuse(f"{extra[0]} in the join of {name} is not allowed")
        using, on = join.args.get("using"), join.args.get("on")
        if using:
            if [getattr(u, "name", "").lower() for u in using] != [PERSON]:
                raise refuse(f"table {name} must be joined on the person only: USING (pid)")
        elif on is not None:
            _check_person_equality(on, index, tables, resolver)
        else:
            raise refuse(f"table {name} is joined without a condition; join on the person: USING (pid)")


def _check_person_equality(on: exp.Expression, index: int, tables: list[TableRef], resolver: _Resolver) -> None:
    name = tables[index].alias
    sides = [on.this, on.expression] if isinstance(on, exp.EQ) else []
    if len(sides) != 2 or not all(isinstance(s, exp.Column) and s.name.lower() == PERSON for s in sides):
        raise refuse(f"table {name} must be joined on the person only: ON a.pid = b.pid")
    owners = sorted(tables.index(resolver.owner(side)) for side in sides)
    if owners[1] != index or owners[0] >= index:
        raise refuse(f"the join of table {name} must match its pid with an earlier table's pid")


class _Resolver:
    """Which table each column belongs to; qualifies columns so that equal expressions compare equal."""

    def __init__(self, tables: list[TableRef], schema: dict[str, list[str]]) -> None:
        self.tables = tables
        self.columns = {ref.alias.lower(): {c.lower() for c in schema[ref.name]} for ref in tables}
        self.by_alias = {ref.alias.lower(): ref for ref in tables}

    def owner(self, column: exp.Column) -> TableRef:
        if column.args.get("db") or column.args.get("catalog"):
            raise refuse(f"column {column.sql(dialect=DIALECT)} has too many qualifiers")
        name, table = column.name.lower(), column.table.lower()
        if table:
            if table not in self.by_alias:
                raise refuse(f"column {column.sql(dialect=DIALECT)} names a table that is not in FROM")
            if name not in self.columns[table]:
                raise refuse(f"table {self.by_alias[table].name} has no column {column.name}")
            return self.by_alias[table]
        owners = [self.by_alias[alias] for alias, names in self.columns.items() if name in names]
        if not owners:
            raise refuse(f"no table in the query has a column {column.name}")
        if len(owners) > 1 and name != PERSON:
            raise refuse(f"column {column.name} is in several tables; qualify it with its table")
        return owners[0]

    def is_column(self, name: str) -> bool:
        return any(name.lower() in names for names in self.columns.values())

    def qualify(self, column: exp.Column) -> TableRef:
        ref = self.owner(column)
        column.set("table", exp.to_identifier(ref.alias, quoted=True))
        return ref


# -- expressions -----------------------------------------------------------------------------


def _describe(node: exp.Expression | None) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return node.key.upper()


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, _AGGREGATES) or (isinstance(node, exp.Anonymous) and node.name.lower() in _MEAN_ALIASES)


def _has_aggregate(node: exp.Expression) -> bool:
    return any(_is_aggregate(n) or isinstance(n, exp.AggFunc) for n in node.walk())


def _check_nodes(root: exp.Expression, resolver: _Resolver, columns: dict[str, set[str]], in_where: bool) -> None:
    for node in root.walk():
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise refuse("SELECT * returns rows; ask for aggregates")
            ref = resolver.qualify(node)
            if node.name.lower() == PERSON:
                if not _counts_persons(node):
                    raise refuse("the pseudonym column pid may only join tables or be counted as "
                                 "count(DISTINCT pid); it may not be shown, grouped by or filtered on")
            else:
                columns.setdefault(ref.name, set()).add(node.name)
        elif _is_aggregate(node):
            if in_where:
                raise refuse("aggregates are not allowed in WHERE")
            if any(_has_aggregate(inner) for inner in node.iter_expressions()):
                raise refuse(f"aggregate {_describe(node)} may not contain another aggregate")
        elif isinstance(node, exp.Star):
            if not isinstance(node.parent, exp.Count):
                raise refuse("SELECT * returns rows; ask for aggregates")
        elif isinstance(node, exp.Var):
            if not isinstance(node.parent, _UNIT_OWNERS):
                raise refuse(f"the bare word {node.name} is not allowed here")
        elif isinstance(node, exp.Distinct):
            if not isinstance(node.parent, exp.Count):
                raise refuse(f"DISTINCT inside {_describe(node.parent)} is not allowed; only count(DISTINCT pid)")
        elif not isinstance(node, _STRUCTURE + _OPERATORS + _SCALAR_FUNCTIONS):
            raise refuse(_not_allowed(node))


def _counts_persons(column: exp.Column) -> bool:
    distinct = column.parent
    return (isinstance(distinct, exp.Distinct) and isinstance(distinct.parent, exp.Count)
            and distinct.expressions == [column])


def _not_allowed(node: exp.Expression) -> str:
    if isinstance(node, (exp.Subquery, exp.Exists, exp.Query)):
        return "subqueries are not allowed"
    if isinstance(node, exp.Window):
        return "window functions (OVER) are not allowed"
    if isinstance(node, exp.Filter):
        return "FILTER clauses are not allowed; put the condition in WHERE"
    if isinstance(node, exp.Placeholder):
        return "parameters are not allowed"
    if isinstance(node, (exp.IgnoreNulls, exp.RespectNulls)) and isinstance(node.this, exp.Expression):
        return _not_allowed(node.this)
    name = _describe(node)
    if name in SINGLE_PERSON_AGGREGATES:
        return f"aggregate {name} is not allowed: it returns one person's value"
    if isinstance(node, exp.AggFunc):
        return f"aggregate {name} is not allowed (allowed: {ALLOWED_AGGREGATES})"
    if isinstance(node, (exp.Func, exp.Anonymous)):
        return f"function {name} is not allowed (only the allowed aggregates and plain scalar functions are)"
    return f"{name} is not allowed in a query"


# -- GROUP BY and the output columns ---------------------------------------------------------


def _group_expressions(statement: exp.Select, resolver: _Resolver) -> list[exp.Expression]:
    """GROUP BY items, with ordinals and output aliases replaced by the expressions they name."""
    group = statement.args.get("group")
    if group is None:
        return []
    for part in ("grouping_sets", "cube", "rollup", "totals"):
        if group.args.get(part):
            raise refuse(f"GROUP BY {part.upper().replace('_', ' ')} is not allowed")
    if group.args.get("all"):
        raise refuse("GROUP BY ALL is not allowed; name the grouping columns")
    outputs = statement.expressions
    aliases = {o.alias.lower(): o.this for o in outputs if isinstance(o, exp.Alias)}
    items = []
    for item in group.expressions:
        if isinstance(item, exp.Literal) and not item.is_string:
            position = int(item.this) if item.this.isdigit() else 0
            if not 1 <= position <= len(outputs):
                raise refuse(f"GROUP BY {item.this} does not name an output column")
            item = outputs[position - 1].unalias()
        elif isinstance(item, exp.Column) and not item.table and item.name.lower() in aliases \
                and not resolver.is_column(item.name):
            item = aliases[item.name.lower()]
        items.append(item.copy())
    group.set("expressions", items)
    return items


def _output_names(statement: exp.Select) -> list[str]:
    """Each output column's name as the analyst wrote it (its alias, column name or expression)."""
    names: list[str] = []
    for position, output in enumerate(statement.expressions, start=1):
        inner = output.unalias()
        name = output.alias or (inner.name if isinstance(inner, exp.Column) else
                                inner.sql(dialect=DIALECT, normalize_functions="lower", comments=False))
        if (output.alias and name.lower() == PERSON) or name.lower() in [n.lower() for n in names]:
            raise refuse(f"output column {position} may not be named {name}"
                         + ("" if name.lower() == PERSON else ": the name is taken"))
        names.append(name)
    return names


def _outputs(statement: exp.Select, names: list[str], group: list[exp.Expression]
             ) -> tuple[tuple[GroupKey, ...], tuple[Measure, ...]]:
    keys, measures = [], []
    for name, output in zip(names, statement.expressions):
        inner = output.unalias()
        if _is_aggregate(inner):
            measures.append(_measure(name, inner))
        elif _has_aggregate(inner):
            raise refuse(f"output column {name} mixes an aggregate with other terms; give each aggregate "
                         "its own column")
        elif inner in group:
            keys.append(GroupKey(name=name, expression=inner))
        else:
            raise refuse(f"output column {name} is neither an aggregate nor a GROUP BY key; "
                         "a query returns aggregates by groups, never rows")
    missing = [g for g in group if g not in [k.expression for k in keys]]
    if missing:
        raise refuse(f"GROUP BY {missing[0].sql(dialect=DIALECT)} is not among the output columns")
    if not measures:
        raise refuse("the query has no aggregate")
    return tuple(keys), tuple(measures)


def _measure(name: str, node: exp.Expression) -> Measure:
    if isinstance(node, exp.Count):
        argument = node.this
        if isinstance(argument, exp.Star):
            return Measure(name, "count", None)
        if isinstance(argument, exp.Distinct):
            values = argument.expressions
            if len(values) == 1 and isinstance(values[0], exp.Column) and values[0].name.lower() == PERSON:
                return Measure(name, "persons", values[0])
            raise refuse("count(DISTINCT ...) is allowed only for persons: count(DISTINCT pid)")
        return Measure(name, "count", argument)
    if isinstance(node, exp.Anonymous):
        if len(node.expressions) != 1:
            raise refuse(f"{node.name.lower()} takes one argument")
        return Measure(name, "mean", node.expressions[0])
    if isinstance(node, (exp.Sum, exp.Avg)):
        return Measure(name, "sum" if isinstance(node, exp.Sum) else "mean", node.this)
    if isinstance(node, exp.Median):
        return Measure(name, "quantile", node.this, 0.5)
    fraction = node.args.get("quantile") or node.args.get("expression")
    return Measure(name, "quantile", node.this, _fraction(name, fraction))


def _fraction(name: str, node: exp.Expression | None) -> float:
    if isinstance(node, exp.Literal) and not node.is_string:
        value = float(node.this)
        low, high = QUANTILE_RANGE
        if low <= value <= high:
            return value
        raise refuse(f"the quantile in {name} must lie between {low} and {high}: nearer the ends it approaches "
                     "a single person's value")
    raise refuse(f"the quantile in {name} must be one number between {QUANTILE_RANGE[0]} and {QUANTILE_RANGE[1]}")
