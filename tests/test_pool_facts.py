"""The facts of whole pool tables are found once, when the pool is built, and read by every query.

A query's definitions need which tables hold every person of another, whether a table has one row
per person (or per person and period) and which kinds of value outside a variable's pieces its
table holds. Asked of the pool, each was a scan of a whole table in every process; now the build
keeps them in the manifest (`safepool.query.pool_facts`). They must be the pool's own facts, and a
pool built before them must be refused with a clear message, never answered on guessed facts.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import pytest

from safepool.pool.access import dictionary_in
from safepool.query.engine import run_query
from safepool.query.model import QueryRefused
from safepool.query.pool_facts import FACTS, find_facts
from governed import sign_in
from test_query_engine import DICTIONARY, PERMIT, governed_pool


def facts_of(tables: dict[str, pd.DataFrame]) -> dict:
    """The facts `find_facts` finds for these tables under the query tests' dictionary."""
    con = duckdb.connect()
    for name, frame in tables.items():
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    return find_facts(con, dictionary_in({"dictionary": DICTIONARY}, PERMIT))


def tables(payments: list[tuple[int, dt.date, float]], visits: list[tuple[int, int]]) -> dict[str, pd.DataFrame]:
    population = pd.DataFrame({"pid": [1, 2, 3], "birth_year": [1970, 1980, None], "sex": ["F", "M", "X"]})
    return {"population": population,
            "payments": pd.DataFrame(payments, columns=["pid", "paid_on", "amount"]).assign(bank="FI00"),
            "visits": pd.DataFrame(visits, columns=["pid", "month"])}


def test_facts_are_the_tables_own():
    found = facts_of(tables(payments=[(1, dt.date(2019, 1, 5), 10.0), (2, dt.date(2019, 2, 5), 20.0)],
                            visits=[(3, 201903), (3, 201905), (4, 202503)]))
    # population holds persons 1-3: every payer, but not visitor 4; payments hold no visitor
    assert found["covers"] == {"population": ["payments"], "payments": [], "visits": []}
    assert found["one_row_per_person"] == ["population", "payments"]
    # the visits table has two rows for person 3, in two quarters: one row per person and quarter
    assert "visits.month" in found["one_row_per_period"]
    assert found["outside"]["population.sex"] == ["not in the code list"]
    assert found["outside"]["population.birth_year"] == ["missing"]
    assert found["outside"]["visits.month"] == ["after the years"]
    assert "payments.bank" not in found["outside"]  # free text is never filtered or grouped


def test_two_rows_in_one_quarter_are_not_one_per_period():
    found = facts_of(tables(payments=[(1, dt.date(2019, 1, 5), 10.0), (1, dt.date(2019, 3, 5), 20.0),
                                      (2, dt.date(2019, 4, 5), 20.0)],
                            visits=[(1, 201903)]))
    assert "payments" not in found["one_row_per_person"]
    assert "payments.paid_on" not in found["one_row_per_period"]
    assert found["covers"]["population"] == ["payments", "visits"]


def test_the_build_keeps_the_facts_of_the_pool_it_wrote(tmp_path):
    workspace, _ = governed_pool(tmp_path)
    manifest_file = workspace.pool_dir / PERMIT / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    with duckdb.connect(str(workspace.pool_dir / PERMIT / "pool.duckdb"), read_only=True) as con:
        assert manifest[FACTS] == find_facts(con, dictionary_in(manifest, PERMIT))


@pytest.mark.parametrize("damage", ["missing", "damaged"])
def test_a_pool_without_its_facts_is_refused_and_audited(tmp_path, damage):
    workspace, governance = governed_pool(tmp_path)
    anna = sign_in(governance, "anna")
    manifest_file = workspace.pool_dir / PERMIT / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    if damage == "missing":
        del manifest[FACTS]
    else:
        manifest[FACTS] = {"covers": []}
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(QueryRefused) as refused:
        run_query(workspace.pool_dir, governance, anna, PERMIT, "SELECT sex, count(DISTINCT pid) FROM population "
                                                                "GROUP BY sex")
    assert "rebuild" in str(refused.value) and PERMIT in str(refused.value)
    last = governance.audit.records(action="query_refused")[-1]
    assert last.outcome == "refused" and "rebuild" in last.detail["reason"]
