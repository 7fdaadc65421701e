"""The workspace's metadata database: users, permits and the audit log.

SQLite inside the workspace by default, PostgreSQL when the workspace config names a URL; both
through SQLAlchemy Core so that one set of queries serves either. Every governance module
declares its tables on the shared `metadata`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event

metadata = MetaData()

DEFAULT_FILE = "metadata.sqlite"


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / DEFAULT_FILE}"


def connect_engine(url: str) -> Engine:
    """An engine with SQLite set up for safe concurrent appends (WAL, full sync, foreign keys)."""
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def create_schema(engine: Engine) -> None:
    """Bring the schema up to the newest migration; existing data is kept, never recreated."""
    _import_tables()
    config = Config()
    config.set_main_option("script_location", str(files("safepool.governance") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _import_tables() -> None:
    """Every module that declares tables, so that `metadata` is complete for comparisons."""
    import safepool.disclosure.output_tables  # noqa: F401
    import safepool.governance.audit  # noqa: F401
    import safepool.governance.ledger_state  # noqa: F401
    import safepool.governance.permits  # noqa: F401
    import safepool.governance.users  # noqa: F401
