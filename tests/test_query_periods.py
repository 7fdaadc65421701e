"""A sum over a table with several rows per person takes one period of its rows (person_periods).

The route: five sums of payments read two persons' total. All men's payments in two quarters,
less those of the men born before 1960 and of those born after it, each for one quarter, leave
the two men born in 1960. No combination singles out one of them, and no two sums hold the same
amount for a man, so neither the all-answers audit nor the families of sums saw them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from safepool.query import engine
from safepool.query.compile import Compiler, PersonRows
from safepool.query.model import QueryRefused
from safepool.query.person_periods import period_salt, unit_keys
from safepool.study.row_persons import level_arms
from test_query_attacks import ledger_hid
from test_query_engine import ask, copy_of, governed_pool

SHOWN = "shown"
QUARTERS = (dt.date(2019, 2, 5), dt.date(2019, 5, 5))  # a payment in 2019Q1 and one in 2019Q2


def people() -> pd.DataFrame:
    """Sixty men and sixty women born in 1950-1970; the two men born in 1960 are the pair."""
    men = [1950 + i % 20 + (i % 20 >= 10) for i in range(58)]  # 1950-1959 and 1961-1970
    born = men + [1960, 1960] + [1950 + i % 21 for i in range(60)]
    return pd.DataFrame({"pid": [f"p-{i:03d}" for i in range(120)], "birth_year": born,
                         "sex": ["M"] * 60 + ["F"] * 60})


def payments(per_quarter: int) -> pd.DataFrame:
    """`per_quarter` payments of each person in each of two quarters, amounts of every size."""
    rows = [{"pid": pid, "paid_on": day + dt.timedelta(days=31 * k), "amount": float(60 + (7 * i + 13 * k) % 330),
             "bank": "FI00"}
            for i, pid in enumerate(people()["pid"]) for day in QUARTERS for k in range(per_quarter)]
    return pd.DataFrame(rows)


def tables(per_quarter: int) -> dict[str, pd.DataFrame]:
    visits = pd.DataFrame({"pid": ["p-000", "p-000", "p-001"], "month": [201903, 201904, 201903]})
    return {"population": people(), "payments": payments(per_quarter), "visits": visits}


@pytest.fixture(scope="module")
def one_a_quarter(tmp_path_factory):
    root = tmp_path_factory.mktemp("periods") / "ws"
    governed_pool(root, tables(1))
    return root


@pytest.fixture(scope="module")
def two_a_quarter(tmp_path_factory):
    root = tmp_path_factory.mktemp("several") / "ws"
    governed_pool(root, tables(2))
    return root


SUM = "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) WHERE sex = 'M' AND {}"


def test_a_sum_over_two_quarters_is_refused_naming_the_date(one_a_quarter, tmp_path):
    setup = copy_of(one_a_quarter, tmp_path / "ws")
    with pytest.raises(QueryRefused, match=r"payments has several rows per person.*payments\.paid_on.*one whole "
                                           r"quarter") as refused:
        ask(setup, SUM.format("paid_on >= '2019-01-01' AND paid_on < '2019-07-01'"))
    assert "1960" not in str(refused.value)
    assert setup[1].audit.records(action="query_refused")[-1].outcome == "refused"


@pytest.mark.parametrize("order", ["all men first", "all men last"])
def test_the_two_men_between_sums_of_one_quarter_are_found(one_a_quarter, tmp_path, order):
    """The route within one quarter: each person is one member with the same amount in the three
    sums, so the group audit of families finds the two men, whichever sum comes last."""
    setup = copy_of(one_a_quarter, tmp_path / "ws")
    quarter = "paid_on = '2019Q1'"
    asked = [SUM.format(quarter), SUM.format(f"{quarter} AND birth_year < 1960"),
             SUM.format(f"{quarter} AND birth_year > 1960")]
    answers = [ask(setup, sql) for sql in (asked if order == "all men first" else asked[::-1])]
    assert all(answer.table["status"].eq(SHOWN).all() for answer in answers[:2])
    assert answers[2].table["status"].eq("suppressed").all() and ledger_hid(setup)


def test_other_quarters_are_other_members(one_a_quarter, tmp_path):
    """The same persons' payments in another quarter are other values: each quarter's sums are
    answered beside the other's, and the route in the second quarter is found there too."""
    setup = copy_of(one_a_quarter, tmp_path / "ws")
    for quarter in ("paid_on = '2019Q1'", "paid_on between '2019-04-01' and '2019-06-30'"):
        first = ask(setup, SUM.format(quarter))
        older = ask(setup, SUM.format(f"{quarter} AND birth_year < 1960"))
        assert first.table["status"].eq(SHOWN).all() and older.table["status"].eq(SHOWN).all()
        younger = ask(setup, SUM.format(f"{quarter} AND birth_year > 1960"))
        assert younger.table["status"].eq("suppressed").all()


def test_one_row_per_quarter_may_be_filtered_and_grouped_by_its_values(one_a_quarter, tmp_path):
    setup = copy_of(one_a_quarter, tmp_path / "ws")
    answer = ask(setup, "SELECT sex, bin(amount) AS b, count(*) AS n FROM payments JOIN population USING (pid) "
                        "WHERE paid_on = '2019Q2' AND amount < 10000 GROUP BY 1, 2")
    assert answer.table["status"].eq(SHOWN).any()


@pytest.mark.parametrize("sql, named", [
    ("SELECT avg(amount) AS m FROM payments WHERE paid_on = '2019Q1' AND amount >= 100", "filter on payments.amount"),
    ("SELECT bin(amount) AS b, sum(amount) AS s FROM payments WHERE paid_on = '2019Q1' GROUP BY 1",
     "grouping by bin\\(payments.amount\\)"),
    ("SELECT month(paid_on) AS m, count(*) AS n FROM payments WHERE paid_on = '2019Q1' GROUP BY 1",
     "grouping by month\\(payments.paid_on\\)"),
    ("SELECT sum(amount) AS s FROM payments WHERE paid_on >= '2019-01-01' AND paid_on < '2019-02-01'",
     "one whole quarter"),
])
def test_part_of_a_persons_rows_in_a_quarter_is_refused(two_a_quarter, tmp_path, sql, named):
    """Two payments per person in a quarter: a filter or grouping on another of the table's
    variables, or part of the quarter, would take part of a person's rows (the route with parts)."""
    setup = copy_of(two_a_quarter, tmp_path / "ws")
    with pytest.raises(QueryRefused, match=named):
        ask(setup, sql)


def test_a_whole_quarter_by_other_tables_is_answered_and_persons_have_no_period(two_a_quarter, tmp_path):
    setup = copy_of(two_a_quarter, tmp_path / "ws")
    by_sex = ask(setup, "SELECT sex, sum(amount) AS s, avg(amount) AS m FROM payments JOIN population USING (pid) "
                        "WHERE paid_on between '2019-01-01' and '2019-03-31' GROUP BY sex")
    assert by_sex.table["status"].eq(SHOWN).all()
    persons = ask(copy_of(two_a_quarter, tmp_path / "fresh"), "SELECT sex, count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) "
                         "WHERE amount >= 100 GROUP BY sex")
    assert persons.table["status"].eq(SHOWN).all()


@pytest.mark.parametrize("pool, handed", [("one_a_quarter", PersonRows.ONE_EACH),
                                           ("two_a_quarter", PersonRows.FIRST_ADDED_UP)])
def test_a_register_fixed_to_one_row_per_person_is_handed_over_row_by_row_with_the_same_answer(
        request, tmp_path, monkeypatch, pool, handed):
    """One payment per person in a quarter: a question of that quarter takes each row as its
    person's (no adding up by person); two a quarter: a person's payments are added up before the
    population is joined. Either way the answer is the one the adding up after the join gives."""
    root = request.getfixturevalue(pool)
    sql = ("SELECT sex, sum(amount) AS s, count(*) AS n FROM payments JOIN population USING (pid) "
           "WHERE paid_on = '2019Q2' GROUP BY sex")
    taken: list[PersonRows] = []
    real = Compiler.per_person
    monkeypatch.setattr(Compiler, "per_person",
                        lambda self, rows=PersonRows.JOINED: taken.append(rows) or real(self, rows))
    answer = ask(copy_of(root, tmp_path / "ws"), sql)
    assert taken == [handed]
    monkeypatch.setattr(engine, "person_rows", lambda *args: PersonRows.JOINED)
    added_up = ask(copy_of(root, tmp_path / "added-up"), sql)
    assert taken == [handed, PersonRows.JOINED]
    pd.testing.assert_frame_equal(answer.table, added_up.table)
    assert answer.table["status"].eq(SHOWN).any()


def test_two_tables_of_several_rows_per_person_are_not_summed_together(two_a_quarter, tmp_path):
    setup = copy_of(two_a_quarter, tmp_path / "ws")
    with pytest.raises(QueryRefused, match="payments and visits both have several rows per person"):
        ask(setup, "SELECT sum(amount) AS s FROM payments JOIN visits USING (pid) WHERE paid_on = '2019Q1'")


def test_a_study_row_and_a_query_of_one_quarter_have_the_same_members():
    """A study's sum of an outcome over one register's rows in a quarter is keyed as a query's sum
    of that register over that quarter, so the ledger sets them against each other; another
    quarter's are other members."""
    values = pd.DataFrame({"horizon": [0, 0, 1], "treated": [True, True, True], "person": [7, 8, 7],
                           "weight": [1.0, 1.0, 1.0], "code": np.array([1, 2, 3], dtype=np.uint64),
                           "amount": [10.0, 20.0, 30.0], "quarter": [2019 * 4, 2019 * 4, 2019 * 4 + 1]})
    arms = level_arms(values, rows_of="payments")
    at_entry = arms[(0, "clients")].sums()
    query_salt = period_salt("payments", "quarter", 2019 * 4)
    assert np.array_equal(at_entry.periods, np.full(2, query_salt)) and list(at_entry.values) == [10.0, 20.0]
    later = arms[(1, "clients")].sums()
    keys = np.array([123, 123], dtype=np.uint64)
    assert unit_keys(keys[:1], at_entry.periods[:1]) != unit_keys(keys[:1], later.periods)
    assert level_arms(values)[(0, "clients")].sums().periods is None  # a share's counts stay persons


def visits_in(months: list[int]) -> pd.DataFrame:
    """A visit of every person in each of `months`."""
    return pd.DataFrame([{"pid": pid, "month": month} for pid in people()["pid"] for month in months])


@pytest.fixture(scope="module")
def visits_a_quarter(tmp_path_factory):
    """Two payments per person a quarter, and one visit per person a quarter (in 2019Q1 and Q2)."""
    root = tmp_path_factory.mktemp("visits") / "ws"
    governed_pool(root, {**tables(2), "visits": visits_in([201902, 201905])})
    return root


def test_a_register_fixed_to_one_row_per_person_joins_one_with_several(visits_a_quarter, tmp_path):
    """Visits in one quarter are one row per person: they select persons, and multiply nothing."""
    setup = copy_of(visits_a_quarter, tmp_path / "ws")
    answer = ask(setup, "SELECT sex, sum(amount) AS s FROM payments JOIN visits USING (pid) JOIN population "
                        "USING (pid) WHERE paid_on = '2019Q1' AND month = '2019Q1' GROUP BY sex")
    paid = payments(2).merge(people(), on="pid")
    expected = paid[paid["paid_on"] < dt.date(2019, 4, 1)].groupby("sex")["amount"].sum()
    shown = answer.table.set_index("sex")
    assert shown["status"].eq(SHOWN).all()
    assert shown.loc["male", "s"] == pytest.approx(expected["M"]) and shown.loc["female", "s"] == pytest.approx(
        expected["F"])
    with pytest.raises(QueryRefused, match="payments and visits both have several rows per person"):
        ask(setup, "SELECT sum(amount) AS s FROM payments JOIN visits USING (pid) WHERE paid_on = '2019Q1' "
                   "AND month >= '2019Q1'")  # every quarter of visits: each payment counted once per visit


def test_a_register_whose_values_are_summed_is_never_taken_as_fixed(tmp_path):
    """Payments of one quarter (one a person) joined with two visits a person in that quarter: the
    payments would be counted twice, so the join is refused."""
    governed_pool(tmp_path / "template", {**tables(1), "visits": visits_in([201902, 201903])})
    setup = copy_of(tmp_path / "template", tmp_path / "ws")
    with pytest.raises(QueryRefused, match="payments and visits both have several rows per person"):
        ask(setup, "SELECT sum(amount) AS s FROM payments JOIN visits USING (pid) WHERE paid_on = '2019Q1' "
                   "AND month = '2019Q1'")


@pytest.mark.parametrize("order", ["all first", "joined first"])
def test_a_fixed_register_that_leaves_one_person_out_does_not_tell_her_payments(tmp_path, order):
    """The join's way out, as an attacker takes it: every man's payments in 2019Q1, then those of
    the men who visited in 2019Q1, when one man did not. The payments are keyed alike in both
    (one quarter of one register), so the ledger finds the one man between them either way."""
    visits = visits_in([201902, 201905])
    visits = visits[~((visits["pid"] == "p-005") & (visits["month"] == 201902))]
    governed_pool(tmp_path / "template", {**tables(2), "visits": visits})
    setup = copy_of(tmp_path / "template", tmp_path / "ws")
    every = SUM.format("paid_on = '2019Q1'")
    joined = ("SELECT sum(amount) AS s FROM payments JOIN population USING (pid) JOIN visits USING (pid) "
              "WHERE sex = 'M' AND paid_on = '2019Q1' AND month = '2019Q1'")
    first, second = (every, joined) if order == "all first" else (joined, every)
    assert ask(setup, first).table["status"].eq(SHOWN).all()
    assert ask(setup, second).table["status"].eq("suppressed").all() and ledger_hid(setup)
