"""The scope of a pool: which registers, which variables, which quarters, under which permit.

A scope is the part of an approved permit that the pool builder enforces (see
`build_for_permit`). Anything outside the catalogue is refused with a message that names it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from safepool.faults import Invalid
from safepool.governance.form import TimeFrame
from safepool.registers.catalogue import Catalogue, Register, Strict, TimeFormat, Variable
from safepool.registers.sources import quote_identifier, quote_literal


class ScopeError(Invalid):
    pass


class Window(TimeFrame):
    """The quarters in scope: the permit's time frame, as the pool builder applies it."""

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
    # register -> variables its holder withheld from the permit (safepool.governance.holders)
    withheld: dict[str, list[str]] = Field(default_factory=dict)

    def resolve(self, catalogue: Catalogue) -> list[tuple[Register, list[Variable]]]:
        """Pair each register in scope with its variables (less those withheld); refuse anything the
        catalogue lacks."""
        problems: list[str] = []
        resolved: list[tuple[Register, list[Variable]]] = []
        for name, wanted in self.registers.items():
            try:
                register = catalogue.register(name)
            except KeyError:
                problems.append(f"register {name} is not in the catalogue")
                continue
            withheld = set(self.withheld.get(name, ()))
            if wanted == "*":
                resolved.append((register, [v for v in register.variables if v.name not in withheld]))
                continue
            unknown = [v for v in wanted if v not in {x.name for x in register.variables}]
            problems.extend(f"register {name} has no variable {v}" for v in unknown)
            resolved.append((register, [register.variable(v) for v in wanted if v not in unknown and v not in withheld]))
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
