"""Balance before and after matching: formulas on small tables, pass/fail, love plot rendering."""

import json

import numpy as np
import pandas as pd
import pytest
import vl_convert

from safepool.study import Balance, RiskSetMatcher, StudyTableError, balance_table
from safepool.study.simulate import COVARIATES, simulate_risk_sets


@pytest.fixture(scope="module")
def cohort_and_matched():
    cohort = simulate_risk_sets(400, 4000, 6, seed=11)
    return cohort, RiskSetMatcher(COVARIATES).fit(cohort).matched_


def test_formulas_on_a_small_table():
    table = pd.DataFrame({"treated": [1, 1, 1, 0, 0, 0, 0], "x": [1.0, 2.0, 6.0, 0.0, 1.0, 1.0, 2.0],
                          "flag": [1, 1, 0, 0, 0, 1, 0]})
    row = balance_table(table, ["x", "flag"]).set_index("covariate")
    x_t, x_c = np.array([1.0, 2.0, 6.0]), np.array([0.0, 1.0, 1.0, 2.0])
    pooled = np.sqrt((x_t.var(ddof=1) + x_c.var(ddof=1)) / 2)
    assert row.loc["x", "smd"] == pytest.approx((x_t.mean() - x_c.mean()) / pooled)
    assert row.loc["x", "variance_ratio"] == pytest.approx(x_t.var(ddof=1) / x_c.var(ddof=1))
    # eCDFs over the values 0, 1, 2, 6: treated 0, 1/3, 2/3, 1; controls 1/4, 3/4, 1, 1
    gaps = np.abs(np.array([0, 1 / 3, 2 / 3, 1]) - np.array([1 / 4, 3 / 4, 1, 1]))
    assert row.loc["x", "ecdf_max"] == pytest.approx(gaps.max())
    assert row.loc["x", "ecdf_mean"] == pytest.approx(gaps.mean())
    assert np.isnan(row.loc["flag", "variance_ratio"]) and pd.isna(row.loc["flag", "vr_ok"])
    assert not row.loc["x", "vr_ok"]  # 7 / 0.67 is far outside [0.5, 2]


def test_weights_count_like_repeated_rows():
    table = pd.DataFrame({"treated": [1, 1, 0, 0, 0], "x": [1.0, 3.0, 0.0, 2.0, 5.0], "weight": [1, 1, 2, 1, 1]})
    repeated = pd.DataFrame({"treated": [1, 1, 0, 0, 0, 0], "x": [1.0, 3.0, 0.0, 0.0, 2.0, 5.0]})
    reference = pd.Series({"x": 1.0})
    weighted = balance_table(table, ["x"], weights="weight", sd_reference=reference).iloc[0]
    plain = balance_table(repeated, ["x"], sd_reference=reference).iloc[0]
    for column in ("mean_control", "smd", "ecdf_mean", "ecdf_max"):
        assert weighted[column] == pytest.approx(plain[column])


def test_matching_improves_balance_and_passes(cohort_and_matched):
    cohort, matched = cohort_and_matched
    balance = Balance(COVARIATES).fit(cohort, matched)
    table = balance.table_.pivot(index="covariate", columns="stage", values="smd").abs()
    assert (table["after"] < table["before"]).sum() >= len(COVARIATES) - 1
    assert table["before"].max() > 0.3 and table["after"].max() < 0.1
    assert balance.passed_
    after = balance.table_[balance.table_.stage == "after"]
    assert after["smd_ok"].all() and after["vr_ok"].fillna(True).all()


def test_unmatched_cohort_fails(cohort_and_matched):
    cohort, _ = cohort_and_matched
    assert not Balance(COVARIATES).fit(cohort, cohort.assign(weight=1.0)).passed_


def test_love_plot_renders_offline(cohort_and_matched):
    cohort, matched = cohort_and_matched
    spec = Balance(COVARIATES).fit(cohort, matched).love_plot()
    svg = vl_convert.vegalite_to_svg(spec)
    assert svg.startswith("<svg") and "quarters_unemployed_8" in svg and "Standardised mean difference" in svg
    # the limit lines carry no data, so they stay when a released figure keeps only its checked table
    assert svg.count("<line") + svg.count('class="mark-rule') >= 1
    assert [layer["encoding"]["x"]["datum"] for layer in spec["layer"][:3]] == [-0.1, 0.0, 0.1]
    json.dumps(spec, allow_nan=False)  # plain JSON, as the figure's file is written


def test_errors_name_the_column(cohort_and_matched):
    cohort, matched = cohort_and_matched
    with pytest.raises(StudyTableError, match="age"):
        balance_table(cohort.drop(columns="age"), COVARIATES)
    with pytest.raises(StudyTableError, match="stratum is not numeric"):
        balance_table(cohort, ["stratum"])
    with pytest.raises(StudyTableError, match="weight"):
        Balance(COVARIATES).fit(cohort, matched.drop(columns="weight"))
    with pytest.raises(StudyTableError, match="not fitted"):
        Balance(COVARIATES).love_plot()


def test_unweighted_ecdf_counts_like_the_weighted_path():
    """The unit-weight shortcut (counts from one sort) gives the weighted path's numbers exactly:
    doubled weights take the weighted path and must give the same eCDFs to the last bit."""
    from safepool.study.balance import ecdf_differences

    rng = np.random.default_rng(4)
    for _ in range(50):
        n = int(rng.integers(2, 300))
        x = rng.integers(-2, 4, n).astype(float) * rng.choice([1.0, 0.37], n)
        x[x == 0] *= rng.choice([1.0, -1.0], int((x == 0).sum()))  # -0.0 and 0.0 are one value
        treated = rng.random(n) < 0.3
        treated[:2] = [True, False]
        assert ecdf_differences(x, treated, np.ones(n)) == ecdf_differences(x, treated, np.full(n, 2.0))


@pytest.mark.parametrize("columns", [1, 2, 8, 9, 17, 29])
def test_column_blocks_give_the_whole_matrixs_reductions_to_the_last_bit(columns):
    """The matching's standardisations are reduced a few columns at a time to save memory; the
    features, and so every match, must not change by a bit, whatever the number of columns (a
    lone last column would be summed in another order: it joins the block before it)."""
    from safepool.study.balance import pooled_sd_of
    from safepool.study.table_checks import by_column_blocks

    rng = np.random.default_rng(columns)
    x = rng.normal(size=(50_000, columns)) * rng.integers(1, 1000, size=columns)
    x[:, ::3] = rng.integers(0, 2, size=(50_000, len(range(0, columns, 3))))
    treated = rng.random(50_000) < 0.05
    for matrix in (x, np.asfortranarray(x), np.zeros((50_000, columns + 5))):
        if matrix.shape[1] > columns:
            matrix[:, :columns] = x
            matrix = matrix[:, :columns]  # a strided view, as the propensity design's covariates
        whole = np.sqrt((matrix[treated].var(axis=0, ddof=1) + matrix[~treated].var(axis=0, ddof=1)) / 2)
        assert np.array_equal(pooled_sd_of(matrix, treated), whole)
        assert np.array_equal(by_column_blocks(matrix, lambda block: block.std(axis=0)), matrix.std(axis=0))
