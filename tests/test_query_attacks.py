"""An analyst attacking the query gateway: one test per route a review used to read a person's
value, each refused or answered without the value.

The target is LONELY, the only person born in 1940 (a person a reader could name); her payments
are the values an attacker wants.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from governed import approved_permit, sign_in
from safepool.governance.permits import Phase
from safepool.disclosure.mitigation import SHOWN
from safepool.governance.alerts import DIFFERENCING, run_alerts
from safepool.governance.context import Governance
from safepool.query import audit_algebra
from safepool.query.engine import run_query
from safepool.query.ledger import LEDGER_DIR, WORKSPACE_LEDGER, LedgerTampered
from safepool.query.model import QueryRefused
from safepool.query.request import AggregateRequest
from test_query_engine import DICTIONARY, LONELY, PERMIT, ask, copy_of, governed_pool, make_pool, pool_tables, \
    template  # noqa: F401


def governed_template(root: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """A governed workspace whose pool holds `tables`."""
    governed_pool(root, tables)
    return root

TARGET = pool_tables()["payments"].query("pid == @LONELY")["amount"].tolist()


@pytest.fixture
def setup(template, tmp_path):  # noqa: F811
    return copy_of(template, tmp_path / "ws")


def spellings(value: float) -> list[str]:
    """The ways a value could be printed."""
    return sorted({f"{value:g}", f"{value:.1f}", f"{value:.2f}", f"{value:,.2f}", f"{value:,.0f}", str(value)})


def everything_said(governance: Governance, root: Path, *texts: str) -> str:
    """Every answer text, note, error, audit record and recorded output file of the workspace."""
    files = [p.read_bytes().decode("utf-8", "replace") for p in (root / "outputs").rglob("*") if p.is_file()] \
        if (root / "outputs").exists() else []
    audit = [json.dumps(r.detail) for r in governance.audit.records()]
    return "\n".join([*texts, *files, *audit])


# -- a value as a label --------------------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    "SELECT amount, count(*) AS n FROM payments GROUP BY amount",
    "SELECT CASE WHEN birth_year = 1940 THEN amount ELSE 0 END AS v, count(*) AS n "
    "FROM payments JOIN population USING (pid) GROUP BY 1",
    "SELECT round(amount, -1) AS v, count(*) AS n FROM payments GROUP BY 1",
    "SELECT CAST(amount AS VARCHAR) AS v, count(*) AS n FROM payments GROUP BY 1",
    "SELECT paid_on, count(*) AS n FROM payments GROUP BY paid_on",
])
def test_a_value_never_becomes_a_group_label(setup, sql):
    with pytest.raises(QueryRefused, match="outside the query model|a group is"):
        ask(setup, sql)


def test_grouped_answers_carry_only_dictionary_labels(setup):
    workspace, governance, _ = setup
    answer = ask(setup, AggregateRequest(table="payments", join=["population"], measure="persons",
                                         by=["bin(amount)", "year(birth_year)"]))
    allowed = {"under 100 EUR", "100 to under 250 EUR", "250 to under 400 EUR", "400 to under 10,000 EUR",
                "10,000 EUR or more", "Total"}
    assert set(answer.table["bin_amount"]) <= allowed
    assert set(answer.table["year_birth_year"]) <= {str(y) for y in range(1930, 2006)} | {"Total"}
    said = everything_said(governance, workspace.root, answer.table.to_csv(), answer.note)
    for value in TARGET:
        if value not in (100, 250, 400, 10000):
            assert all(s not in said for s in spellings(value) if len(s) > 3)


# -- singling out ----------------------------------------------------------------------------------


def test_a_condition_inside_a_measure_is_refused(setup):
    with pytest.raises(QueryRefused, match="CASE, arithmetic, casts"):
        ask(setup, "SELECT sum(CASE WHEN birth_year = 1940 THEN amount ELSE 0 END) AS s "
                   "FROM payments JOIN population USING (pid)")


def test_narrow_filters_leave_a_suppressed_cell(setup):
    answer = ask(setup, "SELECT sum(amount) AS s, avg(amount) AS m, median(amount) AS q FROM payments "
                        "JOIN population USING (pid) WHERE birth_year = 1940 AND sex = 'F'")
    assert answer.table[["s", "m", "q"]].isna().all(axis=None)


@pytest.mark.parametrize("condition", [f"amount BETWEEN {TARGET[0]} AND {TARGET[0]}", f"amount > {TARGET[0] - 0.5}",
                                       "amount >= 123", "paid_on >= DATE '2019-01-05'", "paid_on = DATE '2019-01-01'"])
def test_a_threshold_or_a_day_of_ones_own_is_refused(setup, condition):
    """A constant finer than the dictionary's bins or months would let a series of answers close in
    on one person's value (a binary search on the answers' shape or on what is withheld)."""
    with pytest.raises(QueryRefused, match="edges of its policy bins|first day of a month"):
        ask(setup, f"SELECT count(DISTINCT pid) AS n FROM payments WHERE {condition}")


def ledger_hid(setup) -> bool:
    """Whether the ledger hid a cell of the last answer (its audit record says so; the answer does
    not: a cell it hides looks like a cell of too few persons)."""
    return setup[1].audit.records(action="query")[-1].outcome == "withheld"


def shape(answer) -> tuple:
    """All an answer shows: its labels, which values are shown, the statuses and the note."""
    return (answer.table.drop(columns=[c for c in answer.table.columns if c not in ("status",)
                                       and answer.table[c].dtype.kind == "f"]).to_json(),
            answer.table.select_dtypes("number").notna().to_json(), answer.note)


@pytest.mark.parametrize("sql", [
    "SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE birth_year = 1940 AND {}",
    "SELECT sum(amount) AS s, avg(amount) AS m FROM payments JOIN population USING (pid) "
    "WHERE birth_year = 1940 AND {}",
    "SELECT sex, count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE birth_year = 1940 AND {} "
    "GROUP BY sex",
])
def test_an_empty_answer_looks_like_a_small_one(setup, sql):
    """The review's route: with one known person in scope, an answer with no rows and an answer with
    one suppressed cell told whether she met a filter on her own value, and a binary search on the
    filter read the value. Every answer now has the cells its model implies, and a cell no one is in
    is suppressed like a cell of too few, with the same status: which side of a bin edge her payments
    lie on cannot be told. A suppressed cell's status says no more than that."""
    edges = [100, 250, 400, 10000]
    below, above = max(e for e in edges if e <= min(TARGET)), min(e for e in edges if e > max(TARGET))
    met = ask(setup, sql.format(f"amount >= {below}"))
    missed = ask(setup, sql.format(f"amount >= {above}"))
    assert shape(met) == shape(missed)
    assert not met.table.select_dtypes("number").notna().any(axis=None)
    assert set(met.table["status"]) == {"suppressed"}  # which rule, or primary or secondary, is never said


def test_a_shown_total_over_small_cells_does_not_place_the_one_person(tmp_path):
    """The second review's route: four men and one woman (the target) born in 1940; sums of payments
    by sex within one amount band. The men's cell and hers are small (0 to 4 persons), so a total
    shown (at least 5) said she is in the band. Sums are now protected on their persons as well as
    on their values, and a suppressed cell says only "suppressed"."""
    people = [("target", "F")] + [(f"man-{i}", "M") for i in range(4)] + [(f"p-{i}", "FM"[i % 2]) for i in range(60)]
    population = pd.DataFrame({"pid": [p for p, _ in people], "sex": [s for _, s in people],
                               "birth_year": [1940] * 5 + [1975] * 60})
    payments = pd.DataFrame({"pid": population["pid"], "paid_on": pd.Timestamp("2019-03-05").date(),
                             "amount": [300.0] * 5 + [float(50 + 7 * i) for i in range(60)], "bank": "FI00"})
    tables = {"population": population, "payments": payments, "visits": pd.DataFrame({"pid": ["p-1"], "month": 201903})}
    setup = copy_of(governed_template(tmp_path / "template", tables), tmp_path / "ws")
    sql = ("SELECT sex, sum(amount) AS s FROM payments JOIN population USING (pid) WHERE birth_year = 1940 "
           "AND amount >= {} AND amount < {} GROUP BY sex")
    inside, outside = ask(setup, sql.format(250, 400)), ask(setup, sql.format(400, 10000))
    assert shape(inside) == shape(outside)
    assert inside.table["s"].isna().all() and set(inside.table["status"]) == {"suppressed"}


def test_which_labels_a_person_has_cannot_be_read_from_the_rows(setup):
    """Grouped by a code list, the answer has a row for every code the filters allow, whether or not
    anyone has it: the rows present do not tell which code the one person in scope has."""
    answer = ask(setup, "SELECT sex, bin(amount) AS b, count(DISTINCT pid) AS n FROM payments "
                        "JOIN population USING (pid) WHERE birth_year = 1940 GROUP BY 1, 2")
    inner = answer.table[(answer.table["sex"] != "Total") & (answer.table["b"] != "Total")]
    assert len(inner) == 2 * 5 and inner["n"].isna().all()
    assert set(inner["status"]) == {"suppressed"}
    only_women = ask(setup, "SELECT sex, count(DISTINCT pid) AS n FROM population WHERE sex = 'F' GROUP BY sex")
    assert list(only_women.table["sex"]) == ["female", "Total"]  # what the filters rule out is no cell


# -- values in error text --------------------------------------------------------------------------

FAILING = [
    "SELECT sum(CAST(amount AS TINYINT)) AS s FROM payments",
    "SELECT sum(CAST(CASE WHEN birth_year = 1940 THEN amount END AS DECIMAL(4,0))) AS s FROM payments "
    "JOIN population USING (pid)",
    "SELECT sum(amount / 0) AS s FROM payments",
    "SELECT sum(amount * 1e308 * 1e308) AS s FROM payments",
    "SELECT sum(amount) AS s FROM payments WHERE amount = 'abc'",
    "SELECT sum(amount) AS s FROM payments WHERE paid_on = 17",
    "SELECT sum(amount) AS s FROM payments WHERE paid_on = '2019-02-30'",
    "SELECT count(*) AS n FROM payments WHERE amount > 1e999",
    "SELECT sum(amount) AS s FROM population JOIN payments USING (pid) WHERE sex = 5",
]


def test_failing_queries_say_nothing_of_the_data(setup):
    workspace, governance, _ = setup
    messages = []
    for sql in FAILING:
        with pytest.raises(QueryRefused) as refusal:
            ask(setup, sql)
        messages.append(str(refusal.value))
    said = everything_said(governance, workspace.root, *messages)
    for value in pool_tables()["payments"]["amount"].unique():
        assert not any(s in said for s in spellings(float(value)) if len(s) > 4), value


def test_an_engine_failure_is_a_fixed_message_naming_the_step(tmp_path):
    """A pool whose stored months are not months makes the engine's conversion fail at run time;
    the engine's message quotes the value, the refusal does not."""
    workspace, governance = governed_pool(tmp_path / "ws")
    pool = workspace.pool_dir / PERMIT / "pool.duckdb"
    con = duckdb.connect(str(pool))
    con.execute("ALTER TABLE visits ALTER month TYPE VARCHAR")
    con.execute("UPDATE visits SET month = 'X7Q31337' WHERE pid = (SELECT min(pid) FROM visits)")
    con.close()
    anna = sign_in(governance, "anna")
    with pytest.raises(QueryRefused, match="the pool could not .* withheld") as refusal:
        run_query(workspace.pool_dir, governance, anna, PERMIT,
                  "SELECT year(month) AS y, count(*) AS n FROM visits GROUP BY y")
    assert "X7Q31337" not in everything_said(governance, workspace.root, str(refusal.value))
    assert governance.audit.records(action="query_refused")[-1].outcome == "refused"


# -- a value hidden in arithmetic ------------------------------------------------------------------


def test_a_value_hidden_in_a_large_sum_cannot_be_asked(setup):
    with pytest.raises(QueryRefused, match="CASE, arithmetic, casts"):
        ask(setup, "SELECT sum(1000000 * (birth_year - 1939) + amount) AS s FROM payments "
                   "JOIN population USING (pid)")


# -- quantiles -------------------------------------------------------------------------------------


def test_quantiles_of_a_group_of_five_do_not_give_its_extremes(tmp_path):
    """Five persons with one payment each: every quantile is the local mean of all five values, so
    2 * q90 - q80 is their mean, never the largest."""
    tables = pool_tables()
    five = ["p-000", "p-001", "p-002", "p-003", "p-004"]
    payments = pd.DataFrame({"pid": five, "paid_on": pd.Timestamp("2019-01-05").date(),
                             "amount": [110.0, 120.0, 130.0, 140.0, 990.0], "bank": "FI00"})
    workspace, governance = governed_pool(tmp_path / "ws", tables={**tables, "payments": payments})
    anna = sign_in(governance, "anna")
    answer = run_query(workspace.pool_dir, governance, anna, PERMIT, AggregateRequest(
        table="payments", measure="quantiles", value="amount", quantiles=[0.1, 0.5, 0.8, 0.9]))
    row = answer.table.iloc[0]
    shown = [row[c] for c in ("q10", "q50", "q80", "q90") if not np.isnan(row[c])]
    assert 990.0 not in shown and 110.0 not in shown
    assert 2 * row["q90"] - row["q80"] != 990.0 if not np.isnan(row["q90"]) else True


def test_a_quantile_dominated_by_one_person_is_suppressed(tmp_path):
    tables = pool_tables()
    persons = [f"p-{i:03d}" for i in range(8)]
    payments = pd.DataFrame({"pid": persons, "paid_on": pd.Timestamp("2019-01-05").date(),
                             "amount": [100.0] * 7 + [1e9], "bank": "FI00"})
    workspace, governance = governed_pool(tmp_path / "ws", tables={**tables, "payments": payments})
    answer = run_query(workspace.pool_dir, governance, sign_in(governance, "anna"), PERMIT, AggregateRequest(
        table="payments", measure="quantiles", value="amount", quantiles=[0.9]))
    assert np.isnan(answer.table.loc[0, "q90"]) and "dominance" in answer.note


def test_quantiles_enter_the_ledger(setup):
    first = ask(setup, "SELECT median(amount) AS q FROM payments WHERE amount < 10000")
    assert first.table.loc[0, "status"] == SHOWN
    ask(setup, "SELECT median(amount) AS q FROM payments WHERE amount < 10000")
    _, governance, _ = setup
    assert governance.audit.records(action="query")[-1].detail["ledger_cells"] > 0


# -- differencing ----------------------------------------------------------------------------------


@pytest.fixture(params=["as it chooses", "in the persons"])
def audit_way(request, monkeypatch):
    """The all-answers audit as it chooses (these small pools make few classes, worked on as dense
    class columns) or forced to work in the persons with its probes, as at 300,000 persons."""
    if request.param == "in the persons":
        monkeypatch.setattr(audit_algebra, "_DENSE_CLASSES", 0)
    return request.param


def test_two_answers_differing_by_one_person_are_not_both_shown(setup, audit_way):
    ask(setup, "SELECT sum(amount) AS s FROM payments WHERE amount < 10000")
    without = ask(setup, "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) "
                         "WHERE amount < 10000 AND birth_year <> 1940")
    assert np.isnan(without.table.loc[0, "s"]) and without.table.loc[0, "status"] == "suppressed"
    assert ledger_hid(setup)


def test_three_answers_cannot_isolate_a_person_and_the_alert_fires(setup, audit_way):
    _, governance, _ = setup
    base = "FROM payments JOIN population USING (pid) WHERE amount < 10000"
    ask(setup, f"SELECT sum(amount) AS s {base}")
    ask(setup, f"SELECT sum(amount) AS s {base} AND sex = 'F' AND birth_year <> 1940")
    men = ask(setup, f"SELECT sum(amount) AS s {base} AND sex = 'M'")
    assert np.isnan(men.table.loc[0, "s"])
    record = governance.audit.records(action="query")[-1]
    assert record.outcome == "withheld" and record.detail["withheld"][0]["measure"] == "sum"
    assert not [a for a in run_alerts(governance.audit) if a.rule == DIFFERENCING]  # once is not a pattern
    for other in ("avg(amount) AS m", "sum(amount) AS s"):  # the same attack again, on the mean and the sum
        again = ask(setup, f"SELECT {other} {base} AND sex = 'M'")
        assert again.table["status"].eq("suppressed").all()
    alerts = [a for a in run_alerts(governance.audit) if a.rule == DIFFERENCING]
    assert len(alerts) == 1 and PERMIT in str(alerts[0]) and "anna" in str(alerts[0])


@pytest.mark.parametrize("first", ["table", "everyone but one"])
def test_a_table_total_and_everyone_but_one_are_not_both_shown(setup, first, audit_way):
    """A table's total is remembered as the cells it adds up (no rows of its own); it is still
    compared with a later cell of everyone but LONELY, and a later total with an earlier such cell:
    one of the two is hidden, whichever comes first."""
    base = "FROM payments JOIN population USING (pid) WHERE amount < 10000"
    asks = {"table": f"SELECT sex, sum(amount) AS s {base} GROUP BY sex",
            "everyone but one": f"SELECT sum(amount) AS s {base} AND birth_year <> 1940"}
    earlier = ask(setup, asks[first])
    with duckdb.connect(str(setup[0].pool_dir / LEDGER_DIR / f"{WORKSPACE_LEDGER}.duckdb"), read_only=True) as con:
        defined = con.execute("SELECT count(DISTINCT cell) FROM sum_members").fetchall()[0][0]
    assert defined == (1 if first == "table" else 0)  # the total, as its two cells
    later = ask(setup, asks["everyone but one" if first == "table" else "table"])
    assert earlier.table["status"].eq(SHOWN).all()
    total = later.table.index[-1]  # the table's total is its last row; the cell of everyone but one its only
    assert np.isnan(later.table.loc[total, "s"]) and later.table.loc[total, "status"] == "suppressed"
    assert ledger_hid(setup)


def four_women_apart(tmp_path: Path, between: bool = True) -> tuple:
    """Twelve women born in 1935, ten in 1950, and four born 1941 to 1944 (one a year; with
    `between` false, in 1950 too) with six men of each of those years; every one of them paid once,
    an amount of her own."""
    people = [(f"early-{i}", "F", 1935) for i in range(12)] + [(f"late-{i}", "F", 1950) for i in range(10)] \
        + [(f"four-{y}", "F", y if between else 1950) for y in range(1941, 1945)] \
        + [(f"man-{y}-{i}", "M", y) for y in range(1941, 1945) for i in range(6)]
    population = pd.DataFrame({"pid": [p[0] for p in people], "sex": [p[1] for p in people],
                               "birth_year": [p[2] for p in people]})
    payments = pd.DataFrame({"pid": population["pid"], "paid_on": pd.Timestamp("2019-03-05").date(),
                             "amount": [float(60 + 13 * i) for i in range(len(people))], "bank": "FI00"})
    tables = {"population": population, "payments": payments, "visits": pd.DataFrame({"pid": ["man-1941-0"],
                                                                                         "month": 201903})}
    name = "four" if between else "none"
    return copy_of(governed_template(tmp_path / f"template-{name}", tables), tmp_path / f"ws-{name}")


@pytest.mark.parametrize("first", ["count", "sum", "sum of everyone"],
                         ids=["count first", "sum first", "a sum of everyone asked before"])
@pytest.mark.parametrize("split", [False, True], ids=["together", "split by years of birth first"])
def test_three_answers_with_counts_cannot_single_out_four_persons(tmp_path, split, first, audit_way):
    """The sixth review's route (M3): all women, those born before 1941 and those born after 1944,
    each a count and a sum, leave the four born in between, their number and their sum. Their
    amounts differ (each is a class of her own), and counts by year of birth asked first put each
    in another cell, so neither a class nor a set of persons in the same cells is given away; the
    group audit finds the four all the same. The seventh review's variants: the sum before the
    count, or any sum asked before (a person's first value then a sum's, against which a count's
    one is a rounded ratio), once kept the counts out of the group audit."""
    setup = four_women_apart(tmp_path)
    if first == "sum of everyone":
        assert ask(setup, "SELECT sum(amount) AS s FROM payments").table["status"].eq(SHOWN).all()
    measures = "sum(amount) AS s, count(DISTINCT pid) AS n" if first == "sum" else "count(DISTINCT pid) AS n, sum(amount) AS s"
    *before, third = around_the_four(setup, measures, split)
    assert all(answer.table["status"].eq(SHOWN).all() for answer in before)
    assert third.table["status"].eq("suppressed").all() and np.isnan(third.table.loc[0, "n"])
    assert ledger_hid(setup)


def around_the_four(setup, measures: str, split: bool) -> list:
    """All women, those born before 1941 and those born after 1944 (`four_women_apart`), each with
    `measures`; with `split`, after counts by each year of birth the four were born in."""
    for year in range(1941, 1945) if split else ():
        born = ask(setup, f"SELECT count(DISTINCT pid) AS n FROM population WHERE birth_year = {year}")
        assert born.table.loc[0, "status"] == SHOWN
    base = f"SELECT {measures} FROM payments JOIN population USING (pid) WHERE sex = 'F'"
    return [ask(setup, base + where) for where in ("", " AND birth_year < 1941", " AND birth_year >= 1945")]


@pytest.mark.parametrize("split", [False, True], ids=["together", "split by years of birth first"])
def test_three_sums_without_counts_cannot_single_out_four_persons(tmp_path, split, audit_way):
    """The route the sixth review left open (`sumonly`): the same three answers as sums alone. No
    count is shown, so the group audit of counts sees nothing. The three sums' persons contribute
    the same amount to each of them (one measure), so their memberships tell what their values
    tell, and the group audit takes the three as one family of cells: the third is hidden."""
    setup = four_women_apart(tmp_path)
    *before, third = around_the_four(setup, "sum(amount) AS s", split)
    assert all(answer.table["status"].eq(SHOWN).all() for answer in before)
    assert third.table["status"].eq("suppressed").all() and np.isnan(third.table.loc[0, "s"])
    assert ledger_hid(setup)


@pytest.mark.parametrize("split", [False, True], ids=["together", "split by years of birth first"])
def test_three_sums_hide_a_group_of_four_as_they_hide_an_empty_one(tmp_path, split, audit_way):
    """The asymmetry of that route: with no woman born between the bands, the third sum is an
    empty difference (hidden); with four, it told their sum (shown), so the hiding told the two
    pools apart. Now the answers look the same either way."""
    seen = {between: [shape(answer) for answer in around_the_four(four_women_apart(tmp_path, between),
                                                                  "sum(amount) AS s", split)]
            for between in (True, False)}
    assert seen[True] == seen[False]


def one_earner_among_zeros(tmp_path: Path, earners: int) -> tuple:
    """Twenty women born in 1935 who each paid an amount of her own, and ten born in 1941 of whom
    `earners` paid (amounts of their own) and the others paid nothing (0.00), with ten men."""
    people = [(f"early-{i}", "F", 1935) for i in range(20)] + [(f"mid-{i}", "F", 1941) for i in range(10)] \
        + [(f"man-{i}", "M", 1950) for i in range(10)]
    amounts = [float(60 + 13 * i) for i in range(20)] + [5432.1 + 7 * i if i < earners else 0.0 for i in range(10)] \
        + [float(100 + 11 * i) for i in range(10)]
    population = pd.DataFrame({"pid": [p[0] for p in people], "sex": [p[1] for p in people],
                               "birth_year": [p[2] for p in people]})
    payments = pd.DataFrame({"pid": population["pid"], "paid_on": pd.Timestamp("2019-03-05").date(),
                             "amount": amounts, "bank": "FI00"})
    tables = {"population": population, "payments": payments, "visits": pd.DataFrame({"pid": ["man-0"],
                                                                                         "month": 201903})}
    return copy_of(governed_template(tmp_path / f"template-{earners}", tables), tmp_path / f"ws-{earners}")


@pytest.mark.parametrize("earners", [1, 2])
@pytest.mark.parametrize("order", ["all women first", "all but 1941 first"])
def test_two_sums_around_a_group_of_zeros_and_one_earner_do_not_tell_her_amount(tmp_path, earners, order, audit_way):
    """The seventh review's route on a fresh ledger: ten women born in 1941, nine of whom paid
    nothing. All women's sum minus the sum without 1941 is a difference of ten persons, but it is
    one person's amount (or two persons'). A person whose values were all zero was counted by
    membership, one in each of her cells, like the earner (whose weight in her first cell is one
    too): the ten were one class of ten. A zero adds nothing to a sum, so the earner is a class of
    her own, and one of the two sums is hidden."""
    setup = one_earner_among_zeros(tmp_path, earners)
    base = "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) WHERE sex = 'F'"
    asked = [base, base + " AND birth_year <> 1941"]
    first, second = (ask(setup, sql) for sql in (asked if order == "all women first" else asked[::-1]))
    assert first.table["status"].eq(SHOWN).all()
    assert second.table["status"].eq("suppressed").all() and np.isnan(second.table.loc[0, "s"])
    assert ledger_hid(setup)


@pytest.mark.parametrize("measure", ["avg(amount)", "sum(amount)", "share(amount)", "count(*)", "median(amount)"])
@pytest.mark.parametrize("order", ["measure first", "count first"])
def test_the_persons_behind_a_measure_are_not_shown_beside_it(setup, measure, order):
    """The eighth review's route: a recorded mean (or sum, share, rows, quantile) showed its persons
    per cell as "n", which the answer did not show and the ledger never had (it has each person's
    value and rows). Payments by sex, and persons by sex without
    the one born in 1940, told whether she is a woman (with bins of children, a named man's number
    of children). A query's output now shows what its answer shows; its persons are checked, kept
    for checking again, and shown only by a count of persons, which the ledger has."""
    workspace, governance, anna = setup
    # not the whale, who dominates; one payment each, so a mean's persons are the count's
    base = "FROM payments JOIN population USING (pid) WHERE amount < 10000 AND birth_year <> 1940"
    asks = {"measure first": f"SELECT sex, {measure} AS m {base} GROUP BY sex",
            "count first": f"SELECT sex, count(DISTINCT pid) AS n {base} GROUP BY sex"}
    other = "count first" if order == "measure first" else "measure first"
    answers = {key: ask(setup, asks[key]) for key in (order, other)}
    assert all(answer.table["status"].eq(SHOWN).any() for answer in answers.values())
    recorded = {key: governance.outputs.show(anna, answer.output_ids[0]) for key, answer in answers.items()}
    files = {key: pd.read_csv(governance.outputs.folder(record) / f"{record.files[0]}") for key, record in recorded.items()}
    assert list(files["measure first"].columns) == ["sex"] + (["quantile"] if "median" in measure else []) \
        + ["value", "status"]
    women = {int(row[persons]) for table in files.values() for persons in ("n", "count") if persons in table
             for _, row in table.iterrows() if row["sex"] == "female" and row["status"] == SHOWN}
    assert len(women) == 1  # the count's, and no other one apart from it


# -- differencing across permits -----------------------------------------------------------------


def second_permit(setup, permit: str = "P-2"):
    """Permit `permit` for anna over a pool of the same persons, under its own pseudonyms."""
    workspace, governance, _ = setup
    approved_permit(governance, permit)
    stella = sign_in(governance, "stella")
    governance.permits.advance(stella, permit, Phase.preparing_data)
    governance.permits.advance(stella, permit, Phase.analytic_review)
    make_pool(workspace.pool_dir, permit, key=permit)
    return permit


@pytest.mark.parametrize("order", ["everyone first", "everyone but one first"])
def test_two_permits_over_the_same_persons_cannot_be_set_against_each_other(setup, order):
    """A review read a person's number of children so: an analyst of two permits whose pools hold
    the same persons asked a question in one, and the same question without one person in the
    other. Each pool knows the persons by its own pseudonyms; the ledger is the workspace's and
    knows each person by one ledger key in every pool, so the second answer is hidden."""
    workspace, governance, anna = setup
    other = second_permit(setup)
    assert set(pool_pids(workspace, PERMIT)).isdisjoint(pool_pids(workspace, other))  # nothing links the pools
    everyone = "SELECT sum(amount) AS s FROM payments WHERE amount < 10000"
    but_one = "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) WHERE amount < 10000 " \
              "AND birth_year <> 1940"
    first, second = (everyone, but_one) if order == "everyone first" else (but_one, everyone)
    shown = run_query(workspace.pool_dir, governance, anna, PERMIT, first)
    assert shown.table.loc[0, "status"] == SHOWN
    later = run_query(workspace.pool_dir, governance, anna, other, second)
    assert np.isnan(later.table.loc[0, "s"]) and later.table.loc[0, "status"] == "suppressed"
    record = governance.audit.records(action="query")[-1]
    assert (record.permit, record.outcome, record.detail["ledger"]) == (other, "withheld", WORKSPACE_LEDGER)
    assert not any(np.isclose(shown.table.loc[0, "s"] - later.table.loc[0, "s"], TARGET))


def test_the_same_question_in_two_permits_is_answered_alike(setup):
    """The same question over the same persons in another permit tells nothing new: it is shown, as
    it is when asked again in one permit."""
    workspace, governance, anna = setup
    other = second_permit(setup)
    question = "SELECT sex, sum(amount) AS s FROM payments JOIN population USING (pid) GROUP BY sex"
    mine = run_query(workspace.pool_dir, governance, anna, PERMIT, question)
    theirs = run_query(workspace.pool_dir, governance, anna, other, question)
    pd.testing.assert_frame_equal(mine.table, theirs.table)
    assert governance.audit.records(action="query")[-1].outcome == "ok"


def pool_pids(workspace, permit: str) -> list[int]:
    with duckdb.connect(str(workspace.pool_dir / permit / "pool.duckdb"), read_only=True) as con:
        return [pid for (pid,) in con.execute("SELECT pid FROM population").fetchall()]


# -- empty differences: equal answers to different questions --------------------------------------


def cohorts_around(tmp_path: Path, name: str, target_amount: float, varied: bool = False) -> tuple:
    """A workspace of six persons born in 1935, the target born in 1940 (whom a reader can name: the
    only one), six born in 1945, all paid 300 (the band 250 to 400; `varied`: 260 to 385), the
    target `target_amount`; and sixty others born in 1975 with other amounts."""
    people = [(f"early-{i}", 1935) for i in range(6)] + [("target", 1940)] + [(f"late-{i}", 1945) for i in range(6)] \
        + [(f"p-{i}", 1975) for i in range(60)]
    population = pd.DataFrame({"pid": [p for p, _ in people], "sex": ["F"] * len(people),
                               "birth_year": [y for _, y in people]})
    band = [260.0 + 25 * (i % 6) if varied else 300.0 for i in range(12)]
    amounts = band[:6] + [target_amount] + band[6:] + [float(50 + 7 * i) for i in range(60)]
    payments = pd.DataFrame({"pid": population["pid"], "paid_on": pd.Timestamp("2019-03-05").date(),
                             "amount": amounts, "bank": "FI00"})
    tables = {"population": population, "payments": payments, "visits": pd.DataFrame({"pid": ["p-1"], "month": 201903})}
    return copy_of(governed_template(tmp_path / f"template-{name}", tables), tmp_path / f"ws-{name}")


BAND = "amount >= 250 AND amount < 400"
COHORT = "SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE {} AND " + BAND


@pytest.mark.parametrize("windows", [
    ["birth_year >= 1930 AND birth_year < 1941", "birth_year >= 1930 AND birth_year < 1940"],
    ["birth_year >= 1930 AND birth_year < 1940", "birth_year >= 1930 AND birth_year < 1941"],
], ids=["with, then without", "without, then with"])
def test_two_windows_that_differ_by_the_target_tell_nothing_of_her(tmp_path, windows, audit_way):
    """The third review's route: two birth-year windows that differ by the target alone, each with a
    filter on the band of payments. When she is outside the band the two counts are equal and were
    both shown (the ledger took the second for the first asked again), so a reader learnt she is
    outside; when inside, the second was withheld. Equal persons under another question are now an
    empty difference, withheld like a difference of one: both look the same."""
    answers = {}
    for name, amount in (("inside", 300.0), ("outside", 500.0)):
        setup = cohorts_around(tmp_path, name, amount)
        first, second = (ask(setup, COHORT.format(window)) for window in windows)
        assert first.table.loc[0, "status"] == SHOWN
        answers[name] = shape(second)
    assert answers["inside"] == answers["outside"]
    assert json.loads(answers["inside"][0])["status"]["0"] == "suppressed"


def test_three_windows_that_differ_by_the_target_tell_nothing_of_her(tmp_path, audit_way):
    """The same with three answers: born 1930-1949, born 1930-1939 and born 1941-1949, each in the
    band. The first is the sum of the others exactly when the target is outside the band; no two of
    them differ by fewer than five persons. Inside, the three give her away (withheld by the
    algebra); outside, they tell that she is not in the band (withheld as an empty difference)."""
    answers = {}
    for name, amount in (("inside", 300.0), ("outside", 500.0)):
        setup = cohorts_around(tmp_path, name, amount)
        shown = [ask(setup, COHORT.format(window)) for window in
                 ("birth_year >= 1930 AND birth_year < 1950", "birth_year >= 1930 AND birth_year < 1940")]
        assert all(answer.table.loc[0, "status"] == SHOWN for answer in shown)
        answers[name] = shape(ask(setup, COHORT.format("birth_year >= 1941 AND birth_year < 1950")))
    assert answers["inside"] == answers["outside"]
    assert json.loads(answers["inside"][0])["status"]["0"] == "suppressed"


@pytest.mark.parametrize("varied", [False, True], ids=["equal amounts", "varied amounts"])
def test_a_count_and_a_sum_around_the_target_look_the_same_either_way(tmp_path, varied, audit_way):
    """The fourth review's route: a count of the window with her, then a sum of the window without
    her, each in the band. Had only an empty difference been withheld, the sum would have been
    withheld when she is outside the band and shown when inside. Both are judged on the same
    contributions (a count's ones, a sum's values): equal amounts make the sum a multiple of the
    count, caught either way; varied ones make the two cells independent either way."""
    answers = {}
    for name, amount in (("inside", 300.0), ("outside", 500.0)):
        setup = cohorts_around(tmp_path, f"{name}-{varied}", amount, varied)
        assert ask(setup, COHORT.format("birth_year >= 1930 AND birth_year < 1941")).table.loc[0, "status"] == SHOWN
        answers[name] = shape(ask(setup, "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) WHERE "
                                         f"birth_year >= 1930 AND birth_year < 1940 AND {BAND}"))
    assert answers["inside"] == answers["outside"]


def test_a_group_all_in_one_band_is_not_told_by_two_counts(tmp_path, audit_way):
    """Six persons born in 1935, all paid in one band: "born in 1935" and "born in 1935, in the band"
    holding the same persons would say every one of them (each a person a reader may know) is in
    the band. Within one answer the empty bands are suppressed; across answers the second count is
    withheld as an empty difference."""
    setup = cohorts_around(tmp_path, "band", 300.0)
    everyone = ask(setup, "SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) "
                          "WHERE birth_year >= 1935 AND birth_year < 1936")
    banded = ask(setup, COHORT.format("birth_year >= 1935 AND birth_year < 1936"))
    assert everyone.table.loc[0, "status"] == SHOWN
    assert np.isnan(banded.table.loc[0, "n"]) and banded.table.loc[0, "status"] == "suppressed"
    assert ledger_hid(setup)


def at_the_threshold(tmp_path: Path, inside: bool) -> tuple:
    """The fifth review's pool: women born in 1935 paid in the band, the target (born in 1940) and
    eight men born in 1936 in the band. Inside, she is in the band with four such women; outside,
    five such women are, and she is paid 500. Either way a reader sees five women in the band born
    from 1930 up to her year: the window an attacker walks to until it shows exactly five."""
    women = 4 if inside else 5
    people = [(f"early-{i}", "F", 1935, 300.0) for i in range(women)] + [("target", "F", 1940, 300.0 if inside else 500.0)] \
        + [(f"man-{i}", "M", 1936, 320.0) for i in range(8)] + [(f"p-{i}", "F", 1975, float(50 + 7 * i)) for i in range(60)]
    population = pd.DataFrame({"pid": [p[0] for p in people], "sex": [p[1] for p in people],
                               "birth_year": [p[2] for p in people]})
    payments = pd.DataFrame({"pid": population["pid"], "paid_on": pd.Timestamp("2019-03-05").date(),
                             "amount": [p[3] for p in people], "bank": "FI00"})
    tables = {"population": population, "payments": payments, "visits": pd.DataFrame({"pid": ["p-1"], "month": 201903})}
    name = "inside" if inside else "outside"
    return copy_of(governed_template(tmp_path / f"template-{name}", tables), tmp_path / f"ws-{name}")


@pytest.mark.parametrize("asked", [
    "SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE sex = 'F' AND {} AND " + BAND,
    "SELECT sex, count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE {} AND " + BAND
    + " GROUP BY sex",
], ids=["one cell", "by sex"])
def test_a_cell_hidden_for_earlier_answers_looks_like_a_small_one(tmp_path, asked, audit_way):
    """The fifth review's route: five women in the band born from 1930 up to the target's year, shown;
    then the same without her year. Inside the band, the second has four women: too few, suppressed.
    Outside, it has the same five under another question: an empty difference, which the ledger
    finds. The ledger's cells were withheld with a status and note of their own, so a reader read
    28 of 28 targets' bands. A cell the ledger finds is now hidden as a small cell is (suppression
    runs again, and what is shown then is checked again): the answers look the same either way."""
    answers = {}
    for inside in (True, False):
        setup = at_the_threshold(tmp_path, inside)
        first = ask(setup, asked.format("birth_year >= 1930 AND birth_year < 1941"))
        assert first.table.loc[0, "n"] == 5 and first.table.loc[0, "status"] == SHOWN  # the women's cell
        answers[inside] = shape(ask(setup, asked.format("birth_year >= 1930 AND birth_year < 1940")))
        assert inside or ledger_hid(setup)  # inside, her cell is small; outside, the ledger hides it
    assert answers[True] == answers[False]
    assert json.loads(answers[True][0])["status"]["0"] == "suppressed"


def steps_of(monkeypatch, setup, sql: str) -> list[str]:
    """The steps the engine and the ledger take to answer `sql`, in order: what the time of an answer
    follows (a sixth review timed the fifth review's second question, seven times each against a
    surely small control, and read 68 of 68 bands: a cell the ledger found took a round more)."""
    from safepool.query import engine, ledger_memory
    from safepool.query.ledger import Ledger

    import threading

    steps: list[str] = []
    beside: list[str] = []  # steps of the ledger's write, which runs beside the audit in a thread of its own

    def recorded(owner, name: str) -> None:
        work = getattr(owner, name)

        def step(*a, **k):
            (steps if threading.current_thread() is threading.main_thread() else beside).append(name)
            return work(*a, **k)
        monkeypatch.setattr(owner, name, step)

    for name in ("_mitigate", "_incoming"):
        recorded(engine, name)
    for name in ("pairs", "check", "compare", "_con", "_write", "_commit", "_abandon"):
        recorded(Ledger, name)
    recorded(ledger_memory.LedgerMemory, "audit")
    ask(setup, sql)
    monkeypatch.undo()
    return steps + sorted(beside)


WOMEN = "SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE sex = 'F' AND {} AND " + BAND
BY_SEX = "SELECT sex, count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE {} AND " + BAND \
    + " GROUP BY sex"


@pytest.mark.parametrize("first, second", [(WOMEN, WOMEN), (BY_SEX, BY_SEX), (WOMEN, BY_SEX)],
                         ids=["one cell", "by sex", "one cell, then by sex"])
def test_a_cell_hidden_for_earlier_answers_takes_the_steps_of_a_small_one(tmp_path, monkeypatch, first, second):
    """The sixth review's route: the time of the fifth review's second question, which took a round
    more when the ledger found her cell. The engine now compares every row of an answer with the
    remembered cells first, hidden or not, then suppresses again and checks in full whether or not
    anything was found: the same steps, in the same order, whether her cell is small (inside the
    band) or found by the ledger (outside). In the last form the men and the total are new: the
    total is shown, audited and remembered either way."""
    steps = {}
    for inside in (True, False):
        setup = at_the_threshold(tmp_path, inside)
        ask(setup, first.format("birth_year >= 1930 AND birth_year < 1941"))
        steps[inside] = steps_of(monkeypatch, setup, second.format("birth_year >= 1930 AND birth_year < 1940"))
        assert inside or ledger_hid(setup)
        if second == WOMEN:  # her cell of four is hidden for its few persons: the audit does not say the ledger
            assert ledger_hid(setup) is not inside
    assert steps[True] == steps[False]
    assert steps[True].count("compare") == 2 and steps[True].count("_mitigate") == 2
    assert (first == second) or {"audit", "_write", "_commit"} <= set(steps[True])


def split_window(tmp_path: Path, inside: bool) -> tuple:
    """Five women paid in the band born in 1935, four born in 1937 and the target, born in 1938
    (inside the window 1936-1939) or 1940 (outside it). Born from 1930 up to 1940, ten women; up to
    1935, five: the same either way. The window 1936-1939 holds four women (too few) when she is
    outside it, and five when inside: ten less five, which only all answers together tell."""
    born = 1938 if inside else 1940
    people = [(f"early-{i}", 1935) for i in range(5)] + [(f"mid-{i}", 1937) for i in range(4)] + [("target", born)]
    people += [(f"p-{i}", 1975) for i in range(60)]
    population = pd.DataFrame({"pid": [p[0] for p in people], "sex": "F", "birth_year": [p[1] for p in people]})
    payments = pd.DataFrame({"pid": population["pid"], "paid_on": pd.Timestamp("2019-03-05").date(),
                             "amount": [300.0] * 10 + [float(50 + 7 * i) for i in range(60)], "bank": "FI00"})
    tables = {"population": population, "payments": payments, "visits": pd.DataFrame({"pid": ["p-1"], "month": 201903})}
    name = "inside" if inside else "outside"
    return copy_of(governed_template(tmp_path / f"template-{name}", tables), tmp_path / f"ws-{name}")


def test_a_cell_the_all_answers_audit_hid_is_hidden_again_in_the_steps_of_a_small_one(tmp_path, monkeypatch):
    """A cell only the all-answers audit finds (ten women less five: no pair of cells differs by
    fewer than five) takes that audit's search and a round more the first time; the same cell
    small for its own few persons takes neither. Asked again, it used to take them again, so an
    analyst could time one question as often as averaging needs. The ledger now keeps the cell as
    withheld: asked again, the comparison finds it and it is hidden as it was, in the steps of the
    small one, and the answers look the same. Asked under another definition it is checked again
    (hidden for its persons alone, it would tell whose they are)."""
    window = WOMEN.format("birth_year >= 1936 AND birth_year < 1940")
    steps, answers, first = {}, {}, {}
    for inside in (True, False):
        setup = split_window(tmp_path, inside)
        for years in ("birth_year >= 1930 AND birth_year < 1941", "birth_year >= 1930 AND birth_year < 1936"):
            assert ask(setup, WOMEN.format(years)).table.loc[0, "status"] == SHOWN
        first[inside] = steps_of(monkeypatch, setup, window)
        assert ledger_hid(setup) is inside
        steps[inside] = steps_of(monkeypatch, setup, window)
        answers[inside] = shape(ask(setup, window))
        assert ledger_hid(setup) is inside
        if inside:
            withheld = setup[1].audit.records(action="query")[-1].detail["withheld"]
            assert [entry["check"] for entry in withheld] == ["differencing (all answers)"]
            variant = steps_of(monkeypatch, setup, window + " AND paid_on >= DATE '2019-01-01'")
            assert "audit" in variant and ledger_hid(setup)
    assert "audit" in first[True] and "audit" not in first[False]  # the first time differs (see the README)
    assert steps[True] == steps[False] and "audit" not in steps[True]
    assert answers[True] == answers[False]
    assert json.loads(answers[True][0])["status"]["0"] == "suppressed"


def test_a_question_asked_again_whole_is_answered_as_it_was_without_a_second_round(tmp_path, monkeypatch):
    """Every row of the answer shown before under its definition: the reader knows the answer, and
    it is given again after the comparison alone (no suppression again, no audit, nothing written).
    A question with a row hidden before is not such a question: it takes every step."""
    setup = at_the_threshold(tmp_path, inside=True)
    whole = BY_SEX.format("birth_year >= 1930 AND birth_year < 1941")
    first = ask(setup, whole)
    assert (first.table["status"] == SHOWN).all()
    steps = steps_of(monkeypatch, setup, whole)
    assert steps == ["_mitigate", "_incoming", "pairs", "compare"]
    assert shape(ask(setup, whole)) == shape(first)
    part = BY_SEX.format("birth_year >= 1930 AND birth_year < 1940")  # the women's cell is small
    ask(setup, part)
    assert steps_of(monkeypatch, setup, part).count("_mitigate") == 2


@pytest.mark.parametrize("others", [(0, 0, 6), (0, 1, 6), (0, 3, 9), (1, 1, 3), (2, 6, 20), (0, 0, 1), (6, 9, 20)])
@pytest.mark.parametrize("statistic", ["count", "sum"])
def test_a_cell_hidden_for_differencing_is_protected_as_a_small_one(others, statistic):
    """What hides a cell's neighbours does not tell a cell of four persons (too few) from one of five
    that the ledger found (the fifth review read the code: a found cell was protected on a wider
    range, so one more neighbour was hidden when an empty cell was beside it). The table's total
    passes in both, as it does where an attacker walks a window to exactly five."""
    from safepool.disclosure import FrequencyTable, MagnitudeTable
    from safepool.disclosure.kinds import kind_of
    from safepool.disclosure.rules import DisclosureRules
    from safepool.query.engine import answer_rules

    policy = answer_rules(DisclosureRules())
    groups = ["a", "b", "c", "d"]

    def table(first: int):
        counts = [first, *others]
        if statistic == "count":
            return FrequencyTable("t", pd.DataFrame({"g": groups, "count": counts}), ["g"])
        values = [100.0 * n for n in counts]
        return MagnitudeTable("t", pd.DataFrame({"g": groups, "value": values, "n": counts,
                                                 "top": [[100.0] * min(n, 2) for n in counts],
                                                 "abs_total": values}), ["g"], statistic="sum")

    small, found = table(4), table(5)
    hidden = [kind_of(small).suppress(small, policy, True).output.cells["status"] != SHOWN,
              kind_of(found).suppress(found, policy, True, hide={("a",)}).output.cells["status"] != SHOWN]
    assert hidden[0].iloc[0] and hidden[1].iloc[0]
    assert hidden[0].tolist() == hidden[1].tolist()


def test_tables_of_one_question_asked_again_or_split_further_are_answered(setup, audit_way):
    """What the definitions are for: the same question asked again, a one-way table then a two-way
    table whose margins are its cells (the population register joined: it holds every person of the
    payments), a count then a mean of the same groups, a total asked on its own, and a cell asked as
    a filter are the same persons under the same question, never an empty difference (more ways of
    writing one question in test_query_definitions)."""
    asked = ["SELECT bin(amount) AS b, count(DISTINCT pid) AS n FROM payments GROUP BY 1",
             "SELECT bin(amount) AS b, count(DISTINCT pid) AS n FROM payments GROUP BY 1",
             "SELECT count(DISTINCT pid) AS n FROM payments",
             "SELECT bin(amount) AS b, sex, count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) "
             "GROUP BY 1, 2",
             "SELECT bin(amount) AS b, avg(amount) AS m FROM payments GROUP BY 1",
             # a group's label and a filter selecting the same codes, bins or months are one selection
             "SELECT sex, count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) GROUP BY sex",
             "SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE sex = 'F'",
             "SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid) WHERE sex IN ('F')",
             "SELECT count(DISTINCT pid) AS n FROM payments WHERE amount >= 100 AND amount < 250"]
    for sql in asked:
        answer = ask(setup, sql)
        assert not ledger_hid(setup), (sql, answer.note)


# -- the ledger cannot be reset quietly ------------------------------------------------------------


def test_a_ledger_moved_away_stops_the_permits_queries(setup):
    workspace, governance, _ = setup
    ask(setup, "SELECT sum(amount) AS s FROM payments WHERE amount < 10000")
    ledger = workspace.pool_dir / LEDGER_DIR / f"{WORKSPACE_LEDGER}.duckdb"
    shutil.move(ledger, ledger.with_suffix(".moved"))
    with pytest.raises(LedgerTampered):
        ask(setup, "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) "
                   "WHERE amount < 10000 AND birth_year <> 1940")
    assert governance.audit.records(action="query_ledger_mismatch")


# -- high cardinality ------------------------------------------------------------------------------


def test_grouping_beyond_the_cell_budget_is_refused_before_running(setup):
    _, governance, _ = setup
    with pytest.raises(QueryRefused, match="2,849 cells, month\\(paid_on\\) \\(36 \\+ total\\) x year\\(birth_year\\) "
                                           "\\(76 \\+ total\\) x 1 measure; the policy.s budget is 1,000"):
        ask(setup, "SELECT month(paid_on) AS m, year(birth_year) AS y, count(*) AS n "
                   "FROM payments JOIN population USING (pid) GROUP BY 1, 2")
    assert governance.audit.records(action="pool_access") == []


# -- parallel analysts -----------------------------------------------------------------------------


def _analyst(root: str, user: str, queries: list[str]) -> list[str]:
    governance = Governance.open(Path(root))
    actor = sign_in(governance, user)
    outcomes = []
    for sql in queries:
        try:
            answer = run_query(Path(root) / "pool", governance, actor, PERMIT, sql)
            outcomes.append("answered" if not answer.table.empty else "empty")
        except QueryRefused:
            outcomes.append("refused")
    return outcomes


def test_parallel_analysts_are_all_answered_and_recorded(tmp_path):
    workspace, governance = governed_pool(tmp_path / "ws", analysts=["anna", "aaro"])
    queries = ["SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex",
               "SELECT sum(amount) AS s FROM payments WHERE amount < 10000",
               "SELECT bin(amount) AS b, avg(amount) AS m FROM payments GROUP BY b",
               "SELECT max(amount) AS m FROM payments"]
    jobs = [("anna", queries), ("aaro", queries), ("anna", queries[::-1])]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_analyst, [(str(workspace.root), user, qs) for user, qs in jobs])
    assert all(len(r) == len(queries) for r in results)
    records = governance.audit.records(action="query") + governance.audit.records(action="query_refused")
    assert len(records) == sum(len(r) for r in results)
    assert sum(r.count("refused") for r in results) == len(governance.audit.records(action="query_refused"))
    assert governance.audit.verify().ok


def test_a_name_that_looks_like_an_identity_code_is_refused_and_audited_without_it(setup):
    _, governance, _ = setup
    with pytest.raises(QueryRefused) as refusal:
        ask(setup, "SELECT count(*) AS n FROM _010190A123B")
    record = governance.audit.records(action="query_refused")[-1]
    assert "010190A123B" not in json.dumps(record.detail) and record.outcome == "refused"
    assert "010190A123B" in str(refusal.value) or "identity code" in str(refusal.value)


def test_a_title_is_a_label_too(setup):
    with pytest.raises(QueryRefused, match="title looks like it holds a personal identity code"):
        ask(setup, AggregateRequest(table="population", measure="persons", by=["sex"], title="about 010190-123B"))
