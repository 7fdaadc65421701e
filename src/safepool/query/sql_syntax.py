"""SQL as one syntax of the aggregate query model.

A query is read with sqlglot and translated, node by node, into an `AggregateModel`; the engine
runs SQL it writes itself from the model, never the analyst's text. Everything SQL can say and the
model cannot is refused here, by name, before the pool is opened:

    SELECT <terms and measures> FROM t [[LEFT] JOIN u USING (pid)] [WHERE <conditions>] [GROUP BY ...]

- terms: a categorical variable, bin(numeric), year(date), quarter(date), month(date);
- measures: count(DISTINCT pid) (persons), count(*) (rows), sum(x), avg(x) or mean(x), share(x),
  median(x), quantile_cont(x, q) or quantile(x, q), of a declared numeric variable itself: no
  CASE, arithmetic, casts or functions inside;
- conditions: variable <op> constant, IN / NOT IN lists, BETWEEN, IS [NOT] NULL, joined by AND.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from safepool.query.model import (
    NAME_PATTERN,
    PERSON,
    AggregateModel,
    Condition,
    Dictionary,
    Grouping,
    Measure,
    declared,
    refuse,
    resolve,
)

DIALECT = "duckdb"
MAX_SQL_LENGTH = 20_000
_SELECT_PARTS = {"expressions", "from_", "joins", "where", "group", "kind"}
_CLAUSES = {
    "with_": "WITH (common table expressions)", "distinct": "SELECT DISTINCT", "into": "SELECT INTO",
    "having": "HAVING", "qualify": "QUALIFY", "windows": "WINDOW", "order": "ORDER BY", "sort": "SORT BY",
    "limit": "LIMIT", "offset": "OFFSET", "sample": "TABLESAMPLE", "laterals": "LATERAL", "pivots": "PIVOT",
    "exclude": "EXCLUDE", "prewhere": "PREWHERE", "connect": "CONNECT BY", "locks": "FOR UPDATE",
}
_DATE_PARTS = {exp.Year: "year", exp.Quarter: "quarter", exp.Month: "month"}
_COMPARISONS = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
_AGGREGATE_NAMES = {"mean": "mean", "share": "share"}
_MEASURES = (exp.Count, exp.Sum, exp.Avg, exp.Median, exp.Quantile, exp.PercentileCont)
ALLOWED_MEASURES = ("count(DISTINCT pid), count(*), sum, avg or mean, share, median, quantile_cont or "
                    "quantile")


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
    if len(sql) > MAX_SQL_LENGTH:
        raise refuse(f"the query is longer than {MAX_SQL_LENGTH:,} characters")
    try:
        with _quiet_parser():
            statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None) or [{}]
        where = errors[0]
        position = f" at line {where['line']}, column {where['col']}" if "line" in where else ""
        raise refuse(f"not valid SQL{position}") from None
    except RecursionError:
        raise refuse("the query is nested too deeply") from None
    if len(statements) != 1:
        raise refuse(f"exactly one statement is allowed, found {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Select):
        kind = str(statement.this).upper() if isinstance(statement, exp.Command) else statement.key.upper()
        raise refuse(f"only a SELECT statement is allowed, not {kind}")
    if any(node.comments for node in statement.walk()):
        raise refuse("comments are not allowed in a query")
    for part, value in statement.args.items():
        if value and part not in _SELECT_PARTS:
            raise refuse(f"{_CLAUSES.get(part, part.upper().rstrip('_'))} is not allowed")
    if statement.args.get("kind"):
        raise refuse(f"SELECT {statement.args['kind']} is not allowed")
    return statement


def model_from_sql(sql: str, dictionary: Dictionary) -> AggregateModel:
    """The model a query says, or a refusal naming the first construct outside it."""
    try:
        return _Translator(parse_statement(sql), dictionary).model()
    except RecursionError:
        raise refuse("the query is nested too deeply") from None


def tables_of(sql: str) -> list[str]:
    """Pool tables a query names, before anything else is checked (for the permit check)."""
    statement = parse_statement(sql)
    source = statement.args.get("from_")
    nodes = ([source.this] if source is not None else []) + [j.this for j in statement.args.get("joins") or []]
    return [node.name for node in nodes if isinstance(node, exp.Table)]


class _Translator:
    def __init__(self, statement: exp.Select, dictionary: Dictionary) -> None:
        self.statement = statement
        self.dictionary = dictionary
        self.aliases: dict[str, str] = {}  # alias -> pool table, in FROM order

    def model(self) -> AggregateModel:
        inner = self._tables()
        groups, measures = [], []
        for position, output in enumerate(self.statement.expressions, start=1):
            term = output.unalias()
            if isinstance(term, (exp.IgnoreNulls, exp.RespectNulls)):
                term = term.this
            if isinstance(term, exp.Star) or (isinstance(term, exp.Column) and isinstance(term.this, exp.Star)):
                raise refuse("SELECT * returns rows; ask for measures")
            name = self._name(output, term, position)
            if isinstance(term, exp.Window):
                raise refuse(f"output column {name}: window functions (OVER) are outside the query model")
            if _is_aggregate(term):
                measures.append(self._measure(term, name))
            else:
                groups.append(self._grouping(term, name))
        self._check_group_by(groups)
        where = self.statement.args.get("where")
        filters = self._conditions(where.this) if where is not None else []
        return AggregateModel(tables=tuple(self.aliases.values()), groups=tuple(groups), measures=tuple(measures),
                              filters=tuple(filters), inner_join=tuple(inner))

    # -- FROM and joins --------------------------------------------------------------------

    def _tables(self) -> list[bool]:
        source = self.statement.args.get("from_")
        if source is None:
            raise refuse("the query reads no table (FROM is missing)")
        self._add_table(source.this)
        inner = []
        for join in self.statement.args.get("joins") or []:
            name = self._add_table(join.this)
            kind, side = (join.args.get("kind") or "").upper(), (join.args.get("side") or "").upper()
            if join.args.get("method") or kind not in ("", "INNER") or side not in ("", "LEFT"):
                raise refuse(f"this join of {name} is not allowed; join tables with [LEFT] JOIN ... USING (pid)")
            extra = [p for p, v in join.args.items() if v and p not in ("this", "on", "using", "kind", "side")]
            if extra:
                raise refuse(f"{extra[0]} in the join of {name} is not allowed")
            using, on = join.args.get("using"), join.args.get("on")
            if using:
                if [getattr(u, "name", "").lower() for u in using] != [PERSON]:
                    raise refuse(f"table {name} must be joined on the person only: USING (pid)")
            elif on is not None:
                self._check_person_equality(on, name)
            else:
                raise refuse(f"table {name} is joined without a condition; join on the person: USING (pid)")
            inner.append(side != "LEFT")
        return inner

    def _add_table(self, node: exp.Expression) -> str:
        if isinstance(node, (exp.Subquery, exp.Query)):
            raise refuse("subqueries are not allowed")
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            raise refuse(f"{_describe(node)} is not allowed in FROM; name a pool table")
        if node.args.get("db") or node.args.get("catalog"):
            raise refuse(f"table {node.name} names a database or schema; use the pool table's name")
        extra = [part for part, value in node.args.items() if value and part not in ("this", "alias")]
        if extra:
            raise refuse(f"{_CLAUSES.get(extra[0], extra[0].upper())} is not allowed on table {node.name}")
        alias = node.args.get("alias")
        if alias is not None and alias.args.get("columns"):
            raise refuse(f"column aliases on table {node.name} are not allowed")
        if node.name not in self.dictionary:
            raise refuse(f"table {node.name} is not in this permit's pool")
        name = node.alias or node.name
        if name in self.aliases:
            raise refuse(f"two tables are named {name} in the query; give each its own alias")
        self.aliases[name] = node.name
        return name

    def _check_person_equality(self, on: exp.Expression, name: str) -> None:
        sides = [on.this, on.expression] if isinstance(on, exp.EQ) else []
        if len(sides) != 2 or not all(isinstance(s, exp.Column) and s.name.lower() == PERSON for s in sides):
            raise refuse(f"table {name} must be joined on the person only: ON a.pid = b.pid")
        if name not in {s.table for s in sides}:
            raise refuse(f"the join of table {name} must match its own pid with an earlier table's pid")

    # -- SELECT ----------------------------------------------------------------------------

    def _name(self, output: exp.Expression, term: exp.Expression, position: int) -> str:
        name = output.alias or (term.name if isinstance(term, exp.Column) else "")
        if not name:
            inner = _single_column(term)
            name = f"{_function_name(term)}_{inner.name}" if inner is not None else _function_name(term)
        if not re.fullmatch(NAME_PATTERN, name):
            raise refuse(f"output column {position} needs a plain name (letters, digits, _): add AS name")
        return name

    def _variable(self, column: exp.Column) -> tuple:
        if column.args.get("db") or column.args.get("catalog"):
            raise refuse("a column has too many qualifiers")
        if isinstance(column.this, exp.Star):
            raise refuse("SELECT * returns rows; ask for measures")
        ref = resolve(self.dictionary, self.aliases, column.name, column.table or None)
        return ref, declared(self.dictionary, ref.table, ref.name)

    def _grouping(self, term: exp.Expression, name: str) -> Grouping:
        if isinstance(term, exp.Column):
            ref, variable = self._variable(term)
            if variable.level != "categorical":
                raise refuse(f"output column {name}: {ref} is {variable.level}; a group is a categorical "
                             "variable, bin(numeric), or year(), quarter() or month() of a date")
            return Grouping(ref, "code", name)
        part = _DATE_PARTS.get(type(term))
        if part is None and isinstance(term, exp.Anonymous) and term.name.lower() == "bin":
            part = "bin"
        column = _single_column(term)
        if part is None or column is None:
            raise refuse(f"output column {name} is neither a measure nor a group; {_describe(term)} is outside "
                         "the query model (groups: a categorical variable, bin(x), year(d), quarter(d), month(d))")
        ref, _ = self._variable(column)
        return Grouping(ref, part, name)  # type: ignore[arg-type]

    def _measure(self, term: exp.Expression, name: str) -> Measure:
        if isinstance(term, exp.Count):
            argument = term.this
            if isinstance(argument, exp.Star):
                return Measure("rows", None, name)
            if isinstance(argument, exp.Distinct) and len(argument.expressions) == 1 and \
                    isinstance(argument.expressions[0], exp.Column) and argument.expressions[0].name.lower() == PERSON:
                return Measure("persons", None, name)
            raise refuse(f"{name}: count is count(DISTINCT pid) for persons or count(*) for rows")
        if not isinstance(term, _MEASURES) and not isinstance(term, exp.Anonymous):
            raise refuse(f"{name}: {_describe(term)} is not a measure of the query model (allowed: "
                         f"{ALLOWED_MEASURES}); min, max and their kind return one person's value")
        column = _single_column(term)
        if column is None:
            raise refuse(f"{name}: {_describe(term)} must be of a declared variable itself; CASE, arithmetic, "
                         "casts and functions inside a measure are outside the query model")
        ref, _ = self._variable(column)
        if isinstance(term, exp.Sum):
            return Measure("sum", ref, name)
        if isinstance(term, exp.Avg):
            return Measure("mean", ref, name)
        if isinstance(term, exp.Anonymous):
            return Measure(_AGGREGATE_NAMES[term.name.lower()], ref, name)  # type: ignore[arg-type]
        if isinstance(term, exp.Median):
            return Measure("quantile", ref, name, 0.5)
        fraction = term.args.get("quantile") or term.args.get("expression")
        if not (isinstance(fraction, exp.Literal) and not fraction.is_string):
            raise refuse(f"{name}: the quantile must be one number")
        return Measure("quantile", ref, name, float(fraction.this))

    def _check_group_by(self, groups: list[Grouping]) -> None:
        group = self.statement.args.get("group")
        if group is None:
            if groups:
                raise refuse(f"output column {groups[0].name} is not a measure, and there is no GROUP BY")
            return
        for part in ("grouping_sets", "cube", "rollup", "totals"):
            if group.args.get(part):
                raise refuse(f"GROUP BY {part.upper().replace('_', ' ')} is not allowed")
        if group.args.get("all"):
            return
        if any(isinstance(item, (exp.Rollup, exp.Cube, exp.GroupingSets)) for item in group.expressions):
            raise refuse("GROUP BY ROLLUP, CUBE and GROUPING SETS are not allowed")
        outputs = [o for o in self.statement.expressions]
        named = {o.alias_or_name.lower(): o.unalias() for o in outputs}
        wanted = []
        for item in group.expressions:
            if isinstance(item, exp.Literal) and not item.is_string and str(item.this).isdigit() \
                    and 1 <= int(item.this) <= len(outputs):
                item = outputs[int(item.this) - 1].unalias()
            elif isinstance(item, exp.Column) and not item.table and item.name.lower() in named:
                item = named[item.name.lower()]
            wanted.append(item.sql(dialect=DIALECT).lower())
        shown = [o.unalias().sql(dialect=DIALECT).lower() for o in outputs if not _is_aggregate(o.unalias())]
        if sorted(wanted) != sorted(shown):
            raise refuse("GROUP BY must list exactly the grouping columns of the SELECT")

    # -- WHERE ----------------------------------------------------------------------------

    def _conditions(self, node: exp.Expression) -> list[Condition]:
        if isinstance(node, exp.Paren):
            return self._conditions(node.this)
        if isinstance(node, exp.And):
            return self._conditions(node.this) + self._conditions(node.expression)
        if isinstance(node, exp.Or):
            raise refuse("OR is outside the query model; use IN (...) for alternatives of one variable")
        negated = isinstance(node, exp.Not)
        inner = node.this if negated else node
        if isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.In) and not inner.args.get("query") and not inner.args.get("field"):
            ref = self._filter_variable(inner.this)
            return [Condition(ref, "not in" if negated else "in", tuple(_constant(v) for v in inner.expressions))]
        if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null):
            return [Condition(self._filter_variable(inner.this), "is not null" if negated else "is null")]
        if negated:
            raise refuse("NOT is allowed only as NOT IN or IS NOT NULL")
        if isinstance(node, exp.Between):
            ref = self._filter_variable(node.this)
            return [Condition(ref, "between", (_constant(node.args["low"]), _constant(node.args["high"])))]
        operator = _COMPARISONS.get(type(node))
        if operator is None:
            raise refuse(f"{_describe(node)} in WHERE is outside the query model; compare a declared variable "
                         "with a constant")
        left, right = node.this, node.expression
        if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
            left, right, operator = right, left, _MIRRORED[operator]
        return [Condition(self._filter_variable(left), operator, (_constant(right),))]  # type: ignore[arg-type]

    def _filter_variable(self, node: exp.Expression):  # type: ignore[no-untyped-def]
        if not isinstance(node, exp.Column):
            raise refuse(f"{_describe(node)} in WHERE is outside the query model; compare a declared variable "
                         "itself with a constant (no functions of values)")
        ref, _ = self._variable(node)
        return ref


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, (exp.AggFunc, exp.Count)) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in _AGGREGATE_NAMES) or isinstance(node, exp.Window)


def _single_column(node: exp.Expression) -> exp.Column | None:
    """The column a one-argument function is of, when that argument is a bare column."""
    keys = ("expressions",) if isinstance(node, exp.Anonymous) else ("this", "expressions")
    args = [a for key, a in node.args.items() if key in keys and a]
    flat = [x for a in args for x in (a if isinstance(a, list) else [a])]
    extra = [k for k, a in node.args.items()
             if a and k not in ("this", "expressions", "quantile", "expression", "big_int")]
    if len(flat) == 1 and isinstance(flat[0], exp.Column) and not extra:
        return flat[0]
    return None


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.key.lower()


def _describe(node: exp.Expression | None) -> str:
    """What a node is, in words that never quote a value."""
    if node is None:
        return "nothing"
    if isinstance(node, exp.Window):
        return "a window function (OVER)"
    if isinstance(node, (exp.Subquery, exp.Exists, exp.Query)):
        return "a subquery"
    if isinstance(node, (exp.Case, exp.If)):
        return "CASE"
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return "a cast"
    if isinstance(node, exp.Binary):
        return f"the operator {node.key.upper()}"
    if isinstance(node, exp.Literal):
        return "a constant"
    if isinstance(node, exp.Column):
        return "a column"
    if isinstance(node, (exp.Func, exp.Anonymous)):
        return f"the function {_function_name(node)}"
    return node.key.upper()


def _constant(node: exp.Expression) -> object:
    """A literal number, text, boolean or DATE 'YYYY-MM-DD'; anything else is refused."""
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = _constant(node.this)
        return -value  # type: ignore[operator]
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise refuse("a number in WHERE cannot be read") from None
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string \
            and node.to.is_type(exp.DataType.Type.DATE):
        try:
            return dt.date.fromisoformat(str(node.this.this))
        except ValueError:
            raise refuse("a DATE constant must be written YYYY-MM-DD") from None
    raise refuse(f"{_describe(node)} is not a constant; WHERE compares a declared variable with constants")
