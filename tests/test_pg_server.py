"""The test PostgreSQL server works, through ADBC, and really asks for a password."""

from __future__ import annotations

import dataclasses
import datetime

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest

pytestmark = pytest.mark.postgres


def test_urls(postgres_server):
    assert postgres_server.password
    assert postgres_server.password not in postgres_server.url
    assert postgres_server.url.startswith(f"postgresql://{postgres_server.user}@")
    assert f":{postgres_server.password}@" in postgres_server.url_with_password


def test_ingest_and_read_back_arrow(postgres_database):
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "name": pa.array(["Aino", "Eino", None], pa.string()),
            "score": pa.array([1.5, None, -2.25], pa.float64()),
            "born": pa.array(
                [datetime.date(1990, 1, 2), datetime.date(2001, 12, 31), None], pa.date32()
            ),
        }
    )
    with pg.connect(postgres_database.url_with_password) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT, "
            "score DOUBLE PRECISION, born DATE)"
        )
        assert cur.adbc_ingest("people", table, mode="append") == 3
        conn.commit()

        cur.execute("SELECT id, name, score, born FROM people ORDER BY id")
        result = cur.fetch_arrow_table()

    assert result.schema.names == table.schema.names
    assert result.schema.types == table.schema.types
    assert result.to_pylist() == table.to_pylist()


def test_database_is_fresh_per_test(postgres_database):
    with pg.connect(postgres_database.url_with_password) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_database(), count(*) FROM pg_tables WHERE tablename = 'people'")
        assert cur.fetchone() == (postgres_database.dbname, 0)


def test_wrong_password_is_refused(postgres_server):
    wrong = dataclasses.replace(postgres_server, password=postgres_server.password + "x")
    with pytest.raises(Exception, match="password authentication failed"):
        pg.connect(wrong.url_with_password).close()
