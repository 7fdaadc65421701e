"""The data dictionary: each variable with its measurement level (issue 10).

A variable is categorical (its code list, each code as the data writes it as text, with its
label), numeric (its unit and the bins the policy allows for grouping), a date (grouped by year,
quarter or month over the years it covers) or text (never grouped). The register catalogue
(`safepool.registers.catalogue`) holds the dictionary with the holder's column names; the pool
keeps a copy in pool names (`safepool.pool.access.dictionary`). This module imports nothing
of safepool, so both the steward's and the analyst's side may use it.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


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

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, codes: object) -> object:
        """YAML reads `1: male` with an integer key and `true: yes` with a boolean one; a code is
        compared as the text the data writes, so keys become that text ('1', 'true')."""
        if not isinstance(codes, dict):
            return codes
        return {(str(key).lower() if isinstance(key, bool) else str(key) if isinstance(key, int) else key): label
                for key, label in codes.items()}

    @model_validator(mode="after")
    def _level_fits(self) -> Variable:
        extras = {"codes": self.codes, "unit": self.unit, "bins": self.bins, "years": self.years,
                  "date_format": self.date_format}
        allowed = {"categorical": {"codes"}, "numeric": {"unit", "bins"}, "date": {"years", "date_format"},
                   "text": set()}[self.level]
        stray = sorted(k for k, v in extras.items() if v is not None and k not in allowed)
        if stray:
            raise ValueError(f"variable {self.name}: a {self.level} variable takes no {' or '.join(stray)}")
        if self.level == "categorical":
            if not self.codes:
                raise ValueError(f"variable {self.name}: a categorical variable needs its code list (codes)")
            if self.type not in ("string", "integer", "boolean"):
                raise ValueError(f"variable {self.name}: a categorical variable is stored as string, integer or "
                                 f"boolean, not {self.type}")
            if any(not code or not label.strip() for code, label in self.codes.items()):
                raise ValueError(f"variable {self.name}: every code needs a label, and no code may be empty")
            written = {"integer": r"-?(0|[1-9][0-9]*)", "boolean": r"true|false"}.get(self.type)
            if written and not all(re.fullmatch(written, code) for code in self.codes):
                raise ValueError(f"variable {self.name}: codes of a {self.type} variable are written as the data "
                                 "writes them as text: " + ("1, 2, ... (no leading zeros)" if self.type == "integer"
                                                            else "true, false"))
        if self.level == "numeric":
            if self.type not in ("integer", "float"):
                raise ValueError(f"variable {self.name}: a numeric variable is stored as integer or float, "
                                 f"not {self.type}")
            if not self.unit:
                raise ValueError(f"variable {self.name}: a numeric variable needs its unit")
            edges = self.bins or []
            if not all(math.isfinite(edge) for edge in edges):
                raise ValueError(f"variable {self.name}: bins must be finite numbers")
            if any(later <= earlier for earlier, later in zip(edges, edges[1:])):
                raise ValueError(f"variable {self.name}: bins must be strictly ascending")
        if self.level == "date":
            if self.years is None or self.years[0] > self.years[1]:
                raise ValueError(f"variable {self.name}: a date variable needs years: [first, last]")
            if self.type not in ("date", "integer", "string"):
                raise ValueError(f"variable {self.name}: a date variable is stored as date, integer or string, "
                                 f"not {self.type}")
            if (self.date_format in (None, TimeFormat.date)) != (self.type == "date"):
                raise ValueError(f"variable {self.name}: a date stored as {self.type} needs date_format "
                                 "yyyymm, yyyyq or year; a DATE needs none")
            if self.date_format == TimeFormat.yyyyq and self.type != "string":
                raise ValueError(f"variable {self.name}: a yyyyq date such as 2019Q3 is stored as string")
        return self

    def date_parts(self) -> list[DatePart]:
        """The parts a date variable may be grouped by: none finer than the way it is written."""
        finest = {None: 3, TimeFormat.date: 3, TimeFormat.yyyymm: 3, TimeFormat.yyyyq: 2, TimeFormat.year: 1}
        return ["year", "quarter", "month"][: finest[self.date_format]] if self.level == "date" else []
