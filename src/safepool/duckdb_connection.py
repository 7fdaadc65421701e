"""The one way safepool opens a DuckDB connection, so that every connection has the same session
settings.

DuckDB's Python client prints its own progress bar for any query that runs over two seconds,
straight to standard output: into the CLI's progress display and the demo's summary, and into
whatever captures the output of a notebook or a service (the 300,000-person demo printed five).
safepool reports progress itself, so the engine's bar is switched off. The setting belongs to
each connection (DuckDB refuses it in `duckdb.connect`'s config), hence this function. A locked
configuration (`lock_configuration` in `config`) is locked after the settings are made; a second
connection to a database this process already holds open locked keeps the engine's defaults.

A database file opened and closed again and again (the query ledger: once per query) is attached
instead (`attach_duckdb`): in one in-memory DuckDB instance per folder, kept by the process,
whose external access is off but for that folder. Attaching takes under a millisecond where
opening a DuckDB database takes 10 to 15 ms (its buffer manager, thread pool and catalog). Such
files are appended to (besides one row of state), so their checkpoints do not vacuum: each
answer's append leaves a row group partly filled, and merging two of them rewrote them at
every other checkpoint (25-30 of the 30-35 ms the checkpoint then took, for 300,000
contributions); unmerged, the file of the demo's ten questions is 3% larger (41 against 40 MB).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import duckdb

SESSION_SETTINGS = ("SET enable_progress_bar = false",)
LOCK = "lock_configuration"


def open_duckdb(database: str | Path = ":memory:", *, read_only: bool = False,
                config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `database` (in memory by default) with safepool's session settings."""
    settings = dict(config or {})
    lock = bool(settings.pop(LOCK, False))
    con = duckdb.connect(str(database), read_only=read_only, config=settings)
    # (every row fetched: a result left open refuses the next relation's statement on the connection)
    if not con.execute(f"SELECT current_setting('{LOCK}')").fetchall()[0][0]:
        for statement in SESSION_SETTINGS:
            con.execute(statement)
        if lock:
            con.execute(f"SET {LOCK} = true")
    return con


_FOLDERS: OrderedDict[str, duckdb.DuckDBPyConnection] = OrderedDict()  # folder -> its instance
_FOLDERS_KEPT = 4  # instances kept (the most recently used folders)
_FOLDERS_GUARD = threading.Lock()
_ATTACHED = itertools.count(1)
TEMPORARY = "duckdb.tmp"  # where a folder's instance spills what does not fit in memory, inside the folder


def forget_in_child(kept: MutableMapping[Any, duckdb.DuckDBPyConnection]) -> None:
    """Empty a cache of DuckDB connections a forked child inherited, never freeing them: their
    engine threads do not exist in the child, and destroying one waits for those threads (the
    child died of a segmentation fault or an abort, at the latest at its interpreter's shutdown).
    Each cache renews its own lock beside this (a thread of the parent may have held it)."""
    for connection in kept.values():
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(connection))
    kept.clear()


def _forget_in_child() -> None:
    """A forked child starts without its parent's folder instances."""
    global _FOLDERS_GUARD
    forget_in_child(_FOLDERS)
    _FOLDERS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def quote_literal(text: str) -> str:
    """A SQL string literal of `text` (its quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _folder_instance(folder: str) -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB instance for `folder`: files outside it are out of its reach,
    and what it spills goes to `TEMPORARY` inside it (DuckDB's default is the process's working
    folder)."""
    with _FOLDERS_GUARD:
        instance = _FOLDERS.get(folder)
        if instance is None:
            instance = duckdb.connect(":memory:")
            instance.execute(f"SET temp_directory = {quote_literal(os.path.join(folder, TEMPORARY))}")
            instance.execute(f"SET allowed_directories = [{quote_literal(folder)}]")
            instance.execute("SET max_vacuum_tasks = 0")  # files appended to (see the module docstring)
            instance.execute("SET enable_external_access = false")  # neither can change from now on
            _FOLDERS[folder] = instance
            while len(_FOLDERS) > _FOLDERS_KEPT:  # forgotten, not closed: its cursors keep it up until they close
                _FOLDERS.popitem(last=False)
        _FOLDERS.move_to_end(folder)
        return instance.cursor()


def _folder_of(database: str | Path) -> str:
    return str(Path(database).parent) + os.sep


def prepare_instance(database: str | Path) -> None:
    """Begin making the instance `attach_duckdb(database)` will use, on a thread of its own, when
    this process has none for its folder yet: making one takes 10-15 ms, which then goes on while
    the caller does other work (the first query of a process opens its pool meanwhile). What fails
    here fails again, and is reported, when the file is attached."""
    folder = _folder_of(database)
    with _FOLDERS_GUARD:
        if folder in _FOLDERS:
            return

    def made() -> None:
        try:
            _folder_instance(folder).close()
        except duckdb.Error:
            pass

    # not a daemon: at the interpreter's exit a daemon thread still inside DuckDB is ended by a forced
    # unwind through DuckDB's C++ code, which aborts the process ("FATAL: exception not rethrown",
    # seen once in a forked child whose query ended while this thread closed its cursor); the
    # exit waits for it instead, a few milliseconds at most
    threading.Thread(target=made, name="duckdb-instance").start()


def attach_duckdb(database: str | Path) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A connection whose default database is the file `database` (made when missing), attached
    under a name of its own in this process's instance for the file's folder, with safepool's
    session settings; and that name, for `CHECKPOINT <name>` and `detach_duckdb`. The file is
    locked against other processes while it is attached, as an opened database is; whatever
    fails once it is attached detaches it again."""
    con = _folder_instance(_folder_of(database))
    name = f"attached_{next(_ATTACHED)}"
    try:
        for statement in SESSION_SETTINGS:
            con.execute(statement)
        con.execute(f"ATTACH {quote_literal(str(database))} AS {name}")
    except BaseException:
        con.close()
        raise
    try:
        con.execute(f"USE {name}")
    except BaseException:
        detach_duckdb(con, name)
        raise
    return con, name


def detach_duckdb(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Detach a file attached by `attach_duckdb` (its changes are checkpointed into it) and close
    the connection, whatever interrupts it: a file left attached stays locked for the process's
    life."""
    try:
        con.execute("USE memory")
    finally:
        try:
            con.execute(f"DETACH DATABASE IF EXISTS {name}")
        finally:
            con.close()
