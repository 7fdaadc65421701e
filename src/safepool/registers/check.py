"""Checking registers against the data dictionary, and the quality of their identity codes.

Schema drift (a column gone, a type changed) is reported by register and column before any
data is read; identity-code quality is reported as counts by status, never as codes. The data
are then checked against the dictionary: categorical values outside their code list and dates
that do not parse in their format are counted by variable, never shown (a value is data).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from threading import BoundedSemaphore

import numpy as np
import pyarrow as pa

from safepool.duckdb_connection import open_duckdb
from safepool.errors import SchemaDrift, SourceError
from safepool.faults import NotFound
from safepool.governance.context import Governance
from safepool.governance.users import Actor, Role, require_role
from safepool.identity.hetu import STATUSES, status_numbers
from safepool.identity_pattern import looks_like_identity_code
from safepool.pool.publish import Scratch
from safepool.registers.catalogue import IDENTIFIER_PATTERN, Register, TimeFormat, Variable
from safepool.registers.credentials import Credentials
from safepool.registers.sources import RegisterReader, Scan, open_register, quote_identifier, quote_literal
from safepool.workspace import Workspace


def _accepts(kind: str, arrow_type: pa.DataType) -> bool:
    """Whether a source column of `arrow_type` can be read as a dictionary `kind`."""
    if pa.types.is_null(arrow_type):
        return True  # an all-empty column in a loosely typed source
    text = _is_text(arrow_type)
    integer = pa.types.is_integer(arrow_type)
    if kind == "string":
        return text
    if kind == "integer":
        return integer
    if kind == "float":
        return integer or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)
    if kind == "date":
        return text or pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type)
    return pa.types.is_boolean(arrow_type) or integer


def schema_problems(reader: RegisterReader, variables: list[Variable]) -> list[str]:
    return [problem for _, problem in _schema_problems(reader, variables)]


def _schema_problems(reader: RegisterReader, variables: list[Variable]) -> list[tuple[str | None, str]]:
    """(variable name or None for the identity column, problem) pairs."""
    register = reader.register
    schema = reader.schema()
    real = {name: schema.field(name).type for name in schema.names}
    problems: list[tuple[str | None, str]] = []
    if register.identity_column not in real:
        problems.append((None, f"identity column {register.identity_column} is missing"))
    elif not _accepts("string", real[register.identity_column]):
        problems.append((None, f"identity column {register.identity_column} is {real[register.identity_column]}, not text"))
    for variable in variables:
        if variable.column not in real:
            problems.append((variable.name, f"column {variable.column} (variable {variable.name}) is missing"))
        elif not _accepts(variable.type, real[variable.column]):
            problems.append((variable.name,
                             f"column {variable.column} (variable {variable.name}) is {real[variable.column]}, "
                             f"the dictionary says {variable.type}"))
    return problems


def check_schema(reader: RegisterReader, variables: list[Variable]) -> None:
    problems = schema_problems(reader, variables)
    if problems:
        raise SchemaDrift(reader.register.name, problems)


@dataclass(frozen=True)
class UnknownCodes:
    """Rows of a categorical variable whose value is not in its code list (counts only)."""

    rows: int
    codes: int  # distinct unknown values

    def describe(self, variable: str) -> str:
        return (f"variable {variable}: {self.rows:,} row{'s' * (self.rows != 1)} with "
                f"{self.codes:,} code{'s' * (self.codes != 1)} not in its code list")


@dataclass
class RegisterCheck:
    register: str
    kind: str
    rows: int | None = None
    drift: list[str] = field(default_factory=list)
    undocumented_columns: list[str] = field(default_factory=list)  # shown only when all are plain names
    unnamed_columns: int = 0  # undocumented columns when any name is not a plain name: counted, never shown
    rows_by_status: dict[str, int] = field(default_factory=dict)
    codes_by_status: dict[str, int] = field(default_factory=dict)
    unknown_codes: dict[str, UnknownCodes] = field(default_factory=dict)  # by variable
    unparsed_dates: dict[str, int] = field(default_factory=dict)  # rows by variable
    date_formats: dict[str, str] = field(default_factory=dict)  # variable -> the format its dates are read in
    error: str | None = None

    @property
    def dictionary_problems(self) -> list[str]:
        """The data's misfits with the dictionary, by variable; counts, never values."""
        return ([unknown.describe(name) for name, unknown in self.unknown_codes.items()]
                + [f"variable {name}: {rows:,} row{'s' * (rows != 1)} not a date written as "
                   f"{self.date_formats.get(name, 'its format')}" for name, rows in self.unparsed_dates.items()])

    @property
    def header_problem(self) -> list[str]:
        if not self.unnamed_columns:
            return []
        many = self.unnamed_columns != 1
        return [f"{self.unnamed_columns} undocumented column{'s' * many}, not all with plain column names, "
                "so none is named: the header line may be missing (a line of data read as the header), or a "
                "broken line may have confused the reader"]

    @property
    def problems(self) -> list[str]:
        """Everything that fails the check, in words (never a value from the data)."""
        return ([self.error] if self.error else []) + self.header_problem + self.drift + self.dictionary_problems

    @property
    def ok(self) -> bool:
        return not self.problems


def check_register(reader: RegisterReader, spill: Path) -> RegisterCheck:
    """One register against its dictionary; the engine spills what does not fit CHECK_MEMORY to
    `spill` (a folder in the steward zone: the counts it spills hold identity codes)."""
    register: Register = reader.register
    result = RegisterCheck(register=register.name, kind=register.source.kind.value)
    drift = _schema_problems(reader, register.variables)
    result.drift = [problem for _, problem in drift]
    known = {register.identity_column, *register.direct_identifiers, *(v.column for v in register.variables)}
    undocumented = [name for name in reader.schema().names if name not in known]
    if all(plain_column_name(name) for name in undocumented):
        result.undocumented_columns = undocumented
    else:  # a header that is not one (a line of data?): none of its names is shown
        result.unnamed_columns = len(undocumented)
    drifted = {name for name, _ in drift}
    with_identity = register.identity_column in reader.schema().names
    with closing(ValueProfile(reader, [v for v in register.variables if v.name not in drifted],
                              with_identity, spill)) as profile:
        result.rows = profile.rows
        if with_identity:
            result.rows_by_status, result.codes_by_status = profile.identity_quality()
        result.unknown_codes, result.unparsed_dates, result.date_formats = profile.dictionary_fit()
    return result


# A date written as text or an integer, as a full match of its text; a DATE stored as text must
# be an ISO date (SQLite has no date type).
_DATE_PATTERNS = {
    TimeFormat.yyyyq: "[0-9]{4}Q[1-4]",
    TimeFormat.yyyymm: "[0-9]{4}(0[1-9]|1[0-2])",
    TimeFormat.year: "[0-9]{4}",
}


def _checked_dates(real: dict[str, pa.DataType], variables: list[Variable]) -> list[tuple[Variable, str, str]]:
    """The date variables written as text or integer: (variable, the format shown, SQL that is
    true when its text, %s, parses)."""
    dates: list[tuple[Variable, str, str]] = []
    for variable in variables:
        if variable.level != "date" or variable.column not in real:
            continue
        if variable.date_format in _DATE_PATTERNS:
            pattern = quote_literal(_DATE_PATTERNS[variable.date_format])
            dates.append((variable, variable.date_format.value, f"regexp_full_match(%s, {pattern})"))
        elif _is_text(real[variable.column]):  # a DATE kept as text: an ISO date
            dates.append((variable, "yyyy-mm-dd", "try_strptime(%s, '%%Y-%%m-%%d') IS NOT NULL"))
    return dates


class ValueProfile:
    """One scan of a register, counting its rows, the rows of each distinct identity code, and the
    rows of each distinct value of its categorical variables and of its dates written as text or
    integer (GROUPING SETS: one pass over the source whatever the number of checks).

    The counts stay in DuckDB: the checks against the dictionary are answered there, so no value
    of the data reaches Python; only the distinct identity codes do, to be classified (counted
    by status, never returned)."""

    def __init__(self, reader: RegisterReader, variables: list[Variable], with_identity: bool, spill: Path) -> None:
        schema = reader.schema()
        real = {name: schema.field(name).type for name in schema.names}
        self.categorical = [v for v in variables if v.level == "categorical" and v.codes]
        self.dates = _checked_dates(real, variables)
        self._sets = ((["raw"] if with_identity else []) + [f"c{i}" for i in range(len(self.categorical))]
                      + [f"d{i}" for i in range(len(self.dates))])
        self._con = open_duckdb(config={"memory_limit": CHECK_MEMORY, "temp_directory": str(spill), "threads": 1})
        try:
            if self._sets:
                self._count(reader, Scan(columns=dict(zip(self._sets, self._columns(reader)))))
            else:  # nothing to count but the rows
                self.rows = reader.count_rows()
        except BaseException:
            self._con.close()
            raise

    def _columns(self, reader: RegisterReader) -> list[str]:
        """The source column of each grouping set, in the order of the sets."""
        identity = [reader.register.identity_column] if "raw" in self._sets else []
        return identity + [v.column for v in self.categorical] + [v.column for v, _, _ in self.dates]

    def _count(self, reader: RegisterReader, scan: Scan) -> None:
        """Rows by distinct value of each column as the source types it: cheaper than grouping
        their text, which dictionary_fit makes of the distinct values only."""
        sets = ", ".join(self._sets)
        grouping = ", ".join(["()"] + [f"({name})" for name in self._sets])
        reader.attach(self._con, "source_rows", scan)
        with reader.guarded("checking identity codes and values against the data dictionary"):
            self._con.execute(f"CREATE TEMP TABLE counted AS SELECT GROUPING({sets}) AS g, {sets}, count(*) AS n "
                              f"FROM source_rows GROUP BY GROUPING SETS ({grouping})")
        [(total,)] = self._con.execute(f"SELECT n FROM counted WHERE g = {self._grouped_by(None)}").fetchall()
        self.rows = int(total)

    def _grouped_by(self, name: str | None) -> int:
        """The GROUPING() id of the set grouped by `name` (None: the set of all rows): a bit per
        set name, set where the name is not grouped on, the first name the highest bit."""
        width = len(self._sets)
        return sum(1 << (width - 1 - i) for i, other in enumerate(self._sets) if other != name)

    def identity_quality(self) -> tuple[dict[str, int], dict[str, int]]:
        """Rows and distinct codes by status; codes are counted, never returned."""
        per_code = self._con.sql(f"SELECT raw, n FROM counted WHERE g = {self._grouped_by('raw')}").to_arrow_table()
        statuses = status_numbers(per_code.column("raw").combine_chunks())
        # float sums of row counts are exact below 2**53 rows
        rows = np.bincount(statuses, weights=per_code.column("n").to_numpy(), minlength=len(STATUSES))
        codes = np.bincount(statuses, minlength=len(STATUSES))
        found = sorted((STATUSES[number].value, number) for number in np.flatnonzero(codes))
        return {status: int(rows[number]) for status, number in found}, {status: int(codes[number])
                                                                          for status, number in found}

    def dictionary_fit(self) -> tuple[dict[str, UnknownCodes], dict[str, int], dict[str, str]]:
        """Rows (and distinct values) outside each categorical variable's code list, and rows of
        each date variable that do not parse in its format; only variables with problems are in
        the first two. Also the format each checked date variable was read in."""
        aggregates: list[str] = []
        for i, variable in enumerate(self.categorical):
            # an integer 0/1 source reads as false/true, as the pool casts it
            value = f"CAST(c{i} AS BOOLEAN)" if variable.type == "boolean" else f"c{i}"
            text = f"CAST({value} AS VARCHAR)"
            known = ", ".join(quote_literal(code) for code in variable.codes or {})
            unknown = f"g = {self._grouped_by(f'c{i}')} AND {text} IS NOT NULL AND {text} NOT IN ({known})"
            aggregates += [f"coalesce(sum(n) FILTER (WHERE {unknown}), 0)",
                           f"count(DISTINCT {text}) FILTER (WHERE {unknown})"]
        for i, (_, _, condition) in enumerate(self.dates):
            text = f"CAST(d{i} AS VARCHAR)"
            aggregates.append(f"coalesce(sum(n) FILTER (WHERE g = {self._grouped_by(f'd{i}')} AND {text} IS NOT NULL "
                              f"AND NOT coalesce({condition % text}, false)), 0)")
        if not aggregates:
            return {}, {}, {}
        # only the sets of the variables: not the rows of every distinct identity code
        checked = ", ".join(str(self._grouped_by(name)) for name in self._sets if name != "raw")
        [counts] = self._con.execute(f"SELECT {', '.join(aggregates)} FROM counted WHERE g IN ({checked})").fetchall()
        unknown_codes = {}
        for i, variable in enumerate(self.categorical):
            rows, distinct = int(counts[2 * i]), int(counts[2 * i + 1])
            if rows:
                unknown_codes[variable.name] = UnknownCodes(rows=rows, codes=distinct)
        offset = 2 * len(self.categorical)
        unparsed = {variable.name: int(counts[offset + i]) for i, (variable, _, _) in enumerate(self.dates)
                    if counts[offset + i]}
        formats = {variable.name: shown for variable, shown, _ in self.dates}
        return unknown_codes, unparsed, formats

    def close(self) -> None:
        self._con.close()


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type)


_PLAIN_NAME = re.compile(IDENTIFIER_PATTERN)


def plain_column_name(name: str) -> bool:
    """Whether a column name read from a source may be shown: a plain identifier, as every name in
    the catalogue is, that does not look like an identity code. A CSV file whose header line is
    missing has a line of data for its names (an identity code, a date, a name)."""
    return bool(_PLAIN_NAME.match(name)) and len(name) <= 63 and not looks_like_identity_code(name)


# DuckDB's memory for one register's check, as the pool build has its own: the largest synthetic
# register at 300,000 persons (5.6 million rows of CSV) took 210 MB without it, 125 MB with it, in the
# same time; the demo checks registers while synthesis, at its peak memory, makes the others. One
# engine thread per check: registers are read CHECKS_AT_ONCE at a time, each keeping one core busy.
CHECK_MEMORY = "128MB"
CHECKS_AT_ONCE = 2
# Registers read at once in this process, however many stewards check theirs at the same time:
# each read keeps a core busy (DuckDB and the drivers work outside the GIL), and one more than
# there are cores only adds memory.
_READING = BoundedSemaphore(CHECKS_AT_ONCE)


def check_registers(workspace: Workspace, names: list[str] | None = None) -> list[RegisterCheck]:
    """Check every register (or those named); a failing source is reported, not raised. A name
    that is not in the catalogue is NotFound."""
    catalogue = workspace.catalogue()
    unknown = sorted(set(names or ()) - {register.name for register in catalogue.registers})
    if unknown:
        raise NotFound(f"no register {', '.join(unknown)} in the catalogue; `safepool registers list` names them")
    credentials = Credentials.load(workspace)
    chosen = [register for register in catalogue.registers if not names or register.name in names]

    def check(register: Register) -> RegisterCheck:
        try:
            with _READING, open_register(workspace, register, credentials) as reader, \
                    Scratch(workspace.steward_dir / "tmp", f"check-{register.name}") as spill:
                return check_register(reader, spill.path)
        except SourceError as exc:
            return RegisterCheck(register=register.name, kind=register.source.kind.value, error=str(exc))

    with ThreadPoolExecutor(max_workers=CHECKS_AT_ONCE) as pool:
        return list(pool.map(check, chosen))


def check_registers_as(workspace: Workspace, governance: Governance, actor: Actor,
                       names: list[str] | None = None) -> list[RegisterCheck]:
    """A register holder's steward checks its own holders' registers (all of them, or those named):
    signed in, role-checked, held to its holders, and audited (counts only)."""
    require_role(governance.audit, actor, Role.steward, "registers_check")
    own = own_registers(workspace, governance, actor)
    if names:  # a name the catalogue does not have is NotFound (check_registers), not another holder's
        known = {register.name for register in workspace.catalogue().registers}
        governance.holders.require_holders(actor, "registers_check", [n for n in dict.fromkeys(names) if n in known])
    elif not own:
        from safepool.governance.access_policy import steward_refusal
        from safepool.governance.users import refuse

        raise refuse(governance.audit, actor.name, actor.main_role, "registers_check",
                     steward_refusal(actor.name, "registers_check"))
    results = check_registers(workspace, names or own)
    # the audit record names registers and variables with counts, never a value
    misfits = {r.register: {**{name: {"rows": u.rows, "codes": u.codes} for name, u in r.unknown_codes.items()},
                            **{name: {"unparsed_date_rows": rows} for name, rows in r.unparsed_dates.items()}}
               for r in results if r.unknown_codes or r.unparsed_dates}
    governance.audit.append(actor=actor.name, role=actor.main_role, action="registers_check",
                            target=",".join(r.register for r in results), rows=sum(r.rows or 0 for r in results),
                            outcome="ok" if all(r.ok for r in results) else "error",
                            detail={"dictionary_misfits": misfits} if misfits else None)
    return results


def own_registers(workspace: Workspace, governance: Governance, actor: Actor) -> list[str]:
    """The registers of the catalogue whose holders `actor` stewards, in catalogue order."""
    holders = governance.holders.scope(actor.name).holders if actor.has(Role.steward) else frozenset()
    return [register.name for register in workspace.catalogue().registers if register.holder in holders]
