"""A pool built before ledger keys existed gets them from the registers, in any phase, without
being built again: the same keys a build gives, or nothing written when the registers changed."""

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from governed import governance_with_users, sign_in
from safepool.faults import Unavailable
from safepool.pool.build import build_pool, give_ledger_keys
from safepool.pool.ledger_keys import LEDGER_KEYS_FILE
from safepool.pool.scope import Scope
from tiny_registers import CHEN, make_workspace


@pytest.fixture
def setup(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    build_pool(workspace, Scope(permit="P-1", window={"start": "2009Q1", "end": "2024Q4"},
                                registers={"population": "*", "payments": "*"}))
    return workspace, governance


def test_an_older_pool_gets_the_ledger_keys_a_build_gives_it(setup):
    workspace, governance = setup
    path = workspace.pool_dir / "P-1" / LEDGER_KEYS_FILE
    built = np.load(path)
    path.unlink()  # as a pool of an earlier version
    assert give_ledger_keys(workspace, governance, sign_in(governance, "stella"), "P-1") == 3
    assert np.array_equal(np.load(path), built)
    assert path.stat().st_mode & 0o077 == 0 and not list(path.parent.glob(".*.tmp"))
    record = governance.audit.records(action="pool_ledger_keys")[-1]
    assert (record.actor, record.permit, record.outcome, record.detail) == ("stella", "P-1", "ok", {"persons": 3})


def test_registers_that_lost_a_person_of_the_pool_write_nothing(setup):
    workspace, governance = setup
    path = workspace.pool_dir / "P-1" / LEDGER_KEYS_FILE
    path.unlink()
    source = workspace.registers_dir / "dvv" / "population.parquet"
    rows = pq.read_table(source)
    column = next(name for name in rows.column_names if CHEN in rows.column(name).to_pylist())
    pq.write_table(rows.filter(pc.not_equal(rows.column(column), CHEN)), source)
    with pytest.raises(Unavailable, match="1 persons of its pool are no longer in the registers"):
        give_ledger_keys(workspace, governance, sign_in(governance, "stella"), "P-1")
    assert not path.exists() and not list(path.parent.glob(".*"))
    assert governance.audit.records(action="pool_ledger_keys") == []
