"""Risk-set matching on plain tables: risk sets, exact cells, caliper, replacement, reasons, conventions."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from safepool.study import MatchingError, RiskSetMatcher, StudyTableError
from safepool.study.matching import ALL_TAKEN, NO_CALIPER, NO_EXACT, NO_RISK_SET
from safepool.study.simulate import COVARIATES, simulate_risk_sets


@pytest.fixture(scope="module")
def cohort():
    return simulate_risk_sets(400, 4000, 6, seed=3)


def fitted_attributes(estimator):
    return sorted(name for name in vars(estimator) if name.endswith("_") and not name.startswith("_"))


def test_scikit_learn_conventions(cohort):
    covariates = list(COVARIATES)
    matcher = RiskSetMatcher(covariates, exact=("female",), caliper=0.1, ratio=2)
    assert fitted_attributes(matcher) == []
    params = matcher.get_params()
    assert params["covariates"] is covariates and params["exact"] == ("female",) and params["ratio"] == 2
    with pytest.raises(Exception, match="not fitted"):
        matcher.transform(cohort)
    assert matcher.fit(cohort) is matcher
    check_is_fitted(matcher)
    assert matcher.get_params() == params and covariates == list(COVARIATES)
    assert {"propensity_", "logit_", "matched_", "unmatched_", "n_treated_", "n_matched_"} <= set(
        fitted_attributes(matcher))
    assert fitted_attributes(clone(matcher)) == []
    assert matcher.propensity_.index.equals(cohort.index) and matcher.propensity_.between(0, 1).all()


def test_matched_sets_stay_in_their_risk_set_and_weights_sum_to_one(cohort):
    matcher = RiskSetMatcher(COVARIATES, ratio=3).fit(cohort)
    matched = matcher.matched_
    assert matched.groupby("set_id")["stratum"].nunique().eq(1).all()
    assert matched.groupby("set_id")["treated"].sum().eq(1).all()
    control_weight = matched[matched.treated == 0].groupby("set_id")["weight"].sum()
    assert np.allclose(control_weight, 1.0)
    assert matched.groupby("set_id").size().le(4).all()
    assert not matched[matched.treated == 0].index.duplicated().any()  # without replacement
    assert matcher.n_matched_ == matched["set_id"].nunique()
    assert matcher.n_treated_ == int(cohort.treated.sum())
    assert matcher.n_matched_ + matcher.unmatched_["n_treated"].sum() == matcher.n_treated_


def test_matching_with_replacement_reuses_controls_and_is_closer(cohort):
    without = RiskSetMatcher(COVARIATES, caliper=None, refine=False).fit(cohort)
    with_replacement = RiskSetMatcher(COVARIATES, caliper=None, replace=True, refine=False).fit(cohort)
    controls = with_replacement.matched_[with_replacement.matched_.treated == 0]
    assert controls.index.duplicated().any()

    def mean_gap(matcher):
        matched = matcher.matched_
        logit = matcher.logit_.loc[matched.index].to_numpy()
        by_set = pd.DataFrame({"set": matched.set_id.to_numpy(), "logit": logit, "treated": matched.treated.to_numpy()})
        pivot = by_set.pivot_table(index="set", columns="treated", values="logit")
        return float((pivot[1] - pivot[0]).abs().mean())

    assert mean_gap(with_replacement) <= mean_gap(without)


def test_exact_matching_is_honoured(cohort):
    matched = RiskSetMatcher(COVARIATES, exact=["female", "language_level"], ratio=2).fit(cohort).matched_
    assert matched.groupby("set_id")[["female", "language_level"]].nunique().eq(1).all().all()


def test_mahalanobis_matching_balances(cohort):
    matcher = RiskSetMatcher(COVARIATES, method="mahalanobis").fit(cohort)
    matched = matcher.matched_
    treated, control = matched[matched.treated == 1], matched[matched.treated == 0]
    before = cohort[cohort.treated == 1][COVARIATES].mean() - cohort[cohort.treated == 0][COVARIATES].mean()
    after = treated[COVARIATES].mean() - control[COVARIATES].mean()
    scale = cohort[COVARIATES].std()
    assert ((after / scale).abs() < 0.1).all() and (before / scale).abs().max() > 0.3


def reference_greedy(logit, treated, cells, ratio):
    """Best-first greedy matching, one edge at a time (the definition the matcher must equal)."""
    edges = sorted((abs(logit[t] - logit[c]), t, c) for t in np.flatnonzero(treated)
                   for c in np.flatnonzero(~treated) if cells[t] == cells[c])
    taken, used = {}, set()
    for _, t, c in edges:
        if len(taken.setdefault(t, [])) < ratio and c not in used:
            taken[t].append(c)
            used.add(c)
    return {t: sorted(cs) for t, cs in taken.items() if cs}


def test_vectorised_greedy_equals_one_edge_at_a_time():
    rng = np.random.default_rng(5)
    n = 48
    table = pd.DataFrame({"stratum": np.repeat(["a", "b", "c", "d"], n // 4), "x": rng.normal(size=n),
                          "z": rng.normal(size=n), "treated": np.tile([1] * 4 + [0] * 8, 4)})
    for ratio in (1, 2):
        matcher = RiskSetMatcher(["x", "z"], caliper=None, ratio=ratio, refine=False).fit(table)
        cells = pd.factorize(table.stratum)[0]
        expected = reference_greedy(matcher.logit_.to_numpy(), table.treated.to_numpy() == 1, cells, ratio)
        matched = matcher.matched_.assign(row=table.index.get_indexer(matcher.matched_.index))
        got = {}
        for _, group in matched.groupby("set_id"):
            got[int(group.loc[group.treated == 1, "row"].iloc[0])] = sorted(group.loc[group.treated == 0, "row"])
        assert got == expected


def reasons_table():
    rows = [
        # stratum A: ten controls 0..9, one close treated, one far outside the caliper
        *[("A", 0, float(x), "fi") for x in range(10)], ("A", 1, 0.4, "fi"), ("A", 1, 100.0, "fi"),
        # stratum B: only a treated unit, nobody to compare with
        ("B", 1, 3.0, "fi"),
        # stratum C: controls speak Finnish only; the Swedish-speaking client has no exact match
        ("C", 0, 1.0, "fi"), ("C", 0, 2.0, "fi"), ("C", 1, 1.5, "sv"),
        # stratum D: two clients close to one control; the second control is far away
        ("D", 0, 0.0, "fi"), ("D", 0, 60.0, "fi"), ("D", 1, 0.1, "fi"), ("D", 1, 0.3, "fi"),
    ]
    table = pd.DataFrame(rows, columns=["quarter", "client", "x", "language"])
    table.index = [f"u{i}" for i in range(len(table))]
    return table


def test_unmatched_treated_get_the_right_reason():
    table = reasons_table()
    matcher = RiskSetMatcher(["x"], treatment="client", stratum="quarter", exact=["language"]).fit(table)
    status = matcher.match_status_
    by_x = dict(zip(zip(table.loc[status.index, "quarter"], table.loc[status.index, "x"]), status))
    assert by_x[("A", 0.4)] == "matched"
    assert by_x[("A", 100.0)] == NO_CALIPER
    assert by_x[("B", 3.0)] == NO_RISK_SET
    assert by_x[("C", 1.5)] == NO_EXACT
    assert by_x[("D", 0.1)] == "matched" and by_x[("D", 0.3)] == ALL_TAKEN
    unmatched = matcher.unmatched_.set_index(["stratum", "reason"])["n_treated"]
    assert unmatched.to_dict() == {("A", NO_CALIPER): 1, ("B", NO_RISK_SET): 1, ("C", NO_EXACT): 1, ("D", ALL_TAKEN): 1}
    assert matcher.n_matched_ == 2

    replaced = RiskSetMatcher(["x"], treatment="client", stratum="quarter", exact=["language"], replace=True).fit(table)
    assert replaced.match_status_[status.index[status == ALL_TAKEN]].eq("matched").all()
    reused = replaced.matched_[replaced.matched_.client == 0]
    assert reused.loc[reused.quarter == "D"].index.nunique() == 1 and (reused.quarter == "D").sum() == 2


def test_transform_adds_sets_to_a_table_with_the_same_index(cohort):
    matcher = RiskSetMatcher(COVARIATES).fit(cohort[["stratum", "treated", *COVARIATES]])
    matched = matcher.transform(cohort)
    assert "earnings@4" in matched.columns and matched["set_id"].equals(matcher.matched_["set_id"])
    with pytest.raises(MatchingError, match="index"):
        matcher.transform(cohort.reset_index(drop=True).iloc[::-1])


def test_no_stratum_means_one_risk_set(cohort):
    matcher = RiskSetMatcher(COVARIATES, stratum=None).fit(cohort.drop(columns="stratum"))
    assert matcher.n_matched_ > 0.9 * matcher.n_treated_


@pytest.mark.parametrize("change, settings, message", [
    (lambda t: t.drop(columns="age"), {}, "age"),
    (lambda t: t.assign(treated=0), {}, "no treated"),
    (lambda t: t.assign(age=t.age.astype(str)), {}, "age is not numeric"),
    (lambda t: t.assign(age=t.age.where(t.index % 7 > 0)), {}, "age has"),
    (lambda t: t.assign(treated=t.treated * 2), {}, "other than 0 and 1"),
    (lambda t: t, {"ratio": 0}, "ratio"),
    (lambda t: t, {"exact": ["missing_column"]}, "missing_column"),
    (lambda t: t, {"method": "magic"}, "method"),
])
def test_errors_name_the_problem(cohort, change, settings, message):
    with pytest.raises(StudyTableError, match=message) as error:
        RiskSetMatcher(COVARIATES, **settings).fit(change(cohort.copy()))
    assert "matcher" in str(error.value)


def smd(matched, covariates, reference):
    treated, control = matched[matched.treated == 1], matched[matched.treated == 0]
    control_mean = control[covariates].mul(control["weight"], axis=0).sum() / control["weight"].sum()
    return (treated[covariates].mean() - control_mean) / reference


@pytest.mark.parametrize("settings", [{}, {"ratio": 2}, {"exact": ["female"]}, {"method": "mahalanobis"},
                                      {"replace": True}])
def test_balance_refinement_brings_means_closer_and_keeps_every_rule(cohort, settings):
    reference = np.sqrt((cohort[cohort.treated == 1][COVARIATES].var(ddof=0)
                         + cohort[cohort.treated == 0][COVARIATES].var(ddof=0)) / 2)
    greedy = RiskSetMatcher(COVARIATES, refine=False, **settings).fit(cohort)
    refined = RiskSetMatcher(COVARIATES, **settings).fit(cohort)
    before, after = smd(greedy.matched_, COVARIATES, reference), smd(refined.matched_, COVARIATES, reference)
    assert (after ** 2).sum() < (before ** 2).sum() / 4 and after.abs().max() < before.abs().max()
    # the same clients are matched, each within its risk set, exact cell and caliper
    assert refined.n_matched_ == greedy.n_matched_ and refined.match_status_.equals(greedy.match_status_)
    matched = refined.matched_.assign(logit=refined.logit_.loc[refined.matched_.index].to_numpy())
    by_set = matched.groupby("set_id")
    assert by_set["stratum"].nunique().eq(1).all()
    for column in settings.get("exact", []):
        assert by_set[column].nunique().eq(1).all()
    treated_logit = matched["logit"].where(matched.treated == 1).groupby(matched["set_id"]).transform("max")
    gap = matched["logit"] - treated_logit
    assert gap.abs().max() <= refined.caliper_width_ + 1e-12
    controls = matched[matched.treated == 0]
    assert by_set.size().le(1 + settings.get("ratio", 1)).all()
    if not settings.get("replace"):
        assert not controls.index.duplicated().any()


def test_balance_refinement_never_looks_at_outcomes(cohort):
    outcomes = [column for column in cohort.columns if "@" in column]
    assert outcomes
    shuffled = cohort.assign(**{c: np.random.default_rng(0).permutation(cohort[c].to_numpy()) for c in outcomes})
    first = RiskSetMatcher(COVARIATES).fit(cohort).matched_
    second = RiskSetMatcher(COVARIATES).fit(shuffled).matched_
    assert first.index.equals(second.index) and first["set_id"].equals(second["set_id"])


def test_refinement_features_are_those_of_the_whole_table(monkeypatch):
    """Features taken out per row block, and two values told apart without a sort, are what the
    whole-table hstack and np.unique give."""
    import safepool.study.balance_refinement as refinement

    rng = np.random.default_rng(5)
    columns = np.column_stack([rng.choice(values, 50) for values in
                               ([0.0, 1.0], [0.0, -0.0], [2.0], [0.0, 1.0, 2.0], [-0.0, 0.0, 3.5], [5.0, -1.0])])
    assert refinement.two_valued(columns).tolist() == [np.unique(c).size <= 2 for c in columns.T]
    assert refinement.two_valued(columns[:0]).all()
    left, right = rng.normal(size=(200, 3)), rng.normal(size=(200, 2))
    rows = rng.permutation(200)[:150]
    monkeypatch.setattr(refinement, "GATHER_ROWS", 7)  # several blocks, the last one short
    assert np.array_equal(refinement.gathered(rows, left, right), np.hstack([left, right])[rows])
