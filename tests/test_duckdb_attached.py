"""Files attached in a folder's DuckDB instance (`attach_duckdb`): what they hold survives the
detach, the instance reaches no file outside its folder, and an instance forgotten while a file
is attached keeps serving that file; a file another process holds is refused as locked."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from safepool import duckdb_connection
from safepool.duckdb_connection import attach_duckdb, detach_duckdb, open_duckdb

HOLD = """
import sys
import duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE t AS SELECT 1 AS x")
print("held", flush=True)
sys.stdin.read()
con.close()
"""


def test_what_is_written_is_in_the_file_after_the_detach(tmp_path):
    con, name = attach_duckdb(tmp_path / "a.duckdb")
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(200000)")
    detach_duckdb(con, name)
    assert not (tmp_path / "a.duckdb.wal").exists()  # checkpointed at the detach
    with open_duckdb(tmp_path / "a.duckdb", read_only=True) as plain:
        assert plain.execute("SELECT count(*), sum(x) FROM t").fetchone() == (200000, 199999 * 200000 // 2)


def test_the_instance_reaches_no_file_outside_its_folder(tmp_path):
    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.csv").write_text("code\n010101-123A\n")
    con, name = attach_duckdb(tmp_path / "inside" / "a.duckdb")
    try:
        for sql in (f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')",
                    f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
                    "SET enable_external_access = true"):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
    finally:
        detach_duckdb(con, name)
    assert not (tmp_path / "other.duckdb").exists()


def test_a_file_held_by_another_process_cannot_be_attached_until_it_is_let_go(tmp_path):
    open_duckdb(tmp_path / "a.duckdb").close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "a.duckdb")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException, match="lock"):  # what the query ledger reports as busy
            attach_duckdb(tmp_path / "a.duckdb")
    finally:
        holder.communicate("", timeout=30)
    con, name = attach_duckdb(tmp_path / "a.duckdb")
    assert con.execute("SELECT x FROM t").fetchone() == (1,)
    detach_duckdb(con, name)


def test_a_forgotten_instance_keeps_serving_its_attached_file(tmp_path, monkeypatch):
    monkeypatch.setattr(duckdb_connection, "_FOLDERS_KEPT", 1)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    con, name = attach_duckdb(tmp_path / "one" / "a.duckdb")
    other, other_name = attach_duckdb(tmp_path / "two" / "b.duckdb")  # the first folder's instance is forgotten
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert con.execute("SELECT x FROM t").fetchone() == (1,)
    detach_duckdb(con, name)
    detach_duckdb(other, other_name)


def test_a_forked_child_attaches_in_an_instance_of_its_own(tmp_path):
    con, name = attach_duckdb(tmp_path / "a.duckdb")  # the parent's instance for the folder, in use
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    detach_duckdb(con, name)
    parents = dict(duckdb_connection._FOLDERS)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh instance, which works
        code = 1
        try:
            os.close(read)
            fresh = not duckdb_connection._FOLDERS
            child, child_name = attach_duckdb(tmp_path / "a.duckdb")
            found = child.execute("SELECT x FROM t").fetchone()
            detach_duckdb(child, child_name)
            os.write(write, b"ok" if fresh and found == (1,) else b"no")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        said = answer.read()
    os.waitpid(pid, 0)
    assert said == b"ok"
    assert duckdb_connection._FOLDERS == parents  # the parent's are untouched


@pytest.mark.parametrize("uses_its_own", [False, True])
def test_a_forked_child_that_ends_normally_ends_cleanly(tmp_path, uses_its_own):
    """An inherited instance destroyed in the child waits for engine threads that are not there
    (the child died of a segmentation fault, or an abort at its interpreter's shutdown): the
    child never frees them, and ends cleanly however it ends."""
    con, name = attach_duckdb(tmp_path / "a.duckdb")
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    detach_duckdb(con, name)
    assert duckdb_connection._FOLDERS  # the parent holds an instance with its engine threads
    script = f"""
import os, sys
from safepool.duckdb_connection import attach_duckdb, detach_duckdb
con, name = attach_duckdb({str(tmp_path / "a.duckdb")!r})
detach_duckdb(con, name)
if os.fork() == 0:
    if {uses_its_own}:
        con, name = attach_duckdb({str(tmp_path / "a.duckdb")!r})
        con.execute("SELECT x FROM t").fetchall()
        detach_duckdb(con, name)
    sys.exit(0)  # through the interpreter's shutdown, not os._exit
_, status = os.wait()
print(status)
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout.strip()) == (0, "0"), ran.stderr[-500:]


def test_what_does_not_fit_in_memory_spills_inside_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ledger").mkdir()
    con, name = attach_duckdb(tmp_path / "ledger" / "a.duckdb")
    try:
        [(folder,)] = con.execute("SELECT current_setting('temp_directory')").fetchall()
        assert folder == str(tmp_path / "ledger" / duckdb_connection.TEMPORARY)
        with pytest.raises(duckdb.Error):  # fixed once external access is off
            con.execute(f"SET temp_directory = '{tmp_path}'")
    finally:
        detach_duckdb(con, name)
    assert not (tmp_path / ".tmp").exists()


def test_an_instance_prepared_beside_the_caller_is_the_one_the_attach_uses(tmp_path):
    import threading

    database = tmp_path / "a.duckdb"
    duckdb_connection.prepare_instance(database)
    for thread in threading.enumerate():
        if thread.name == "duckdb-instance":
            thread.join()
    instance = duckdb_connection._FOLDERS[str(tmp_path) + os.sep]
    before = threading.active_count()
    duckdb_connection.prepare_instance(database)  # made already: nothing more is started
    assert threading.active_count() == before
    con, name = attach_duckdb(database)
    try:
        assert duckdb_connection._FOLDERS[str(tmp_path) + os.sep] is instance
        with pytest.raises(duckdb.Error):  # made with the folder's limits
            con.execute("SET enable_external_access = true")
    finally:
        detach_duckdb(con, name)
