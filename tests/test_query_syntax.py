"""SQL and the structured request are two syntaxes of one query model: whatever the model cannot
say is refused by name before the pool is opened, and what it can say is understood the same way."""

import hashlib

import pytest

from governed import sign_in
from safepool.query.engine import run_query
from safepool.query.model import QueryRefused, check_model
from safepool.query.request import AggregateRequest, RequestError, parse_filter
from safepool.query.sql_syntax import model_from_sql
from safepool.registers.catalogue import Variable
from test_query_engine import DICTIONARY, PERMIT, governed_pool

POOL = {table: {v["name"]: Variable.model_validate({**v, "column": v["name"]}) for v in variables}
        for table, variables in DICTIONARY.items()}


def model(sql: str, max_cells: int = 1000):
    return check_model(model_from_sql(sql, POOL), POOL, max_cells)


# (query, what the refusal must say)
HOSTILE = [
    ("SELECT * FROM payments", "SELECT \\* returns rows"),
    ("SELECT p.* FROM payments p", "SELECT \\* returns rows"),
    ("SELECT amount FROM payments", "amount is numeric; a group is"),
    ("SELECT sex FROM population GROUP BY sex", "has no measure"),
    ("SELECT pid, count(*) AS n FROM payments GROUP BY pid", "pseudonym pid"),
    ("SELECT count(*) AS n FROM payments WHERE pid = '1234'", "pseudonym pid"),
    ("SELECT sum(CASE WHEN pid = '1' THEN amount END) AS s FROM payments", "CASE, arithmetic, casts"),
    ("SELECT count(*) AS pid FROM payments", "pseudonym pid|used twice or reserved|plain name"),
    ("SELECT max(amount) AS m FROM payments", "max is not a measure of the query model"),
    ("SELECT min(amount) AS m FROM payments", "min is not a measure of the query model"),
    ("SELECT any_value(amount) AS m FROM payments", "is not a measure of the query model"),
    ("SELECT first(amount) AS m FROM payments", "is not a measure of the query model"),
    ("SELECT arg_max(amount, paid_on) AS m FROM payments", "is not a measure of the query model"),
    ("SELECT list(amount) AS m FROM payments", "is not a measure of the query model"),
    ("SELECT mode(sex) AS m FROM population", "is not a measure of the query model"),
    ("SELECT stddev(amount) AS m FROM payments", "is not a measure of the query model"),
    ("SELECT quantile_cont(amount, 0.0) AS q FROM payments", "must lie between 0.1 and 0.9"),
    ("SELECT quantile_cont(amount, 1) AS q FROM payments", "must lie between 0.1 and 0.9"),
    ("SELECT sum(amount) OVER () AS s FROM payments", "window functions"),
    ("SELECT count(*) AS n FROM read_csv('/etc/passwd')", "not in this permit's pool|not allowed in FROM"),
    ("SELECT count(*) AS n FROM glob('*')", "not in this permit's pool|not allowed in FROM"),
    ("SELECT count(*) AS n FROM 'secret.csv'", "not in this permit's pool"),
    ("SELECT count(*) AS n, getenv('HOME') AS h FROM payments GROUP BY h", "getenv is outside the query model"),
    ("SELECT sum(length(read_text('x'))) AS s FROM payments", "CASE, arithmetic, casts and functions"),
    ("SELECT count(*) AS n FROM payments WHERE current_setting('threads') = 1", "outside the query model"),
    ("SELECT count(*) AS n FROM taxes", "table taxes is not in this permit's pool"),
    ("SELECT count(*) AS n FROM other.main.payments", "names a database or schema"),
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
    ("CALL pragma_version()", "only a SELECT statement is allowed, not CALL"),
    ("SELECT count(*) AS n FROM payments; DROP TABLE payments", "exactly one statement is allowed, found 2"),
    ("SELECT count(*) AS n FROM payments -- ; DROP TABLE payments", "comments are not allowed"),
    ("SELECT count(*) /* x */ AS n FROM payments", "comments are not allowed"),
    ("SELECT count(*) AS n FROM (SELECT * FROM payments)", "subqueries are not allowed"),
    ("SELECT count(*) AS n FROM payments WHERE amount > (SELECT 1)", "not a constant"),
    ("SELECT count(*) AS n FROM payments WHERE EXISTS (SELECT 1)", "outside the query model"),
    ("WITH x AS (SELECT * FROM payments) SELECT count(*) AS n FROM x", "WITH"),
    ("SELECT count(*) AS n FROM payments UNION SELECT count(*) AS n FROM visits", "only a SELECT statement"),
    ("SELECT count(*) AS n FROM payments a, visits b", "joined without a condition"),
    ("SELECT count(*) AS n FROM payments a CROSS JOIN visits b", "join of b is not allowed"),
    ("SELECT count(*) AS n FROM payments a JOIN visits b ON a.amount = b.month", "joined on the person only"),
    ("SELECT count(*) AS n FROM payments a JOIN visits b USING (month)", "joined on the person only"),
    ("SELECT sex, count(*) AS n FROM population GROUP BY sex HAVING count(*) = 1", "HAVING is not allowed"),
    ("SELECT sex, count(*) AS n FROM population GROUP BY sex ORDER BY 2", "ORDER BY is not allowed"),
    ("SELECT count(*) AS n FROM payments LIMIT 1", "LIMIT is not allowed"),
    ("SELECT DISTINCT sex FROM population", "SELECT DISTINCT is not allowed"),
    ("SELECT count(DISTINCT amount) AS n FROM payments", "count\\(DISTINCT pid\\) for persons"),
    ("SELECT sum(amount) / count(*) AS x FROM payments", "outside the query model"),
    ("SELECT sex, count(*) AS n FROM population GROUP BY ROLLUP (sex)", "ROLLUP, CUBE and GROUPING SETS are not allowed"),
    ("SELECT count(*) AS n FROM payments WHERE sum(amount) > 1", "outside the query model"),
    ("SELECT count(*) AS n FROM payments WHERE amount = ?", "not a constant"),
    ("SELECT count(*) AS n FROM payments WHERE nope > 1", "declared variable nope"),
    # what the model cannot express: values turned into labels, arithmetic, casts, OR
    ("SELECT CASE WHEN birth_year = 1940 THEN amount ELSE 0 END AS v, count(*) AS n "
     "FROM payments JOIN population USING (pid) GROUP BY 1", "CASE is outside the query model"),
    ("SELECT CAST(amount AS TINYINT) AS v, count(*) AS n FROM payments GROUP BY 1", "a cast is outside"),
    ("SELECT round(amount, -1) AS v, count(*) AS n FROM payments GROUP BY 1", "round is outside"),
    ("SELECT sum(amount + 1000000 * amount) AS s FROM payments", "CASE, arithmetic, casts"),
    ("SELECT sum(CAST(amount AS DECIMAL(4,0))) AS s FROM payments", "CASE, arithmetic, casts"),
    ("SELECT paid_on, count(*) AS n FROM payments GROUP BY paid_on", "paid_on is date; a group is"),
    ("SELECT bin(sex) AS b, count(*) AS n FROM population GROUP BY b", "categorical; group by it directly"),
    ("SELECT year(amount) AS b, count(*) AS n FROM payments GROUP BY b", "numeric value; group by its policy bins"),
    ("SELECT bank, count(*) AS n FROM payments GROUP BY bank", "bank is text"),
    ("SELECT count(*) AS n FROM payments WHERE bank = 'x'", "free text and cannot be filtered"),
    ("SELECT count(*) AS n FROM payments WHERE amount > 1 OR amount < 0", "OR is outside the query model"),
    ("SELECT count(*) AS n FROM payments WHERE amount > paid_on", "not a constant"),
    ("SELECT count(*) AS n FROM payments WHERE amount * 2 > 1", "outside the query model"),
    ("SELECT count(*) AS n FROM population WHERE sex = 'X'", "not a code of its code list"),
    ("SELECT count(*) AS n FROM population WHERE sex > 'F'", "compared with =, !=, in or not in"),
    ("SELECT sum(sex) AS n FROM population", "only numeric variables"),
    # constants of the dictionary's resolution only: a threshold or a day of one's own could close in on a person
    ("SELECT count(*) AS n FROM payments WHERE amount > 123.45", "edges of its policy bins \\(100, 250, 400, 10,000\\)"),
    ("SELECT count(*) AS n FROM payments WHERE amount BETWEEN 100 AND 399", "edges of its policy bins"),
    ("SELECT count(*) AS n FROM payments WHERE paid_on = DATE '2019-01-01'", "with < or >= the first day of a month"),
    ("SELECT count(*) AS n FROM payments WHERE paid_on <= DATE '2019-01-01'", "with < or >= the first day of a month"),
    ("SELECT count(*) AS n FROM payments WHERE paid_on >= DATE '2019-01-05'", "first day of a month \\(YYYY-MM-01\\)"),
    ("SELECT count(*) AS n FROM visits WHERE month = DATE '2019-03-02'", "first day of a month"),
    ("SELECT count(*) AS n FROM population WHERE birth_year = DATE '1950-07-01'", "first day of a year"),
    ("", "the query is empty"),
    ("SELEC count(*) FROM payments", "not valid SQL|only a SELECT"),
    ("SELECT count(*) AS n FROM payments WHERE " + "(" * 3000 + "amount > 1" + ")" * 3000, "nested too deeply|longer"),
]


@pytest.mark.parametrize(("sql", "reason"), HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_what_the_model_cannot_say_is_refused_by_name(sql, reason):
    with pytest.raises(QueryRefused, match=reason):
        model(sql)


def test_every_refusal_in_the_pool_is_audited_by_digest(tmp_path):
    """Through the engine, under the analyst's permit: each refusal is one audited record, named by
    the digest of the query (never its text), and nothing reads the pool."""
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
    assert governance.audit.records(action="pool_access") == []
    assert governance.audit.verify().ok


def test_refusals_never_echo_the_query_values():
    for sql, _ in HOSTILE:
        try:
            model(sql)
        except QueryRefused as refusal:
            for value in ("1234", "/etc/passwd", "HOME", "'X'", "1000000", "1940"):
                assert value not in str(refusal), (sql, str(refusal))


def test_an_accepted_query_is_understood():
    query = model("SELECT p.sex AS sex, year(paid_on) AS y, count(DISTINCT pid) AS n, sum(amount), "
                  "avg(amount) AS mean_amount, median(amount) m, quantile_cont(amount, 0.25) AS q, share(amount) sh, "
                  "count(*) AS rows FROM payments a JOIN population p ON a.pid = p.pid LEFT JOIN visits v USING (pid) "
                  "WHERE v.month IS NULL AND amount BETWEEN 100 AND 400 AND p.sex IN ('F') GROUP BY 1, y")
    assert [(g.name, g.part) for g in query.groups] == [("sex", "code"), ("y", "year")]
    assert [(m.name, m.kind, m.quantile) for m in query.measures] == [
        ("n", "persons", None), ("sum_amount", "sum", None), ("mean_amount", "mean", None),
        ("m", "quantile", 0.5), ("q", "quantile", 0.25), ("sh", "share", None), ("rows", "rows", None)]
    assert query.variables() == {"payments": ["amount", "paid_on"], "population": ["sex"], "visits": ["month"]}
    assert query.tables == ("payments", "population", "visits") and query.inner_join == (True, False)


def test_date_constants_are_read_in_the_variables_own_terms():
    query = model("SELECT count(*) AS n FROM visits WHERE month >= 201903 AND month < DATE '2020-01-01'")
    assert [str(c.values[0]) for c in query.filters] == ["2019-03-01", "2020-01-01"]
    with pytest.raises(QueryRefused, match="is not a date"):
        model("SELECT count(*) AS n FROM visits WHERE month = 'soon'")


@pytest.mark.parametrize(("condition", "read"), [
    ("month <= 2020", [("<", "2021-01-01")]),            # up to December 2020, not January
    ("month > 2019", [(">=", "2020-01-01")]),
    ("month = 2019", [(">=", "2019-01-01"), ("<", "2020-01-01")]),
    ("month BETWEEN 2019 AND 2020", [(">=", "2019-01-01"), ("<", "2021-01-01")]),
    ("month = 201903", [("=", "2019-03-01")]),            # a month of months is one value
    ("month IN (201903, 201905)", [("in", "2019-03-01")]),
])
def test_a_constant_naming_a_period_takes_the_whole_period(condition, read):
    """On a variable written yyyymm, `month <= 2020` had read 2020 as January 2020."""
    query = model(f"SELECT count(*) AS n FROM visits WHERE {condition}")
    assert [(c.operator, str(c.values[0])) for c in query.filters] == read


@pytest.mark.parametrize("condition", ["month != 2019", "month IN (2019, 2020)", "month NOT IN ('2019Q1')"])
def test_a_period_of_several_values_is_refused_where_it_cannot_be_one_value(condition):
    with pytest.raises(QueryRefused, match="is a period of several values of month, compared with .*; write a "
                                           "range \\(>= and <, or between\\), or group by it"):
        model(f"SELECT count(*) AS n FROM visits WHERE {condition}")


def test_the_cell_budget_is_known_before_anything_runs():
    # the answer's cells: 76 years and a total, times 2 sexes and a total (missing values, codes outside
    # the list and years outside the declared ones belong to no cell)
    query = "SELECT year(birth_year) AS y, sex, count(*) AS n FROM population GROUP BY 1, 2"
    assert model(query)
    with pytest.raises(QueryRefused, match="have 231 cells, year\\(birth_year\\) \\(76 \\+ total\\) x sex "
                                           "\\(2 \\+ total\\) x 1 measure; the policy's budget is 230"):
        model(query, max_cells=230)


@pytest.mark.parametrize(("where", "cells"), [
    ("", 6 * 37 * 2),                                                       # 5 bins and a total x 36 months
    ("WHERE paid_on >= DATE '2019-01-01' AND paid_on < DATE '2020-01-01'", 6 * 13 * 2),  # a range of dates
    ("WHERE paid_on BETWEEN DATE '2019-01-01' AND DATE '2019-06-30'", 6 * 7 * 2),      # as a range of days
    ("WHERE amount >= 250", 4 * 37 * 2),                                    # bins of a numeric variable
    ("WHERE amount >= 250 AND amount < 400", 2 * 37 * 2),
    ("WHERE amount IN (100, 250)", 3 * 37 * 2),
])
def test_the_budget_counts_the_labels_the_filters_leave(where, cells):
    """A filter on a grouped variable shrinks the grid it is counted on, as it shrinks the answer: the
    labels its codes, edges or months leave possible."""
    query = f"SELECT bin(amount) AS b, month(paid_on) AS m, count(*) AS n, sum(amount) AS s FROM payments {where} " \
            "GROUP BY 1, 2"
    assert model(query, max_cells=cells)
    with pytest.raises(QueryRefused, match=f"would have {cells:,} cells"):
        model(query, max_cells=cells - 1)


def test_a_categorical_filter_shrinks_its_group_and_the_refusal_says_how_it_counted():
    query = "SELECT sex, year(birth_year) AS y, count(*) AS n FROM population WHERE sex = 'F' AND " \
            "birth_year >= 1950 AND birth_year < 1960 GROUP BY 1, 2"
    assert model(query, max_cells=2 * 11)
    with pytest.raises(QueryRefused) as refused:
        model(query, max_cells=21)
    assert "would have 22 cells, sex (1 + total) x year(birth_year) (10 + total) x 1 measure; the policy's " \
           "budget is 21: filter a grouped variable to fewer labels" in str(refused.value)


def test_the_grid_the_engine_answers_is_the_one_the_budget_counts():
    from safepool.query.compile import Compiler
    from safepool.query.model import answer_size

    for where in ("", "WHERE sex IN ('F')", "WHERE paid_on BETWEEN DATE '2019-03-01' AND DATE '2020-02-29'",
                  "WHERE amount < 250 AND paid_on >= DATE '2020-01-01'"):
        checked = model("SELECT sex, month(paid_on) AS m, count(*) AS n FROM payments JOIN population USING (pid) "
                        f"{where} GROUP BY 1, 2")
        [(_, sexes), (_, months)] = answer_size(checked, POOL).groups
        assert len(Compiler(checked, POOL).grid()) == sexes * months


# dates written to the day compare by whole months: a range as SQL writes one is read as >= and <
WHOLE_MONTHS = [
    ("paid_on BETWEEN DATE '2019-01-01' AND DATE '2019-12-31'", [(">=", "2019-01-01"), ("<", "2020-01-01")]),
    ("paid_on BETWEEN '2019-02-01' AND '2019-02-28'", [(">=", "2019-02-01"), ("<", "2019-03-01")]),
    ("paid_on <= DATE '2020-02-29'", [("<", "2020-03-01")]),
    ("paid_on > '2019-06-30'", [(">=", "2019-07-01")]),
    ("paid_on >= 2019 AND paid_on < '2019Q3'", [(">=", "2019-01-01"), ("<", "2019-07-01")]),
    # a constant that names a period is that whole period
    ("paid_on BETWEEN '2019' AND '2020'", [(">=", "2019-01-01"), ("<", "2021-01-01")]),
    ("paid_on <= 2019", [("<", "2020-01-01")]),
    ("paid_on > '2019Q1'", [(">=", "2019-04-01")]),
    ("paid_on = 201903", [(">=", "2019-03-01"), ("<", "2019-04-01")]),
    ("paid_on BETWEEN '2019Q2' AND DATE '2019-12-31'", [(">=", "2019-04-01"), ("<", "2020-01-01")]),
]


@pytest.mark.parametrize(("condition", "read"), WHOLE_MONTHS)
def test_a_range_of_whole_months_is_accepted_however_it_is_written(condition, read):
    query = model(f"SELECT count(*) AS n FROM payments WHERE {condition}")
    assert [(c.operator, str(c.values[0])) for c in query.filters] == read


def test_between_in_a_request_file_is_read_as_the_same_range():
    from safepool.query.request import AggregateRequest

    request = AggregateRequest(table="payments", measure="persons",
                               filters=[parse_filter("paid_on between 2019-01-01 and 2019-12-31")])
    checked = check_model(request.model(POOL), POOL, 1000)
    assert [(c.operator, str(c.values[0])) for c in checked.filters] == [(">=", "2019-01-01"), ("<", "2020-01-01")]


@pytest.mark.parametrize(("condition", "fix"), [
    ("paid_on BETWEEN DATE '2019-01-01' AND DATE '2019-12-01'",
     "write paid_on >= 2019-01-01 and paid_on < 2020-01-01, or paid_on between 2019-01-01 and 2019-12-31"),
    ("paid_on <= DATE '2019-03-01'", "write paid_on < 2019-04-01, or paid_on <= 2019-03-31"),
    ("paid_on > DATE '2019-03-15'", "write paid_on >= 2019-04-01, or paid_on > 2019-03-31"),
    ("paid_on = DATE '2019-03-01'", "write paid_on >= 2019-03-01 and paid_on < 2019-04-01 for that month, or group "
                                    "by month\\(paid_on\\)"),
    ("paid_on IN (DATE '2019-03-01', DATE '2019-04-01')", "write group by month\\(paid_on\\), or take a range"),
])
def test_a_comparison_of_single_days_is_refused_with_the_form_that_takes_whole_months(condition, fix):
    with pytest.raises(QueryRefused, match=f"or between a first and a last day, so that the filter takes whole "
                                           f"months .*; {fix}"):
        model(f"SELECT count(*) AS n FROM payments WHERE {condition}")


def test_a_range_that_does_not_start_on_a_first_day_is_still_refused():
    with pytest.raises(QueryRefused, match="first day of a month \\(YYYY-MM-01\\), never with a day of its own"):
        model("SELECT count(*) AS n FROM payments WHERE paid_on BETWEEN DATE '2019-01-02' AND DATE '2019-12-31'")


def test_a_join_must_use_its_own_pid():
    with pytest.raises(QueryRefused, match="its own pid"):
        model("SELECT count(*) AS n FROM payments a JOIN visits b ON a.pid = a.pid")


def test_a_structured_request_is_the_same_model_as_its_sql():
    request = AggregateRequest(table="payments", join=["population"], measure="mean", value="amount",
                               by=["population.sex", "month(paid_on)"],
                               filters=[parse_filter("amount between 100,400"), "sex in F,M"])
    from_request = check_model(request.model(POOL), POOL, 1000)
    from_sql = model("SELECT population.sex AS sex, month(paid_on) AS month_paid_on, mean(amount) AS mean "
                     "FROM payments LEFT JOIN population USING (pid) WHERE amount BETWEEN 100 AND 400 "
                     "AND sex IN ('F', 'M') GROUP BY 1, 2")
    assert from_request == from_sql


@pytest.mark.parametrize("by, problem", [("amount", "policy bins"), ("paid_on", "is a date"),
                                         ("bin(birth_year)", "is a date"), ("bank", "free text")])
def test_a_request_groups_only_by_model_terms(by, problem):
    request = AggregateRequest(table="payments", join=["population"], measure="persons", by=[by])
    with pytest.raises(QueryRefused, match=problem):
        check_model(request.model(POOL), POOL, 1000)


@pytest.mark.parametrize("text", ["sex", "sex ~ F", "amount between 1", "sex in", "month is null 3", "sex=",
                                  "sex == F"])
def test_a_bad_filter_is_a_clear_error(text):
    with pytest.raises(RequestError, match="filter"):
        parse_filter(text)


@pytest.mark.parametrize("text, problem", [
    ("sex == F", "the operator must be one of =, !=,"),  # read as '=' with the value '= F' until a review
    ("birth_year = 1980 AND sex = F", "one condition per filter"),
    ("sex in F or M", "one condition per filter"), ("sex ~ F", "filter on sex: the operator must be one of"),
    ("sex", "needs a variable, an operator and a value")])
def test_a_filter_message_names_the_problem_and_never_the_value(text, problem):
    with pytest.raises(RequestError, match=problem) as caught:
        parse_filter(text)
    assert "1980" not in str(caught.value) and "F or M" not in str(caught.value)


@pytest.mark.parametrize("text, operator, value", [
    ("sex=F", "=", "F"), ("birth_year>=1980", ">=", 1980), ("sex <> F", "!=", "F"), ("sex = 'F'", "=", "F"),
    ("birth_year = '1980'", "=", "1980"), ("amount between 100 and 400", "between", [100, 400]),
    ("amount BETWEEN 100,400", "between", [100, 400]), ("sex NOT  IN (F, M)", "not in", ["F", "M"]),
    ("month IS NOT NULL", "is not null", None), ("indexed = 3", "=", 3)])
def test_filters_read_as_an_analyst_writes_them(text, operator, value):
    found = parse_filter(text)
    assert (found.operator, found.value) == (operator, value)


def test_filters_parse_numbers_and_lists():
    assert parse_filter("birth_year >= 1980").value == 1980
    assert parse_filter("sex not in F,M").value == ["F", "M"]
    assert parse_filter("month is not null").operator == "is not null"


@pytest.mark.parametrize("options, problem", [
    ({"table": "payments", "measure": "sum"}, "needs a value variable"),
    ({"table": "payments", "measure": "persons", "value": "amount"}, "takes no value variable"),
    ({"table": "payments", "measure": "quantiles", "value": "amount", "quantiles": [0.01]}, "between 0.1 and 0.9"),
    ({"table": "payments; DROP", "measure": "persons"}, "table"),
    ({"table": "payments", "measure": "max", "value": "amount"}, "measure"),
    ({"table": "payments", "measure": "persons", "by": ["round(amount)"]}, "not a group term"),
])
def test_a_bad_structured_request_names_the_problem(options, problem):
    with pytest.raises(RequestError, match=problem):
        AggregateRequest.from_options(**options)
