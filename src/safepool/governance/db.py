"""The workspace's metadata database: users, permits and the audit log.

SQLite inside the workspace by default, PostgreSQL when the workspace config names a URL; both
through SQLAlchemy Core so that one set of queries serves either. Every governance module
declares its tables on the shared `metadata`.

A database that is locked for longer than the timeout (`SAFEPOOL_METADATA_TIMEOUT` seconds, 30 by
default: SQLite's busy timeout, PostgreSQL's lock_timeout), that cannot be reached or opened, or
whose file is damaged raises `safepool.faults.Unavailable`, never the driver's error (its text can hold the URL).
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy import exc as sql_errors

from safepool.faults import database_unavailable

metadata = MetaData()

DEFAULT_FILE = "metadata.sqlite"
TIMEOUT_ENV = "SAFEPOOL_METADATA_TIMEOUT"
DEFAULT_TIMEOUT = 30.0  # seconds a writer waits for another's lock before giving up


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / DEFAULT_FILE}"


def connect_engine(url: str, timeout: float | None = None) -> Engine:
    """An engine with SQLite set up for safe concurrent appends (WAL, full sync, foreign keys);
    waits up to `timeout` seconds (default: SAFEPOOL_METADATA_TIMEOUT, else 30) for a lock."""
    wait = timeout if timeout is not None else _timeout_setting()
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
            cursor.close()

    elif engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _postgres_timeout(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET lock_timeout = {int(wait * 1000)}")
            cursor.close()
            dbapi_connection.commit()

    @event.listens_for(engine, "handle_error")
    def _unavailable(context):  # type: ignore[no-untyped-def]
        error = context.sqlalchemy_exception
        # OperationalError and InterfaceError: locked, unreachable, cannot be opened; the bare
        # DatabaseError: a file that is damaged or is not a database at all
        unusable = (sql_errors.OperationalError, sql_errors.InterfaceError)
        if (isinstance(error, unusable) or type(error) is sql_errors.DatabaseError) and not _a_mistake(error):
            return database_unavailable(error)
        return None

    return engine


def _timeout_setting() -> float:
    text = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        value = DEFAULT_TIMEOUT
    return value if value >= 0 else DEFAULT_TIMEOUT


def _a_mistake(error: Exception) -> bool:
    """SQLite reports a statement that names what does not exist as an OperationalError too:
    that is a program's mistake, not an unavailable database."""
    text = str(getattr(error, "orig", error)).lower()
    return text.startswith(("no such ", "near ")) or "syntax error" in text


def create_schema(engine: Engine) -> None:
    """Bring the schema up to the newest migration; existing data is kept, never recreated.

    SQLite changes a table by rebuilding it (drop, then rename a copy), which its foreign keys
    refuse while other tables' rows point at it (reviews at their output, say): the migrations run
    with foreign keys off, as SQLite's own procedure for altering tables prescribes, and every
    reference is checked before they commit."""
    _import_tables()
    config = _migrations_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if MigrationContext.configure(connection).get_current_revision() == _newest_revision():
            return  # every session opens the database: an up-to-date one is only looked at
        connection.rollback()
        if sqlite:  # outside any transaction, or SQLite ignores it
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("a schema migration left rows that point at nothing; nothing was changed")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _migrations_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("safepool.governance") / "migrations"))
    return config


@lru_cache(maxsize=1)
def _newest_revision() -> str | None:
    """The head of the shipped migrations (read from their scripts once per process)."""
    return ScriptDirectory.from_config(_migrations_config()).get_current_head()


def _import_tables() -> None:
    """Every module that declares tables, so that `metadata` is complete for comparisons."""
    import safepool.disclosure.output_tables  # noqa: F401
    import safepool.governance.audit  # noqa: F401
    import safepool.governance.holders  # noqa: F401
    import safepool.governance.ledger_state  # noqa: F401
    import safepool.governance.permits  # noqa: F401
    import safepool.governance.users  # noqa: F401
