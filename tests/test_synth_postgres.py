"""Synthetic Espoo with the Kela and TE registers in PostgreSQL, pooled with the file sources."""

import pytest

from safepool.pool.build import build_pool
from safepool.pool.scope import Scope
from safepool.registers.catalogue import SourceKind
from safepool.registers.check import check_registers
from safepool.synth.load import split_password, synthesise
from safepool.workspace import Workspace


def test_split_password_keeps_user_host_port():
    assert split_password("postgresql://u:s%40cret@127.0.0.1:5433/db") == ("postgresql://u@127.0.0.1:5433/db", "s@cret")
    assert split_password("postgresql://u@h/db") == ("postgresql://u@h/db", None)


@pytest.mark.postgres
def test_pool_reads_postgresql_and_files_at_once(tmp_path, postgres_database):
    root = tmp_path / "ws"
    registers = synthesise(root, persons=1500, seed=5, postgres_url=postgres_database.url_with_password)
    workspace = Workspace.open(root)
    kinds = {r.name: r.source.kind for r in registers}
    assert kinds["benefits"] == kinds["employment_services"] == SourceKind.postgresql
    assert {SourceKind.parquet, SourceKind.csv, SourceKind.sqlite} <= set(kinds.values())
    config = workspace.config_path.read_text()
    assert postgres_database.password not in config
    assert (workspace.steward_dir / "credentials.yaml").stat().st_mode & 0o077 == 0
    assert all(check.ok for check in check_registers(workspace))
    scope = Scope(permit="PG-1", window={"start": "2009Q1", "end": "2024Q4"},
                  registers={"population": "*", "benefits": "*", "employment_services": "*", "skills_centre": "*"})
    built = build_pool(workspace, scope)
    assert built.linkage.registers["benefits"].rows_linked > 0
    assert built.linkage.registers["employment_services"].persons > 0
    assert "temporary" in built.linkage.registers["benefits"].rows_by_status
