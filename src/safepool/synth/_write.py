"""write_workspace(): the synthetic registers as sources in a workspace, the truth to the steward."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from safepool.errors import SafepoolError, SourceError
from safepool.faults import Invalid
from safepool.registers.catalogue import Register, SourceKind
from safepool.synth._catalogue import register_entries
from safepool.synth._generate import SyntheticEspoo
from safepool.synth.load import WRITTEN
from safepool.workspace import Workspace

WRITERS = 2
WAITING = 1  # registers made but not yet being written: more wait for a writer (memory)


class RegisterWriter:
    """Writes each register as soon as it is made, two files at a time (the Parquet, CSV, SQLite
    and PostgreSQL writers release the GIL), so that writing overlaps making the next registers
    and no register is held longer than its writing takes.

    Writes to one file or database run one after another in the order given; a SQLite file gets
    its tables through one temporary file, renamed into place after its last table, so the same
    seed gives the same bytes. At most WRITERS + WAITING registers are held at a time: write()
    waits for a writer beyond that. With `postgres_url` (no password in it; the password comes
    separately) the Kela benefits and TE services registers are loaded into that database instead
    of CSV and SQLite files."""

    def __init__(self, workspace: Workspace, postgres_url: str | None = None, postgres_password: str | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        if postgres_url is not None and urlsplit(postgres_url).password is not None:
            raise Invalid("the PostgreSQL URL must not carry a password; pass it separately")
        self.workspace = workspace
        self.registers = register_entries(postgres_url)
        self._postgres = (postgres_url, postgres_password)
        self._say = progress or (lambda _label: None)
        self._by_name = {register.name: register for register in self.registers}
        self._sqlite: dict[Path, list[str]] = {}  # SQLite file -> its registers, in catalogue order
        for register in self.registers:
            if register.source.kind == SourceKind.sqlite:
                self._sqlite.setdefault(workspace.source_path(register.source), []).append(register.name)
        self._pool = ThreadPoolExecutor(max_workers=WRITERS)
        self._last: dict[str, Future[None]] = {}  # file or database -> its last write submitted
        self._held = threading.BoundedSemaphore(WRITERS + WAITING)
        self._written: list[str] = []
        # the catalogue first, as a holder describes its data before delivering them: permits can be
        # asked for while the data are made (a register not yet written is reported missing by its check)
        workspace.save_registers(self.registers)

    def write(self, name: str, table: pa.Table) -> None:
        """Queue the register's table for writing to its source; a SQLite file's registers come
        in catalogue order."""
        register = self._by_name.get(name)
        if register is None:
            raise RuntimeError(f"the catalogue has no register {name}")
        source = register.source
        if source.kind == SourceKind.postgresql:
            url, password = self._postgres
            self._after("postgresql", lambda: _load_postgres(url, password, register, table), [name])
        elif source.kind == SourceKind.sqlite:
            path = self.workspace.source_path(source)
            tables = self._sqlite[path]
            done = [n for n in tables if n in self._written]
            if tables[len(done)] != name:
                raise RuntimeError(f"register {name} comes after {tables[len(done)]} in its SQLite file")
            first, last = not done, len(done) == len(tables) - 1
            self._after(str(path), lambda: _sqlite_part(path, source.table, table, first=first, last=last),
                        tables if last else [])  # the file's registers are in place once its last is
        elif source.kind == SourceKind.parquet:
            # no dictionary for the near-unique identifying columns: building it costs, saves nothing
            unique = {register.identity_column, *register.direct_identifiers}
            coded = [column for column in table.column_names if column not in unique]
            self._after(str(self.workspace.source_path(source)),
                        lambda: _atomic(self.workspace.source_path(source),
                                        lambda tmp: pq.write_table(table, tmp, use_dictionary=coded)), [name])
        else:
            self._after(str(self.workspace.source_path(source)),
                        lambda: _atomic(self.workspace.source_path(source), lambda tmp: pcsv.write_csv(table, tmp)),
                        [name])
        self._written.append(name)

    def _after(self, key: str, write: Callable[[], object], ready: list[str]) -> None:
        """Run `write` on the pool once the previous write to the same file or database is done;
        then say that the registers `ready` are in place (WRITTEN), so that they can be checked
        while the others are made."""
        previous = self._last.get(key)

        def run() -> None:
            try:
                if previous is not None:
                    previous.result()
                write()
                for name in ready:
                    self._say(WRITTEN + name)
            finally:
                self._held.release()

        self._held.acquire()
        self._last[key] = self._pool.submit(run)

    def finish(self, synthetic: SyntheticEspoo) -> list[Register]:
        """Wait for every register, then write the truth under steward/truth."""
        self._pool.shutdown(wait=True)
        for done in self._last.values():
            done.result()
        missing = [r.name for r in self.registers if r.name not in self._written]
        if missing:
            raise RuntimeError(f"the synthetic data has no table for {', '.join(missing)}")
        self._say("writing the truth")
        truth_dir = self.workspace.steward_dir / "truth"
        truth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = json.dumps(synthetic.truth, indent=2, ensure_ascii=False, allow_nan=False)
        _atomic(truth_dir / "truth.json", lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
        _atomic(truth_dir / "faults.parquet", lambda tmp: pq.write_table(synthetic.faults, tmp))
        if synthetic.planted_groups is not None:
            _atomic(truth_dir / "customer_groups.parquet", lambda tmp: pq.write_table(synthetic.planted_groups, tmp))
        return self.registers

    def abandon(self) -> None:
        """After a failure: let the writes under way end, start no other, and leave no temporary file."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for path in self._sqlite:
            _tmp(path).unlink(missing_ok=True)


def write_workspace(workspace: Workspace, synthetic: SyntheticEspoo, postgres_url: str | None = None,
                    postgres_password: str | None = None,
                    progress: Callable[[str], None] | None = None) -> list[Register]:
    """Write every register of a generated Espoo as a source, the truth under steward/truth, and
    the catalogue (RegisterWriter)."""
    writer = RegisterWriter(workspace, postgres_url, postgres_password, progress)
    try:
        for register in writer.registers:
            if register.name in synthetic.tables:
                writer.write(register.name, synthetic.tables[register.name])
        return writer.finish(synthetic)
    except BaseException:
        writer.abandon()
        raise


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary name beside the target and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.unlink(missing_ok=True)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sqlite_part(path: Path, name: str | None, table: pa.Table, *, first: bool, last: bool) -> None:
    """One table of a SQLite file, into its temporary file (new for the first table), renamed into
    place after the last."""
    import adbc_driver_sqlite.dbapi as sqlite_dbapi

    tmp = _tmp(path)
    if first:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
    try:
        with sqlite_dbapi.connect(str(tmp)) as conn:
            with conn.cursor() as cursor:
                cursor.adbc_ingest(name, dates_as_text(table), mode="replace")
            conn.commit()
        if last:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dates_as_text(table: pa.Table) -> pa.Table:
    """Date columns as their ISO text. The SQLite driver stores a date as this text in a TEXT column
    anyway, but converts it value by value: cast in bulk first, the ingest takes half the CPU (the
    TE file at 300,000 persons 2.0 -> 1.0 s) and the file's bytes are the same."""
    for i, field in enumerate(table.schema):
        if pa.types.is_date32(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), pa.string()))
    return table


def postgres_uri(url: str, password: str | None) -> str:
    """The connection URI with the password put in (never stored, never shown)."""
    if password is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def _load_postgres(url: str | None, password: str | None, register: Register, table: pa.Table) -> None:
    import adbc_driver_postgresql.dbapi as pg_dbapi

    assert url is not None
    try:
        with pg_dbapi.connect(postgres_uri(url, password)) as conn:
            with conn.cursor() as cursor:
                cursor.adbc_ingest(register.source.table, table, mode="replace")
            conn.commit()
    except SafepoolError:
        raise
    except Exception as exc:  # driver errors may quote the URI or a row: only their kind is shown
        raise SourceError(register.name, "could not load into PostgreSQL", exc) from None
