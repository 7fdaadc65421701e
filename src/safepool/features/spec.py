"""The features configuration: person-period variables defined once, against the catalogue.

A feature is declared by what it means (a count of rows in a quarter, an age on a day, the value
of a span valid on a day, a band of another feature), never by SQL: the engine's dialect writes
the SQL (safepool.features.dialect). Sections, each a mapping from feature name to definition:

- quarterly: one number per person and quarter from one table's rows in the quarter (0 when the
  person has none): exists, count, sum of a variable, or any row whose variable has given codes.
- attributes: a value of the person table's row on a day: a variable, the years since a date,
  a comparison with a code, a date known or before the day, living in the area on the day.
- related: from another table, on a day: the value of the span valid on the day, or the highest
  value recorded before the day's year.
- family: a value of the person's parents (through the person table's links to them).
- derived: bands of a numeric feature (bins) or labels of a categorical one (codes).
- windows: over a quarterly feature, in the quarters before a quarter: the sum over the last k,
  or the number of quarters since the last one with a use.

Every definition carries its description and unit; the variables it reads are its sources.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from safepool.dictionary import IDENTIFIER_PATTERN

Name = str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Documented(_Strict):
    description: str = Field(min_length=1, max_length=300)
    unit: str = Field(min_length=1, max_length=40, description="EUR, visits, quarters, years, indicator, label, ...")


class TableTime(_Strict):
    """The variable that dates a table's rows, and how the holder writes it."""

    time: str = Field(pattern=IDENTIFIER_PATTERN)
    format: Literal["date", "yyyymm", "yyyyq", "year"]


class Quarterly(Documented):
    table: str = Field(pattern=IDENTIFIER_PATTERN)
    aggregate: Literal["exists", "count", "sum", "any"]
    of: str | None = Field(None, pattern=IDENTIFIER_PATTERN, description="sum: the variable summed")
    where: dict[str, list[str | int]] | None = Field(
        None, description="only rows whose variable holds one of these codes (any: required)")

    @model_validator(mode="after")
    def _fields_fit(self) -> Quarterly:
        if (self.aggregate == "sum") != (self.of is not None):
            raise ValueError("give `of` (the variable summed) with aggregate sum, and only then")
        if self.aggregate == "any" and not self.where:
            raise ValueError("aggregate any needs `where`: the codes that count")
        if self.where is not None and (len(self.where) != 1 or not all(self.where.values())):
            raise ValueError("`where` names one variable and at least one code")
        return self


class Living(_Strict):
    since: str = Field(pattern=IDENTIFIER_PATTERN, description="date the person moved into the area")
    until: list[str] = Field(min_length=1, description="dates the person left (moved out, died); empty = still there")


class Attribute(Documented):
    """Exactly one of the operations below, on the person table's row, on the day asked for."""

    value: str | None = Field(None, pattern=IDENTIFIER_PATTERN)
    years_since: str | None = Field(None, pattern=IDENTIFIER_PATTERN)
    equals: dict[str, str | int] | None = None
    known: str | None = Field(None, pattern=IDENTIFIER_PATTERN)
    before: str | None = Field(None, pattern=IDENTIFIER_PATTERN)
    living: Living | None = None
    missing: str | int | None = Field(None, description="the value taken where the variable is empty")

    @model_validator(mode="after")
    def _one_operation(self) -> Attribute:
        given = [k for k in ("value", "years_since", "equals", "known", "before", "living") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of value, years_since, equals, known, before, living")
        if self.equals is not None and len(self.equals) != 1:
            raise ValueError("equals names one variable and its code")
        return self


class ValidOn(_Strict):
    table: str = Field(pattern=IDENTIFIER_PATTERN)
    value: str = Field(pattern=IDENTIFIER_PATTERN)
    start: str = Field(pattern=IDENTIFIER_PATTERN)
    end: str = Field(pattern=IDENTIFIER_PATTERN, description="last valid day; empty = open-ended")


class HighestBeforeYear(_Strict):
    table: str = Field(pattern=IDENTIFIER_PATTERN)
    value: str = Field(pattern=IDENTIFIER_PATTERN, description="a code read as a whole number (a level)")
    year: str = Field(pattern=IDENTIFIER_PATTERN)


class Related(Documented):
    valid_on: ValidOn | None = None
    highest_before_year: HighestBeforeYear | None = None
    missing: str | int | None = None

    @model_validator(mode="after")
    def _one_operation(self) -> Related:
        if (self.valid_on is None) == (self.highest_before_year is None):
            raise ValueError("give exactly one of valid_on, highest_before_year")
        return self


class Family(Documented):
    """A label from the parents' variable: the first code in `first` that a parent holds wins; a
    known parent with none of them gives `any_parent`; no known parent gives the feature `own`."""

    parents: list[str] = Field(min_length=1, description="variables of the person table linking to a parent")
    of: str = Field(pattern=IDENTIFIER_PATTERN)
    first: dict[str, str] = Field(min_length=1)
    any_parent: str
    own: Name


class Bins(_Strict):
    of: Name
    edges: list[float] = Field(min_length=1)
    labels: list[str]

    @model_validator(mode="after")
    def _labels_fit(self) -> Bins:
        if len(self.labels) != len(self.edges) + 1:
            raise ValueError("give one label more than edges (below the first edge, then from each edge)")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError("edges must be strictly ascending")
        return self


class Codes(_Strict):
    of: Name
    map: dict[str, str] = Field(min_length=1)
    other: str


class Derived(Documented):
    bins: Bins | None = None
    codes: Codes | None = None

    @model_validator(mode="after")
    def _one_operation(self) -> Derived:
        if (self.bins is None) == (self.codes is None):
            raise ValueError("give exactly one of bins, codes")
        return self


class Window(Documented):
    of: Name = Field(description="a quarterly feature")
    quarters: int = Field(ge=1, le=40, description="how many quarters before the quarter asked for")
    aggregate: Literal["sum", "quarters_since_last"]


class FeatureSpec(_Strict):
    person_table: str = Field(pattern=IDENTIFIER_PATTERN, description="one row per person: the unit")
    tables: dict[str, TableTime] = Field(default_factory=dict)
    quarterly: dict[Name, Quarterly] = Field(default_factory=dict)
    attributes: dict[Name, Attribute] = Field(default_factory=dict)
    related: dict[Name, Related] = Field(default_factory=dict)
    family: dict[Name, Family] = Field(default_factory=dict)
    derived: dict[Name, Derived] = Field(default_factory=dict)
    windows: dict[Name, Window] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        sections = {"quarterly": self.quarterly, "attributes": self.attributes, "related": self.related,
                    "family": self.family, "derived": self.derived, "windows": self.windows}
        seen: dict[str, str] = {}
        for section, features in sections.items():
            for name in features:
                if name in seen:
                    raise ValueError(f"feature {name} is defined in both {seen[name]} and {section}")
                seen[name] = section
        for name, feature in self.quarterly.items():
            if feature.table not in self.tables:
                raise ValueError(f"quarterly.{name}: table {feature.table} has no entry under tables (its time "
                                 "variable and format)")
        for name, window in self.windows.items():
            if window.of not in self.quarterly:
                raise ValueError(f"windows.{name}: {window.of} is not a quarterly feature")
        for name, derived in self.derived.items():
            source = (derived.bins or derived.codes).of  # type: ignore[union-attr]
            if source not in seen or list(seen).index(source) >= list(seen).index(name):
                raise ValueError(f"derived.{name}: {source} is not a feature defined before it")
        for name, family in self.family.items():
            if family.own not in seen or seen[family.own] == "family":
                raise ValueError(f"family.{name}: own ({family.own}) is not a person feature")
        return self
