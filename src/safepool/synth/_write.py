"""write_workspace(): the synthetic registers as sources in a workspace, the truth to the steward."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from safepool.errors import SafepoolError, SourceError
from safepool.faults import Invalid
from safepool.registers.catalogue import Register, SourceKind
from safepool.synth._catalogue import register_entries
from safepool.synth._generate import SyntheticEspoo
from safepool.workspace import Workspace

WRITERS = 2


def write_workspace(workspace: Workspace, synthetic: SyntheticEspoo, postgres_url: str | None = None,
                    postgres_password: str | None = None,
                    progress: Callable[[str], None] | None = None) -> list[Register]:
    """Write every register as a source, the truth under steward/truth, and the catalogue.

    With `postgres_url` (no password in it; the password comes separately) the Kela benefits and
    TE services registers are loaded into that database instead of CSV and SQLite files."""
    say = progress or (lambda _label: None)
    if postgres_url is not None and urlsplit(postgres_url).password is not None:
        raise Invalid("the PostgreSQL URL must not carry a password; pass it separately")
    registers = register_entries(postgres_url)
    missing = [r.name for r in registers if r.name not in synthetic.tables]
    if missing:
        raise RuntimeError(f"the synthetic data has no table for {', '.join(missing)}")

    sqlite_files: dict[str, list[Register]] = {}
    postgres: list[Register] = []
    writes: list[tuple[str, Path, Callable[[Path], object]]] = []  # what is written, where, how
    for register in registers:
        source = register.source
        table = synthetic.tables[register.name]
        if source.kind == SourceKind.parquet:
            writes.append((register.name, workspace.source_path(source), lambda tmp, t=table: pq.write_table(t, tmp)))
        elif source.kind == SourceKind.csv:
            writes.append((register.name, workspace.source_path(source), lambda tmp, t=table: pcsv.write_csv(t, tmp)))
        elif source.kind == SourceKind.sqlite:
            sqlite_files.setdefault(source.location, []).append(register)
        else:
            postgres.append(register)
    for location, regs in sqlite_files.items():
        writes.append((", ".join(r.name for r in regs), workspace.source_path(regs[0].source),
                       lambda tmp, rs=regs: _write_sqlite(tmp, [(r.source.table, synthetic.tables[r.name])
                                                                for r in rs])))
    # each file on its own: the writers release the GIL, so two at a time use both cores
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        for done in [pool.submit(_atomic, path, write) for _, path, write in writes]:
            done.result()
    say(f"written {', '.join(name for name, _, _ in writes)}")
    if postgres:
        say(f"loading {', '.join(r.name for r in postgres)} into PostgreSQL")
        _load_postgres(postgres_url, postgres_password,
                       [(r, synthetic.tables[r.name]) for r in postgres])

    say("writing the truth")
    truth_dir = workspace.steward_dir / "truth"
    truth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = json.dumps(synthetic.truth, indent=2, ensure_ascii=False, allow_nan=False)
    _atomic(truth_dir / "truth.json", lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    _atomic(truth_dir / "faults.parquet", lambda tmp: pq.write_table(synthetic.faults, tmp))
    if synthetic.planted_groups is not None:
        _atomic(truth_dir / "customer_groups.parquet", lambda tmp: pq.write_table(synthetic.planted_groups, tmp))
    workspace.save_registers(registers)
    return registers


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary name beside the target and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_sqlite(path: Path, tables: list[tuple[str | None, pa.Table]]) -> None:
    import adbc_driver_sqlite.dbapi as sqlite_dbapi

    with sqlite_dbapi.connect(str(path)) as conn:
        with conn.cursor() as cursor:
            for name, table in tables:
                cursor.adbc_ingest(name, table, mode="replace")
        conn.commit()


def postgres_uri(url: str, password: str | None) -> str:
    """The connection URI with the password put in (never stored, never shown)."""
    if password is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def _load_postgres(url: str | None, password: str | None, items: list[tuple[Register, pa.Table]]) -> None:
    import adbc_driver_postgresql.dbapi as pg_dbapi

    assert url is not None
    current = items[0][0].name
    try:
        with pg_dbapi.connect(postgres_uri(url, password)) as conn:
            with conn.cursor() as cursor:
                for register, table in items:
                    current = register.name
                    cursor.adbc_ingest(register.source.table, table, mode="replace")
            conn.commit()
    except SafepoolError:
        raise
    except Exception as exc:  # driver errors may quote the URI or a row: only their kind is shown
        raise SourceError(current, "could not load into PostgreSQL", exc) from None
