"""Schema migrations: the migrated schema is the one the code declares, and upgrades keep data."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from governed import approved_permit, governance_with_users, sign_in
from safepool.governance.context import Governance
from safepool.governance.db import connect_engine, create_schema, metadata


def test_migrations_build_exactly_the_declared_schema(tmp_path):
    engine = connect_engine(f"sqlite:///{tmp_path}/m.sqlite")
    create_schema(engine)
    with engine.connect() as con:
        differences = compare_metadata(MigrationContext.configure(con), metadata)
    assert differences == []
    assert MigrationContext.configure(engine.connect()).get_current_revision() == "0006"


def test_reopening_an_existing_workspace_keeps_everything(tmp_path):
    governance = governance_with_users(tmp_path)
    approved_permit(governance, "P-1")
    records = governance.audit.verify().checked
    again = Governance.open(tmp_path)
    assert again.permits.get("P-1").status == "approved"
    assert again.users.actor("stella") is not None
    assert again.audit.verify().checked == records and again.audit.verify().ok
    assert "audit_records" in inspect(again.users.engine).get_table_names()


@pytest.mark.postgres
def test_migrations_on_postgresql(postgres_database):
    url = postgres_database.url_with_password.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = connect_engine(url)
    create_schema(engine)
    create_schema(engine)  # idempotent
    with engine.connect() as con:
        assert compare_metadata(MigrationContext.configure(con), metadata) == []
    engine.dispose()


@pytest.mark.postgres
def test_governance_on_a_postgresql_metadata_database(tmp_path, postgres_database, monkeypatch):
    url = postgres_database.url_with_password.replace("postgresql://", "postgresql+psycopg://", 1)
    monkeypatch.setenv("SAFEPOOL_METADATA_URL", url)
    governance = governance_with_users(tmp_path)
    approved_permit(governance, "P-PG")
    assert not (tmp_path / "governance").exists()
    assert Governance.open(tmp_path).permits.get("P-PG").status == "approved"
    assert governance.audit.verify().ok
    governance.users.engine.dispose()


def test_0004_gives_existing_permits_and_outputs_a_version(tmp_path):
    """An upgrade from 0003 keeps every row; existing permits and outputs start at version 0."""
    from importlib.resources import files

    from alembic import command
    from alembic.config import Config

    engine = connect_engine(f"sqlite:///{tmp_path}/m.sqlite")
    config = Config()
    config.set_main_option("script_location", str(files("safepool.governance") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.exec_driver_sql(
            "INSERT INTO permits (id, name, requested_by, request_yaml, assessment_json, phase, status, expiry, "
            "created_at) VALUES ('OLD-1', 'old', 'anna', '{}', '{}', 3, 'pending', '2030-01-01', '2024-01-01')")
    create_schema(engine)
    with engine.connect() as con:
        assert con.exec_driver_sql("SELECT id, status, version FROM permits").all() == [("OLD-1", "pending", 0)]
        assert "version" in {c["name"] for c in inspect(con).get_columns("outputs")}


def test_an_upgrade_keeps_outputs_and_the_rows_that_point_at_them(tmp_path):
    """A workspace with outputs, their reviews and history, made before a migration that rebuilds
    the outputs table (0005): it opens, keeps every row, and its references still hold."""
    from importlib.resources import files

    from alembic import command
    from alembic.config import Config

    from recorded_outputs import CONTEXT, by_area, governed_outputs, record

    governance = governed_outputs(tmp_path)
    output = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    governance.outputs.request_release(sign_in(governance, "anna"), [output.id], CONTEXT)
    governance.outputs.review(sign_in(governance, "cecilia"), output.id, "approve", "looked at every cell")
    engine = governance.users.engine
    tables = ("outputs", "output_reviews", "output_events")
    with engine.connect() as con:
        before = {t: con.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in tables}
    config = Config()
    config.set_main_option("script_location", str(files("safepool.governance") / "migrations"))
    with engine.connect() as connection:  # back to before 0005, as an older safepool left it
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
    engine.dispose()

    again = Governance.open(tmp_path)
    with again.users.engine.connect() as con:
        assert {t: con.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in tables} == before
        assert con.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert con.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert again.outputs.show(sign_in(again, "cecilia"), output.id).status == "approved"
    assert again.audit.verify().ok
