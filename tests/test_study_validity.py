"""Validity on a planted truth: across 30 simulated panels the study's 95% intervals hold the
planted ATT at least 90% of the time at every horizon, for every matching method the study
offers, with little bias, while the naive comparison is biased downwards.

Each seed is a small panel from safepool.study.simulate.simulate_entry_panel (1,200 persons
over 16 entry quarters, about 130 clients): persons are units of every quarter in which they are
eligible, so controls serve many risk sets and are censored from their own later entry, which is
what makes the variance hard. Each panel goes through the study's own estimation code: the
matcher the example study file describes (safepool.study.run.study_matcher), the censoring
weights, and the censoring-weighted ATT with the study file's intervals (the cells and
estimators safepool.study.run.Estimates uses).
bench/study_validity.py runs 100 seeds of the synthetic Espoo through the whole study.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from safepool.study.censoring import censoring_weighted_effects, censoring_weights
from safepool.study.effects import naive_difference
from safepool.study.run import PERSON, study_matcher
from safepool.study.simulate import PANEL_COVARIATES, simulate_entry_panel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import METHODS, validity_study  # noqa: E402

SEEDS = range(1, 31)
HORIZONS = [4, 8, 12]
PERSONS = 1200


def seed_rows(seed: int) -> list[dict]:
    """Per matching method (and the naive comparison) and horizon: whether the interval holds the
    planted ATT, and the error of the estimate."""
    units = simulate_entry_panel(PERSONS, seed)
    tables = {}
    for method, settings in METHODS.items():
        study = validity_study(settings)
        matcher = study_matcher(study, PANEL_COVARIATES).fit(units)
        matched = censoring_weights(units, matcher.propensity_, matcher.matched_, [study.baseline, *HORIZONS],
                                    person=PERSON)
        inference = study.inference
        tables[method], _ = censoring_weighted_effects(matched, "employment", HORIZONS, "att", study.baseline,
                                                       inference.ci, inference.alpha, unit_col=PERSON)
    tables["naive"] = naive_difference(units, "employment", HORIZONS, unit_col=PERSON)
    truth = units.attrs["att"]
    return [{"seed": seed, "method": method, "horizon": row.horizon, "truth": truth[row.horizon],
             "covered": row.ci_low <= truth[row.horizon] <= row.ci_high, "error": row.estimate - truth[row.horizon]}
            for method, table in tables.items() for row in table.itertuples()]


@pytest.fixture(scope="module")
def coverage() -> pd.DataFrame:
    with ProcessPoolExecutor(2) as pool:
        rows = pd.DataFrame([row for rows in pool.map(seed_rows, SEEDS) for row in rows])
    return rows.groupby(["method", "horizon"]).agg(seeds=("seed", "nunique"), coverage=("covered", "mean"),
                                                   bias=("error", "mean"), truth=("truth", "mean"))


@pytest.mark.parametrize("method", list(METHODS))
def test_intervals_hold_the_planted_att_at_every_horizon(coverage, method):
    table = coverage.loc[method]
    assert list(table.index) == HORIZONS and (table["seeds"] == len(SEEDS)).all()
    assert (table["coverage"] >= 0.9).all(), coverage
    assert (table["bias"].abs() < 0.03).all(), coverage


def test_the_naive_comparison_is_biased(coverage):
    table = coverage.loc["naive"]
    assert (table["bias"] < -0.05).all() and table.loc[4, "coverage"] <= 0.5, coverage
