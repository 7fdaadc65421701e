"""Effects on simulated tables with a planted effect and confounding: bias, coverage, DiD, event
study, placebo, subgroups, sensitivity, naive comparison, and errors."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from safepool.study import (
    EffectEstimator,
    RiskSetMatcher,
    StudyTableError,
    e_values,
    event_study,
    naive_difference,
    pretrend_placebo,
    rosenbaum_bounds,
    sensitivity,
    subgroup_effects,
)
from safepool.study.effects import EFFECT_COLUMNS
from safepool.study.inference import merged_clusters
from safepool.study.sensitivity import e_value, set_differences
from safepool.study.simulate import COVARIATES, simulate_risk_sets

EARNINGS_EFFECT, EMPLOYMENT_EFFECT = 300.0, 0.10


@pytest.fixture(scope="module")
def study():
    cohort = simulate_risk_sets(800, 8000, 8, seed=21)
    matched = RiskSetMatcher(COVARIATES, exact=["female"]).fit(cohort).matched_
    return cohort, matched


def covers(row, truth):
    return row["ci_low"] <= truth <= row["ci_high"]


def usable(matched, column):
    """Rows of sets whose treated unit and at least one control have the column observed."""
    observed = matched[matched[column].notna()]
    return observed[observed.groupby("set_id")["treated"].transform("nunique") == 2]


def near(table, truth, standard_errors=3.0):
    """Every estimate within a few of its standard errors of the truth (a fixed seed, so no flakiness)."""
    return bool(((table["estimate"] - truth).abs() < standard_errors * table["std_error"]).all())


def test_matching_removes_the_confounding_bias(study):
    cohort, matched = study
    naive = naive_difference(cohort, "earnings", [4, 8]).set_index("horizon")
    effects = EffectEstimator(["earnings", "employment"], [4, 8]).fit(matched).effects_
    assert list(effects.columns) == EFFECT_COLUMNS and list(naive.columns) == EFFECT_COLUMNS[:1] + EFFECT_COLUMNS[2:]
    for horizon in (4, 8):
        assert not covers(naive.loc[horizon], EARNINGS_EFFECT)
        assert abs(naive.loc[horizon, "estimate"] - EARNINGS_EFFECT) > 400
    assert near(effects[effects.outcome == "earnings"], EARNINGS_EFFECT)
    assert near(effects[effects.outcome == "employment"], EMPLOYMENT_EFFECT)
    assert set(effects["outcome_type"]) == {"continuous", "binary"}


def test_intervals_cover_the_planted_effect_across_small_simulations():
    hits = {"cluster_jackknife": [], "cluster_robust": [], "cluster_bootstrap": [], "naive": []}
    for seed in range(50):
        cohort = simulate_risk_sets(100, 700, 3, seed=1000 + seed, horizons=[4])
        matched = RiskSetMatcher(COVARIATES).fit(cohort).matched_
        for ci in ("cluster_jackknife", "cluster_robust", "cluster_bootstrap"):
            row = EffectEstimator(["earnings"], [4], ci=ci, n_boot=200, random_state=seed).fit(matched).effects_
            hits[ci].append(covers(row.iloc[0], EARNINGS_EFFECT))
        hits["naive"].append(covers(naive_difference(cohort, "earnings", [4]).iloc[0], EARNINGS_EFFECT))
    assert np.mean(hits["cluster_jackknife"]) >= 0.88
    assert np.mean(hits["cluster_robust"]) >= 0.88
    assert np.mean(hits["cluster_bootstrap"]) >= 0.88
    assert np.mean(hits["naive"]) < 0.2


def test_cluster_robust_is_statsmodels_wls_clustered_by_set(study):
    _, matched = study
    row = EffectEstimator(["earnings"], [8], ci="cluster_robust").fit(matched).effects_.iloc[0]
    cells = usable(matched, "earnings@8")
    w = cells["weight"] / cells.groupby(["set_id", "treated"])["weight"].transform("sum")
    fit = sm.WLS(cells["earnings@8"], sm.add_constant(cells["treated"].astype(float)), weights=w).fit(
        cov_type="cluster", cov_kwds={"groups": cells["set_id"]})
    assert row["estimate"] == pytest.approx(fit.params["treated"])
    assert row["std_error"] == pytest.approx(fit.bse["treated"])
    assert row["n_treated"] == cells["treated"].sum() and row["n_clusters"] == cells["set_id"].nunique()


def test_sets_sharing_a_control_are_one_cluster():
    sets = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    units = np.array([10, 20, 11, 20, 12, 22, 13, 23])  # control 20 is reused by sets 0 and 1
    clusters = merged_clusters(sets, units)
    assert clusters[0] == clusters[2] and len(set(clusters)) == 3
    person = np.array([1, 2, 3, 4, 5, 6, 7, 1])  # the same person again in set 3
    assert merged_clusters(sets, person)[0] == merged_clusters(sets, person)[6]


def test_matching_with_replacement_counts_reused_controls_once(study):
    cohort, _ = study
    matched = RiskSetMatcher(COVARIATES, replace=True, caliper=None).fit(cohort).matched_
    row = EffectEstimator(["earnings"], [4]).fit(matched).effects_.iloc[0]
    cells = usable(matched, "earnings@4")
    assert row["n_control"] == cells[cells.treated == 0].index.nunique() < row["n_treated"]
    # clustered by set and by person: the reused controls' covariance between sets counts
    w = cells["weight"] / cells.groupby(["set_id", "treated"])["weight"].transform("sum")
    by_set_only = sm.WLS(cells["earnings@4"], sm.add_constant(cells["treated"].astype(float)), weights=w).fit(
        cov_type="cluster", cov_kwds={"groups": cells["set_id"]})
    assert row["std_error"] > by_set_only.bse["treated"]
    assert near(pd.DataFrame([row]), EARNINGS_EFFECT)


def test_did_is_the_change_from_baseline_and_event_study_is_flat_before_entry(study):
    _, matched = study
    curve = event_study(matched, "earnings").set_index("horizon")
    assert list(curve.index) == list(range(-8, 13))
    assert curve.loc[-1, "estimate"] == 0
    assert curve.loc[-8:-2].apply(covers, axis=1, truth=0.0).mean() >= 0.8
    assert curve.loc[0:12].apply(covers, axis=1, truth=EARNINGS_EFFECT).mean() >= 0.8
    att = EffectEstimator(["earnings"], [4, -1]).fit(matched).effects_.set_index("horizon")["estimate"]
    did = EffectEstimator(["earnings"], [4], method="did").fit(
        matched.dropna(subset=["earnings@-1"])).effects_.iloc[0]
    both = matched.dropna(subset=["earnings@4", "earnings@-1"])
    both_att = EffectEstimator(["earnings"], [4, -1]).fit(both).effects_.set_index("horizon")["estimate"]
    assert did["estimate"] == pytest.approx(both_att[4] - both_att[-1])
    assert abs(att[4] - did["estimate"]) < 100


def test_placebo_passes_without_and_fails_with_a_pre_entry_dip(study):
    _, matched = study
    clean = pretrend_placebo(matched, "earnings")
    assert list(clean["horizon"]) == list(range(-8, -1)) and (clean["method"] == "placebo").all()
    assert clean["joint_p_value"].nunique() == 1 and clean["joint_p_value"].iloc[0] > 0.01
    assert clean["wald_df"].iloc[0] == 7
    dipped = matched.copy()
    for h in range(-8, -1):  # treated earned more until shortly before entry (Ashenfelter's dip)
        dipped.loc[dipped.treated == 1, f"earnings@{h}"] += 60 * (h + 9)
    assert pretrend_placebo(dipped, "earnings")["joint_p_value"].iloc[0] < 0.001
    assert pretrend_placebo(dipped, "earnings", ci="cluster_bootstrap", n_boot=300)["joint_p_value"].iloc[0] < 0.001


def test_subgroups_follow_the_treated_unit(study):
    _, matched = study
    table = subgroup_effects(matched, "earnings", [4, 8], by="female")
    assert list(table.columns[:2]) == ["subgroup", "level"] and set(table["level"]) == {"0", "1"}
    assert (table["controls_same_level"] == 1.0).all()  # matched exactly on sex
    assert near(table, EARNINGS_EFFECT)
    cells = usable(matched, "earnings@4")
    women = int(((cells.treated == 1) & (cells.female == 1)).sum())
    assert table.set_index(["level", "horizon"]).loc[("1", 4), "n_treated"] == women


def test_e_values():
    assert e_value(np.array([2.0]))[0] == pytest.approx(2 + np.sqrt(2))
    assert e_value(np.array([0.5]))[0] == pytest.approx(2 + np.sqrt(2))
    effects = pd.DataFrame({"outcome": ["employment", "earnings"], "horizon": [4, 4], "method": ["att", "att"],
                            "estimate": [0.2, 0.0], "ci_low": [0.1, -50.0], "ci_high": [0.3, 50.0],
                            "mean_treated": [0.4, 2000.0], "sd_control": [0.5, 1000.0],
                            "outcome_type": ["binary", "continuous"]})
    table = e_values(effects).set_index("outcome")
    assert table.loc["employment", "risk_ratio"] == pytest.approx(2.0)  # 0.4 against a counterfactual 0.2
    assert table.loc["employment", "e_value"] == pytest.approx(2 + np.sqrt(2))
    assert table.loc["employment", "e_value_ci"] == pytest.approx(e_value(np.array([0.4 / 0.3]))[0])
    assert table.loc["earnings", "e_value"] == pytest.approx(1.0) and table.loc["earnings", "e_value_ci"] == 1.0


def test_an_effect_without_a_risk_ratio_is_not_defined_and_still_passes_the_checks():
    """A risk difference larger than the treated risk (small demo samples) implies no positive
    counterfactual risk; a constant control outcome gives no SD. Neither may become infinite."""
    from safepool.disclosure.checks import check
    from safepool.disclosure.rules import DisclosureRules
    from safepool.study.run import effect_output

    effects = pd.DataFrame({"outcome": ["employment", "benefits"], "horizon": [4, 4], "method": ["att", "att"],
                            "estimate": [0.06, 10.0], "ci_low": [-0.1, 5.0], "ci_high": [0.2, 15.0],
                            "mean_treated": [0.05, 20.0], "sd_control": [0.3, 0.0],
                            "outcome_type": ["binary", "continuous"]})
    table = e_values(effects)
    assert table[["risk_ratio", "e_value"]].isna().all().all()
    cells = table.assign(n_treated=[40, 40], n_control=[40, 40])
    output = effect_output("sensitivity", cells)
    assert output.cells["e_value"].eq("not defined").all()
    assert all(finding.rule != "invalid" for finding in check(output, DisclosureRules()).findings)


def test_rosenbaum_bounds_start_at_wilcoxon_and_grow_with_gamma(study):
    _, matched = study
    bounds = rosenbaum_bounds(matched, "earnings", 8)
    differences = set_differences(matched, "earnings", 8)
    wilcoxon = stats.wilcoxon(differences, alternative="greater", method="approx", correction=False)
    assert bounds["p_upper"].iloc[0] == pytest.approx(wilcoxon.pvalue, rel=1e-6)
    assert bounds["p_upper"].is_monotonic_increasing and bounds["p_upper"].iloc[-1] > 0.05
    effects = EffectEstimator(["earnings"], [-1, 8], method="did").fit(matched).effects_
    table = sensitivity(effects, matched).set_index("horizon")
    assert np.isnan(table.loc[-1, "rosenbaum_gamma"])  # the baseline itself: nothing to test
    assert table.loc[8, "rosenbaum_gamma"] >= 1.25
    assert table.loc[8, "e_value"] > table.loc[8, "e_value_ci"] > 1
    without_sets = sensitivity(naive_difference(study[0], "earnings", [8]), matched)
    assert without_sets["rosenbaum_gamma"].isna().all() and without_sets["e_value"].iloc[0] > 1


def test_missing_outcomes_leave_the_cells_out(study):
    _, matched = study
    row = EffectEstimator(["employment"], [12]).fit(matched).effects_.iloc[0]
    cells = usable(matched, "employment@12")
    assert row["n_treated"] == cells["set_id"].nunique() < matched["set_id"].nunique()
    assert row["n_control"] == (cells.treated == 0).sum()


def test_errors_name_the_column(study):
    _, matched = study
    with pytest.raises(StudyTableError, match="earnings@13"):
        EffectEstimator(["earnings"], [13]).fit(matched)
    with pytest.raises(StudyTableError, match="set_id"):
        EffectEstimator(["earnings"], [4]).fit(matched.drop(columns="set_id"))
    with pytest.raises(StudyTableError, match="ci must be"):
        EffectEstimator(["earnings"], [4], ci="jackknife").fit(matched)
    with pytest.raises(StudyTableError, match="earnings@4 is not numeric"):
        EffectEstimator(["earnings"], [4]).fit(matched.assign(**{"earnings@4": "x"}))
    with pytest.raises(StudyTableError, match="no cell"):
        EffectEstimator(["earnings"], [4]).fit(matched.assign(**{"earnings@4": np.nan}))
    with pytest.raises(StudyTableError, match="language"):
        subgroup_effects(matched, "earnings", 4, by="language")


def test_each_usable_set_counts_once_with_several_controls(study):
    cohort, _ = study
    matched = RiskSetMatcher(COVARIATES, ratio=3).fit(cohort).matched_
    row = EffectEstimator(["earnings"], [12]).fit(matched).effects_.iloc[0]
    cells = usable(matched, "earnings@12")
    treated = cells[cells.treated == 1].set_index("set_id")["earnings@12"]
    controls = cells[cells.treated == 0].groupby("set_id")["earnings@12"].mean()  # observed controls only
    assert cells[cells.treated == 0].groupby("set_id").size().lt(3).any()  # some sets lost a control
    assert row["estimate"] == pytest.approx((treated - controls).mean())
