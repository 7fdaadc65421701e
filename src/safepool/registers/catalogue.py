"""The register catalogue: what each register is, where it lives and what it holds.

The catalogue is the steward's description of the sources. It names the identity column and
the direct identifiers so that the pool builder can leave the latter behind and replace the
former with a pseudonym; everything else is a variable with a pool name that analysts see.
"""

from __future__ import annotations

import re
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

# the data dictionary lives in safepool.dictionary (the analyst's side reads it too)
from safepool.dictionary import (IDENTIFIER_PATTERN, DatePart, Level, Sensitivity, Strict, TimeFormat,
                                 Variable, VariableType)

__all__ = ["IDENTIFIER_PATTERN", "Catalogue", "DatePart", "Level", "Register", "Sensitivity", "Source",
           "SourceKind", "Strict", "TimeFormat", "TimeGrain", "TimeSpec", "Variable", "VariableType"]


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
    synthetic: bool = Field(False, description="the rows are synthetic (safepool synth), not a holder's real data; "
                                                "a pool built from it says so in every report")
    related_identities: list[str] = Field(
        default_factory=list,
        description="variables holding another person's identity code (a parent's, say): the pool build "
                    "replaces each code with that person's pseudonym under the permit's key, so links between "
                    "persons survive pseudonymisation; a code that does not link becomes empty. Each must be a "
                    "text variable stored as string")

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
        for name in self.related_identities:
            if name not in names:
                raise ValueError(f"register {self.name}: related identity {name!r} is not a variable")
            if self.variable(name).level != "text" or self.variable(name).type != "string":
                raise ValueError(f"register {self.name}: related identity {name!r} must be a text variable "
                                 "stored as string (a pseudonym is never grouped)")
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
