import datetime as dt
import json
import stat

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from safepool.errors import SourceError
from safepool.identity.keystore import LEDGER_SECRET, KeyStore
from safepool.identity.pseudonym import Pseudonymiser
from safepool.pool import access
from safepool.pool.build import build_pool
from safepool.pool.ledger_keys import LEDGER_KEYS_FILE, ledger_keys
from safepool.pool.pseudonyms import shown
from safepool.pool.scope import Scope, ScopeError
from safepool.registers import sources
from privacy_scan import find_identifiers
from tiny_registers import ANNA, BO, CHEN, DINA, WRONG_CHECK, identifying_strings, make_workspace

FULL = {"population": "*", "payments": "*", "visits": "*"}


def scope(registers=None, start="2009Q1", end="2024Q4", permit="P-1"):
    return Scope(permit=permit, window={"start": start, "end": end}, registers=registers or FULL)


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "ws")


def pool_rows(workspace, permit, table):
    con = access.connect(workspace.pool_dir, permit)
    try:
        return con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()
    finally:
        con.close()


def test_linkage_report_accounts_for_every_row(workspace):
    built = build_pool(workspace, scope())
    report = built.linkage
    pop, pay, vis = (report.registers[n] for n in ("population", "payments", "visits"))
    assert (pop.rows_read, pop.rows_linked, pop.rows_by_status) == (4, 3, {"temporary": 1, "valid": 3})
    assert pay.rows_read == 6  # the 2008 payment is outside the window and never read
    assert pay.rows_by_status == {"missing": 1, "normalised": 1, "valid": 3, "wrong_check_character": 1}
    assert (pay.rows_linked, pay.duplicate_rows_removed, pay.rows_in_pool, pay.persons) == (4, 1, 3, 2)
    assert (vis.rows_read, vis.rows_linked, vis.persons) == (3, 2, 2)  # 2025 visit outside the window
    for counts in report.registers.values():
        assert counts.rows_read == counts.rows_linked + counts.rows_quarantined
    assert report.persons_total == 4
    assert report.persons_by_register_count == {1: 2, 2: 1, 3: 1}
    assert report.persons_linked_across_registers == 2
    assert report.persons_missing_from_population == {"visits": 1}
    assert report.quarantined_rows_by_reason == {"missing": 1, "temporary": 2, "wrong_check_character": 1}
    assert json.loads((built.path / "linkage.json").read_text())["persons_total"] == 4


def test_same_person_same_pseudonym_in_every_register(workspace):
    build_pool(workspace, scope())
    key = KeyStore(workspace.steward_dir / "keys").get("P-1")
    anna = Pseudonymiser(key).pseudonym(ANNA)
    assert anna in {r[0] for r in pool_rows(workspace, "P-1", "population")}
    assert {r[0] for r in pool_rows(workspace, "P-1", "payments")} == {anna, Pseudonymiser(key).pseudonym(BO)}
    assert anna in {r[0] for r in pool_rows(workspace, "P-1", "visits")}
    assert Pseudonymiser(key).pseudonym(DINA) in {r[0] for r in pool_rows(workspace, "P-1", "visits")}


def test_the_pool_stores_pseudonyms_as_bigint_and_people_see_19_digits(workspace):
    build_pool(workspace, scope())
    con = access.connect(workspace.pool_dir, "P-1")
    try:
        types = con.sql("SELECT table_name, data_type FROM duckdb_columns() WHERE column_name = 'pid'").fetchall()
    finally:
        con.close()
    assert sorted(types) == [(table, "BIGINT") for table in sorted(FULL)]
    anna = Pseudonymiser(KeyStore(workspace.steward_dir / "keys").get("P-1")).pseudonym(ANNA)
    assert anna in {r[0] for r in pool_rows(workspace, "P-1", "population")}
    assert len(shown(anna)) == 19 and shown(anna).isdigit() and int(shown(anna)) == anna


def test_repeated_rows_are_one_pool_row_whatever_the_spelling(workspace):
    """A row repeated under the same code, under another spelling of it, or with a missing value is
    one pool row; a row that differs in any value is kept; a repeated row that cannot link is
    quarantined every time."""
    day = dt.date(2019, 1, 5)
    rows = [(ANNA, 100.0), (" " + ANNA.lower(), 100.0), (ANNA, 200.0), (BO, None), (BO, None), (BO, 100.0),
            (WRONG_CHECK, 100.0), (WRONG_CHECK, 100.0)]
    pa_csv.write_csv(pa.table({"hetu": [code for code, _ in rows], "maksupaiva": [day] * len(rows),
                               "euroa": pa.array([amount for _, amount in rows], pa.float64())}),
                     workspace.registers_dir / "kela" / "payments.csv")
    built = build_pool(workspace, scope({"payments": "*"}))
    pseudonym = Pseudonymiser(KeyStore(workspace.steward_dir / "keys").get("P-1")).pseudonym
    anna, bo = pseudonym(ANNA), pseudonym(BO)
    expected = [(anna, day, 100.0), (anna, day, 200.0), (bo, day, None), (bo, day, 100.0)]
    assert sorted(pool_rows(workspace, "P-1", "payments"), key=repr) == sorted(expected, key=repr)
    payments = built.linkage.registers["payments"]
    assert (payments.rows_linked, payments.duplicate_rows_removed, payments.rows_quarantined) == (6, 2, 2)
    quarantine = workspace.steward_dir / "quarantine" / "P-1" / "payments.parquet"
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{quarantine}')").fetchall() == [(2,)]


def test_each_register_is_in_the_pool_file_before_the_next_is_read(workspace):
    """The build keeps no written register in memory or in the write-ahead log while it reads the next
    one: its table is checkpointed into the pool file first."""
    files_at_read = []

    def progress(stage, register, rows):
        if stage == "read" and rows == 0:
            files_at_read.append(sorted(p.name for p in (workspace.pool_dir / ".builds").glob("*/pool.duckdb*")))

    build_pool(workspace, scope(), progress=progress)
    assert files_at_read == [["pool.duckdb"]] * len(FULL)


def test_other_permit_cannot_link_to_this_one(workspace):
    build_pool(workspace, scope(permit="P-1"))
    build_pool(workspace, scope(permit="P-2"))
    one = {r[0] for r in pool_rows(workspace, "P-1", "population")}
    other = {r[0] for r in pool_rows(workspace, "P-2", "population")}
    assert len(one) == len(other) == 3 and not one & other


def test_a_person_has_one_ledger_key_in_every_permit_and_other_pseudonyms(workspace):
    """The ledger keys tie two pools' persons together for the query ledger alone: the same person
    has other pseudonyms and one ledger key; the keys sit beside the pool file, never in it."""
    build_pool(workspace, scope(permit="P-1"))
    build_pool(workspace, scope(permit="P-2", registers={"population": "*"}))
    pids, keys = {}, {}
    for permit in ("P-1", "P-2"):
        pseudonymiser = Pseudonymiser(KeyStore.of(workspace).get(permit))
        pids[permit] = [pseudonymiser.pseudonym(code) for code in (ANNA, BO, CHEN)]
        assert set(pids[permit]) == {row[0] for row in pool_rows(workspace, permit, "population")}
        keys[permit] = ledger_keys(workspace.pool_dir, permit).of(np.array(pids[permit], dtype=np.int64)).tolist()
    assert keys["P-1"] == keys["P-2"] and len(set(keys["P-1"])) == 3
    assert not set(pids["P-1"]) & set(pids["P-2"]) and not set(keys["P-1"]) & (set(pids["P-1"]) | set(pids["P-2"]))
    con = access.connect(workspace.pool_dir, "P-1")
    try:
        tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    assert tables == set(FULL)
    secret = workspace.steward_dir / "keys" / f"{LEDGER_SECRET}.key"
    assert secret.is_file() and secret.stat().st_mode & 0o077 == 0
    assert (workspace.pool_dir / "P-1" / LEDGER_KEYS_FILE).stat().st_mode & 0o077 == 0


def test_only_scoped_variables_and_window_are_read(workspace, monkeypatch):
    asked = []
    original = sources.Scan.sql
    monkeypatch.setattr(sources.Scan, "sql", lambda self, relation: asked.append(self) or original(self, relation))
    build_pool(workspace, scope({"population": ["sex"], "payments": ["amount"]}, start="2019Q1", end="2019Q1"))  # Jan-Mar 2019
    columns = {c for s in asked for c in s.columns.values()}
    assert columns == {"henkilotunnus", "sukupuoli", "hetu", "euroa"}  # never names or addresses
    con = access.connect(workspace.pool_dir, "P-1")
    assert [r[0] for r in con.execute("DESCRIBE payments").fetchall()] == ["pid", "amount"]
    assert sorted(r[0] for r in con.execute("SELECT amount FROM payments").fetchall()) == [100.0, 200.0, 300.0]
    assert con.execute("SELECT count(*) FROM payments").fetchone()[0] == 3  # April and later are outside


def test_scope_outside_catalogue_is_refused_by_name(workspace):
    with pytest.raises(ScopeError, match="register taxes is not in the catalogue.*payments has no variable iban"):
        build_pool(workspace, scope({"taxes": "*", "payments": ["iban"]}))


def test_quarantine_and_keys_stay_in_the_steward_zone(workspace):
    build_pool(workspace, scope())
    quarantine = workspace.steward_dir / "quarantine" / "P-1"
    reasons = duckdb.sql(f"SELECT reason, count(*) FROM read_parquet('{quarantine}/*.parquet') GROUP BY ALL").fetchall()
    assert dict(reasons) == {"missing": 1, "temporary": 2, "wrong_check_character": 1}
    assert stat.S_IMODE(workspace.steward_dir.stat().st_mode) == 0o700
    assert find_identifiers(workspace.root, identifying_strings()) == []


def test_pool_connection_is_read_only_and_sealed(workspace):
    build_pool(workspace, scope())
    con = access.connect(workspace.pool_dir, "P-1")
    with pytest.raises(duckdb.Error):
        con.execute("CREATE TABLE x AS SELECT 1")
    with pytest.raises(duckdb.Error):
        con.execute(f"SELECT * FROM read_parquet('{workspace.steward_dir}/quarantine/P-1/population.parquet')")
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")


class FailingAfterFirstBatch:
    """Wraps a source reader so that its stream breaks after one batch, like a dropped connection."""

    def __init__(self, reader):
        self.reader = reader

    attach = sources.RegisterReader.attach  # the broken stream, not a view over the source

    def __getattr__(self, name):
        return getattr(self.reader, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.reader.close()

    def scan(self, scan):
        batches = self.reader.scan(scan)

        def broken():
            yield from list(batches)[:1]
            raise OSError("connection reset by peer")

        return pa.RecordBatchReader.from_batches(batches.schema, broken())


def test_failure_mid_read_leaves_previous_pool_untouched(workspace):
    first = build_pool(workspace, scope())
    before = pool_rows(workspace, "P-1", "payments")
    published = first.path.resolve()

    def factory(ws, register, credentials):
        reader = sources.open_register(ws, register, credentials)
        return FailingAfterFirstBatch(reader) if register.name == "visits" else reader

    with pytest.raises(SourceError, match="register visits: reading rows failed"):
        build_pool(workspace, scope(), reader_factory=factory)
    assert pool_rows(workspace, "P-1", "payments") == before
    assert (workspace.pool_dir / "P-1").resolve() == published
    assert [p.resolve() for p in (workspace.pool_dir / ".builds").iterdir()] == [published]
    assert len(list((workspace.steward_dir / "quarantine" / ".builds").iterdir())) == 1
