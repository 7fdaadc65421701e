"""Checking registers against the data dictionary, and the quality of their identity codes.

Schema drift (a column gone, a type changed) is reported by register and column before any
data is read; identity-code quality is reported as counts by status, never as codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from safepool.errors import SchemaDrift, SourceError
from safepool.governance.context import Governance
from safepool.governance.users import Actor, Role, require_role
from safepool.identity.hetu import classify_array
from safepool.registers.catalogue import Register, Variable
from safepool.registers.credentials import Credentials
from safepool.registers.sources import RegisterReader, Scan, open_register
from safepool.workspace import Workspace


def _accepts(kind: str, arrow_type: pa.DataType) -> bool:
    """Whether a source column of `arrow_type` can be read as a dictionary `kind`."""
    if pa.types.is_null(arrow_type):
        return True  # an all-empty column in a loosely typed source
    text = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type)
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
    register = reader.register
    schema = reader.schema()
    real = {name: schema.field(name).type for name in schema.names}
    problems = []
    if register.identity_column not in real:
        problems.append(f"identity column {register.identity_column} is missing")
    elif not _accepts("string", real[register.identity_column]):
        problems.append(f"identity column {register.identity_column} is {real[register.identity_column]}, not text")
    for variable in variables:
        if variable.column not in real:
            problems.append(f"column {variable.column} (variable {variable.name}) is missing")
        elif not _accepts(variable.type, real[variable.column]):
            problems.append(
                f"column {variable.column} (variable {variable.name}) is {real[variable.column]}, "
                f"the dictionary says {variable.type}"
            )
    return problems


def check_schema(reader: RegisterReader, variables: list[Variable]) -> None:
    problems = schema_problems(reader, variables)
    if problems:
        raise SchemaDrift(reader.register.name, problems)


@dataclass
class RegisterCheck:
    register: str
    kind: str
    rows: int | None = None
    drift: list[str] = field(default_factory=list)
    undocumented_columns: list[str] = field(default_factory=list)
    rows_by_status: dict[str, int] = field(default_factory=dict)
    codes_by_status: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.drift


def check_register(reader: RegisterReader) -> RegisterCheck:
    register: Register = reader.register
    result = RegisterCheck(register=register.name, kind=register.source.kind.value)
    result.drift = schema_problems(reader, register.variables)
    known = {register.identity_column, *register.direct_identifiers, *(v.column for v in register.variables)}
    result.undocumented_columns = [name for name in reader.schema().names if name not in known]
    result.rows = reader.count_rows()
    if register.identity_column in reader.schema().names:
        result.rows_by_status, result.codes_by_status = identity_quality(reader)
    return result


def identity_quality(reader: RegisterReader) -> tuple[dict[str, int], dict[str, int]]:
    """Rows and distinct codes by status; codes are counted, never returned."""
    batches = reader.scan(Scan(columns={"raw": reader.register.identity_column}))
    con = duckdb.connect()
    try:
        con.register("codes", batches)
        with reader.guarded("reading identity codes"):
            per_code = con.sql("SELECT raw, count(*) AS n FROM codes GROUP BY raw").to_arrow_table()
        classified = classify_array(per_code.column("raw").combine_chunks())
        con.register("classified", classified.append_column("n", per_code.column("n").combine_chunks()))
        rows = dict(con.execute("SELECT status, sum(n)::BIGINT FROM classified GROUP BY status ORDER BY status").fetchall())
        codes = dict(con.execute("SELECT status, count(*) FROM classified GROUP BY status ORDER BY status").fetchall())
    finally:
        con.close()
    return rows, codes


def check_registers(workspace: Workspace, names: list[str] | None = None) -> list[RegisterCheck]:
    """Check every register (or those named); a failing source is reported, not raised."""
    catalogue = workspace.catalogue()
    credentials = Credentials.load(workspace)
    results = []
    for register in catalogue.registers:
        if names and register.name not in names:
            continue
        try:
            with open_register(workspace, register, credentials) as reader:
                results.append(check_register(reader))
        except SourceError as exc:
            results.append(RegisterCheck(register=register.name, kind=register.source.kind.value, error=str(exc)))
    return results


def check_registers_as(workspace: Workspace, governance: Governance, actor: Actor,
                       names: list[str] | None = None) -> list[RegisterCheck]:
    """The steward's register check: signed in, role-checked and audited (counts only)."""
    require_role(governance.audit, actor, Role.steward, "registers_check")
    results = check_registers(workspace, names)
    governance.audit.append(actor=actor.name, role=actor.main_role, action="registers_check",
                            target=",".join(r.register for r in results), rows=sum(r.rows or 0 for r in results),
                            outcome="ok" if all(r.ok for r in results) else "error")
    return results
