"""The SQL guard: hostile queries are refused by name, aggregate queries are accepted and understood."""

import hashlib

import pytest

from governed import sign_in
from safepool.query.engine import run_query
from test_query_engine import PERMIT, governed_pool

from safepool.query.request import AggregateRequest, RequestError, parse_filter
from safepool.query.sql_guard import QueryRefused, check_sql

SCHEMA = {"population": ["pid", "birth_year", "sex"], "payments": ["pid", "paid_on", "amount"],
          "visits": ["pid", "month"]}

# (query, what the refusal must say)
HOSTILE = [
    ("SELECT * FROM payments", "SELECT \\* returns rows"),
    ("FROM payments", "SELECT \\* returns rows"),
    ("SELECT p.* FROM payments p", "SELECT \\* returns rows"),
    ("SELECT amount FROM payments", "neither an aggregate nor a GROUP BY key"),
    ("SELECT pid, count(*) FROM payments GROUP BY pid", "pseudonym column pid"),
    ("SELECT count(*) FROM payments GROUP BY pid", "pseudonym column pid"),
    ("SELECT count(*) FROM payments WHERE pid = '1234'", "pseudonym column pid"),
    ("SELECT sum(CASE WHEN pid = '1' THEN amount END) FROM payments", "pseudonym column pid"),
    ("SELECT count(*) AS pid FROM payments", "may not be named pid"),
    ("SELECT max(amount) FROM payments", "max is not allowed: it returns one person's value"),
    ("SELECT min(amount) FROM payments", "min is not allowed: it returns one person's value"),
    ("SELECT any_value(amount) FROM payments", "any_value is not allowed: it returns one person's value"),
    ("SELECT first(amount) FROM payments", "first is not allowed: it returns one person's value"),
    ("SELECT arg_max(amount, paid_on) FROM payments", "arg_max is not allowed"),
    ("SELECT list(amount) FROM payments", "array_agg is not allowed: it returns one person's value"),
    ("SELECT string_agg(sex, ',') FROM population", "is not allowed: it returns one person's value"),
    ("SELECT mode(sex) FROM population", "mode is not allowed: it returns one person's value"),
    ("SELECT stddev(amount) FROM payments", "aggregate stddev is not allowed"),
    ("SELECT quantile_cont(amount, 0.0) FROM payments", "must lie between 0.1 and 0.9"),
    ("SELECT quantile_cont(amount, 1) FROM payments", "must lie between 0.1 and 0.9"),
    ("SELECT sum(amount) OVER () FROM payments", "window functions"),
    ("SELECT count(*) FROM read_csv('/etc/passwd')", "table function read_csv"),
    ("SELECT count(*) FROM read_parquet('x.parquet')", "table function read_parquet"),
    ("SELECT count(*) FROM glob('*')", "table function glob"),
    ("SELECT count(*) FROM query_table('payments')", "table function query_table"),
    ("SELECT count(*) FROM 'secret.csv'", "not in this permit's pool|outside the permit: register secret.csv"),
    ("SELECT count(*), getenv('HOME') AS h FROM payments GROUP BY h", "function getenv is not allowed"),
    ("SELECT sum(length(read_text('x'))) FROM payments", "function read_text is not allowed"),
    ("SELECT count(*) FROM payments WHERE current_setting('threads') = 1", "function current_setting"),
    ("SELECT count(*) FROM taxes", "table taxes is not in this permit's pool|outside the permit: register taxes"),
    ("SELECT count(*) FROM other.main.payments", "names a database or schema"),
    ("SELECT count(*) FROM duckdb_tables()", "table function duckdb_tables"),
    ("DROP TABLE payments", "only a SELECT statement is allowed, not DROP"),
    ("CREATE TABLE x AS SELECT 1", "only a SELECT statement is allowed, not CREATE"),
    ("INSERT INTO payments VALUES (1)", "only a SELECT statement is allowed, not INSERT"),
    ("DELETE FROM payments", "only a SELECT statement is allowed, not DELETE"),
    ("UPDATE payments SET amount = 0", "only a SELECT statement is allowed, not UPDATE"),
    ("PRAGMA database_list", "only a SELECT statement is allowed, not PRAGMA"),
    ("ATTACH 'other.duckdb' AS o", "only a SELECT statement is allowed, not ATTACH"),
    ("COPY payments TO 'out.csv'", "only a SELECT statement is allowed, not COPY"),
    ("SET enable_external_access = true", "only a SELECT statement is allowed, not SET"),
    ("INSTALL httpfs", "only a SELECT statement is allowed, not INSTALL"),
    ("LOAD httpfs", "only a SELECT statement is allowed, not LOAD"),
    ("CALL pragma_version()", "only a SELECT statement is allowed, not CALL"),
    ("SELECT count(*) FROM payments; DROP TABLE payments", "exactly one statement is allowed, found 2"),
    ("SELECT count(*) FROM payments; SELECT count(*) FROM visits", "exactly one statement is allowed, found 2"),
    ("SELECT count(*) FROM payments -- ; DROP TABLE payments", "comments are not allowed"),
    ("SELECT count(*) /* ; COPY payments TO 'x' */ FROM payments", "comments are not allowed"),
    ("SELECT count(*) FROM (SELECT * FROM payments)", "subqueries are not allowed"),
    ("SELECT count(*) FROM payments WHERE amount > (SELECT 1)", "subqueries are not allowed"),
    ("SELECT count(*) FROM payments WHERE EXISTS (SELECT 1)", "subqueries are not allowed"),
    ("WITH x AS (SELECT * FROM payments) SELECT count(*) FROM x", "WITH"),
    ("SELECT count(*) FROM payments UNION SELECT count(*) FROM visits", "only a SELECT statement"),
    ("SELECT count(*) FROM payments a, visits b", "joined without a condition"),
    ("SELECT count(*) FROM payments a CROSS JOIN visits b", "CROSS JOIN is not allowed"),
    ("SELECT count(*) FROM payments a JOIN visits b ON a.amount = b.month", "joined on the person only"),
    ("SELECT count(*) FROM payments a JOIN visits b USING (month)", "joined on the person only"),
    ("SELECT count(*) FROM payments a POSITIONAL JOIN visits b", "POSITIONAL JOIN is not allowed"),
    ("SELECT sex, count(*) FROM population GROUP BY sex HAVING count(*) = 1", "HAVING is not allowed"),
    ("SELECT sex, count(*) FROM population GROUP BY sex ORDER BY 2", "ORDER BY is not allowed"),
    ("SELECT count(*) FROM payments LIMIT 1", "LIMIT is not allowed"),
    ("SELECT DISTINCT sex FROM population", "SELECT DISTINCT is not allowed"),
    ("SELECT count(*) FROM payments TABLESAMPLE 10%", "TABLESAMPLE is not allowed"),
    ("SELECT count(DISTINCT amount) FROM payments", "only for persons"),
    ("SELECT sum(DISTINCT amount) FROM payments", "DISTINCT inside sum"),
    ("SELECT sum(amount) / count(*) FROM payments", "mixes an aggregate"),
    ("SELECT count(*) FILTER (WHERE amount > 1) FROM payments", "FILTER clauses are not allowed"),
    ("SELECT sex, count(*) FROM population GROUP BY ALL", "GROUP BY ALL is not allowed"),
    ("SELECT sex, count(*) FROM population GROUP BY ROLLUP (sex)", "ROLLUP is not allowed"),
    ("SELECT count(*) FROM payments WHERE sum(amount) > 1", "aggregates are not allowed in WHERE"),
    ("SELECT sum(count(*)) FROM payments", "may not contain another aggregate"),
    ("SELECT count(*) FROM payments WHERE amount = ?", "parameters are not allowed"),
    ("SELECT count(*) FROM payments WHERE random() < 0.5", "function rand"),
    ("SELECT count(*) FROM payments WHERE nope > 1", "no table in the query has a column nope"),
    ("SELECT count(*) FROM payments a JOIN population b USING (pid) WHERE pid > '0'", "pseudonym column pid"),
    ("SELECT sex FROM population GROUP BY sex", "has no aggregate"),
    ("VACUUM", "only a SELECT statement"),
    ("", "the query is empty"),
    ("SELEC count(*) FROM payments", "not valid SQL|only a SELECT"),
]


@pytest.mark.parametrize(("sql", "reason"), HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_query_is_refused_with_its_reason(sql, reason):
    with pytest.raises(QueryRefused, match=reason):
        check_sql(sql, SCHEMA)


def test_every_hostile_query_is_refused_in_the_pool_and_logged(tmp_path):
    """Through the engine, under the analyst's permit: each refusal is one audited record, named by
    the digest of the query (never its text)."""
    workspace, governance = governed_pool(tmp_path / "ws")
    anna = sign_in(governance, "anna")
    for sql, reason in HOSTILE:
        with pytest.raises(QueryRefused, match=reason):
            run_query(workspace.pool_dir, governance, anna, PERMIT, sql)
        record = governance.audit.records(action="query_refused")[-1]
        assert record.detail["query_sha256"] == hashlib.sha256(sql.encode()).hexdigest()
        assert record.outcome == "refused" and record.permit == PERMIT
    assert len(governance.audit.records(action="query_refused")) == len(HOSTILE)
    assert governance.audit.records(action="query") == []
    assert governance.audit.verify().ok


def test_refusals_never_echo_the_query_values():
    for sql, _ in HOSTILE:
        try:
            check_sql(sql, SCHEMA)
        except QueryRefused as refusal:
            assert "1234" not in str(refusal) and "/etc/passwd" not in str(refusal)


def test_accepted_query_is_understood():
    query = check_sql("SELECT p.sex AS sex, year(paid_on) AS y, count(DISTINCT pid) AS n, sum(amount), "
                      "avg(amount) AS mean_amount, median(amount) m, quantile_cont(amount, 0.25) AS q "
                      "FROM payments a JOIN population p ON a.pid = p.pid LEFT JOIN visits v USING (pid) "
                      "WHERE v.month IS NULL AND amount BETWEEN 1 AND 1000 GROUP BY 1, y", SCHEMA)
    assert [k.name for k in query.keys] == ["sex", "y"]
    assert [(m.name, m.kind, m.quantile) for m in query.measures] == [
        ("n", "persons", None), ("sum(amount)", "sum", None), ("mean_amount", "mean", None),
        ("m", "quantile", 0.5), ("q", "quantile", 0.25)]
    assert query.columns == {"payments": ["amount", "paid_on"], "population": ["sex"], "visits": ["month"]}
    assert [t.name for t in query.tables] == ["payments", "population", "visits"]


def test_mean_is_an_average_and_count_star_counts_rows():
    query = check_sql("SELECT mean(amount) AS m, count(*) AS rows FROM payments", SCHEMA)
    assert [m.kind for m in query.measures] == ["mean", "count"]


def test_a_join_must_reach_back_to_an_earlier_table():
    with pytest.raises(QueryRefused, match="earlier table"):
        check_sql("SELECT count(*) FROM payments a JOIN visits b ON b.pid = b.pid", SCHEMA)


def test_structured_request_becomes_a_checked_query():
    request = AggregateRequest(table="payments", join=["population"], measure="mean", value="amount",
                               by=["population.sex"], filters=[parse_filter("amount between 1,500"),
                                                               parse_filter("sex in F,M")])
    query = check_sql(request.to_sql(), SCHEMA)
    assert [m.kind for m in query.measures] == ["mean"] and [k.name for k in query.keys] == ["sex"]
    assert query.columns == {"payments": ["amount"], "population": ["sex"]}


def test_structured_count_counts_persons():
    query = check_sql(AggregateRequest(table="visits", measure="count", by=["month"]).to_sql(), SCHEMA)
    assert [m.kind for m in query.measures] == ["persons"]


@pytest.mark.parametrize("text", ["sex", "sex ~ F", "amount between 1", "sex in", "month is null 3"])
def test_bad_cli_filter_is_a_clear_error(text):
    with pytest.raises(RequestError, match="filter"):
        parse_filter(text)


def test_filters_parse_numbers_and_lists():
    assert parse_filter("birth_year >= 1980").value == 1980
    assert parse_filter("sex not in F,M").value == ["F", "M"]
    assert parse_filter("month is not null").operator == "is not null"


@pytest.mark.parametrize("options, problem", [
    ({"table": "payments", "measure": "sum"}, "needs a value column"),
    ({"table": "payments", "measure": "count", "value": "amount"}, "takes no value column"),
    ({"table": "payments", "measure": "quantiles", "value": "amount", "quantiles": [0.01]}, "between 0.1 and 0.9"),
    ({"table": "payments; DROP", "measure": "count"}, "table"),
    ({"table": "payments", "measure": "max", "value": "amount"}, "measure"),
])
def test_bad_structured_request_names_the_problem(options, problem):
    with pytest.raises(RequestError, match=problem):
        AggregateRequest.from_options(**options)
