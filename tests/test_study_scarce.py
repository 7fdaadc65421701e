"""Honest when controls are scarce: the share matched is reported, below the study's threshold the
estimand is named "effect on the matched clients" and the run warns, and matching with
replacement or full matching keeps every client and recovers the planted ATT."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from safepool.disclosure import DisclosureRules
from safepool.study.effects import EffectEstimator
from safepool.study.estimand import ATT, MATCHED_ONLY, NOT_MATCHED, MatchingSummary
from safepool.study.matching import ALL_TAKEN, RiskSetMatcher
from safepool.study.run import EstimandWarning, analyse
from safepool.study.simulate import simulate_scarce_controls

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import synthetic_pool, validity_study  # noqa: E402


@pytest.fixture(scope="module")
def scarce():
    return simulate_scarce_controls(seed=0)


def fit(table, **options):
    matcher = RiskSetMatcher(["x", "z"], **options).fit(table)
    effect = EffectEstimator(["y"], [4], unit_col="person").fit(matcher.matched_).effects_.iloc[0]
    return matcher, effect


def test_one_to_one_without_replacement_loses_the_scarce_clients_and_says_so(scarce):
    matcher, effect = fit(scarce)
    assert matcher.share_matched_ < 0.9
    lost = matcher.unmatched_.groupby("reason")["n_treated"].sum()
    assert lost.idxmax() == ALL_TAKEN  # mostly: the few controls near them were taken
    summary = MatchingSummary(matcher.n_treated_, matcher.n_matched_, 0.9, lost.to_dict())
    assert summary.estimand == MATCHED_ONLY and "not the effect on all clients (ATT)" in summary.warning
    assert f"{summary.share:.0%} of the clients were matched" in summary.sentence()
    assert ALL_TAKEN in summary.sentence()
    # the matched clients are not all clients: the estimate misses the planted ATT
    assert effect["estimate"] < scarce.attrs["att"] - 0.1


@pytest.mark.parametrize("options", [{"replace": True}, {"matching": "full"}, {"replace": True, "ratio": 2}])
def test_with_replacement_and_full_matching_keep_every_client_and_recover_the_att(scarce, options):
    matcher, effect = fit(scarce, **options)
    assert matcher.share_matched_ > 0.99
    assert effect["ci_low"] <= scarce.attrs["att"] <= effect["ci_high"]
    assert abs(effect["estimate"] - scarce.attrs["att"]) < 0.15
    matched = matcher.matched_
    controls = matched.loc[matched["treated"] == 0]
    assert controls.index.duplicated().any()  # controls serve several clients
    assert effect["n_clusters"] == min(effect["n_treated"], effect["n_treated"] + effect["n_control"])
    assert np.allclose(controls.groupby(controls["set_id"])["weight"].sum(), 1.0)
    assert matched.groupby("set_id")["stratum"].nunique().eq(1).all()  # risk sets kept


def test_full_matching_uses_every_control_near_a_client_once(scarce):
    matcher, _ = fit(scarce, matching="full")
    controls = matcher.matched_.loc[matcher.matched_["treated"] == 0]
    # a control is in one subclass: reused only across the sets of that subclass's clients
    sets_per_control = controls.groupby(level=0)["set_id"].nunique()
    clients_sharing = controls.groupby("set_id").size()
    assert (sets_per_control > 1).any() and (clients_sharing > 1).any()
    assert not ((sets_per_control > 1) & (controls.groupby(level=0).size() > 1)).empty


@pytest.fixture(scope="module")
def pool():
    con, _ = synthetic_pool(3, 8000, 30)
    yield con
    con.close()


@pytest.mark.parametrize("method", ["nearest", "full"])
def test_the_run_warns_below_the_threshold_and_names_the_estimand(pool, method):
    base = validity_study()
    strict = base.model_copy(update={"matching": base.matching.model_copy(
        update={"min_share_matched": 1.0, "method": method})})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analysis = analyse(pool, strict, DisclosureRules().min_frequency)
    said = [str(w.message) for w in caught if issubclass(w.category, EstimandWarning)]
    assert analysis.share_matched < 1.0  # some clients have no control within the caliper, whatever the method
    assert analysis.estimand == MATCHED_ONLY and analysis.warnings == said and "effect on the matched" in said[0]
    for table in (analysis.effects, analysis.event_study, analysis.subgroups):
        assert table.empty or table["estimand"].eq(analysis.estimand).all()
    flow = analysis.cohort_flow.set_index("step")
    assert flow.loc["clients matched", "persons"] == analysis.n_matched
    not_matched = flow.loc[flow.index.str.startswith(NOT_MATCHED), "persons"]
    assert not_matched.sum() == analysis.n_treated - analysis.n_matched
    assert analysis.matching.share == pytest.approx(analysis.n_matched / analysis.n_treated)


def test_at_the_default_threshold_a_well_matched_run_is_the_att(pool):
    analysis = analyse(pool, validity_study(), DisclosureRules().min_frequency)
    assert analysis.share_matched >= 0.9 and analysis.estimand == ATT and not analysis.warnings
    assert analysis.effects["estimand"].eq(ATT).all()
