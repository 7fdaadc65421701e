"""Schema migrations: the migrated schema is the one the code declares, and upgrades keep data."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from governed import approved_permit, governance_with_users
from safepool.governance.context import Governance
from safepool.governance.db import connect_engine, create_schema, metadata


def test_migrations_build_exactly_the_declared_schema(tmp_path):
    engine = connect_engine(f"sqlite:///{tmp_path}/m.sqlite")
    create_schema(engine)
    with engine.connect() as con:
        differences = compare_metadata(MigrationContext.configure(con), metadata)
    assert differences == []
    assert MigrationContext.configure(engine.connect()).get_current_revision() == "0003"


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
