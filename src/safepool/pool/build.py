"""Building a permit's pool: read each register in place, pseudonymise in flight, link by pseudonym.

This runs in the steward zone: it opens the key store and sees identity codes, but it writes
into the pool only pseudonyms and the variables in scope. Direct identifiers are never selected
from the source. Rows whose identity code cannot link are quarantined under steward/ with their
reason. The pool is built in a private folder and published with one atomic rename, so a failed
build leaves the previous pool (or none) exactly as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from safepool.duckdb_connection import open_duckdb
from safepool.errors import SafepoolError
from safepool.faults import Unavailable
from safepool.governance.audit import result_digest
from safepool.governance.context import Governance
from safepool.governance.permits import Phase
from safepool.governance.users import Actor
from safepool.identity.keystore import KeyStore
from safepool.identity.pseudonym import Pseudonymiser
from safepool.identity.resolver import IdentityResolver
from safepool.pool.access import LINKAGE_FILE, MANIFEST_FILE, POOL_FILE, dictionary_in, pool_path
from safepool.pool.ledger_keys import LEDGER_KEYS_FILE, ledger_keys_in_use, write_ledger_keys
from safepool.pool.linkage import LinkageReport, LinkageTracker
from safepool.pool.publish import Scratch, sweep, sweep_stale_files
from safepool.pool.scope import Scope, Window, time_predicate
from safepool.query.pool_facts import FACTS, find_facts
from safepool.registers.catalogue import Register, Variable
from safepool.registers.check import check_schema
from safepool.registers.credentials import Credentials
from safepool.registers.sources import RegisterReader, Scan, open_register, quote_identifier
from safepool.workspace import Workspace

RAW_CODE = "__raw_code"
# Where builds (and re-identifications) keep scratch: pool/.builds holds pseudonyms only, the
# steward zone's hold identity codes.
SCRATCH_PARENTS = ("pool", "steward/quarantine", "steward/tmp")
# Temporary files of a write that was killed half-way (a key being sealed, credentials being saved).
STALE_TEMPORARY_FILES = (("steward/keys", ".*.tmp"), ("steward", ".credentials.yaml.tmp"))
# DuckDB's memory for a build: one register's staged rows and its links fit (at 300,000 persons its largest,
# employment, takes about 350 MB); beyond it the engine spills to steward/tmp instead of holding memory it no
# longer needs, which kept the build's peak about 100 MB lower (the city's build runs beside the study's)
BUILD_MEMORY = "500MB"
SQL_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "date": "DATE", "boolean": "BOOLEAN"}

Progress = Callable[[str, str, int], None]
"""Called with (stage, register, rows so far) as the build moves on."""

ReaderFactory = Callable[[Workspace, Register, Credentials], RegisterReader]


@dataclass(frozen=True)
class BuiltPool:
    permit: str
    path: Path
    linkage: LinkageReport
    seconds: float
    stage_seconds: dict[str, float]
    stage_rows: dict[str, int]
    swept: int = 0  # scratch entries of killed builds removed before this one began


def build_pool(
    workspace: Workspace,
    scope: Scope,
    *,
    progress: Progress | None = None,
    reader_factory: ReaderFactory = open_register,
) -> BuiltPool:
    started = time.perf_counter()
    swept = sweep_workspace(workspace)  # what killed builds of any permit left, identity-bearing scratch first
    plan = scope.resolve(workspace.catalogue())
    keys = KeyStore.of(workspace)
    key = keys.get_or_create(scope.permit)
    credentials = Credentials.load(workspace)
    notify = progress or (lambda stage, register, rows: None)
    timings: dict[str, float] = {"read": 0.0, "pseudonymise": 0.0, "write": 0.0}

    with ExitStack() as held:  # on leaving, every scratch folder not published is removed
        pool_scratch = held.enter_context(Scratch(workspace.pool_dir, scope.permit))
        quarantine_scratch = held.enter_context(Scratch(workspace.steward_dir / "quarantine", scope.permit))
        spill = held.enter_context(Scratch(workspace.steward_dir / "tmp", scope.permit))
        # rows go into the pool in no particular order, which lets DuckDB write them in parallel
        con = held.enter_context(open_duckdb(config={"temp_directory": str(spill.path), "memory_limit": BUILD_MEMORY,
                                                        "preserve_insertion_order": False}))
        pool_file = pool_scratch.path / POOL_FILE
        con.execute(f"ATTACH '{pool_file}' AS pool")
        resolver = IdentityResolver(con, Pseudonymiser(key))
        tracker = LinkageTracker(con)
        for register, variables in plan:
            with reader_factory(workspace, register, credentials) as reader:
                check_schema(reader, variables)
                _stage(con, reader, register, variables, scope, timings, notify)
            _link(con, resolver, tracker, register, variables, quarantine_scratch.path, timings, notify)
            # the register's table is written: attached again, the pool keeps none of it cached in memory
            con.execute("DETACH pool")
            con.execute(f"ATTACH '{pool_file}' AS pool")
        linkage = tracker.report(holders={register.name: register.holder for register, _ in plan})
        notify("ledger keys", "all persons", 0)
        secret = keys.ledger_secret(in_use=ledger_keys_in_use(workspace.pool_dir))
        write_ledger_keys(pool_scratch.path, *resolver.ledger_keys(Pseudonymiser(secret)))
        timings |= resolver.seconds  # validate and hmac are the two parts of pseudonymise
        counts = {"rows read": sum(r.rows_read for r in linkage.registers.values()),
                  "codes validated": resolver.codes["validated"],
                  "codes pseudonymised": resolver.codes["pseudonymised"],
                  "rows written": sum(r.rows_in_pool for r in linkage.registers.values())}
        con.execute("DETACH pool")
        con.close()
        notify("table facts", "all tables", 0)
        _write_reports(pool_scratch.path, scope, plan, linkage, spill.path)
        pool_path = pool_scratch.publish(workspace.pool_dir / scope.permit)
        quarantine_scratch.publish(workspace.steward_dir / "quarantine" / scope.permit)
    return BuiltPool(scope.permit, pool_path, linkage, time.perf_counter() - started, timings, counts, len(swept))


def sweep_workspace(workspace: Workspace) -> list[Path]:
    """Remove the scratch killed builds and re-identifications left in the workspace; the paths removed."""
    removed: list[Path] = []
    for parent in SCRATCH_PARENTS:
        removed += sweep(workspace.root / parent)
    for folder, pattern in STALE_TEMPORARY_FILES:
        removed += sweep_stale_files(workspace.root / folder, pattern)
    return removed


def build_for_permit(workspace: Workspace, governance: Governance, actor: Actor, permit_id: str, *,
                     progress: Progress | None = None, today: date | None = None) -> BuiltPool:
    """The only public way to build a pool: as the linkage authority, inside an approved, unexpired
    permit, from what each register holder in its scope released into it (safepool.governance.holders).

    The build's start is audited before any source is read, so a build that is killed leaves its
    `pool_build_started` record without a `pool_build` one; the next build's `pool_build` record
    counts the scratch of killed builds it removed (`stale_scratch_removed`)."""
    permit = governance.permits.authorise_build(actor, permit_id, today)
    governance.holders.require_linkage_authority(actor, "pool_build", permit=permit_id)
    released = governance.holders.released_scope(actor, permit, "pool_build")  # refused while a holder is undecided
    frame = permit.request.data.time_frame
    scope = Scope(permit=permit_id, window=Window(start=frame.start, end=frame.end),
                  registers=dict(released.sources), withheld=released.withheld)
    governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_build_started", permit=permit_id,
                            detail={"registers": sorted(scope.registers)})
    try:
        built = build_pool(workspace, scope, progress=progress)
    except SafepoolError as exc:
        governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_build", permit=permit_id,
                                outcome="error", detail={"error": type(exc).__name__})
        raise
    governance.permits.record_build(actor, permit_id)
    if permit.phase == Phase.data_request:
        governance.permits.advance(actor, permit_id, Phase.preparing_data, "pool built")
    governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_build", permit=permit_id,
                            rows=built.stage_rows["rows written"],
                            result_hash=result_digest(json.dumps(built.linkage.to_dict(), sort_keys=True)),
                            detail={"registers": sorted(scope.registers), "persons": built.linkage.persons_total}
                            | ({"stale_scratch_removed": built.swept} if built.swept else {}))
    return built


def _stage(
    con: duckdb.DuckDBPyConnection,
    reader: RegisterReader,
    register: Register,
    variables: list[Variable],
    scope: Scope,
    timings: dict[str, float],
    notify: Progress,
) -> None:
    """Copy the scoped rows of one register into a temporary table of the build connection; a file
    is read by this connection in place (in parallel, with no Arrow batches in between)."""
    started = time.perf_counter()
    notify("read", register.name, 0)
    casts = "".join(f", {_cast(v)}" for v in variables)
    _read(con, reader, register, variables, scope.window, "stage",
          f"SELECT CAST({RAW_CODE} AS VARCHAR) AS {RAW_CODE}{casts}", "reading rows")
    notify("read", register.name, con.execute("SELECT count(*) FROM stage").fetchall()[0][0])
    timings["read"] += time.perf_counter() - started


def _read(con: duckdb.DuckDBPyConnection, reader: RegisterReader, register: Register, variables: list[Variable],
          window: Window, table: str, select: str, what: str) -> None:
    """Make temporary table `table` as `select` over the register's identity code (RAW_CODE) and
    `variables` in the window, read in place by the connection."""
    columns = {RAW_CODE: register.identity_column} | {v.name: v.column for v in variables}
    reader.attach(con, "source_rows", Scan(columns=columns, where=time_predicate(register, window)))
    try:
        with reader.guarded(what):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {select} FROM source_rows")
    finally:
        con.execute("DROP VIEW IF EXISTS source_rows")


def _cast(variable: Variable) -> str:
    name = quote_identifier(variable.name)
    return f"CAST({name} AS {SQL_TYPES[variable.type]}) AS {name}"


def _link(
    con: duckdb.DuckDBPyConnection,
    resolver: IdentityResolver,
    tracker: LinkageTracker,
    register: Register,
    variables: list[Variable],
    quarantine: Path,
    timings: dict[str, float],
    notify: Progress,
) -> None:
    """Pseudonymise the staged rows into the pool and quarantine those that cannot link."""
    started = time.perf_counter()
    notify("pseudonymise", register.name, 0)
    related = [quote_identifier(v.name) for v in variables if v.name in register.related_identities]
    resolver.replace_with_pseudonyms("stage", related)  # another person's code: their pseudonym
    # one pass over the rows: each distinct code and its rows, for the resolver and the counts
    con.execute(f"CREATE OR REPLACE TEMP TABLE stage_codes AS SELECT {RAW_CODE} AS raw, count(*) AS n "
                f"FROM stage GROUP BY {RAW_CODE}")
    resolver.resolve("stage_codes", "raw")
    # each code of this register that links, with its pseudonym; `compare` when its rows may repeat
    # rows of another code (another spelling with the same pseudonym) or of its own
    con.execute("CREATE OR REPLACE TEMP TABLE stage_links AS SELECT raw, pid, false AS compare "
                f"FROM ({resolver.linked_rows_sql('stage_codes', 'raw', 'r.raw')})")
    con.execute("UPDATE stage_links SET compare = true WHERE pid IN "
                "(SELECT pid FROM stage_links GROUP BY pid HAVING count(*) > 1)")
    timings["pseudonymise"] += time.perf_counter() - started
    started = time.perf_counter()
    columns = [f"r.{quote_identifier(v.name)}" for v in variables]
    table = quote_identifier(register.name)
    rows = (f"SELECT l.pid, {', '.join(columns) or 'NULL AS no_variables'} FROM stage r "
            f"JOIN stage_links l ON l.raw = r.{RAW_CODE} WHERE ")
    try:
        _mark_repeating_codes(con, f"hash(r.{RAW_CODE}{''.join(', ' + c for c in columns)})")
        # only the rows of codes marked go through DISTINCT; the others are distinct already
        con.execute(f"CREATE TABLE pool.{table} AS {rows}NOT l.compare "
                    f"UNION ALL SELECT DISTINCT * FROM ({rows}l.compare)")
        con.execute(
            f"COPY ({resolver.quarantined_rows_sql('stage', RAW_CODE)}) "
            f"TO '{quarantine / (register.name + '.parquet')}' (FORMAT parquet)"
        )
        tracker.record(register.name, "stage_codes", "SELECT pid FROM stage_links")
        for name in ("stage", "stage_codes", "stage_links"):
            con.execute(f"DROP TABLE {name}")
    except duckdb.Error as exc:  # the engine's words could quote a value: only its kind is shown
        raise Unavailable(f"register {register.name}: linking its rows failed ({type(exc).__name__})") from None
    timings["write"] += time.perf_counter() - started
    notify("linked", register.name, 0)


def _mark_repeating_codes(con: duckdb.DuckDBPyConnection, row_hash: str) -> None:
    """Mark in `stage_links` the codes with a staged row that may be repeated: rows alike hash alike, so
    only rows whose hash occurs twice can be. The hashes are sorted in NumPy, which is cheaper than a
    DuckDB hash table over millions of nearly unique values."""
    ordered = np.sort(con.sql(f"SELECT {row_hash} FROM stage r").to_arrow_table().column(0).to_numpy())
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if repeated.size == 0:
        return
    con.register("stage_repeats", pa.table({"h": repeated}))
    try:
        con.execute(f"UPDATE stage_links SET compare = true WHERE raw IN "
                    f"(SELECT r.{RAW_CODE} FROM stage r WHERE {row_hash} IN (SELECT h FROM stage_repeats))")
    finally:
        con.unregister("stage_repeats")


def _write_reports(folder: Path, scope: Scope, plan: list[tuple[Register, list[Variable]]], linkage: LinkageReport,
                   spill: Path) -> None:
    """The linkage report and the manifest: the pool's dictionary, and the facts of its whole
    tables that queries need (`safepool.query.pool_facts`)."""
    (folder / LINKAGE_FILE).write_text(json.dumps(linkage.to_dict(), indent=2), encoding="utf-8")
    manifest = {
        "permit": scope.permit,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "window": scope.window.model_dump(),
        "tables": {register.name: [v.name for v in variables] for register, variables in plan},
        # the data dictionary of the pool's variables, in pool names only (no holder's columns)
        "dictionary": {register.name: [_as_pooled(register, v) for v in variables] for register, variables in plan},
        # the registers made by safepool synth: reports of this pool say on every page that it is synthetic
        "synthetic": sorted(register.name for register, _ in plan if register.synthetic),
    }
    with open_duckdb(str(folder / POOL_FILE), read_only=True,
                     config={"temp_directory": str(spill), "memory_limit": BUILD_MEMORY}) as pool:
        manifest[FACTS] = find_facts(pool, dictionary_in(manifest, scope.permit))
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _as_pooled(register: Register, variable: Variable) -> dict[str, object]:
    """A variable's dictionary entry as the pool holds it: another person's identity code is their
    pseudonym there, a number (BIGINT) like every pid."""
    entry = variable.model_dump(mode="json", exclude={"column"})
    return entry | ({"type": "integer"} if variable.name in register.related_identities else {})


def give_ledger_keys(workspace: Workspace, governance: Governance, actor: Actor, permit_id: str) -> int:
    """As the linkage authority: give a pool built before ledger keys existed its ledger keys, so
    that its permit can be queried (and its own query ledger carried into the workspace's), without
    building it again (which a permit past preparing its data may not). The identity codes of the
    registers the pool was built from, in its window, are read in place and pseudonymised again
    under the permit's key; every person of the pool must be found, else the registers changed
    since the build and nothing is written. Audited; returns the number of the pool's persons."""
    governance.holders.require_linkage_authority(actor, "pool_ledger_keys", permit=permit_id)
    folder = pool_path(workspace.pool_dir, permit_id)
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    window = Window(**manifest["window"])
    store = KeyStore.of(workspace)
    pseudonymiser = Pseudonymiser(store.get(permit_id))
    ledger = Pseudonymiser(store.ledger_secret(in_use=ledger_keys_in_use(workspace.pool_dir)))
    catalogue, credentials = workspace.catalogue(), Credentials.load(workspace)
    with ExitStack() as held:
        spill = held.enter_context(Scratch(workspace.steward_dir / "tmp", permit_id))
        con = held.enter_context(open_duckdb(config={"temp_directory": str(spill.path), "memory_limit": BUILD_MEMORY}))
        resolver = IdentityResolver(con, pseudonymiser)
        for name in manifest["tables"]:
            register = catalogue.register(name)
            with open_register(workspace, register, credentials) as reader:
                _read(con, reader, register, [], window, "stage_codes",
                      f"SELECT DISTINCT CAST({RAW_CODE} AS VARCHAR) AS raw", "reading identity codes")
            resolver.resolve("stage_codes", "raw")
        pids, keys = resolver.ledger_keys(ledger)
    persons = _pool_persons(workspace, permit_id)
    found = np.isin(persons, pids.astype(np.int64))
    if not found.all():
        raise Unavailable(f"permit {permit_id}: {int((~found).sum()):,} persons of its pool are no longer in the "
                          "registers it was built from; its ledger keys cannot be made")
    written = folder.resolve() / f".{LEDGER_KEYS_FILE}.tmp"
    write_ledger_keys(written.parent, pids, keys, name=written.name)
    written.replace(folder.resolve() / LEDGER_KEYS_FILE)
    governance.audit.append(actor=actor.name, role=actor.main_role, action="pool_ledger_keys", permit=permit_id,
                            detail={"persons": len(persons)})
    return len(persons)


def _pool_persons(workspace: Workspace, permit_id: str) -> np.ndarray:
    """Every pseudonym of the permit's pool (of any of its tables)."""
    with ExitStack() as held:
        con = held.enter_context(open_duckdb())
        con.execute(f"ATTACH '{pool_path(workspace.pool_dir, permit_id) / POOL_FILE}' AS pool (READ_ONLY)")
        tables = [name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'pool'").fetchall()]
        union = " UNION ".join(f"SELECT pid FROM pool.{quote_identifier(t)}" for t in tables)
        return con.execute(f"SELECT DISTINCT pid FROM ({union})").fetchnumpy()["pid"].astype(np.int64) \
            if tables else np.empty(0, dtype=np.int64)
