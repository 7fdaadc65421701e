"""Differencing: no combination of a permit's answered queries gives away a person's value.

The engine tests run queries through the governed pool; the ledger tests drive the ledger
directly with generated cells. Both are judged by a brute force that knows nothing of the
audit: it stacks what every person contributes to every shown cell and asks numpy's least
squares whether some combination of the shown cells is one person's value alone. Every test
runs twice: with the audit as it chooses (these small pools make few classes, worked on as dense
class columns) and forced to work in the persons with its probes, as it does at 300,000 persons.
"""

from __future__ import annotations

import itertools
import time
from contextlib import contextmanager

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from safepool.disclosure.mitigation import SHOWN
from safepool.governance.context import Governance
from safepool.governance.users import Actor, Role
from safepool.query import audit_algebra
from safepool.query.ledger import ALL_ANSWERS, LEDGER_DIR, Ledger
from test_query_engine import LONELY, PERMIT, ask, copy_of, pool_tables, template  # noqa: F401

MIN_FREQUENCY = 5
SOURCE = "payments JOIN population USING (pid)"
BASE = "amount < 10000"  # leaves out the dominant whale, so that sums are shown


@pytest.fixture(autouse=True, params=["as it chooses", "in the persons"])
def audit_way(request, monkeypatch):
    if request.param == "in the persons":
        monkeypatch.setattr(audit_algebra, "_DENSE_CLASSES", 0)
    return request.param


@pytest.fixture
def setup(template, tmp_path):  # noqa: F811  (pytest injects the imported fixture)
    return copy_of(template, tmp_path / "ws")


def alone(vectors: np.ndarray, atol: float = 1e-6) -> list[int]:
    """Persons (columns of cells x persons) whose unit vector is a combination of the cells."""
    found = []
    for person in range(vectors.shape[1]):
        unit = np.zeros(vectors.shape[1])
        unit[person] = 1.0
        weights = np.linalg.lstsq(vectors.T, unit, rcond=None)[0]
        if np.abs(vectors.T @ weights - unit).max() < atol:
            found.append(person)
    return found


# -- attacks through the engine ----------------------------------------------------------------


def withheld_by_the_ledger(setup) -> list[dict]:
    """What the audit record of the last answer says the ledger hid (the answer itself does not say)."""
    record = setup[1].audit.records(action="query")[-1]
    return record.detail["withheld"] if record.outcome == "withheld" else []


def test_differencing_a_group_with_and_without_one_person_is_withheld(setup):
    everyone = ask(setup, f"SELECT sum(amount) AS s FROM payments WHERE {BASE}")
    assert everyone.table.loc[0, "status"] == SHOWN
    without = ask(setup, f"SELECT sum(amount) AS s FROM {SOURCE} WHERE {BASE} AND birth_year <> 1940")
    assert np.isnan(without.table.loc[0, "s"]) and without.table.loc[0, "status"] == "suppressed"
    assert "earlier answers" in without.note and "1 of 1 cell(s) suppressed" in without.note
    assert withheld_by_the_ledger(setup) == [{"column": 1, "measure": "sum", "cells": 1, "check": "differencing (pairs)"}]


def test_differencing_through_a_total_is_withheld(setup):
    ask(setup, "SELECT count(DISTINCT pid) AS n FROM population")
    by_sex = ask(setup, "SELECT sex, count(DISTINCT pid) AS n FROM population WHERE birth_year > 1940 GROUP BY sex")
    # the total is everyone born after 1940, which differs from everyone by the few born before: it is
    # hidden, and then a cell with it (else the cells would add up to it)
    assert np.isnan(by_sex.table.set_index("sex").loc["Total", "n"]) and by_sex.table["n"].isna().sum() >= 2
    assert by_sex.table["status"].isin([SHOWN, "suppressed"]).all() and withheld_by_the_ledger(setup)


def test_three_answers_cannot_isolate_a_person(setup):
    _, governance, _ = setup
    everyone = ask(setup, f"SELECT sum(amount) AS s FROM payments WHERE {BASE}")
    women_but_one = ask(setup, f"SELECT sum(amount) AS s FROM {SOURCE} WHERE {BASE} AND sex = 'F' "
                               "AND birth_year <> 1940")
    men = ask(setup, f"SELECT sum(amount) AS s FROM {SOURCE} WHERE {BASE} AND sex = 'M'")
    assert everyone.table.loc[0, "status"] == women_but_one.table.loc[0, "status"] == SHOWN
    assert np.isnan(men.table.loc[0, "s"]) and men.table.loc[0, "status"] == "suppressed"
    assert men.output_ids == []
    record = governance.audit.records(action="query")[-1]
    assert record.detail["withheld"] == [{"column": 1, "measure": "sum", "cells": 1,
                                          "check": f"differencing ({ALL_ANSWERS})"}]
    assert "p-" not in str(record.detail) and "374" not in str(record.detail)


def test_splitting_one_persons_rows_between_answers_is_caught(setup):
    payments = pool_tables()["payments"]
    assert (payments.loc[payments["pid"] == LONELY, "amount"] <= 400).any()  # the split isolates something
    ask(setup, f"SELECT sum(amount) AS s FROM payments WHERE {BASE}")
    high = ask(setup, f"SELECT sum(amount) AS s FROM payments WHERE {BASE} AND amount > 400")
    low_but_one = ask(setup, f"SELECT sum(amount) AS s FROM {SOURCE} WHERE {BASE} AND amount <= 400 "
                             "AND birth_year <> 1940")
    assert high.table.loc[0, "status"] == SHOWN
    assert np.isnan(low_but_one.table.loc[0, "s"])


def test_the_same_question_twice_is_answered_twice(setup):
    first = ask(setup, "SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex")
    second = ask(setup, "SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex")
    pd.testing.assert_frame_equal(first.table, second.table)


def test_groups_differing_by_many_persons_are_both_answered(setup):
    ask(setup, "SELECT count(DISTINCT pid) AS n FROM population")
    older = ask(setup, "SELECT count(DISTINCT pid) AS n FROM population WHERE birth_year < 1985")
    assert older.table.loc[0, "status"] == SHOWN


@pytest.mark.parametrize("measure", ["count(DISTINCT pid)", "sum(amount)", "avg(amount)"])
def test_one_table_by_sex_by_amount_band_and_by_both_is_answered(setup, measure):
    for keys in (["sex"], ["bin(amount)"], ["sex", "bin(amount)"]):
        outputs = ", ".join(f"{key} AS g{i}" for i, key in enumerate(keys))
        groups = ", ".join(f"g{i}" for i in range(len(keys)))
        answer = ask(setup, f"SELECT {outputs}, {measure} AS v FROM {SOURCE} WHERE {BASE} GROUP BY {groups}")
        assert (answer.table["status"] == SHOWN).all(), (keys, answer.note)


# -- generated sequences of answered queries ---------------------------------------------------

KEYS = ["sex", "bin(amount)", "year(birth_year)"]
# each group term as the truth (plain DuckDB over the same tables) writes its labels
TRUTH = {"sex": "CASE sex WHEN 'F' THEN 'female' ELSE 'male' END", "year(birth_year)": "CAST(birth_year AS VARCHAR)",
         "bin(amount)": "CASE WHEN amount < 100 THEN 'under 100 EUR' WHEN amount < 250 THEN '100 to under 250 EUR' "
                        "WHEN amount < 400 THEN '250 to under 400 EUR' "
                        "WHEN amount < 10000 THEN '400 to under 10,000 EUR' ELSE '10,000 EUR or more' END"}
MEASURES = ["count(DISTINCT pid)", "count(*)", "sum(amount)"]
FILTERS = ["sex = 'F'", "sex = 'M'", "birth_year <> 1940", "birth_year < 1985", "birth_year >= 1985",
           "birth_year BETWEEN 1975 AND 1995", "birth_year <> 1970", "birth_year > 1940"]


def contributions(truth: duckdb.DuckDBPyConnection, persons: list[str], measure: str, where: str,
                  key: str | None, label: object) -> np.ndarray:
    """What each person adds to one shown cell, worked out from the tables themselves. A total of a
    grouped table adds up its cells (`label` None), so a person counted in two groups counts twice."""
    condition = where + (f" AND ({TRUTH[key]}) = ?" if key is not None and label is not None else "")
    groups = f"count(DISTINCT {TRUTH[key]})" if key is not None else "1"
    value = {"count(DISTINCT pid)": "1" if label is not None else groups, "count(*)": "count(*)",
             "sum(amount)": "sum(amount)"}[measure]
    rows = truth.execute(f"SELECT pid, {value} FROM {SOURCE} WHERE {condition} GROUP BY pid",
                         [str(label)] if key is not None and label is not None else []).fetchall()
    vector = np.zeros(len(persons))
    for pid, amount in rows:
        vector[persons.index(pid)] = amount
    return vector


@pytest.fixture(scope="module")
def generated(template, tmp_path_factory):  # noqa: F811
    """A fresh workspace (and so a fresh permit memory) for every generated sequence, and the truth."""
    truth = duckdb.connect()
    for name, frame in pool_tables().items():
        truth.register(name, frame)
    return lambda: copy_of(template, tmp_path_factory.mktemp("differencing") / "ws"), truth


query = st.tuples(st.sampled_from(MEASURES), st.none() | st.sampled_from(KEYS),
                  st.lists(st.sampled_from(FILTERS), max_size=2, unique=True))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(queries=st.lists(query, min_size=2, max_size=5))
@example(queries=[("count(DISTINCT pid)", None, []),
                  ("count(DISTINCT pid)", "bin(amount)", ["birth_year > 1940"])])  # a total counts a person per group
@example(queries=[("sum(amount)", None, []), ("sum(amount)", None, ["sex = 'F'", "birth_year <> 1940"]),
                  ("sum(amount)", None, ["sex = 'M'"])])
@example(queries=[("count(*)", "sex", []), ("count(DISTINCT pid)", None, ["birth_year > 1940"]),
                  ("sum(amount)", "year(birth_year)", ["sex = 'F'"])])
def test_no_sequence_of_answers_gives_away_a_person(generated, queries):
    fresh, truth = generated
    setup = fresh()
    persons = sorted(pool_tables()["population"]["pid"])
    shown = []
    for measure, key, filters in queries:
        where = " AND ".join([BASE, *filters])
        group = f"{key} AS g, " if key else ""
        answer = ask(setup, f"SELECT {group}{measure} AS v FROM {SOURCE} WHERE {where}"
                            + (" GROUP BY g" if key else ""))
        for _, row in answer.table[answer.table["status"] == SHOWN].iterrows():
            inner = key is not None and str(row["g"]) != "Total"
            shown.append(contributions(truth, persons, measure, where, key, row["g"] if inner else None))
    if shown:
        assert alone(np.array(shown)) == [], f"a person's value follows from the answers to {queries}"


# -- the ledger alone --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_ledger(tmp_path_factory):
    """Opens the ledger of a permit never queried before, in one metadata store for the module."""
    root = tmp_path_factory.mktemp("ledgers")
    governance = Governance.open(root)
    analyst = Actor("anna", frozenset({Role.analyst}), frozenset())
    permits = itertools.count()

    @contextmanager
    def fresh():
        with Ledger.open(root, governance, analyst, f"L-{next(permits)}") as ledger:
            yield ledger

    yield fresh
    governance.permits.engine.dispose()


def cell_frame(cells: list[np.ndarray]) -> pd.DataFrame:
    """Ledger input: one row per person with rows in the cell (value 0 allowed)."""
    frames = [pd.DataFrame({"cell": i, "person": np.flatnonzero(~np.isnan(v)).astype("uint64"),
                            "value": v[~np.isnan(v)]}) for i, v in enumerate(cells)]
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), persons=st.integers(6, 14))
def test_the_ledger_never_accepts_cells_that_isolate_a_person(fresh_ledger, data, persons):
    values = data.draw(st.lists(st.sampled_from([1.0, 2.0, 3.0]), min_size=persons, max_size=persons))
    answered: list[np.ndarray] = []  # cells x persons, 0 where a person is not in a cell
    with fresh_ledger() as ledger:
        for _ in range(data.draw(st.integers(2, 6))):
            members = data.draw(st.lists(st.booleans(), min_size=persons, max_size=persons))
            cell = np.where(members, np.array(values), np.nan)
            if not np.any(members):
                continue
            withheld = ledger.check(cell_frame([cell]), {0: 0}, MIN_FREQUENCY)
            if not withheld:
                answered.append(np.nan_to_num(cell))
            elif withheld[0] == ALL_ANSWERS:
                # the brute force agrees: the answers tell something about a group of fewer persons
                # than the minimum frequency alone
                together = np.array([*answered, np.nan_to_num(cell)])
                assert pinned_groups(together, np.array(values))


def pinned_groups(cells: np.ndarray, values: np.ndarray) -> list[tuple[int, ...]]:
    """Unions of groups of persons in the same cells, of fewer persons than the minimum frequency,
    about whom alone a combination of the cells' values or of their memberships tells something
    (leaving their persons out lowers the rank)."""
    patterns, group = np.unique((cells != 0).T, axis=0, return_inverse=True)
    small = [g for g in range(len(patterns)) if 0 < (group == g).sum() < MIN_FREQUENCY and patterns[g].any()]
    memberships = (cells != 0).astype(float)
    found = []
    for size in range(1, MIN_FREQUENCY):
        for chosen in itertools.combinations(small, size):
            inside = np.isin(group, chosen)
            if inside.sum() < MIN_FREQUENCY and any(np.linalg.matrix_rank(rows) > np.linalg.matrix_rank(rows[:, ~inside])
                                                    for rows in (cells, memberships)):
                found.append(chosen)
    return found
    if answered:
        assert alone(np.array(answered)) == []


def test_an_audit_step_over_100_cells_and_10000_persons_is_quick(fresh_ledger):
    rng = np.random.default_rng(4)
    persons = 10_000
    sex, year = rng.integers(0, 2, persons), rng.integers(0, 10, persons)
    amount = rng.integers(50, 500, persons).astype(float)
    masks = [sex == i % 2 for i in range(25)] + [year == i % 10 for i in range(25)] \
        + [(sex == i % 2) & (year == i % 10) for i in range(25)] + [year >= i % 10 for i in range(25)]
    cells = [np.where(mask, amount * (1 + (i % 3 == 0)), np.nan) for i, mask in enumerate(masks)]
    with fresh_ledger() as ledger:
        ledger.remember(cell_frame(cells))
        incoming = cell_frame([np.where(year < 5, amount, np.nan), np.where(sex == 1, 1.0, np.nan)])
        started = time.perf_counter()
        withheld = ledger.check(incoming, {0: 0, 1: 1}, MIN_FREQUENCY)
        elapsed = time.perf_counter() - started
    assert withheld == {}
    assert elapsed < 2.0, f"one audit step took {elapsed:.2f} s"
