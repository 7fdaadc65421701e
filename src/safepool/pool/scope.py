"""The scope of a pool: which registers, which variables, which quarters, under which permit.

Until the governance layer issues permits, a scope is written as a YAML file; it is exactly the
part of a permit that the pool builder enforces. Anything outside the catalogue is refused with
a message that names it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from safepool.errors import SafepoolError
from safepool.registers.catalogue import Catalogue, Register, Strict, TimeFormat, Variable
from safepool.registers.sources import quote_identifier, quote_literal

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


class ScopeError(SafepoolError):
    pass


def parse_quarter(text: str) -> tuple[int, int]:
    match = _QUARTER.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a quarter like 2019Q3")
    return int(match.group(1)), int(match.group(2))


class Window(Strict):
    start: str = Field(description="first quarter, e.g. 2009Q1")
    end: str = Field(description="last quarter, e.g. 2024Q4")

    @field_validator("start", "end")
    @classmethod
    def _quarter(cls, value: str) -> str:
        parse_quarter(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if parse_quarter(self.start) > parse_quarter(self.end):
            raise ValueError(f"window starts ({self.start}) after it ends ({self.end})")
        return self

    def first_day(self) -> date:
        year, quarter = parse_quarter(self.start)
        return date(year, 3 * quarter - 2, 1)

    def last_day(self) -> date:
        year, quarter = parse_quarter(self.end)
        following = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return following - timedelta(days=1)

    def bounds(self, fmt: TimeFormat) -> tuple[str, str]:
        """The window's first and last value as SQL literals in a register's own time format."""
        first, last = self.first_day(), self.last_day()
        if fmt == TimeFormat.date:
            return quote_literal(first.isoformat()), quote_literal(last.isoformat())
        if fmt == TimeFormat.yyyymm:
            return str(first.year * 100 + first.month), str(last.year * 100 + last.month)
        if fmt == TimeFormat.yyyyq:
            return quote_literal(self.start), quote_literal(self.end)
        return str(first.year), str(last.year)


class Scope(Strict):
    permit: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    window: Window
    registers: dict[str, list[str] | Literal["*"]]

    def resolve(self, catalogue: Catalogue) -> list[tuple[Register, list[Variable]]]:
        """Pair each register in scope with its variables; refuse anything the catalogue lacks."""
        problems: list[str] = []
        resolved: list[tuple[Register, list[Variable]]] = []
        for name, wanted in self.registers.items():
            try:
                register = catalogue.register(name)
            except KeyError:
                problems.append(f"register {name} is not in the catalogue")
                continue
            if wanted == "*":
                resolved.append((register, list(register.variables)))
                continue
            unknown = [v for v in wanted if v not in {x.name for x in register.variables}]
            problems.extend(f"register {name} has no variable {v}" for v in unknown)
            resolved.append((register, [register.variable(v) for v in wanted if v not in unknown]))
        if problems:
            raise ScopeError("scope refused: " + "; ".join(problems))
        return resolved


def time_predicate(register: Register, window: Window) -> str | None:
    """A WHERE clause in the source's own terms that keeps only rows touching the window."""
    if register.time is None:
        return None
    first, last = window.bounds(register.time.format)
    start = quote_identifier(register.variable(register.time.variable).column)
    if register.time.end_variable is None:
        return f"{start} BETWEEN {first} AND {last}"
    end = quote_identifier(register.variable(register.time.end_variable).column)
    return f"{start} <= {last} AND ({end} IS NULL OR {end} >= {first})"
