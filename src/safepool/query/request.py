"""A structured aggregate request: what to count, add up, average or take quantiles of, by which groups.

Written as YAML/JSON or given as command-line options. It becomes SQL and then passes the same
guard and engine as a hand-written query, so the two ways in cannot differ in what they allow.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlglot import exp

from safepool.errors import SafepoolError
from safepool.query.sql_guard import DIALECT, PERSON, QUANTILE_RANGE
from safepool.yaml_files import load_model

Operator = Literal["=", "!=", "<", "<=", ">", ">=", "in", "not in", "between", "is null", "is not null"]
OPERATORS: tuple[str, ...] = Operator.__args__  # type: ignore[attr-defined]
Scalar = Union[bool, int, float, dt.date, str]
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
COLUMN_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"

_COMPARISONS = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


class RequestError(SafepoolError):
    """A structured request that cannot be understood; names the option or field."""


class Filter(BaseModel):
    """One condition on the rows: column, operator from a closed list, value(s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(pattern=COLUMN_NAME)
    operator: Operator
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Filter:
        many = isinstance(self.value, list)
        if self.operator in ("is null", "is not null"):
            if self.value is not None:
                raise ValueError(f"'{self.operator}' takes no value")
        elif self.operator in ("in", "not in"):
            if not many or not self.value:
                raise ValueError(f"'{self.operator}' takes a list of values")
        elif self.operator == "between":
            if not many or len(self.value) != 2:  # type: ignore[arg-type]
                raise ValueError("'between' takes two values: low and high")
        elif many or self.value is None:
            raise ValueError(f"'{self.operator}' takes one value")
        return self

    def condition(self) -> exp.Expression:
        column = _column(self.column)
        if self.operator in _COMPARISONS:
            return _COMPARISONS[self.operator](this=column, expression=exp.convert(self.value))
        if self.operator in ("in", "not in"):
            inside = exp.In(this=column, expressions=[exp.convert(v) for v in self.value])  # type: ignore[union-attr]
            return inside if self.operator == "in" else exp.Not(this=inside)
        if self.operator == "between":
            low, high = self.value  # type: ignore[misc]
            return exp.Between(this=column, low=exp.convert(low), high=exp.convert(high))
        null = exp.Is(this=column, expression=exp.Null())
        return null if self.operator == "is null" else exp.Not(this=null)


class AggregateRequest(BaseModel):
    """count (persons), sum, mean or quantiles of a value column, by groups, over filtered rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(pattern=TABLE_NAME, description="the pool table the rows come from")
    join: list[str] = Field(default_factory=list, description="more tables, joined on the person")
    measure: Literal["count", "sum", "mean", "quantiles"]
    value: str | None = Field(None, pattern=COLUMN_NAME, description="the column summed, averaged or ranked")
    quantiles: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])
    by: list[str] = Field(default_factory=list, description="grouping columns")
    filters: list[Filter] = Field(default_factory=list)
    title: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AggregateRequest:
        if self.measure == "count" and self.value is not None:
            raise ValueError("count counts persons and takes no value column")
        if self.measure != "count" and self.value is None:
            raise ValueError(f"{self.measure} needs a value column")
        low, high = QUANTILE_RANGE
        if self.measure == "quantiles" and (not self.quantiles or not all(low <= q <= high for q in self.quantiles)):
            raise ValueError(f"quantiles must be numbers between {low} and {high}")
        for name in self.join:
            if not re.fullmatch(TABLE_NAME, name):
                raise ValueError(f"join: {name} is not a plain table name")
        for name in self.by:
            if not re.fullmatch(COLUMN_NAME, name):
                raise ValueError(f"by: {name} is not a plain column name")
        return self

    @classmethod
    def load(cls, path: Path) -> AggregateRequest:
        """A request from a YAML or JSON file; problems name their field and line."""
        return load_model(path, cls)

    @classmethod
    def from_options(cls, **options: object) -> AggregateRequest:
        """A request from command-line options; problems name the option."""
        try:
            return cls.model_validate({k: v for k, v in options.items() if v is not None})
        except ValidationError as exc:
            problems = [f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()]
            raise RequestError("the request is not valid: " + "; ".join(problems)) from None

    def describe(self) -> str:
        what = "persons" if self.measure == "count" else f"{self.measure} of {self.value}"
        groups = f" by {', '.join(self.by)}" if self.by else ""
        return self.title or f"{what}{groups} ({', '.join([self.table, *self.join])})"

    def to_sql(self) -> str:
        """The request as one aggregate SELECT (the guard checks it like any other query)."""
        keys = [_column(name).as_(name.split(".")[-1]) for name in self.by]
        select = exp.select(*keys, *self._aggregates()).from_(exp.to_table(self.table, quoted=True))
        for other in self.join:
            select = select.join(exp.to_table(other, quoted=True), using=[PERSON], join_type="left")
        if self.filters:
            select = select.where(exp.and_(*(f.condition() for f in self.filters)))
        if keys:
            select = select.group_by(*(_column(name) for name in self.by))
        return select.sql(dialect=DIALECT)

    def _aggregates(self) -> list[exp.Expression]:
        if self.measure == "count":
            person = exp.column(PERSON, table=self.table, quoted=True)
            return [exp.Count(this=exp.Distinct(expressions=[person])).as_("persons")]
        value = _column(self.value)  # type: ignore[arg-type]
        if self.measure == "sum":
            return [exp.Sum(this=value).as_("sum")]
        if self.measure == "mean":
            return [exp.Avg(this=value).as_("mean")]
        return [exp.PercentileCont(this=value.copy(), expression=exp.convert(q)).as_(f"q{round(q * 100):02d}")
                for q in self.quantiles]


def _column(name: str) -> exp.Column:
    table, _, column = name.rpartition(".")
    return exp.column(column, table=table or None, quoted=True)


def parse_filter(text: str) -> Filter:
    """`column operator value` from the command line, e.g. "birth_year >= 1980", "sex in F,M",
    "amount between 10,500", "month is null". Numbers become numbers; lists are comma-separated."""
    parts = text.strip().split(None, 1)
    if len(parts) != 2:
        raise RequestError('a --filter needs a column, an operator and a value, e.g. "birth_year >= 1980"')
    column, rest = parts
    lowered = rest.lower()
    for operator in sorted(OPERATORS, key=len, reverse=True):
        if lowered == operator or lowered.startswith(operator + " ") or (
                not operator[0].isalpha() and lowered.startswith(operator)):
            raw = rest[len(operator):].strip()
            value: object = None
            if operator in ("in", "not in", "between"):
                value = [_scalar(v) for v in raw.split(",") if v.strip()]
            elif operator not in ("is null", "is not null"):
                value = _scalar(raw)
            elif raw:
                raise RequestError(f"--filter on {column}: '{operator}' takes no value")
            try:
                return Filter(column=column, operator=operator, value=value)  # type: ignore[arg-type]
            except ValidationError as exc:
                raise RequestError(f"--filter on {column}: {exc.errors()[0]['msg']}") from None
    raise RequestError(f"--filter on {column}: the operator must be one of {', '.join(OPERATORS)}")


def _scalar(text: str) -> Scalar:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
