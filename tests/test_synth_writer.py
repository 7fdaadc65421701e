"""synthesise() writes each register as soon as it is made (RegisterWriter): the files must be the
ones writing a whole generated Espoo gives, the same on every run, and a SQLite file's tables
must come in catalogue order."""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
from pathlib import Path

import adbc_driver_sqlite.dbapi as sqlite_dbapi
import pyarrow as pa
import pytest

try:
    import safepool  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from safepool.registers.sources import open_register
from safepool.synth import generate, write_workspace
from safepool.synth._catalogue import REGISTER_NAMES
from safepool.synth._write import RegisterWriter, _sqlite_part, dates_as_text
from safepool.synth.load import CATALOGUED, WRITTEN, synthesise
from safepool.workspace import Workspace

PERSONS = 1_500
SEED = 3


def digests(root: Path) -> dict[str, str]:
    """sha256 of every register source and truth file, by path under the workspace."""
    files = [*(root / "registers").rglob("*"), *(root / "steward" / "truth").rglob("*")]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(files) if p.is_file()}


def test_streamed_registers_are_the_generated_ones_byte_for_byte(tmp_path):
    synthesise(tmp_path / "streamed", persons=PERSONS, seed=SEED)
    synthesise(tmp_path / "again", persons=PERSONS, seed=SEED)
    whole = Workspace.init(tmp_path / "whole")
    write_workspace(whole, generate(persons=PERSONS, seed=SEED))
    streamed = digests(tmp_path / "streamed")
    assert len([name for name in streamed if name.startswith("registers/")]) == 10  # three tables share a file
    assert streamed == digests(tmp_path / "again")
    assert streamed == digests(whole.root)
    assert not list((tmp_path / "streamed").rglob("*.tmp*"))


def test_a_sqlite_file_takes_its_tables_in_catalogue_order(tmp_path):
    writer = RegisterWriter(Workspace.init(tmp_path / "ws"))
    try:
        with pytest.raises(RuntimeError, match="social_assistance comes after social_health"):
            writer.write("social_assistance", pa.table({"hakija_hetu": ["x"]}))
    finally:
        writer.abandon()
    assert not list((tmp_path / "ws").rglob("*.tmp*"))


def test_a_sqlite_file_is_the_one_the_driver_writes_from_dates(tmp_path):
    """Dates are cast to their text before the SQLite ingest (the driver's own conversion costs twice
    the CPU): the file must be byte for byte the one the driver writes from the date column."""
    days = [datetime.date(2009, 1, 1), None, datetime.date(2024, 12, 31), datetime.date(1999, 2, 28)]
    table = pa.table({"hetu": ["010190-123A", "x", None, "y"], "paiva": pa.array(days, pa.date32()),
                      "maara": [1.5, None, 2.0, 3.25]})
    assert dates_as_text(table).column("paiva").to_pylist() == ["2009-01-01", None, "2024-12-31", "1999-02-28"]
    assert dates_as_text(table).column("maara").equals(table.column("maara"))
    _sqlite_part(tmp_path / "ours.sqlite", "t", table, first=True, last=True)
    with sqlite_dbapi.connect(str(tmp_path / "driver.sqlite")) as conn:
        with conn.cursor() as cursor:
            cursor.adbc_ingest("t", table, mode="replace")
        conn.commit()
    assert (tmp_path / "ours.sqlite").read_bytes() == (tmp_path / "driver.sqlite").read_bytes()


def test_the_catalogue_comes_first_and_each_register_is_said_written_once_its_source_is_in_place(tmp_path):
    """The demo asks for permits once the catalogue is saved and checks each register as soon as
    it is said written: the catalogue must be whole before any data, and a register said written
    must be readable in full at that moment (a SQLite file's registers only once its last is in)."""
    root = tmp_path / "ws"
    said: list[str] = []
    readable: dict[str, int] = {}

    def progress(message: str) -> None:
        said.append(message)
        if message == CATALOGUED:
            assert [r.name for r in Workspace.open(root).catalogue().registers] == list(REGISTER_NAMES)
        elif message.startswith(WRITTEN):
            workspace = Workspace.open(root)
            [register] = [r for r in workspace.catalogue().registers if r.name == message.removeprefix(WRITTEN)]
            with open_register(workspace, register) as reader:
                readable[register.name] = reader.count_rows()

    synthesise(root, persons=PERSONS, seed=SEED, progress=progress)
    written = [message.removeprefix(WRITTEN) for message in said if message.startswith(WRITTEN)]
    assert said.index(CATALOGUED) < min(said.index(WRITTEN + name) for name in written)
    assert sorted(written) == sorted(REGISTER_NAMES)  # each once
    truth = json.loads((root / "steward" / "truth" / "truth.json").read_text(encoding="utf-8"))
    assert readable == truth["row_counts"]  # every row there when said
