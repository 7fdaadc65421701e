"""The one way safepool opens a DuckDB connection, so that every connection has the same session
settings.

DuckDB's Python client prints its own progress bar for any query that runs over two seconds,
straight to standard output: into the CLI's progress display and the demo's summary, and into
whatever captures the output of a notebook or a service (the 300,000-person demo printed five).
safepool reports progress itself, so the engine's bar is switched off. The setting belongs to
each connection (DuckDB refuses it in `duckdb.connect`'s config), hence this function. A locked
configuration (`lock_configuration` in `config`) is locked after the settings are made; a second
connection to a database this process already holds open locked keeps the engine's defaults.
"""

from __future__ import annotations

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
    if not con.execute(f"SELECT current_setting('{LOCK}')").fetchone()[0]:
        for statement in SESSION_SETTINGS:
            con.execute(statement)
        if lock:
            con.execute(f"SET {LOCK} = true")
    return con
