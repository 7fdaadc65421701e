"""Every way a source can fail gives one clear error naming the register, and no half-built pool."""

import adbc_driver_postgresql.dbapi as postgres_driver
import pytest

from safepool.errors import SafepoolError, SchemaDrift, SourceError
from safepool.pool.build import build_pool
from safepool.pool.scope import Scope
from safepool.registers.catalogue import Register
from safepool.registers.check import check_registers
from safepool.registers.credentials import Credentials
from tiny_registers import ANNA, identifying_strings, make_workspace, payments, write_sqlite

import pyarrow as pa
import pyarrow.parquet as pq


def full_scope(permit="P-1"):
    return Scope(permit=permit, window={"start": "2009Q1", "end": "2024Q4"},
                 registers={"population": "*", "payments": "*", "visits": "*"})


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "ws")


def assert_nothing_published(workspace, permit="P-1"):
    assert not (workspace.pool_dir / permit).exists()
    builds = workspace.pool_dir / ".builds"
    assert not builds.exists() or not any(builds.iterdir())
    quarantine = workspace.steward_dir / "quarantine" / ".builds"
    assert not quarantine.exists() or not any(quarantine.iterdir())


def assert_safe_message(error):
    for text in identifying_strings():
        assert text not in str(error)


def test_missing_source(workspace):
    (workspace.registers_dir / "kela" / "payments.csv").unlink()
    with pytest.raises(SourceError, match=r"register payments: csv source .*payments.csv does not exist") as caught:
        build_pool(workspace, full_scope())
    assert_nothing_published(workspace)
    assert_safe_message(caught.value)


def test_missing_sqlite_file(workspace):
    (workspace.registers_dir / "espoo" / "espoo.sqlite").unlink()
    with pytest.raises(SourceError, match="register visits: sqlite source .* does not exist"):
        build_pool(workspace, full_scope())
    assert_nothing_published(workspace)


def test_column_that_disappeared(workspace):
    path = workspace.registers_dir / "dvv" / "population.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["sukupuoli"]), path)
    with pytest.raises(SchemaDrift, match="register population: schema drift: column sukupuoli .variable sex. is missing"):
        build_pool(workspace, full_scope())
    assert_nothing_published(workspace)
    checks = {c.register: c for c in check_registers(workspace)}
    assert checks["population"].drift == ["column sukupuoli (variable sex) is missing"]
    assert checks["payments"].ok and checks["visits"].ok


def test_type_that_changed(workspace):
    write_sqlite(workspace.registers_dir / "espoo" / "espoo.sqlite", "kaynnit",
                 pa.table({"asiakas": [ANNA], "kuukausi": ["tammikuu"], "palvelu": ["x"]}))
    with pytest.raises(SchemaDrift, match="register visits: .*column kuukausi .variable month. is string, the dictionary says integer"):
        build_pool(workspace, full_scope())
    assert_nothing_published(workspace)


def test_file_that_is_not_what_its_name_says(workspace):
    (workspace.registers_dir / "dvv" / "population.parquet").write_text("henkilotunnus;nimi\n" + ANNA + ";Anna\n")
    with pytest.raises(SourceError, match="register population: opening parquet file population.parquet failed") as caught:
        build_pool(workspace, full_scope())
    assert_nothing_published(workspace)
    assert_safe_message(caught.value)


def test_sqlite_file_that_is_not_a_database(workspace):
    (workspace.registers_dir / "espoo" / "espoo.sqlite").write_bytes(b"PK\x03\x04 this is a zip, not sqlite")
    with pytest.raises(SourceError, match="register visits:"):
        build_pool(workspace, full_scope())
    assert_nothing_published(workspace)


def test_identity_column_gone_is_named(workspace):
    path = workspace.registers_dir / "dvv" / "population.parquet"
    pq.write_table(pq.read_table(path).rename_columns(["hetu_new", "etunimi", "sukunimi", "lahiosoite",
                                                        "syntymavuosi", "sukupuoli"]), path)
    with pytest.raises(SchemaDrift, match="identity column henkilotunnus is missing"):
        build_pool(workspace, full_scope())


def test_failed_build_keeps_previous_pool(workspace):
    first = build_pool(workspace, full_scope())
    (workspace.registers_dir / "kela" / "payments.csv").unlink()
    with pytest.raises(SourceError):
        build_pool(workspace, full_scope())
    assert (workspace.pool_dir / "P-1").resolve() == first.path.resolve()
    assert (first.path / "pool.duckdb").is_file()


def postgres_register(url: str) -> Register:
    return Register.model_validate({
        "name": "payments_pg", "holder": "Kela", "description": "benefit payments in PostgreSQL",
        "source": {"kind": "postgresql", "location": url, "table": "maksut"},
        "identity_column": "hetu",
        "time": {"variable": "paid_on", "grain": "day", "format": "date"},
        "variables": [
            {"name": "paid_on", "column": "maksupaiva", "type": "date", "description": "payment day",
             "level": "date", "years": [2009, 2024]},
            {"name": "amount", "column": "euroa", "type": "float", "description": "euros",
             "level": "numeric", "unit": "EUR", "bins": [250, 500]},
        ],
    })


def load_postgres(server):
    con = postgres_driver.connect(server.url_with_password)
    cursor = con.cursor()
    cursor.adbc_ingest("maksut", payments(), mode="replace")
    con.commit()
    cursor.close()
    con.close()


@pytest.mark.postgres
def test_pool_from_postgresql_register(workspace, postgres_database):
    load_postgres(postgres_database)
    workspace.save_registers([postgres_register(postgres_database.url)])
    Credentials.load(workspace).save(workspace, {"payments_pg": postgres_database.password})
    scope = Scope(permit="P-PG", window={"start": "2009Q1", "end": "2024Q4"},
                  registers={"population": "*", "payments_pg": "*", "visits": "*"})
    built = build_pool(workspace, scope)
    counts = built.linkage.registers["payments_pg"]
    assert (counts.rows_read, counts.rows_linked, counts.rows_in_pool, counts.persons) == (6, 4, 3, 2)
    assert built.linkage.persons_total == 4
    assert postgres_database.password not in (workspace.root / "safepool.yaml").read_text()


@pytest.mark.postgres
def test_wrong_postgresql_password(workspace, postgres_database):
    load_postgres(postgres_database)
    workspace.save_registers([postgres_register(postgres_database.url)])
    Credentials.load(workspace).save(workspace, {"payments_pg": "not-the-password"})
    scope = Scope(permit="P-PG", window={"start": "2009Q1", "end": "2024Q4"}, registers={"payments_pg": "*"})
    with pytest.raises(SourceError, match="register payments_pg: connecting to postgresql 127.0.0.1") as caught:
        build_pool(workspace, scope)
    assert "not-the-password" not in str(caught.value)
    assert postgres_database.password not in str(caught.value)
    assert_nothing_published(workspace, "P-PG")


@pytest.mark.postgres
def test_postgresql_table_dropped(workspace, postgres_database):
    workspace.save_registers([postgres_register(postgres_database.url)])
    Credentials.load(workspace).save(workspace, {"payments_pg": postgres_database.password})
    scope = Scope(permit="P-PG", window={"start": "2009Q1", "end": "2024Q4"}, registers={"payments_pg": "*"})
    with pytest.raises(SafepoolError, match="register payments_pg: reading the schema of table maksut"):
        build_pool(workspace, scope)


def test_a_csv_without_its_header_line_shows_none_of_its_first_line(workspace):
    """The first line of data read as the header: the register check names no column it found
    (they would be an identity code, a date, an amount), counts them and says why."""
    path = workspace.registers_dir / "kela" / "payments.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[1:]), encoding="utf-8")
    [checked] = check_registers(workspace, ["payments"])
    assert checked.undocumented_columns == [] and checked.unnamed_columns == 3
    assert "the header line may be missing" in " ".join(checked.problems)
    shown = " ".join(checked.problems)
    assert_safe_message(shown)
    assert not [field for field in lines[1].strip().split(",") if field.strip('"') in shown]
    with pytest.raises(SchemaDrift) as caught:
        build_pool(workspace, full_scope())
    assert_safe_message(caught.value)
    assert_nothing_published(workspace)


def test_plain_extra_columns_are_still_named(workspace):
    path = workspace.registers_dir / "kela" / "payments.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0] + ",extra_note"] + [line + ",x" for line in lines[1:]]) + "\n")
    [checked] = check_registers(workspace, ["payments"])
    assert checked.undocumented_columns == ["extra_note"] and checked.unnamed_columns == 0 and checked.ok


def test_checking_a_register_the_catalogue_does_not_have_is_not_found(workspace):
    from safepool.faults import NotFound

    with pytest.raises(NotFound, match="no register payment in the catalogue"):
        check_registers(workspace, ["payments", "payment"])
