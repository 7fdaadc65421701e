"""Group keys of code lists: an integer variable's codes compared as numbers give the same cells
as its text would (codes, labels shared by two codes, missing and not in the code list)."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from safepool.dictionary import Variable
from safepool.query.compile import Compiler, PersonRows
from safepool.query.engine import in_cells
from safepool.query.model import check_model
from safepool.query.sql_syntax import model_from_sql

CODES = {"1": "one", "2": "two", "-3": "minus three", "10": "two"}  # "10" shares the label of "2"


def _cells(kind: str, values: list) -> list[tuple]:
    dictionary = {"t": {"c": Variable.model_validate({"name": "c", "column": "c", "type": kind, "description": "c",
                                                      "level": "categorical", "codes": CODES})}}
    model = check_model(model_from_sql("SELECT c, count(*) AS n FROM t GROUP BY c", dictionary), dictionary, 100)
    compiler = Compiler(model, dictionary)
    con = duckdb.connect()
    try:
        sql_type = {"integer": "BIGINT", "string": "VARCHAR"}[kind]
        con.execute(f"CREATE TABLE t (pid BIGINT, c {sql_type})")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, v) for i, v in enumerate(values)])
        con.execute(f"CREATE VIEW base AS {compiler.base()}")
        return con.execute(f"SELECT {compiler.labels()[0]}, k0, count(*) FROM base GROUP BY ALL ORDER BY k0").fetchall()
    finally:
        con.close()


def test_integer_codes_are_compared_as_numbers_with_the_same_cells_as_text():
    numbers = [1, 2, 2, 10, -3, 7, None, 1, 0]
    as_numbers = _cells("integer", numbers)
    assert as_numbers == _cells("string", [None if v is None else str(v) for v in numbers])
    assert as_numbers == [("(not in the code list)", -2, 2), ("(missing)", -1, 1), ("one", 0, 2), ("two", 1, 3),
                          ("minus three", 2, 1)]


@pytest.mark.parametrize("kind, compared", [("integer", "CASE t0.\"c\" WHEN 1 THEN"), ("string", "CAST(t0.\"c\" AS VARCHAR)")])
def test_only_an_integer_variable_skips_the_text(kind, compared):
    dictionary = {"t": {"c": Variable.model_validate({"name": "c", "column": "c", "type": kind, "description": "c",
                                                      "level": "categorical", "codes": CODES})}}
    model = check_model(model_from_sql("SELECT c, count(*) AS n FROM t GROUP BY c", dictionary), dictionary, 100)
    assert compared in Compiler(model, dictionary).base()


def test_rows_of_a_table_of_one_row_per_person_are_handed_over_as_each_persons_sums():
    """Without the grouping by person (every table one row per person), the same columns and
    values: rows, each measured value's rows and sum, a missing value as no rows and no sum."""
    dictionary = {"t": {"c": Variable.model_validate({"name": "c", "column": "c", "type": "integer",
                                                      "description": "c", "level": "categorical", "codes": CODES}),
                        "x": Variable.model_validate({"name": "x", "column": "x", "type": "float", "description": "x",
                                                      "level": "numeric", "unit": "euro"})}}
    model = check_model(model_from_sql("SELECT c, avg(x) AS m, sum(x) AS s FROM t GROUP BY c", dictionary),
                        dictionary, 100)
    compiler = Compiler(model, dictionary)
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (pid BIGINT, c BIGINT, x DOUBLE)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)",
                        [(i, [1, 2, 10, None, 7][i % 5], None if i % 3 == 0 else i * 1.25) for i in range(40)])
        con.execute(f"CREATE VIEW base AS {compiler.base()}")
        grouped, plain = (con.sql(f"SELECT * FROM ({compiler.per_person(one)}) ORDER BY person")
                          for one in (False, True))
        assert grouped.columns == plain.columns and grouped.types == plain.types
        rows = grouped.fetchall()
        assert len(rows) == 40 and rows == plain.fetchall()  # rows of no cell (7, missing) come alike
        kept = in_cells(con.sql(f"SELECT * FROM ({compiler.per_person(True)}) ORDER BY person").fetchnumpy(),
                        compiler.keys)
        assert len(kept["person"]) == 24 and kept["k0"].min() >= 0  # and the engine leaves them out
    finally:
        con.close()


def _variable(name: str, **declared: object) -> Variable:
    return Variable.model_validate({"name": name, "column": name, "description": name, **declared})


@pytest.mark.parametrize("sql", [
    "SELECT c, s, sum(x) AS t, avg(x) AS m, count(*) AS n FROM t JOIN p USING (pid) WHERE m >= 2 GROUP BY c, s",
    "SELECT s, sum(x) AS t FROM t LEFT JOIN p USING (pid) WHERE y < 80 GROUP BY s",
    "SELECT s, count(*) AS n FROM t LEFT JOIN p USING (pid) GROUP BY s",
    "SELECT c, count(DISTINCT pid) AS n FROM t JOIN p USING (pid) WHERE s = 1 GROUP BY c",
])
def test_the_first_tables_rows_added_up_before_the_join_give_each_persons_sums(sql):
    """A register of several rows per person joined with one of one row per person: adding up a
    person's rows of the first before the join gives the same columns and values as adding up
    the joined rows (groups and filters of either table, inner and left joins, rows of no cell)."""
    codes = {"1": "one", "2": "two", "3": "three"}
    dictionary = {"t": {"c": _variable("c", type="integer", level="categorical", codes=codes),
                        "x": _variable("x", type="float", level="numeric", unit="euro"),
                        "m": _variable("m", type="integer", level="numeric", unit="month", bins=[1, 2, 3])},
                  "p": {"s": _variable("s", type="integer", level="categorical", codes=codes),
                        "y": _variable("y", type="integer", level="numeric", unit="year", bins=[40, 60, 80])}}
    compiler = Compiler(check_model(model_from_sql(sql, dictionary), dictionary, 100), dictionary)
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (pid BIGINT, c BIGINT, x DOUBLE, m BIGINT)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",  # sums of quarters: exact whatever their order
                        [(i % 17, [1, 2, 3, None, 9][i % 5], None if i % 7 == 0 else i * 0.25, i % 4)
                         for i in range(120)])
        con.execute("CREATE TABLE p (pid BIGINT, s BIGINT, y BIGINT)")
        con.executemany("INSERT INTO p VALUES (?, ?, ?)",
                        [(i, [1, 2, None, 3, 8][i % 5], 30 + 7 * i) for i in range(14)])  # 14-16 have none
        con.execute(f"CREATE VIEW base AS {compiler.base()}")
        joined, first = (con.sql(f"SELECT * FROM ({compiler.per_person(rows)}) ORDER BY ALL")
                         for rows in (PersonRows.JOINED, PersonRows.FIRST_ADDED_UP))
        assert joined.columns == first.columns and joined.types == first.types
        rows = joined.fetchall()
        assert len(rows) >= 5 and rows == first.fetchall()
        # rows of no cell (codes 9 and 8, missing ones) come both ways, and the engine leaves them out
        kept = [in_cells(con.sql(f"SELECT * FROM ({compiler.per_person(way)}) ORDER BY ALL").fetchnumpy(),
                         compiler.keys) for way in (PersonRows.JOINED, PersonRows.FIRST_ADDED_UP)]
        assert 0 < len(kept[0]["person"]) < len(rows) and all((kept[0][key] >= 0).all() for key in compiler.keys)
        assert all(np.array_equal(kept[0][name], kept[1][name]) for name in kept[0])
    finally:
        con.close()
