"""The cohort SQL against the synthetic generator's own eligibility, and the outcomes' censoring."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import synthetic_pool, validity_study  # noqa: E402

from safepool.study.cohort import CohortError, attach_outcomes, build_cohort, quarter_index  # noqa: E402


@pytest.fixture(scope="module")
def pool():
    con, truth = synthetic_pool(seed=7, persons=4000, clients_per_year=30)
    yield con, truth
    con.close()


@pytest.fixture(scope="module")
def cohort(pool):
    con, _ = pool
    return build_cohort(con, validity_study())


def test_risk_sets_are_the_generators_eligible_persons(pool, cohort):
    _, truth = pool
    units = cohort.units
    by_quarter = units.groupby("stratum").agg(units=("pid", "size"), treated=("treated", "sum"))
    for entry in truth["clients"]["selection_by_quarter"]:
        row = by_quarter.loc[entry["quarter"]]
        # a few persons are lost to identity faults (missing from the population register, or a
        # client whose code has a wrong check character and so never links)
        assert abs(row["units"] - entry["eligible"]) <= max(2, 0.01 * entry["eligible"]), entry
        assert entry["entries"] - 1 <= row["treated"] <= entry["entries"], entry
    assert units.groupby(["pid", "t"]).size().max() == 1
    first_entry = units.loc[units["treated"] == 1].groupby("pid")["t"].min()
    assert units.loc[units["treated"] == 1].groupby("pid").size().max() == 1
    later = units.merge(first_entry.rename("entered"), left_on="pid", right_index=True)
    assert (later["t"] <= later["entered"]).all()  # nobody is in a risk set after entering


def test_covariates_are_measured_strictly_before_entry(pool, cohort):
    con, _ = pool
    employment = con.sql("SELECT pid, quarter, main_activity, earnings FROM employment").df()
    employment["t"] = [quarter_index(q) for q in employment["quarter"]]
    sample = cohort.units.sample(300, random_state=1)
    rows = employment.merge(sample[["pid", "t"]].rename(columns={"t": "q"}), on="pid")
    for (pid, q), own in rows.groupby(["pid", "q"]):
        unit = sample.loc[(sample["pid"] == pid) & (sample["t"] == q)].iloc[0]
        last8, last4 = own[(own["t"] >= q - 8) & (own["t"] < q)], own[(own["t"] >= q - 4) & (own["t"] < q)]
        assert unit["unemployed_quarters_8"] == (last8["main_activity"] == "12").sum()
        assert unit["log_earnings_4"] == pytest.approx(np.log1p(last4["earnings"].sum() / 1000))
    dummies = [c for c in cohort.covariates if c.startswith("permit_grounds_")]
    assert dummies and "permit_grounds" in cohort.units.columns  # one-hot, the most common level left out
    assert cohort.units[dummies].sum(axis=1).max() == 1


def test_outcomes_missing_when_unobserved_and_censored_from_a_controls_own_entry(pool, cohort):
    con, _ = pool
    units = cohort.units
    later_clients = units.loc[(units["treated"] == 0) & units["entry_t"].notna()].head(40)
    treated = units.loc[units["treated"] == 1].head(40)
    chosen = pd.concat([later_clients, treated])
    wide = attach_outcomes(con, chosen, ["employment"], list(range(-4, 9)))
    employed = con.sql("SELECT pid, quarter, main_activity = '11' AS employed FROM employment").df()
    employed["t"] = [quarter_index(q) for q in employed["quarter"]]
    status = employed.set_index(["pid", "t"])["employed"]
    for _, unit in wide.iterrows():
        for h in range(-4, 9):
            value, at = unit[f"employment@{h}"], unit["t"] + h
            censored = unit["treated"] == 0 and at >= unit["entry_t"]
            if censored or (unit["pid"], at) not in status.index:
                assert np.isnan(value)
            else:
                assert value == float(status.loc[(unit["pid"], at)])
    assert wide.loc[wide["treated"] == 0, "employment@8"].isna().sum() > 0
    assert list(wide.index) == list(chosen.index)


def test_cohort_flow_adds_up(cohort):
    flow = cohort.flow.set_index("step")
    assert flow.loc["immigrants", "persons"] + flow.loc["immigrants", "removed"] == \
        flow.loc["persons in the population register", "persons"]
    treated = flow.loc["entrants eligible at their entry quarter (treated units)"]
    assert treated["persons"] == (cohort.units["treated"] == 1).sum()
    assert (cohort.flow["removed"] >= 0).all()
    assert not cohort.flow.astype(str).apply(lambda c: c.str.fullmatch(r"\d{12,}")).any().any()  # no pseudonym


def test_a_pool_without_the_needed_table_is_named():
    con = duckdb.connect()
    con.execute("CREATE TABLE population (pid VARCHAR)")
    with pytest.raises(CohortError, match="no table skills_centre") as caught:
        build_cohort(con, validity_study())
    assert "table population has no column(s) birth_date" in str(caught.value)


def test_fetching_in_chunks_of_quarters_changes_nothing(pool, cohort, monkeypatch):
    """The units fetched one entry quarter at a time are the units fetched all at once, in data order."""
    import safepool.study.cohort as cohort_module

    con, _ = pool
    monkeypatch.setattr(cohort_module, "CHUNK_QUARTERS", 1)
    one_by_one = build_cohort(con, validity_study())
    assert one_by_one.covariates == cohort.covariates
    pd.testing.assert_frame_equal(one_by_one.flow, cohort.flow)
    every_column = list(cohort.units.columns)
    assert (one_by_one.units["t"].diff().dropna() >= 0).all()
    pd.testing.assert_frame_equal(one_by_one.units.sort_values(every_column).reset_index(drop=True),
                                  cohort.units.sort_values(every_column).reset_index(drop=True))
    pd.testing.assert_frame_equal(one_by_one.units.drop(columns="pid"), cohort.units.drop(columns="pid"))
