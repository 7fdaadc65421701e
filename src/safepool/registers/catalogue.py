"""The register catalogue: what each register is, where it lives and what it holds.

The catalogue is the steward's description of the sources. It names the identity column and
the direct identifiers so that the pool builder can leave the latter behind and replace the
former with a pseudonym; everything else is a variable with a pool name that analysts see.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SourceKind(StrEnum):
    parquet = "parquet"
    csv = "csv"
    sqlite = "sqlite"
    postgresql = "postgresql"


class TimeGrain(StrEnum):
    """How often the register records a value; `none` marks a person-level register."""

    none = "none"
    day = "day"
    month = "month"
    quarter = "quarter"
    year = "year"


class TimeFormat(StrEnum):
    """How the holder writes the time column; the scoped query compares in this format."""

    date = "date"  # a DATE (or ISO 'YYYY-MM-DD' text in SQLite)
    yyyymm = "yyyymm"  # an integer such as 201903
    yyyyq = "yyyyq"  # a text such as '2019Q3'
    year = "year"  # an integer such as 2019


VariableType = Literal["string", "integer", "float", "date", "boolean"]
Sensitivity = Literal["normal", "sensitive", "special"]
Level = Literal["categorical", "numeric", "date", "text"]
DatePart = Literal["year", "quarter", "month"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Where a register is kept. A PostgreSQL location carries no password: the steward zone's
    credential file supplies it at connect time."""

    kind: SourceKind
    location: str = Field(description="file path (relative to the workspace) or postgresql URL")
    table: str | None = Field(default=None, description="table name for sqlite and postgresql")

    @model_validator(mode="after")
    def _table_for_databases(self) -> Source:
        if self.kind in (SourceKind.sqlite, SourceKind.postgresql) and not self.table:
            raise ValueError(f"a {self.kind} source needs a table")
        if self.table is not None and not _is_identifier(self.table.replace(".", "_")):
            raise ValueError(f"table name {self.table!r} is not a plain SQL identifier")
        if self.kind == SourceKind.postgresql and _url_has_password(self.location):
            raise ValueError(
                "a postgresql location must not carry a password; put it in steward/credentials.yaml"
            )
        return self


class Variable(Strict):
    """One variable of the data dictionary, with the measurement level that decides how it may be
    grouped: by its code list (categorical), by the bins the policy allows (numeric), by year,
    quarter or month (date), or never (text)."""

    name: str = Field(pattern=IDENTIFIER_PATTERN, description="the name analysts see in the pool")
    column: str = Field(pattern=IDENTIFIER_PATTERN, description="the holder's own column name")
    type: VariableType
    description: str
    sensitivity: Sensitivity = "normal"
    level: Level
    codes: dict[str, str] | None = Field(
        default=None, description="categorical: each code as the data writes it (as text) and its label")
    unit: str | None = Field(default=None, description="numeric: the unit, e.g. EUR, persons, visits")
    bins: list[float] | None = Field(
        default=None, description="numeric: ascending bin edges the policy allows for grouping "
                                  "(groups below the first edge, between edges, and from the last edge)")
    years: tuple[int, int] | None = Field(
        default=None, description="date: the first and last year it is grouped over (earlier or later "
                                  "dates form one group each)")
    date_format: TimeFormat | None = Field(
        default=None, description="date: how a date that is not a DATE is written (yyyymm, yyyyq, year)")

    @model_validator(mode="after")
    def _level_fits(self) -> Variable:
        extras = {"codes": self.codes, "unit": self.unit, "bins": self.bins, "years": self.years,
                  "date_format": self.date_format}
        allowed = {"categorical": {"codes"}, "numeric": {"unit", "bins"}, "date": {"years", "date_format"},
                   "text": set()}[self.level]
        stray = sorted(k for k, v in extras.items() if v is not None and k not in allowed)
        if stray:
            raise ValueError(f"variable {self.name}: {', '.join(stray)} do(es) not apply to a {self.level} variable")
        if self.level == "categorical":
            if not self.codes:
                raise ValueError(f"variable {self.name}: a categorical variable needs its code list (codes)")
            if self.type not in ("string", "integer", "boolean"):
                raise ValueError(f"variable {self.name}: a categorical variable is stored as string, integer or "
                                 f"boolean, not {self.type}")
        if self.level == "numeric":
            if self.type not in ("integer", "float"):
                raise ValueError(f"variable {self.name}: a numeric variable is stored as integer or float, "
                                 f"not {self.type}")
            if not self.unit:
                raise ValueError(f"variable {self.name}: a numeric variable needs its unit")
            edges = self.bins or []
            if any(b >= a for a, b in zip(edges[1:], edges)) or len(set(edges)) != len(edges):
                raise ValueError(f"variable {self.name}: bins must be strictly ascending")
        if self.level == "date":
            if self.years is None or self.years[0] > self.years[1]:
                raise ValueError(f"variable {self.name}: a date variable needs years: [first, last]")
            if (self.date_format in (None, TimeFormat.date)) != (self.type == "date"):
                raise ValueError(f"variable {self.name}: a date stored as {self.type} needs date_format "
                                 "yyyymm, yyyyq or year; a DATE needs none")
        return self

    def date_parts(self) -> list[DatePart]:
        """The parts a date variable may be grouped by: none finer than the way it is written."""
        finest = {None: 3, TimeFormat.date: 3, TimeFormat.yyyymm: 3, TimeFormat.yyyyq: 2, TimeFormat.year: 1}
        return ["year", "quarter", "month"][: finest[self.date_format]] if self.level == "date" else []


class TimeSpec(Strict):
    """The variable that places a row in time; `end_variable` makes the row a span."""

    variable: str
    end_variable: str | None = None
    grain: TimeGrain
    format: TimeFormat


class Register(Strict):
    name: str = Field(pattern=IDENTIFIER_PATTERN)
    holder: str
    description: str
    source: Source
    identity_column: str = Field(pattern=IDENTIFIER_PATTERN)
    direct_identifiers: list[str] = Field(default_factory=list)
    time: TimeSpec | None = None
    variables: list[Variable]

    @field_validator("direct_identifiers")
    @classmethod
    def _plain_identifiers(cls, columns: list[str]) -> list[str]:
        for column in columns:
            if not _is_identifier(column):
                raise ValueError(f"direct identifier {column!r} is not a plain column name")
        return columns

    @model_validator(mode="after")
    def _consistent(self) -> Register:
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError(f"register {self.name}: variable names repeat")
        columns = {v.column for v in self.variables}
        leaked = columns & ({self.identity_column} | set(self.direct_identifiers))
        if leaked:
            raise ValueError(
                f"register {self.name}: identifying column(s) {sorted(leaked)} may not be variables"
            )
        if self.time is not None:
            for name in (self.time.variable, self.time.end_variable):
                if name is not None and name not in names:
                    raise ValueError(f"register {self.name}: time variable {name!r} is not a variable")
        return self

    def variable(self, name: str) -> Variable:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)


class Catalogue(Strict):
    registers: list[Register]

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        names = [r.name for r in self.registers]
        if len(set(names)) != len(names):
            raise ValueError("register names repeat in the catalogue")
        return self

    def register(self, name: str) -> Register:
        for register in self.registers:
            if register.name == name:
                return register
        raise KeyError(name)

    def names(self) -> list[str]:
        return [r.name for r in self.registers]


def _is_identifier(text: str) -> bool:
    return re.match(IDENTIFIER_PATTERN, text) is not None


def _url_has_password(url: str) -> bool:
    return urlsplit(url).password is not None
