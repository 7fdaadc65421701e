"""Checking several registers at once (two at a time, in threads) gives each the result it gets
checked alone, in catalogue order; SQLite sources read in batches of any size count the same."""

from dataclasses import asdict
from pathlib import Path

import pytest

import safepool.registers.check as check
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


def test_a_check_keeps_to_its_memory_and_spills_only_into_the_steward_zone(synthetic, monkeypatch, tmp_path):
    """The counts a check keeps hold identity codes: what does not fit its memory goes to a
    scratch folder in the steward zone, removed afterwards, never to the engine's default (a
    folder beside wherever the check runs). Spilling counts the same."""
    [whole] = check_registers(synthetic, ["employment"])
    opened: list[dict] = []
    real = check.open_duckdb

    def recording(*args, **kwargs):
        opened.append(kwargs["config"])
        return real(*args, **kwargs)

    monkeypatch.setattr(check, "open_duckdb", recording)
    monkeypatch.setattr(check, "CHECK_MEMORY", "16MB")
    monkeypatch.chdir(tmp_path)
    [tight] = check_registers(synthetic, ["employment"])
    assert asdict(tight) == asdict(whole) and whole.ok
    [config] = opened
    assert config["memory_limit"] == "16MB" and config["threads"] == 1
    spill = Path(config["temp_directory"])
    assert spill.is_relative_to(synthetic.steward_dir / "tmp") and not spill.exists()
    assert not any(tmp_path.iterdir())
