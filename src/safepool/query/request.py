"""The structured request: the query model written as YAML, JSON or command-line options.

    table: employment            # the pool table the rows come from
    join: [population]           # more tables, joined on the person
    measure: mean                # persons, rows, sum, mean, share or quantiles
    value: earnings              # the numeric variable measured (not for persons or rows)
    quantiles: [0.25, 0.5, 0.75] # for measure: quantiles (local means, 0.1 to 0.9)
    by: [sex, bin(earnings), year(quarter)]
    filters:
      - {variable: main_activity, operator: "=", value: "11"}
      - "population.sex in 1,2"  # the same condition as one line of text

A group term is a categorical variable, bin(numeric variable), or year(), quarter() or month()
of a date variable; a name may be qualified with its table (population.sex). It becomes the same
`AggregateModel` SQL becomes, so the two ways in cannot differ in what they allow.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from safepool.faults import Invalid
from safepool.query.model import (
    OPERATORS,
    QUANTILE_RANGE,
    AggregateModel,
    Condition,
    Dictionary,
    Grouping,
    Measure,
    Operator,
    refuse,
    resolve,
)
from safepool.yaml_files import load_model

Scalar = Union[bool, int, float, dt.date, str]
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
VARIABLE_NAME = r"^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$"
GROUP_TERM = re.compile(r"^(?:(bin|year|quarter|month)\(\s*)?(?:([A-Za-z_]\w*)\.)?([A-Za-z_]\w*)(?(1)\s*\))$")
MEASURES = ("persons", "rows", "sum", "mean", "share", "quantiles")


class RequestError(Invalid, ValueError):
    """A structured request that cannot be understood; names the option or field."""


class Filter(BaseModel):
    """One condition on the rows: a declared variable, an operator from a closed list, constant(s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variable: str = Field(pattern=VARIABLE_NAME)
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

    def values(self) -> tuple[object, ...]:
        if self.value is None:
            return ()
        return tuple(self.value) if isinstance(self.value, list) else (self.value,)


class AggregateRequest(BaseModel):
    """persons, rows, sum, mean, share or quantiles of a numeric variable, by groups, over filtered rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(pattern=TABLE_NAME, description="the pool table the rows come from")
    join: list[str] = Field(default_factory=list, description="more tables, joined on the person")
    measure: Literal["persons", "rows", "sum", "mean", "share", "quantiles"]
    value: str | None = Field(None, pattern=VARIABLE_NAME, description="the numeric variable measured")
    quantiles: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])
    by: list[str] = Field(default_factory=list, description="group terms")
    filters: list[Filter] = Field(default_factory=list)
    title: str | None = Field(None, max_length=120)

    @field_validator("filters", mode="before")
    @classmethod
    def _text_filters(cls, filters: object) -> object:
        if isinstance(filters, list):
            return [parse_filter(f) if isinstance(f, str) else f for f in filters]
        return filters

    @model_validator(mode="after")
    def _consistent(self) -> AggregateRequest:
        if self.measure in ("persons", "rows") and self.value is not None:
            raise ValueError(f"{self.measure} takes no value variable")
        if self.measure not in ("persons", "rows") and self.value is None:
            raise ValueError(f"{self.measure} needs a value variable")
        low, high = QUANTILE_RANGE
        if self.measure == "quantiles" and (not self.quantiles or not all(low <= q <= high for q in self.quantiles)):
            raise ValueError(f"quantiles must be numbers between {low} and {high}")
        for name in self.join:
            if not re.fullmatch(TABLE_NAME, name):
                raise ValueError(f"join: {name} is not a plain table name")
        for term in self.by:
            if not GROUP_TERM.match(term.strip()):
                raise ValueError(f"by: {term} is not a group term (a variable, bin(x), year(d), quarter(d) or "
                                 "month(d))")
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

    def model(self, dictionary: Dictionary) -> AggregateModel:
        """The request in the query model (checked against the dictionary by `check_model`)."""
        for table in [self.table, *self.join]:
            if table not in dictionary:
                raise refuse(f"table {table} is not in this permit's pool")
        tables = {name: name for name in [self.table, *self.join]}
        groups = []
        for term in self.by:
            part, qualifier, name = GROUP_TERM.match(term.strip()).groups()  # type: ignore[union-attr]
            ref = resolve(dictionary, tables, name, qualifier)
            groups.append(Grouping(ref, part or "code", name if part is None else f"{part}_{name}"))
        filters = [Condition(_ref(dictionary, tables, f.variable), f.operator, f.values()) for f in self.filters]
        return AggregateModel(tables=tuple(tables), groups=tuple(groups),
                              measures=tuple(self._measures(dictionary, tables)), filters=tuple(filters),
                              inner_join=tuple(False for _ in self.join))

    def _measures(self, dictionary: Dictionary, tables: dict[str, str]) -> list[Measure]:
        if self.measure in ("persons", "rows"):
            return [Measure(self.measure, None, self.measure)]  # type: ignore[arg-type]
        ref = _ref(dictionary, tables, self.value)  # type: ignore[arg-type]
        if self.measure == "quantiles":
            return [Measure("quantile", ref, f"q{round(q * 100):02d}", q) for q in self.quantiles]
        return [Measure(self.measure, ref, self.measure)]  # type: ignore[arg-type]

    def describe(self) -> str:
        what = self.measure if self.value is None else f"{self.measure} of {self.value}"
        groups = f" by {', '.join(self.by)}" if self.by else ""
        return self.title or f"{what}{groups} ({', '.join([self.table, *self.join])})"


def _ref(dictionary: Dictionary, tables: dict[str, str], name: str):  # type: ignore[no-untyped-def]
    qualifier, _, variable = name.rpartition(".")
    return resolve(dictionary, tables, variable, qualifier or None)


_WORD_OPERATORS = sorted((o for o in OPERATORS if o[0].isalpha()), key=len, reverse=True)
_SIGN_OPERATORS = sorted([*(o for o in OPERATORS if not o[0].isalpha()), "<>"], key=len, reverse=True)
_VARIABLE = r"[A-Za-z_][A-Za-z0-9_.]*"  # a name, table-qualified or not
_FILTER = re.compile(
    r"\s*(?P<variable>" + _VARIABLE + r")\s*(?:(?P<sign>" + "|".join(map(re.escape, _SIGN_OPERATORS)) + r")"
    r"|\s(?P<word>" + "|".join(o.replace(" ", r"\s+") for o in _WORD_OPERATORS) + r")(?=\s|$))(?P<rest>.*)",
    re.IGNORECASE | re.DOTALL)
_JOINED = re.compile(r"\s(and|or)\s", re.IGNORECASE)


def parse_filter(text: str) -> Filter:
    """`variable operator value` as text, e.g. "sex = 2", "sex=2", "native_language in fi,sv" (or
    "in (fi,sv)"), "earnings between 1000,5000" (or "between 1000 and 5000"), "move_out_date is
    null"; "<>" is "!=". Numbers become numbers; lists are comma-separated. One condition per
    filter: filters are joined with AND.
    A message names the variable and the operator, never the value (it may be data)."""
    found = _FILTER.fullmatch(text)
    if found is None:
        named = re.match(r"\s*(" + _VARIABLE + r")(?![A-Za-z0-9_.])\s*\S", text)
        if named:  # a variable, then something that is not an operator
            raise _unknown_operator(named[1])
        raise RequestError('a filter needs a variable, an operator and a value, e.g. "sex = 2"')
    variable, rest = found["variable"], found["rest"].strip()
    operator = {"<>": "!="}.get(found["sign"], found["sign"]) or " ".join(found["word"].lower().split())
    if rest[:1] in ("=", "<", ">", "!"):  # "==", "=<" and the like
        raise _unknown_operator(variable)
    if operator == "between" and len(parts := re.split(r"\s+and\s+", rest, flags=re.IGNORECASE)) == 2:
        rest = ",".join(parts)
    if _JOINED.search(f" {rest} "):
        raise RequestError(f"filter on {variable}: one condition per filter; give each its own filter "
                           "(filters are all met together, as with AND; OR is not in the model)")
    value: object = None
    if operator in ("in", "not in", "between"):
        listed = rest[1:-1] if rest.startswith("(") and rest.endswith(")") else rest
        value = [_scalar(v) for v in listed.split(",") if v.strip()]
    elif operator not in ("is null", "is not null"):
        if not rest:
            raise RequestError(f"filter on {variable}: '{operator}' needs a value")
        value = _scalar(rest)
    elif rest:
        raise RequestError(f"filter on {variable}: '{operator}' takes no value")
    try:
        return Filter(variable=variable, operator=operator, value=value)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise RequestError(f"filter on {variable}: {exc.errors()[0]['msg']}") from None


def _unknown_operator(variable: str) -> RequestError:
    return RequestError(f"filter on {variable}: the operator must be one of {', '.join(OPERATORS)}")


def _scalar(text: str) -> Scalar:
    """A number when the text is one, else the text (without the quotes of a quoted one: '2' is text)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
