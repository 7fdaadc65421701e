"""Aggregate queries in a governed pool: the model's labels, checked cells only, refusals audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import Phase as Phase_
from hypothesis import strategies as st

from governed import approved_permit, governance_with_users, sign_in, tiny_request
from safepool.disclosure.mitigation import SHOWN
from safepool.governance.context import Governance
from safepool.governance.permits import Phase
from safepool.pool.access import dictionary_in
from safepool.pool.ledger_keys import write_ledger_keys
from safepool.query.engine import run_query
from safepool.query.request import AggregateRequest, parse_filter
from safepool.query.model import QueryRefused
from safepool.query.pool_facts import FACTS, find_facts
from safepool.workspace import Workspace

PERMIT = "P-1"
PERSONS = 200
WHALE = "p-whale"      # one person with a huge payment: dominance
LONELY = "p-lonely"    # the only person born in 1940


def pool_tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    """Persons with a birth year and sex, a payment each and visits; a whale and a lonely person."""
    rng = random.Random(seed)
    pids = [f"p-{i:03d}" for i in range(PERSONS)] + [WHALE, LONELY]
    population = pd.DataFrame({
        "pid": pids,
        "birth_year": [rng.choice([1970, 1980, 1990, 2000]) for _ in range(PERSONS)] + [1980, 1940],
        "sex": [rng.choice("FM") for _ in range(PERSONS)] + ["M", "F"],
    })
    payments = []  # one per person: a sum over several rows per person takes one quarter (test_query_periods.py)
    for pid in pids:
        month = rng.randint(1, 4)
        amount = 1_000_000.0 if pid == WHALE else float(rng.randint(50, 500))
        payments.append({"pid": pid, "paid_on": dt.date(2019, month, 5), "amount": amount, "bank": "FI00"})
    visits = pd.DataFrame({"pid": [p for p in pids if rng.random() < 0.6], "month": 201903})
    return {"population": population, "payments": pd.DataFrame(payments), "visits": visits}


DICTIONARY = {
    "population": [
        {"name": "birth_year", "type": "integer", "description": "year of birth", "level": "date",
         "years": [1930, 2005], "date_format": "year"},
        {"name": "sex", "type": "string", "description": "sex", "level": "categorical",
         "codes": {"F": "female", "M": "male"}},
    ],
    "payments": [
        {"name": "paid_on", "type": "date", "description": "payment day", "level": "date", "years": [2018, 2020]},
        {"name": "amount", "type": "float", "description": "euros", "level": "numeric", "unit": "EUR",
         "bins": [100, 250, 400, 10000]},
        {"name": "bank", "type": "string", "description": "bank", "level": "text"},
    ],
    "visits": [
        {"name": "month", "type": "integer", "description": "month", "level": "date", "years": [2018, 2020],
         "date_format": "yyyymm"},
    ],
}


def sixty_bits(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 4


def make_pool(pool_dir: Path, permit: str = PERMIT, tables: dict[str, pd.DataFrame] | None = None,
              dictionary: dict | None = None, key: str = "") -> dict[str, pd.DataFrame]:
    """A pool as the build leaves it: its DuckDB tables (each person's id becomes a pseudonym, a
    number of 60 bits, under the permit's `key`: another key, other pseudonyms), its ledger keys
    (of the person's id, the same under every key) and a manifest with the data dictionary."""
    tables = pool_tables() if tables is None else tables
    (pool_dir / permit).mkdir(parents=True)
    con = duckdb.connect(str(pool_dir / permit / "pool.duckdb"))
    persons: dict[int, int] = {}  # pseudonym -> ledger key
    for name, frame in tables.items():
        of_row, ids = pd.factorize(frame["pid"].astype(str))  # each person hashed once, not each row
        pseudonyms = np.array([sixty_bits(f"{key}:{person}") for person in ids], dtype=np.int64)
        persons.update(zip(pseudonyms.tolist(), (sixty_bits(f"ledger:{person}") for person in ids)))
        con.register("frame", frame.assign(pid=pseudonyms[of_row]))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    write_ledger_keys(pool_dir / permit, np.fromiter(persons, dtype=np.uint64, count=len(persons)),
                      np.fromiter(persons.values(), dtype=np.uint64, count=len(persons)))
    entries = DICTIONARY if dictionary is None else dictionary
    manifest = {"permit": permit, "tables": {t: [v["name"] for v in vs] for t, vs in entries.items()},
                "dictionary": entries}
    with duckdb.connect(str(pool_dir / permit / "pool.duckdb"), read_only=True) as con:
        manifest[FACTS] = find_facts(con, dictionary_in(manifest, permit))
    (pool_dir / permit / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return tables


def governed_pool(root: Path, tables: dict[str, pd.DataFrame] | None = None, analysts: list[str] | None = None):
    """A workspace with users, permit P-1 in analytic review (its analysts: anna, or `analysts`), and
    a pool of the test tables (82 persons, or `tables`)."""
    workspace = Workspace.init(root)
    governance = governance_with_users(root)
    changes = {}
    if analysts is not None:
        analysis = tiny_request().analysis.model_dump(mode="json")
        changes = {"people": analysts, "analysis": {**analysis, "users": analysts}}
    approved_permit(governance, PERMIT, **changes)
    stella = sign_in(governance, "stella")
    governance.permits.advance(stella, PERMIT, Phase.preparing_data)
    governance.permits.advance(stella, PERMIT, Phase.analytic_review)
    make_pool(workspace.pool_dir, tables=tables)
    return workspace, governance


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Built once: signing users in and approving a permit takes a second or two."""
    root = tmp_path_factory.mktemp("template") / "ws"
    governed_pool(root)
    return root


def copy_of(template: Path, root: Path):
    """A fresh copy of the governed workspace, and anna signed in to it."""
    shutil.copytree(template, root, symlinks=True)
    governance = Governance.open(root)
    return Workspace.open(root), governance, sign_in(governance, "anna")


@pytest.fixture
def setup(template, tmp_path):
    return copy_of(template, tmp_path / "ws")


def ask(setup, query, **kw):
    workspace, governance, anna = setup
    return run_query(workspace.pool_dir, governance, anna, PERMIT, query, **kw)


def test_persons_by_sex_show_code_labels_totals_and_are_recorded(setup):
    workspace, governance, anna = setup
    answer = ask(setup, AggregateRequest(table="population", measure="persons", by=["sex"]))
    truth = pool_tables()["population"].groupby("sex").size()
    assert list(answer.table["sex"]) == ["female", "male", "Total"]  # the code list's order and labels
    shown = answer.table.set_index("sex")
    assert shown.loc["female", "persons"] == truth["F"] and shown.loc["male", "persons"] == truth["M"]
    assert shown.loc["Total", "persons"] == PERSONS + 2
    assert set(answer.table["status"]) == {SHOWN}
    record = governance.audit.records(action="query")[-1]
    assert record.permit == PERMIT and record.detail["query_sha256"] == answer.query_sha256
    assert record.outcome == "ok" and record.detail["outputs"] == answer.output_ids
    output = governance.outputs.show(anna, answer.output_ids[0])
    assert output.source == "query" and output.verdict == "pass"


def test_the_cycle_collector_rests_while_a_query_is_answered_and_is_back_after(setup, monkeypatch):
    import gc

    from collector_watch import collector_states
    from safepool.query import engine

    during = collector_states(monkeypatch, engine.Ledger, "check")
    assert gc.isenabled()
    ask(setup, AggregateRequest(table="population", measure="persons", by=["sex"]))
    assert during == [False] and gc.isenabled()
    with pytest.raises(QueryRefused):
        ask(setup, "SELECT sex, max(amount) FROM payments JOIN population USING (pid) GROUP BY sex")
    assert gc.isenabled()  # also after a refused query


def _huge_pages_advised() -> bool:
    """Whether NumPy now advises huge pages (read by setting it, then set back)."""
    from safepool.process_settings import _set_madvise_hugepage

    advised = bool(_set_madvise_hugepage(True))
    _set_madvise_hugepage(advised)
    return advised


def test_a_query_declines_huge_pages_and_keeps_python_strings_then_restores_both(setup, monkeypatch):
    from safepool.query import engine

    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    during: list[tuple[bool, str]] = []
    real = engine.Ledger.check
    monkeypatch.setattr(engine.Ledger, "check", lambda self, *a, **k: (
        during.append((_huge_pages_advised(), pd.get_option("mode.string_storage"))), real(self, *a, **k))[1])
    before = _huge_pages_advised(), pd.get_option("mode.string_storage")
    answer = ask(setup, AggregateRequest(table="population", measure="persons", by=["sex"]))
    assert during == [(False, "python")]  # declined, and text kept as Python strings
    assert (_huge_pages_advised(), pd.get_option("mode.string_storage")) == before  # then as they were
    assert answer.table["sex"].dtype == "str"  # the same kind of text column either way
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the person's own choice is left as it is
    ask(setup, AggregateRequest(table="population", measure="persons", by=["year(birth_year)"]))
    assert during[0][0] is False and {advised for advised, _ in during[1:]} == {before[0]}
    assert _huge_pages_advised() == before[0]


def test_sql_and_request_are_one_model(setup):
    by_sql = ask(setup, "SELECT sex, count(DISTINCT pid) AS persons FROM population GROUP BY sex")
    by_request = ask(setup, AggregateRequest(table="population", measure="persons", by=["sex"]))
    pd.testing.assert_frame_equal(by_sql.table, by_request.table)


def test_a_small_group_is_suppressed_with_a_partner(setup):
    answer = ask(setup, "SELECT year(birth_year) AS born, count(DISTINCT pid) AS persons FROM population "
                        "GROUP BY born")
    rows = answer.table.set_index("born")
    assert np.isnan(rows.loc["1940", "persons"]) and rows.loc["1940", "status"] == "suppressed"
    # with the total shown, the empty and small years add up to one person: a year with many is hidden too
    assert rows.loc[["1970", "1980", "1990", "2000"], "persons"].isna().sum() >= 1
    assert not np.isnan(rows.loc["Total", "persons"]) and "frequency check" in answer.note


def test_numeric_groups_are_the_policys_bins_never_values(setup):
    answer = ask(setup, "SELECT bin(amount) AS band, count(DISTINCT pid) AS persons FROM payments GROUP BY band")
    labels = set(answer.table["band"])
    assert labels <= {"under 100 EUR", "100 to under 250 EUR", "250 to under 400 EUR", "400 to under 10,000 EUR",
                "10,000 EUR or more", "Total"}
    numbers = {float(n.replace(",", "")) for label in labels for n in re.findall(r"\d[\d,]*", label)}
    assert numbers <= {100.0, 250.0, 400.0, 10_000.0}  # the bins' edges, never an amount


def test_one_dominant_person_hides_the_sum_and_mean_and_rows(setup):
    answer = ask(setup, "SELECT p.sex, sum(amount) AS total, avg(amount) AS mean_amount, count(*) AS payments "
                        "FROM payments JOIN population p USING (pid) GROUP BY p.sex")
    male = answer.table.set_index("sex").loc["male"]
    assert male["status"].startswith("suppressed") and "dominance" in answer.note
    assert np.isnan(male["total"]) and np.isnan(male["mean_amount"]) and np.isnan(male["payments"])


def test_the_total_of_a_mean_is_the_mean_over_all_rows(setup):
    answer = ask(setup, "SELECT p.sex, avg(amount) AS m FROM payments JOIN population p USING (pid) "
                        "WHERE amount < 10000 GROUP BY p.sex")
    payments = pool_tables()["payments"]
    expected = payments.loc[payments["amount"] < 10000, "amount"].mean()
    assert answer.table.set_index("sex").loc["Total", "m"] == round(expected, 3)  # at the policy's decimals


def test_shares_are_percentages_of_the_grand_total(setup):
    answer = ask(setup, AggregateRequest(table="payments", join=["population"], measure="share", value="amount",
                                         by=["sex"], filters=["amount < 10000"]))
    rows = answer.table.set_index("sex")
    assert rows.loc["Total", "share"] == pytest.approx(100.0)
    assert rows.loc["female", "share"] + rows.loc["male", "share"] == pytest.approx(100.0)


def test_shares_are_all_hidden_with_their_grand_total_never_shown_blank(setup, monkeypatch):
    """A review found shares labelled shown with no value (the ledger had hidden the grand total they
    divide by), and their output failed as invalid."""
    from safepool.query import engine
    from safepool.query.ledger import ALL_ANSWERS

    original, calls = engine.Ledger.check, []

    def grand_total_found(self, incoming, column_of, min_frequency, **kw):  # the ledger hides the grand total
        calls.append(1)
        if len(calls) == 1:
            sums = kw["sums"]  # the grand total: the sum of every other entry of the column
            return {max(sums, key=lambda entry: len(sums[entry])): ALL_ANSWERS}
        return original(self, incoming, column_of, min_frequency, **kw)

    monkeypatch.setattr(engine.Ledger, "check", grand_total_found)
    alone = ask(setup, "SELECT sex, share(amount) AS sh FROM payments JOIN population USING (pid) "
                       "WHERE amount < 10000 GROUP BY sex")
    assert len(calls) == 2 and list(alone.table["sex"]) == ["female", "male", "Total"]
    assert alone.table["sh"].isna().all() and set(alone.table["status"]) == {"suppressed"}
    assert "3 of 3 cell(s) suppressed" in alone.note and alone.output_ids == []  # nothing shown, nothing recorded
    calls.clear()
    answer = ask(setup, "SELECT sex, share(amount) AS sh, sum(amount) AS s FROM payments JOIN population "
                        "USING (pid) WHERE amount < 400 GROUP BY sex")
    # a group hidden in one column is hidden in every column: the sums would give the total away
    assert answer.table[["sh", "s"]].isna().all().all() and set(answer.table["status"]) == {"suppressed"}
    assert answer.output_ids == []


def test_a_mean_of_one_person_is_suppressed(setup):
    answer = ask(setup, "SELECT avg(amount) AS m FROM payments JOIN population USING (pid) WHERE birth_year = 1940")
    assert np.isnan(answer.table.loc[0, "m"]) and answer.table.loc[0, "status"].startswith("suppressed")


def test_a_quantile_is_a_local_mean_of_at_least_five_values(setup):
    answer = ask(setup, AggregateRequest(table="payments", measure="quantiles", value="amount", quantiles=[0.5],
                                         filters=["amount < 10000"]))
    amounts = np.sort(pool_tables()["payments"].query("amount < 10000")["amount"].to_numpy())
    value = answer.table.loc[0, "q50"]
    middle = (len(amounts) - 1) / 2
    low, high = int(round(middle - 2)), int(round(middle - 2)) + 4
    window = amounts[(amounts >= amounts[low]) & (amounts <= amounts[high])]
    assert value == pytest.approx(window.mean()) and len(window) >= 5


def test_quantiles_need_enough_persons(setup):
    answer = ask(setup, AggregateRequest(table="payments", join=["population"], measure="quantiles",
                                         value="amount", by=["year(birth_year)"], quantiles=[0.5]))
    rows = answer.table.set_index("year_birth_year")
    assert np.isnan(rows.loc["1940", "q50"]) and not np.isnan(rows.loc["1970", "q50"])


def test_refusal_is_audited_with_a_digest_and_no_literal(setup):
    _, governance, _ = setup
    with pytest.raises(QueryRefused, match="pseudonym pid"):
        ask(setup, "SELECT count(*) AS n FROM payments WHERE pid = 'p-whale'")
    record = governance.audit.records(action="query_refused")[-1]
    assert record.outcome == "refused" and len(record.detail["query_sha256"]) == 64
    assert "p-whale" not in str(record.detail)


def test_variables_outside_the_permit_are_refused_and_audited(setup):
    _, governance, _ = setup
    with pytest.raises(QueryRefused, match="payments.amount|bank"):
        ask(setup, "SELECT sum(amount) AS s FROM payments WHERE bank IS NULL")
    assert governance.audit.records(action="query_refused")[-1].permit == PERMIT


def test_analyst_not_on_the_permit_is_refused(setup):
    workspace, governance, _ = setup
    with pytest.raises(QueryRefused, match="not named in permit"):
        run_query(workspace.pool_dir, governance, sign_in(governance, "aaro"), PERMIT,
                  "SELECT count(*) AS n FROM payments")
    assert governance.audit.records(action="query_refused")[-1].actor == "aaro"


def test_more_than_two_groups_is_refused(setup):
    with pytest.raises(QueryRefused, match="at most 2 grouping terms"):
        ask(setup, "SELECT p.sex, year(p.birth_year) AS b, month(paid_on) AS m, count(*) AS n "
                   "FROM payments JOIN population p USING (pid) GROUP BY 1, 2, 3")


def test_an_empty_selection_answers_its_cells_suppressed(setup):
    """No one meets the filters: the answer has its cells all the same, suppressed as a cell of too
    few would be (an empty answer would tell the two apart), and nothing is recorded."""
    answer = ask(setup, AggregateRequest(table="payments", measure="sum", value="amount", by=["month(paid_on)"],
                                         filters=[parse_filter("amount < 100"), parse_filter("amount >= 100")]))
    assert len(answer.table) == 3 * 12 + 1 and answer.table["sum"].isna().all() and answer.output_ids == []
    assert set(answer.table["status"]) == {"suppressed"}


def test_dates_group_by_their_parts_in_the_declared_years(setup):
    """Every period of the declared years is a cell (2018-2020 here), those its filters rule out
    excepted; periods no one is in are suppressed like small ones."""
    answer = ask(setup, "SELECT month(paid_on) AS m, count(DISTINCT pid) AS n FROM payments GROUP BY m")
    assert list(answer.table["m"]) == [f"{y}-{m:02d}" for y in (2018, 2019, 2020) for m in range(1, 13)] + ["Total"]
    shown = answer.table[answer.table["n"].notna()]
    assert set(shown["m"]) <= {f"2019-{m:02d}" for m in range(1, 5)} | {"Total"}
    visits = ask(setup, "SELECT quarter(month) AS q, count(*) AS n FROM visits WHERE month >= 201901 "
                        "AND month < 202001 GROUP BY q")
    assert list(visits.table["q"]) == ["2019Q1", "2019Q2", "2019Q3", "2019Q4", "Total"]
    # every visit is of 2019Q1: shown with the total, it would tell that the other quarters are empty
    assert visits.table["n"].notna().tolist() == [False, False, False, False, True]


def test_a_range_of_days_ending_on_a_months_last_day_is_answered_as_whole_months(setup):
    """`BETWEEN` a first and a last day of months is the `>=` and `<` the model compares days by: the
    same cells, the same answer (the ledger takes it for the same question), and its months only."""
    between = ask(setup, "SELECT month(paid_on) AS m, count(*) AS n FROM payments "
                         "WHERE paid_on BETWEEN DATE '2019-01-01' AND DATE '2019-03-31' GROUP BY m")
    ranged = ask(setup, "SELECT month(paid_on) AS m, count(*) AS n FROM payments "
                        "WHERE paid_on >= DATE '2019-01-01' AND paid_on < DATE '2019-04-01' GROUP BY m")
    assert list(between.table["m"]) == ["2019-01", "2019-02", "2019-03", "Total"]
    pd.testing.assert_frame_equal(between.table, ranged.table)


# -- generated queries -------------------------------------------------------------------------

SOURCES = {
    "payments": ("payments", ["year(paid_on)", "month(paid_on)", "bin(amount)"]),
    "payments JOIN population USING (pid)": ("payments", ["sex", "year(birth_year)", "month(paid_on)"]),
    "population": ("population", ["sex", "year(birth_year)"]),
    "visits LEFT JOIN population USING (pid)": ("visits", ["sex", "year(birth_year)"]),
}
# measure -> the variable whose non-missing values it is made of (the persons behind a cell)
MEASURES = {"count(*)": "pid", "count(DISTINCT pid)": "pid", "sum(amount)": "amount", "avg(amount)": "amount",
            "median(amount)": "amount", "quantile_cont(amount, 0.3)": "amount", "share(amount)": "amount"}
HOSTILE = ["max(amount)", "min(birth_year)", "list(pid)", "any_value(pid)", "first(amount)", "mean(amount * 2)",
           "sum(CASE WHEN birth_year = 1940 THEN amount ELSE 0 END)", "count(amount)"]
FILTERS = ["birth_year = 1940", "birth_year <> 1940", "sex = 'F'", "amount > 400", "amount < 10000",
           "birth_year BETWEEN 1970 AND 1985", "pid = 'p-whale'", "month(paid_on) = 1", "birth_year > 1990"]
TRUTH_KEYS = {"year(paid_on)": "strftime(paid_on, '%Y')", "month(paid_on)": "strftime(paid_on, '%Y-%m')",
              "year(birth_year)": "CAST(birth_year AS VARCHAR)", "sex": "CASE sex WHEN 'F' THEN 'female' ELSE 'male' END",
              "bin(amount)": "CASE WHEN amount < 100 THEN 'under 100 EUR' WHEN amount < 250 THEN '100 to under 250 EUR' "
                             "WHEN amount < 400 THEN '250 to under 400 EUR' "
                             "WHEN amount < 10000 THEN '400 to under 10,000 EUR' ELSE '10,000 EUR or more' END"}


@st.composite
def generated_query(draw):
    source = draw(st.sampled_from(sorted(SOURCES)))
    base, keys = SOURCES[source]
    chosen_keys = draw(st.lists(st.sampled_from(keys), max_size=2, unique=True))
    pool = [a for a in [*MEASURES, *HOSTILE]
            if ("amount" not in a or "payments" in source) and ("birth_year" not in a or "population" in source)]
    aggregates = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    usable = [f for f in FILTERS if ("amount" not in f and "paid_on" not in f) or "payments" in source]
    usable = [f for f in usable if ("birth_year" not in f and "sex" not in f) or "population" in source]
    filters = draw(st.lists(st.sampled_from(usable), max_size=2, unique=True))
    outputs = [f"{k} AS g{i}" for i, k in enumerate(chosen_keys)] + [f"{a} AS a{i}" for i, a in enumerate(aggregates)]
    sql = f"SELECT {', '.join(outputs)} FROM {source}"
    if filters:
        sql += " WHERE " + " AND ".join(filters)
    if chosen_keys:
        sql += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(chosen_keys)))
    where = " AND ".join(filters) or "true"
    return sql, source, base, chosen_keys, aggregates, where


@pytest.fixture(scope="module")
def shared(template, tmp_path_factory):
    truth = duckdb.connect()
    for name, frame in pool_tables().items():
        truth.register(name, frame)
    return copy_of(template, tmp_path_factory.mktemp("generated") / "ws"), truth


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase_.explicit, Phase_.reuse, Phase_.generate])
@given(generated=generated_query())
def test_generated_queries_return_only_checked_aggregates(shared, generated):
    setup, truth = shared
    sql, source, base, keys, aggregates, where = generated
    hostile = any(a in HOSTILE for a in aggregates) or "pid =" in where or "month(paid_on) =" in where
    try:
        answer = ask(setup, sql)
    except QueryRefused as refusal:
        assert hostile or "budget" in str(refusal), f"a query of the model was refused: {sql}: {refusal}"
        return
    assert not hostile, f"a query outside the model was answered: {sql}"
    text = answer.table.to_csv(index=False)
    assert "p-" not in text  # no pseudonym, ever
    inner = answer.table
    for column in [f"g{i}" for i in range(len(keys))]:
        inner = inner[inner[column].astype(str) != "Total"]
    for aggregate in aggregates:
        shown = inner[inner["status"] == SHOWN]
        if shown.empty:
            continue
        argument = MEASURES[aggregate]
        groups = ", ".join(f"{TRUTH_KEYS[k]} AS g{j}" for j, k in enumerate(keys))
        persons = truth.sql(
            f"SELECT {groups + ', ' if groups else ''}count(DISTINCT CASE WHEN {argument} IS NOT NULL "
            f"THEN {base}.pid END) AS persons FROM {source} WHERE {where}"
            + (" GROUP BY ALL" if keys else "")).df()
        merged = shown.merge(persons, on=[f"g{j}" for j in range(len(keys))], how="left") if keys else \
            shown.assign(persons=persons["persons"].iloc[0])
        small = (merged["persons"] > 0) & (merged["persons"] < 5)  # zero persons is a zero, not a person's value
        assert not small.any(), f"a shown cell of {aggregate} has 1 to 4 persons: {sql}"


def test_when_the_policy_rounds_counts_every_count_is_rounded(setup):
    from recorded_outputs import use_policy

    _, governance, _ = setup
    use_policy(governance, round_counts=True)
    answer = ask(setup, "SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex")
    assert (answer.table["n"] % 5 == 0).all() and answer.table["status"].str.startswith("rounded").all()
    assert "rounded to multiples of 5" in answer.note


@pytest.mark.parametrize("spans", [(3,), (2, 7), (2000, 2000), (2**31 - 1, 5), ()])
def test_each_row_gets_the_cell_of_its_keys(spans):
    """However wide the keys (date parts, codes), each row gets the grid row of its keys; keys that
    are no row of the grid are refused, never given some cell."""
    from safepool.query.grid_labels import in_grid

    rng = np.random.default_rng(len(spans))
    grid = np.stack(np.meshgrid(*[np.unique(rng.integers(0, span, 40)) for span in spans], indexing="ij"),
                    axis=-1).reshape(-1, len(spans)) if spans else np.zeros((1, 0), dtype=np.int64)
    grid = grid[rng.permutation(len(grid))]
    picked = rng.integers(0, len(grid), 500)
    keys = [grid[picked, i].astype(np.int64) for i in range(len(spans))]
    assert np.array_equal(in_grid(grid, keys, 500), picked if spans else np.zeros(500, dtype=np.int64))
    if spans:
        with pytest.raises(QueryRefused, match="outside the answer's cells"):
            in_grid(grid, [np.r_[k, -1] for k in keys], 501)


def test_a_grids_labels_are_made_once_per_statement_and_every_caller_gets_its_own_copy(setup, monkeypatch):
    """The labels come from code lists alone, so the second question over the same groups reads
    them from the process; what a caller does to its labels reaches no other caller."""
    from safepool.query import budget, grid_labels

    statements: list[str] = []
    real = budget.Budget.frame
    monkeypatch.setattr(budget.Budget, "frame", lambda self, step, sql, **frames: (
        statements.append(sql), real(self, step, sql, **frames))[1])
    monkeypatch.setattr(grid_labels, "_kept", type(grid_labels._kept)())
    first = ask(setup, AggregateRequest(table="population", measure="persons", by=["sex"]))
    made = [sql for sql in statements if "VALUES" in sql]
    kept = grid_labels._kept[made[0]][0]
    kept_before = kept.copy()
    second = ask(setup, "SELECT sex, count(DISTINCT pid) AS persons FROM population GROUP BY sex")
    assert len(made) == 1 and [sql for sql in statements if "VALUES" in sql] == made  # made once
    assert first.table["sex"].tolist() == second.table["sex"].tolist()
    first.table.loc[0, "sex"] = "changed"
    pd.testing.assert_frame_equal(grid_labels._kept[made[0]][0], kept_before)  # no caller holds the kept frame


def test_answers_do_not_depend_on_the_pseudonyms_or_their_order(template, tmp_path):
    """The same data under other pseudonyms (as another permit key gives them), its rows shuffled:
    every answer, suppression and note is the same, and so is what the ledger hides."""
    rng = random.Random(3)
    tables = pool_tables()
    renamed = {pid: f"x{rng.getrandbits(64):016x}" for pid in tables["population"]["pid"]}
    other = {name: frame.assign(pid=frame["pid"].map(renamed)).sample(frac=1.0, random_state=5).reset_index(drop=True)
             for name, frame in tables.items()}
    governed_pool(tmp_path / "other", other)
    questions = ["SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex",
                 "SELECT sex, bin(amount) AS b, sum(amount) AS s FROM payments JOIN population USING (pid) "
                 "GROUP BY 1, 2",
                 "SELECT sex, median(amount) AS q FROM payments JOIN population USING (pid) GROUP BY sex",
                 "SELECT sum(amount) AS s FROM payments WHERE amount < 10000",
                 "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) WHERE amount < 10000 "
                 "AND birth_year != 1940"]
    first, second = copy_of(template, tmp_path / "ws"), copy_of(tmp_path / "other", tmp_path / "ws2")
    for question in questions:
        mine, theirs = ask(first, question), ask(second, question)
        pd.testing.assert_frame_equal(mine.table, theirs.table)
        assert mine.note == theirs.note
    assert np.isnan(mine.table.loc[0, "s"])  # the last differs from the one before by one person


def test_a_row_status_names_the_columns_it_is_about():
    """A shown value beside a hidden or rounded one is not called suppressed or rounded: a row whose
    columns differ names each column not shown as it is, with its status; columns that agree share one."""
    from safepool.query.engine import _row_status
    rounded = "rounded to base 5"
    assert _row_status([("s", SHOWN), ("q", SHOWN)]) == SHOWN
    assert _row_status([("s", "suppressed"), ("q", "suppressed")]) == "suppressed"
    assert _row_status([("s", SHOWN), ("q", "suppressed")]) == "q: suppressed"
    assert _row_status([("n", rounded), ("s", SHOWN)]) == f"n: {rounded}"
    assert _row_status([("n", rounded), ("q", "suppressed")]) == f"n: {rounded}; q: suppressed"
