"""The analyst's side of the pool: read-only access to pseudonymised tables.

Nothing here imports the steward zone (identity, registers' credentials, key store); a test
walks the imports to prove it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
from pydantic import ValidationError

from safepool.dictionary import Variable
from safepool.duckdb_connection import open_duckdb
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


def connect(pool_dir: Path, permit: str, memory_limit_mb: int | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection that cannot reach files or the network (nor use more than
    `memory_limit_mb` of memory, when given), its configuration locked."""
    config: dict[str, str | bool] = {"enable_external_access": False, "lock_configuration": True}
    if memory_limit_mb is not None:
        config["memory_limit"] = f"{int(memory_limit_mb)}MB"
    try:
        return open_duckdb(pool_path(pool_dir, permit) / POOL_FILE, read_only=True, config=config)
    except duckdb.ConnectionException:
        raise PoolBusy(f"the pool of permit {permit} is open in this process with other limits; "
                       "try again when the other query has finished") from None


def linkage_report(pool_dir: Path, permit: str) -> dict[str, object]:
    return json.loads((pool_path(pool_dir, permit) / LINKAGE_FILE).read_text(encoding="utf-8"))


def manifest(pool_dir: Path, permit: str) -> dict[str, object]:
    return json.loads((pool_path(pool_dir, permit) / MANIFEST_FILE).read_text(encoding="utf-8"))


def dictionary(pool_dir: Path, permit: str) -> dict[str, dict[str, Variable]]:
    """The pool's data dictionary: for each table, its variables by name, in table order.

    Read from the snapshot the build wrote into the manifest (pool names only: each variable's
    `column` is its pool name, since the holder's column names stay with the steward)."""
    snapshot = manifest(pool_dir, permit).get("dictionary")
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
                      memory_limit_mb: int | None = None) -> duckdb.DuckDBPyConnection:
    """The analyst's door: checked against the permit, and logged, before the pool is opened."""
    governance.permits.authorise_access(actor, permit, wanted, today=today)
    con = connect(pool_dir, permit, memory_limit_mb)
    governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_access", permit=permit,
                            target=",".join(sorted(wanted)) if wanted else "all tables in scope")
    return con


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
