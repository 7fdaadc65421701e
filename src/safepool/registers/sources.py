"""Reading registers in place: one reader per kind of source, each yielding Arrow batches.

Files (Parquet, CSV) are read by DuckDB, databases (SQLite, PostgreSQL) by their ADBC drivers;
all of them answer a scoped query (only the columns asked for, only the time window) as an
Arrow RecordBatchReader so that the pool builder streams every kind the same way and no
register is ever held whole in Python objects. Every failure becomes a SourceError that names
the register, the file, the line number and the field; the driver's message is never shown,
because it can quote a source line or a value (an identity code in any spelling, a name).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import adbc_driver_manager
import duckdb
import pyarrow as pa

from safepool.duckdb_connection import open_duckdb, quote_literal
from safepool.errors import SourceError
from safepool.registers.catalogue import Register, SourceKind
from safepool.registers.credentials import Credentials
from safepool.workspace import Workspace

BATCH_ROWS = 256_000
DRIVER_ERRORS = (duckdb.Error, adbc_driver_manager.Error, pa.ArrowException, OSError, ValueError)


@dataclass(frozen=True)
class Scan:
    """A scoped read: `columns` maps output names to source columns; `where` is a predicate."""

    columns: dict[str, str]
    where: str | None = None

    def sql(self, relation: str) -> str:
        select = ", ".join(f"{quote_identifier(col)} AS {quote_identifier(name)}" for name, col in self.columns.items())
        where = f" WHERE {self.where}" if self.where else ""
        return f"SELECT {select} FROM {relation}{where}"


def known_fields(register: Register) -> set[str]:
    """The column names a source error may name: the catalogue's, never one read from the data."""
    return ({register.identity_column, *register.direct_identifiers}
            | {v.column for v in register.variables} | {v.name for v in register.variables})


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RegisterReader(ABC):
    """A connection to one register's source; use as a context manager."""

    shown = "its source"  # the file or table, as errors name it

    def __init__(self, register: Register) -> None:
        self.register = register

    def __enter__(self) -> RegisterReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def schema(self) -> pa.Schema:
        """The source's real columns and their types, as Arrow sees them."""

    @abstractmethod
    def scan(self, scan: Scan) -> pa.RecordBatchReader:
        """Start the scoped query and return its batches; reading them may still fail."""

    def attach(self, con: duckdb.DuckDBPyConnection, name: str, scan: Scan) -> None:
        """Make the scoped rows the relation `name` of a DuckDB connection, to be read once."""
        con.register(name, self.scan(scan))

    @abstractmethod
    def count_rows(self) -> int:
        """All rows of the source, whatever the scope."""

    def close(self) -> None:
        return None

    def fail(self, problem: str, cause: BaseException | None = None) -> SourceError:
        return SourceError(self.register.name, problem, cause, fields=known_fields(self.register), source=self.shown)

    @contextmanager
    def guarded(self, doing: str) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except DRIVER_ERRORS as exc:
            raise self.fail(f"{doing} failed", exc) from None


class FileReader(RegisterReader):
    """Parquet and CSV files, read by an embedded DuckDB."""

    def __init__(self, register: Register, path: Path) -> None:
        super().__init__(register)
        self.path = path
        kind = register.source.kind
        self.shown = f"{kind} file {path.name}"
        if not path.is_file():
            raise self.fail(f"{kind} source {path} does not exist")
        self._con = open_duckdb()
        if kind == SourceKind.parquet:
            self._relation = f"read_parquet({quote_literal(str(path))})"
        else:
            self._relation = f"read_csv({quote_literal(str(path))}, header = true, auto_detect = true)"
        with self.guarded(f"opening {kind} file {path.name}"):
            self._schema = self._con.sql(f"SELECT * FROM {self._relation} LIMIT 0").to_arrow_table().schema

    def schema(self) -> pa.Schema:
        return self._schema

    def scan(self, scan: Scan) -> pa.RecordBatchReader:
        with self.guarded(f"reading {self.path.name}"):
            return self._con.sql(scan.sql(self._relation)).to_arrow_reader(BATCH_ROWS)

    def attach(self, con: duckdb.DuckDBPyConnection, name: str, scan: Scan) -> None:
        """A view over the file: DuckDB reads it in the query, with no Arrow batches in between."""
        with self.guarded(f"reading {self.path.name}"):
            con.execute(f"CREATE TEMP VIEW {quote_identifier(name)} AS {scan.sql(self._relation)}")

    def count_rows(self) -> int:
        with self.guarded(f"counting rows of {self.path.name}"):
            return int(self._con.sql(f"SELECT count(*) FROM {self._relation}").fetchall()[0][0])

    def close(self) -> None:
        self._con.close()


class DatabaseReader(RegisterReader):
    """SQLite and PostgreSQL tables, read through ADBC."""

    def __init__(self, register: Register, uri: str, shown: str) -> None:
        super().__init__(register)
        self.shown = shown
        self.table = register.source.table or ""
        with self.guarded(f"connecting to {shown}"):
            if register.source.kind == SourceKind.sqlite:
                import adbc_driver_sqlite.dbapi as driver
            else:
                import adbc_driver_postgresql.dbapi as driver
            self._con: Any = driver.connect(uri)
        try:
            with self.guarded(f"reading the schema of table {self.table} in {shown}"):
                schema_name, _, table_name = self.table.rpartition(".")
                self._schema = self._con.adbc_get_table_schema(table_name, db_schema_filter=schema_name or None)
        except SourceError:
            self.close()
            raise

    def schema(self) -> pa.Schema:
        return self._schema

    def _relation(self) -> str:
        return ".".join(quote_identifier(part) for part in self.table.split("."))

    def scan(self, scan: Scan) -> pa.RecordBatchReader:
        with self.guarded(f"querying table {self.table} in {self.shown}"):
            self._cursor = self._con.cursor()  # the stream lives only as long as its cursor
            if self.register.source.kind == SourceKind.sqlite:  # its default, 1,024 rows, costs a quarter more CPU
                self._cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
            self._cursor.execute(scan.sql(self._relation()))
            return self._cursor.fetch_record_batch()

    def count_rows(self) -> int:
        with self.guarded(f"counting rows of {self.table} in {self.shown}"):
            cursor = self._con.cursor()
            cursor.execute(f"SELECT count(*) FROM {self._relation()}")
            return int(cursor.fetchone()[0])

    def close(self) -> None:
        try:
            self._con.close()
        except Exception:  # a connection that already broke has nothing left to release
            pass


def open_register(workspace: Workspace, register: Register, credentials: Credentials | None = None) -> RegisterReader:
    """Connect to a register's source, whatever its kind."""
    source = register.source
    if source.kind in (SourceKind.parquet, SourceKind.csv):
        return FileReader(register, workspace.source_path(source))
    if source.kind == SourceKind.sqlite:
        path = workspace.source_path(source)
        if not path.is_file():
            raise SourceError(register.name, f"sqlite source {path} does not exist")
        return DatabaseReader(register, f"file:{path}?mode=ro", f"sqlite file {path.name}")
    credentials = credentials or Credentials.load(workspace)
    password = credentials.password_for(register.name)
    return DatabaseReader(register, _with_password(source.location, password), f"postgresql {_shown(source.location)}")


def _with_password(url: str, password: str | None) -> str:
    if password is None:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _shown(url: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}{parts.path}"
