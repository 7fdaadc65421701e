"""Every query has a budget, set in the workspace policy: cells (known before it runs), time and
memory (while it runs). A query over budget is refused with a clear message and leaves no answer."""

from __future__ import annotations

import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from governed import sign_in
from safepool.disclosure.policy import set_policy
from safepool.pool.access import open_for_analysis
from safepool.query.budget import Budget
from safepool.query.deadline import Deadline
from safepool.query.engine import run_query
from safepool.query.model import QueryRefused
from test_query_engine import PERMIT, governed_pool, pool_tables

HEAVY = "SELECT sex, quantile_cont(amount, 0.3) AS q3, median(amount) AS q5 FROM payments JOIN population " \
        "USING (pid) WHERE paid_on = '2019Q1' GROUP BY sex"


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    """A pool with three million payments, enough for a quantile to take a good part of a second."""
    tables = pool_tables()
    rng = np.random.default_rng(1)
    persons = tables["population"]["pid"].to_numpy()
    rows = 3_000_000
    payments = pd.DataFrame({"pid": persons[rng.integers(0, len(persons), rows)],
                             "paid_on": pd.Timestamp("2019-01-05").date(), "amount": rng.uniform(50, 500, rows),
                             "bank": "FI00"})
    return governed_pool(tmp_path_factory.mktemp("heavy") / "ws", tables={**tables, "payments": payments})


def test_a_query_past_its_time_is_stopped_and_refused(heavy):
    workspace, governance = heavy
    set_policy(governance, sign_in(governance, "admin"), "max_seconds", "0.05")
    anna = sign_in(governance, "anna")
    before = len(governance.audit.records(action="query"))
    with pytest.raises(QueryRefused, match="longer than the policy's budget of 0.05 seconds"):
        run_query(workspace.pool_dir, governance, anna, PERMIT, HEAVY)
    assert len(governance.audit.records(action="query")) == before  # nothing half-recorded
    assert governance.audit.records(action="query_refused")[-1].outcome == "refused"
    set_policy(governance, sign_in(governance, "admin"), "max_seconds", "60")
    answer = run_query(workspace.pool_dir, governance, anna, PERMIT, HEAVY)
    assert not answer.table.empty


def test_the_pool_connection_carries_the_memory_budget(heavy):
    workspace, governance = heavy
    con = open_for_analysis(workspace.pool_dir, governance, sign_in(governance, "anna"), PERMIT,
                            memory_limit_mb=200)
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        with pytest.raises(duckdb.Error):
            con.execute("SET memory_limit = '8GB'")  # the analyst's connection cannot raise it
    finally:
        con.close()
    assert limit.replace(" ", "").upper() in ("200.0MIB", "190.7MIB", "200MB", "190.7MB")


class _OutOfMemory:
    def execute(self, sql: str):
        raise duckdb.OutOfMemoryException("could not allocate block of size 4.2 GiB for value 12345.67")

    def interrupt(self) -> None:
        pass


def test_running_out_of_memory_is_refused_without_the_engines_words():
    with Budget(_OutOfMemory(), Deadline(10)) as budget:  # type: ignore[arg-type]
        with pytest.raises(QueryRefused, match="more memory than the policy's budget") as refusal:
            budget.run("select the rows", "SELECT 1")
    assert "12345" not in str(refusal.value)


def test_arrays_are_stopped_by_the_time_budget_and_fail_without_the_engines_words():
    """The contributions are read through a relation: the timer still interrupts it, and an error
    met while the rows stream in is refused like one met when the statement starts."""
    con = duckdb.connect()
    try:
        with Budget(con, Deadline(0.1)) as budget, \
                pytest.raises(QueryRefused, match="longer than the policy's budget"):
            budget.arrays("read the rows", "SELECT sum(hash(i * j)) AS s FROM range(200000000) t(i), range(4) u(j)")
        with Budget(con, Deadline(10)) as budget:
            assert budget.arrays("read the rows", "SELECT range AS i FROM range(3)")["i"].tolist() == [0, 1, 2]
            with pytest.raises(QueryRefused, match="could not read the rows") as refusal:
                budget.arrays("read the rows", "SELECT CAST('12345x' AS INTEGER) AS i FROM range(3)")
        assert "12345" not in str(refusal.value)
    finally:
        con.close()


def test_a_budget_spent_between_statements_refuses_the_next_one():
    """An interrupt reaches only a running statement: when the time is up while the query is between
    statements (its Python steps, slow on a busy machine), the next statement is refused, not run
    to its end (the test above once passed its whole quantile so, under load)."""
    con = duckdb.connect()
    try:
        with Budget(con, Deadline(0.01)) as budget:
            budget.run("select the rows", "SELECT 1")
            time.sleep(0.2)  # the timer fires here, with no statement running
            with pytest.raises(QueryRefused, match="budget of 0.01 seconds .*add up each person's rows"):
                budget.arrays("add up each person's rows", "SELECT 2 AS n")
    finally:
        con.close()
