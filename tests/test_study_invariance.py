"""Key-independent results: nothing the study reports depends on the pseudonyms' values or order.

A pseudonym is a keyed hash, so the same registers pooled under another permit's key carry other
pseudonyms in another order. Here one synthetic pool is copied with every pid replaced through a
random bijection (what a second key does), and every output of `analyse` must be the same:
estimates, intervals, balance, flow, subgroups, placebo, sensitivity, naive comparison. The same
for two runs on one pool, and for the matcher given its rows in any order.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safepool.disclosure import DisclosureRules
from safepool.study.matching import RiskSetMatcher
from safepool.study.run import TABLES, analyse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import synthetic_pool, validity_study  # noqa: E402

FRAMES = [name for name in TABLES if name != "unmatched"] + ["unmatched"]


def rekeyed(con, seed: int):
    """The same pool under another key: every pid mapped through one random bijection."""
    tables = [row[0] for row in con.sql("SELECT table_name FROM duckdb_columns() WHERE column_name = 'pid'").fetchall()]
    pids = sorted({pid for table in tables for (pid,) in con.sql(f'SELECT DISTINCT pid FROM "{table}"').fetchall()})
    rng = np.random.default_rng(seed)
    new = [f"{value:032x}" for value in rng.integers(0, 2**63, size=len(pids))]
    mapping = pd.DataFrame({"pid": pids, "new_pid": new})
    import duckdb
    other = duckdb.connect()
    other.register("mapping", mapping)
    for table in tables:
        frame = con.sql(f'SELECT * FROM "{table}"').df()
        frame = frame.sample(frac=1, random_state=seed).reset_index(drop=True)  # and another physical order
        other.register("source_rows", frame)
        columns = [c for c in frame.columns if c != "pid"]
        other.execute(f'CREATE TABLE "{table}" AS SELECT m.new_pid AS pid, '
                      + ", ".join(f's."{c}"' for c in columns)
                      + ' FROM source_rows s JOIN mapping m USING (pid)')
        other.unregister("source_rows")
    other.unregister("mapping")
    return other


def run(con, study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyse(con, study, DisclosureRules().min_frequency)


def assert_same_analysis(first, second):
    for name in FRAMES + ["placebo"]:
        a, b = getattr(first, name), getattr(second, name)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False,
                                      rtol=1e-9, atol=1e-12, obj=name)
    assert (first.n_treated, first.n_matched, first.balance_passed) == \
        (second.n_treated, second.n_matched, second.balance_passed)
    assert first.matching == second.matching
    assert first.love_plot == second.love_plot or \
        first.balance[["stage", "covariate"]].equals(second.balance[["stage", "covariate"]])


@pytest.fixture(scope="module")
def pool():
    con, _ = synthetic_pool(4, 8000, 30)
    yield con
    con.close()


@pytest.mark.parametrize("matching", [{}, {"replace": True}, {"method": "full"}, {"ratio": 2},
                                      {"distance": "mahalanobis"}])
def test_another_key_gives_the_same_study(pool, matching):
    study = validity_study(matching).model_copy(update={"subgroups": ["sex", "permit_grounds"],
                                                        "subgroup_horizon": 8})
    study = study.model_copy(update={"inference": study.inference.model_copy(update={"ci": "cluster_bootstrap",
                                                                                     "replications": 200})}) \
        if matching.get("ratio") == 2 else study
    other = rekeyed(pool, seed=11)
    try:
        assert_same_analysis(run(pool, study), run(other, study))
    finally:
        other.close()


def test_two_runs_on_one_pool_are_identical(pool):
    study = validity_study()
    first, second = run(pool, study), run(pool, study)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), check_exact=True, obj=name)


def lumpy_table(seed: int, n: int) -> pd.DataFrame:
    """Few distinct values, so identical rows and tied distances are common."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"stratum": rng.integers(0, 3, n), "x": rng.integers(0, 4, n).astype(float),
                          "z": rng.integers(0, 3, n).astype(float), "female": rng.integers(0, 2, n)})
    table["treated"] = (rng.random(n) < 0.15 + 0.1 * table["x"] / 3).astype(int)
    table.loc[:2, "treated"] = [1, 0, 0]
    return table


def sets_by_treated(matcher: RiskSetMatcher) -> dict:
    """Each treated row's set: its controls with their weights (set numbers aside)."""
    matched = matcher.matched_
    out = {}
    for _, group in matched.groupby("set_id"):
        treated = group.index[group["treated"] == 1]
        controls = group.loc[group["treated"] == 0]
        out[treated[0]] = sorted(zip(controls.index, np.round(controls["weight"], 12)))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shuffle=st.integers(0, 10_000), n=st.integers(30, 160),
       options=st.sampled_from([{}, {"replace": True}, {"matching": "full"}, {"ratio": 2}, {"exact": ["female"]},
                                {"method": "mahalanobis"}, {"order": "random"}, {"refine": False}]))
def test_the_matcher_does_not_care_about_row_order(seed, shuffle, n, options):
    table = lumpy_table(seed, n)
    table.index = [f"row{i}" for i in range(n)]
    shuffled = table.sample(frac=1, random_state=shuffle)
    first = RiskSetMatcher(["x", "z"], **options).fit(table)
    second = RiskSetMatcher(["x", "z"], **options).fit(shuffled)
    assert sets_by_treated(first) == sets_by_treated(second)
    assert first.match_status_.equals(second.match_status_.loc[first.match_status_.index])
    assert first.unmatched_.equals(second.unmatched_)
    assert first.logit_.equals(second.logit_.loc[first.logit_.index])


def test_identical_controls_share_the_match():
    table = pd.DataFrame({"stratum": 0, "treated": [1, 0, 0, 0, 0], "x": [1.0, 1.1, 1.1, 1.1, 3.0],
                          "z": [0.0, 0.0, 0.0, 0.0, 1.0]})
    matched = RiskSetMatcher(["x", "z"], caliper=None, refine=False).fit(table).matched_
    controls = matched.loc[matched["treated"] == 0]
    assert sorted(controls.index) == [1, 2, 3] and np.allclose(controls["weight"], 1 / 3)


def test_controls_tied_on_the_distance_share_the_match():
    table = pd.DataFrame({"stratum": 0, "treated": [1, 0, 0, 0], "x": [0.0, -1.0, 1.0, 5.0]})
    matched = RiskSetMatcher(["x"], caliper=None, refine=False, method="mahalanobis").fit(table).matched_
    controls = matched.loc[matched["treated"] == 0]
    assert sorted(controls.index) == [1, 2] and np.allclose(controls["weight"], 0.5)
