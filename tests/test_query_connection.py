"""The pool connection a query leaves idle for the next one, and the permit read on every query:
kept only while nothing about them changed, and exactly as locked as a fresh one."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from sqlalchemy import update

from safepool.governance.permits import permits_table
from safepool.pool import access
from safepool.query import engine
from safepool.query.model import QueryRefused, refuse
from safepool.query.request import AggregateRequest
from test_query_engine import PERMIT, ask, copy_of, governed_pool

BY_SEX = AggregateRequest(table="population", measure="persons", by=["sex"])


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("template") / "ws"
    governed_pool(root)
    return root


@pytest.fixture
def setup(template, tmp_path):
    return copy_of(template, tmp_path / "ws")


def idle(setup) -> list[duckdb.DuckDBPyConnection]:
    workspace = setup[0]
    pool, _ = access._files(workspace.pool_dir, PERMIT)
    return [con for key, con in access._IDLE.items() if key[0] == pool]


def test_the_next_query_gets_the_idle_connection_locked_and_empty(setup):
    first = ask(setup, BY_SEX)
    [kept] = idle(setup)
    assert kept.execute("SELECT current_setting('enable_external_access'), current_setting('lock_configuration'), "
                        "current_setting('enable_progress_bar'), current_setting('memory_limit')"
                        ).fetchone() == (False, True, False, "976.5 MiB")  # 1024 MB
    assert kept.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal").fetchone() == (0,)
    assert kept.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    with pytest.raises(duckdb.Error):
        kept.execute("SET enable_external_access = true")
    again = ask(setup, BY_SEX)
    assert idle(setup) == [kept]  # the same connection served the second query
    assert again.table.equals(first.table)


def test_a_pool_published_again_is_read_from_the_new_file(setup):
    workspace = setup[0]
    ask(setup, BY_SEX)
    [kept] = idle(setup)
    file = workspace.pool_dir / PERMIT / access.POOL_FILE
    fewer = file.with_name("fewer.duckdb")
    shutil.copyfile(file, fewer)
    con = duckdb.connect(str(fewer))
    con.execute("DELETE FROM population WHERE sex = 'F'")
    con.close()
    fewer.replace(file)
    answer = ask(setup, BY_SEX).table.set_index("sex")
    # the new file has no women: their cell is suppressed now, and the total (all men) is hidden too, since
    # with the earlier answer's men it would tell that no woman is left (an empty difference)
    assert np.isnan(answer.loc["female", "persons"]) and np.isnan(answer.loc["Total", "persons"])
    assert answer.loc["Total", "status"] == "suppressed"
    assert len(idle(setup)) == 1 and idle(setup) != [kept]
    with pytest.raises(duckdb.ConnectionException):  # the old file's connection was closed, not kept aside
        kept.execute("SELECT 1")


def test_a_plain_connection_after_a_query_is_its_own_database(setup):
    workspace = setup[0]
    ask(setup, BY_SEX)
    con = access.connect(workspace.pool_dir, PERMIT)  # a study's limits: none; the idle one is closed first
    try:
        assert idle(setup) == []
        assert con.execute("SELECT current_setting('enable_progress_bar'), current_setting('lock_configuration')"
                           ).fetchone() == (False, True)
    finally:
        con.close()


def test_a_query_that_fails_in_the_pool_leaves_no_connection_behind(setup, monkeypatch):
    ask(setup, BY_SEX)
    assert len(idle(setup)) == 1

    def failing(*args, **kwargs):
        raise refuse("the answer cannot be checked")

    monkeypatch.setattr(engine, "_mitigate", failing)
    with pytest.raises(QueryRefused):
        ask(setup, BY_SEX)
    assert idle(setup) == []


def test_a_changed_permit_is_read_again_at_once(setup):
    governance = setup[1]
    ask(setup, BY_SEX)
    request = governance.permits.get(PERMIT).request.model_dump(mode="json")
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with governance.permits.engine.begin() as con:  # as if the permit's expiry had been brought forward
        con.execute(update(permits_table).where(permits_table.c.id == PERMIT).values(
            request_yaml=yaml.safe_dump({**request, "expiry": yesterday.isoformat()}, sort_keys=False)))
    assert governance.permits.get(PERMIT).request.expiry == yesterday
    with pytest.raises(QueryRefused, match="expired"):
        ask(setup, BY_SEX)


def test_a_process_forked_after_a_query_ends_cleanly_and_queries_on_its_own(template, tmp_path):
    """The idle pool connection and the ledger's DuckDB instance stay behind in the parent: a forked
    child never frees them (destroying them waited for engine threads the child does not have: it
    died of a segmentation fault at its interpreter's shutdown), and its own query opens its own."""
    script = f"""
import os, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_query_connection import BY_SEX
from test_query_engine import ask, copy_of
setup = copy_of(Path({str(template)!r}), Path({str(tmp_path / "ws")!r}))
first = ask(setup, BY_SEX)
pid = os.fork()
if pid == 0:
    sys.exit(0 if ask(setup, BY_SEX).table.equals(first.table) else 3)  # through the interpreter's shutdown
_, status = os.waitpid(pid, 0)
print(status)
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (ran.returncode, ran.stdout.strip()) == (0, "0"), ran.stderr[-800:]
