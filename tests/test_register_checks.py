"""Checking several registers at once (two at a time, in threads) gives each the result it gets
checked alone, in catalogue order; SQLite sources read in batches of any size count the same."""

from dataclasses import asdict

import pytest

import safepool.registers.sources as sources
from safepool.registers.check import check_registers
from safepool.synth.load import synthesise
from tiny_registers import make_workspace


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    synthesise(root, persons=600, seed=3)
    from safepool.workspace import Workspace

    return Workspace.open(root)


def test_registers_checked_together_as_one_by_one(synthetic):
    together = check_registers(synthetic)
    names = [register.name for register in synthetic.catalogue().registers]
    assert [check.register for check in together] == names
    alone = [check_registers(synthetic, [name])[0] for name in names]
    assert [asdict(check) for check in together] == [asdict(check) for check in alone]
    assert all(check.rows and check.rows_by_status for check in together)


def test_sqlite_batches_of_any_size_count_the_same(tmp_path, monkeypatch):
    workspace = make_workspace(tmp_path / "ws")
    [whole] = check_registers(workspace, ["visits"])
    monkeypatch.setattr(sources, "BATCH_ROWS", 2)
    [in_batches] = check_registers(workspace, ["visits"])
    assert whole.error is None and whole.rows and whole.rows > 2
    assert asdict(in_batches) == asdict(whole)
