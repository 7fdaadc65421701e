"""The analyst's side of the pool: read-only access to pseudonymised tables.

Nothing here imports the steward zone (identity, registers' credentials, key store); a test
walks the imports to prove it.

A checked query opens the pool for a moment, many times a session: `analysis_connection` keeps
the connection it used open afterwards (a few per process, idle, with nothing of the query left
in it) and hands it to the next query of the same pool file, checked and logged like any access.
Opening the file costs more than a small query. A pool published again (a new file behind the
permit's link) or asked for with other limits is opened afresh, and an idle connection is closed
before the file is opened with another configuration (one process opens a file with one).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from pydantic import ValidationError

from safepool.dictionary import Variable
from safepool.duckdb_connection import forget_in_child, open_duckdb
from safepool.faults import NotFound, Unavailable
from safepool.governance.context import Governance
from safepool.governance.users import Actor, Role

POOL_FILE = "pool.duckdb"
LINKAGE_FILE = "linkage.json"
MANIFEST_FILE = "manifest.json"


class PoolNotBuilt(NotFound):
    """No pool has been built for the permit (or it was built before what is asked of it)."""


class PoolBusy(Unavailable):
    """The pool is open in this process under another configuration."""


def pool_path(pool_dir: Path, permit: str) -> Path:
    path = pool_dir / permit
    if not (path / POOL_FILE).is_file():
        raise PoolNotBuilt(f"no pool has been built for permit {permit}")
    return path


def connect(pool_dir: Path, permit: str, memory_limit_mb: int | None = None,
            spill: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection that cannot reach files or the network (nor use more than
    `memory_limit_mb` of memory, when given; beyond it the engine writes to the folder `spill`, when
    given, and fails without it), its configuration locked: a database of its own (the idle
    connections to the file are closed first). The file is opened by its real path, so a pool
    published again is another database, never the old one's instance."""
    return _open(*_files(pool_dir, permit), permit, memory_limit_mb, spill)


def _open(pool: str, file: str, permit: str, memory_limit_mb: int | None,
          spill: Path | None = None) -> duckdb.DuckDBPyConnection:
    _close_idle(pool)
    config: dict[str, str | bool] = {"enable_external_access": False, "lock_configuration": True}
    if memory_limit_mb is not None:
        config["memory_limit"] = f"{int(memory_limit_mb)}MB"
    if spill is not None:
        config["temp_directory"] = str(spill)
    try:
        return open_duckdb(file, read_only=True, config=config)
    except duckdb.ConnectionException:
        raise PoolBusy(f"the pool of permit {permit} is open in this process with other limits; "
                       "try again when the other query has finished") from None


def _files(pool_dir: Path, permit: str) -> tuple[str, str]:
    """The permit's pool file as named (through the link a build publishes) and the file it is now."""
    pool = os.path.abspath(pool_path(pool_dir, permit) / POOL_FILE)
    return pool, os.path.realpath(pool)


# -- idle connections kept between queries ---------------------------------------------------

_KEPT = 2  # idle connections kept per process (the most recently used)
# a connection is kept under the identity of the file it opened: another file (published again),
# a file changed in place or another memory limit is never handed this connection
_Key = tuple[str, str, int, int, int, int, int | None]  # pool, real file, device, inode, size, mtime, memory limit
_IDLE: OrderedDict[_Key, duckdb.DuckDBPyConnection] = OrderedDict()
_GUARD = threading.Lock()  # queries may run in several threads of a process


def _forget_in_child() -> None:
    """A forked child starts without its parent's idle connections (see `forget_in_child`)."""
    global _GUARD
    forget_in_child(_IDLE)
    _GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def _identity(pool: str, file: str, memory_limit_mb: int | None) -> _Key:
    found = os.stat(file)
    return pool, file, found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, memory_limit_mb


def _close_idle(pool: str) -> None:
    """Close every idle connection to the permit's pool (to the file it is now or was before)."""
    with _GUARD:
        closing = [_IDLE.pop(key) for key in [key for key in _IDLE if key[0] == pool]]
    for con in closing:
        con.close()


def _take(key: _Key) -> duckdb.DuckDBPyConnection | None:
    with _GUARD:
        return _IDLE.pop(key, None)


def _give_back(key: _Key, con: duckdb.DuckDBPyConnection) -> None:
    """Keep `con` idle for the next query when nothing of the last one is left in it, else close it."""
    if not _emptied(con):
        con.close()
        return
    with _GUARD:
        present = _IDLE.pop(key, None)
        _IDLE[key] = con
        evicted = [_IDLE.popitem(last=False)[1] for _ in range(max(0, len(_IDLE) - _KEPT))]
    for other in [*([present] if present is not None else []), *evicted]:
        other.close()


def _emptied(con: duckdb.DuckDBPyConnection) -> bool:
    """Drop every temporary view and table the query made; False when that fails (the connection
    is then closed, not kept)."""
    try:
        made = con.execute("SELECT 'VIEW', view_name FROM duckdb_views() WHERE temporary AND NOT internal "
                           "UNION ALL SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary").fetchall()
        for kind, name in made:
            con.execute(f'DROP {kind} temp.main."{name.replace(chr(34), chr(34) * 2)}"')
        return True
    except duckdb.Error:
        return False


def linkage_report(pool_dir: Path, permit: str) -> dict[str, object]:
    return json.loads((pool_path(pool_dir, permit) / LINKAGE_FILE).read_text(encoding="utf-8"))


def manifest(pool_dir: Path, permit: str) -> dict[str, object]:
    return json.loads((pool_path(pool_dir, permit) / MANIFEST_FILE).read_text(encoding="utf-8"))


def dictionary(pool_dir: Path, permit: str) -> dict[str, dict[str, Variable]]:
    """The pool's data dictionary: for each table, its variables by name, in table order.

    Read from the snapshot the build wrote into the manifest (pool names only: each variable's
    `column` is its pool name, since the holder's column names stay with the steward)."""
    return dictionary_in(manifest(pool_dir, permit), permit)


def dictionary_in(built: dict[str, object], permit: str) -> dict[str, dict[str, Variable]]:
    """The data dictionary of a pool's manifest (`dictionary`)."""
    snapshot = built.get("dictionary")
    if not isinstance(snapshot, dict):
        raise PoolNotBuilt(f"the pool of permit {permit} was built before the data dictionary; rebuild it")
    try:
        return {table: {entry["name"]: Variable.model_validate({**entry, "column": entry["name"]})
                        for entry in entries}
                for table, entries in snapshot.items()}
    except (ValidationError, TypeError, KeyError):
        raise Unavailable(f"the data dictionary of the pool of permit {permit} is damaged; rebuild the pool") from None


def table_sizes(pool_dir: Path, permit: str) -> dict[str, int]:
    con = connect(pool_dir, permit)
    try:
        names = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()]
        return {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0] for name in names}
    finally:
        con.close()


def open_for_analysis(pool_dir: Path, governance: Governance, actor: Actor, permit: str,
                      wanted: dict[str, list[str]] | None = None, today: date | None = None,
                      memory_limit_mb: int | None = None, spill: Path | None = None) -> duckdb.DuckDBPyConnection:
    """The analyst's door: checked against the permit, and logged, before the pool is opened
    (`connect`'s limits)."""
    governance.permits.authorise_access(actor, permit, wanted, today=today)
    con = connect(pool_dir, permit, memory_limit_mb, spill)
    _log_access(governance, actor, permit, wanted)
    return con


@contextmanager
def analysis_connection(pool_dir: Path, governance: Governance, actor: Actor, permit: str,
                        wanted: dict[str, list[str]] | None = None, today: date | None = None,
                        memory_limit_mb: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """`open_for_analysis` for one query, with the connection the last query to the same pool file
    and limits left idle (see the module docstring); kept idle afterwards unless the query failed."""
    governance.permits.authorise_access(actor, permit, wanted, today=today)
    pool, file = _files(pool_dir, permit)
    key = _identity(pool, file, memory_limit_mb)
    con = _take(key) or _open(pool, file, permit, memory_limit_mb)
    try:
        _log_access(governance, actor, permit, wanted)
        yield con
    except BaseException:
        con.close()
        raise
    _give_back(key, con)


def _log_access(governance: Governance, actor: Actor, permit: str, wanted: dict[str, list[str]] | None) -> None:
    governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_access", permit=permit,
                            target=",".join(sorted(wanted)) if wanted else "all tables in scope")


def describe_variables(pool_dir: Path, governance: Governance, actor: Actor, permit: str
                       ) -> dict[str, dict[str, Variable]]:
    """The pool's data dictionary, for the linkage authority or an analyst of the permit; audited as a view."""
    if not _linkage_authority(governance, actor):
        governance.permits.authorise_access(actor, permit)
    variables = dictionary(pool_dir, permit)
    governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_variables", permit=permit,
                            target=",".join(variables), rows=sum(len(v) for v in variables.values()))
    return variables


def describe_pool(pool_dir: Path, governance: Governance, actor: Actor, permit: str
                  ) -> tuple[dict[str, int], dict[str, object]]:
    """Table sizes and linkage report, for the linkage authority or an analyst of the permit; audited."""
    if not _linkage_authority(governance, actor):
        governance.permits.authorise_access(actor, permit)
    sizes, report = table_sizes(pool_dir, permit), linkage_report(pool_dir, permit)
    governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_show", permit=permit,
                            rows=sum(sizes.values()))
    return sizes, report


def _linkage_authority(governance: Governance, actor: Actor) -> bool:
    """A steward who is the linkage authority (a register holder's steward opens no pool)."""
    return actor.has(Role.steward) and governance.holders.scope(actor.name).linkage
