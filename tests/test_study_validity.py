"""Validity on the planted truth: across 30 synthetic seeds the study's 95% intervals cover the
planted ATT at 8 quarters at least 90% of the time, the naive comparison's almost never do, and
the pre-entry event-study points are jointly flat in most seeds.

Each seed is a fresh synthetic Espoo (10,000 persons, about 200 clients) loaded as an in-memory
pool and analysed by the same code as `safepool study run` (see bench/study_validity.py, which
runs more seeds and larger populations). Seeds run in a process pool of two.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import run_seeds, summary  # noqa: E402

SEEDS = list(range(1, 31))
HORIZON = 8


@pytest.fixture(scope="module")
def results():
    return run_seeds(SEEDS, persons=10_000, clients_per_year=35, workers=2)


def test_every_seed_ran_with_enough_clients(results):
    per_seed = results.groupby("seed").first()
    assert len(per_seed) == len(SEEDS)
    assert per_seed["clients"].min() >= 150 and per_seed["matched"].mean() >= 180


def test_intervals_cover_the_planted_att(results):
    row = summary(results).loc[HORIZON]
    assert row["coverage"] >= 0.9, summary(results)
    assert abs(row["bias"]) < 0.03, summary(results)


def test_naive_intervals_miss_it(results):
    row = summary(results).loc[HORIZON]
    assert row["naive_coverage"] <= 0.1 and row["naive"] < 0 < row["truth"]


def test_event_study_is_flat_before_entry(results):
    assert summary(results).loc[HORIZON, "placebo_not_rejected"] >= 0.8
