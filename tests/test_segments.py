"""Customer segments (issue 13, point 3): the grid, behaviour, value and clustering on features,
and profile cards whose every number passed the disclosure checks."""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from safepool.disclosure import DisclosureRules, check, suppress
from safepool.features import load_features
from safepool.insight import segments
from safepool.insight.analysis import InsightContext
from safepool.insight.segments import (BEHAVIOURS, RISK_LEVELS, TOO_SMALL, load_segments, person_table,
                                       profile_cards, risk_level, segment, segment_outputs)
from safepool.insight.spec import analysis_of, load_insight
from safepool.synth import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import pool_of  # noqa: E402

EXAMPLE = Path(str(files("safepool.examples").joinpath("segments.yaml")))


@pytest.fixture(scope="module")
def city():
    """A synthetic pool (pid = the normalised identity code) and the planted customer groups."""
    synthetic = generate(persons=4000, seed=2, clients_per_year=20)
    con = pool_of(synthetic)
    yield con, synthetic.planted_groups.to_pandas().rename(columns={"identity_code": "pid"})
    con.close()


@pytest.fixture(scope="module")
def spec():
    example = load_segments(EXAMPLE)
    return example.model_copy(update={"clustering": example.clustering.model_copy(update={"sample": 1000})})


@pytest.fixture(scope="module")
def persons(city, spec):
    con, _ = city
    return person_table(con, spec)


@pytest.fixture(scope="module")
def segmented(persons, spec):
    return segment(persons, spec)


def test_the_clusters_recover_the_planted_customer_groups(city, persons, segmented):
    _, planted = city
    joined = persons[["pid"]].assign(cluster=segmented["cluster"].to_numpy()).merge(planted, on="pid")
    assert len(joined) >= 0.98 * len(planted)  # the persons the planted groups were drawn among
    assert adjusted_rand_score(joined["customer_group"], joined["cluster"]) >= 0.8
    assert segmented["cluster"].nunique() == 5  # the silhouette picks the planted number of groups


def test_grid_behaviour_and_value_follow_the_configuration(persons, segmented, spec):
    assert set(segmented["risk"]) <= set(RISK_LEVELS) and set(segmented["behaviour"]) <= set(BEHAVIOURS)
    assert set(segmented[spec.life_phase]) <= {"young adult", "adult", "middle-aged"}  # ages 18-64
    very_high = segmented["risk"] == "very high"
    assert very_high.any() and (segmented["risk"] == "low").mean() > 0.5
    assert (persons.loc[very_high.to_numpy(), "social_assistance_4"] > 0).mean() > 0.5
    expected = sum(persons[f].fillna(0) * price for f, price in spec.prices.items())
    assert np.allclose(segmented["value_eur"], expected.round(2))
    active = segmented["behaviour"] == "active"
    assert (persons.loc[active.to_numpy(), "quarters_since_city_service"] <= 1).all()
    assert (persons.loc[(segmented["behaviour"] == "passive").to_numpy(), "city_service_contacts_8"].fillna(0)
            <= persons["city_service_contacts_8"].fillna(0).max()).all()


def test_the_same_file_gives_the_same_segments(persons, segmented, spec):
    again = segment(persons.sample(frac=1, random_state=3).sort_values(
        [c for c in persons.columns if c != "pid"], kind="stable").reset_index(drop=True), spec)
    pd.testing.assert_frame_equal(segmented, again)


def test_every_number_on_the_cards_passes_the_checks(segmented, spec):
    rules = DisclosureRules()
    checked = {name: suppress(output, rules).output for name, output in segment_outputs(segmented, spec).items()}
    for name, output in checked.items():
        assert check(output, rules).verdict != "fail", name
        assert "pid" not in output.cells.columns
    cards = profile_cards(checked, spec)
    assert [c["group"] for c in cards] == [f"group {i}" for i in range(1, 6)]
    layout = {"group", "name", "description", "typical traits", "factors affecting behaviour", "needs",
              "value (mean EUR)", "priority", "promise of value"}
    assert all(set(card) == layout for card in cards)
    social = next(c for c in cards if c["needs"]["adult_social_work_visits_8"] > 5)
    assert social["name"] == "Social work clients" and social["priority"] == "high"


def test_a_group_too_small_to_describe_is_only_named(segmented, spec):
    tiny = segmented.copy()
    tiny.loc[tiny.index[:3], "cluster"] = "group 6"
    rules = DisclosureRules()
    checked = {name: suppress(output, rules).output for name, output in segment_outputs(tiny, spec).items()}
    card = next(c for c in profile_cards(checked, spec) if c["group"] == "group 6")
    assert card == {"group": "group 6", "name": "group 6", "description": TOO_SMALL}


def test_the_grid_places_children_by_their_child_protection(city, spec):
    con, _ = city
    children = person_table(con, spec.model_copy(update={"ages": (0, 17)}))
    assert set(children["life_phase"]) == {"child", "youth"}
    risk = risk_level(children, spec.risk)
    notified = (children["child_protection_notifications_8"] > 0).to_numpy()
    assert notified.sum() >= 5 and (risk[notified] != "low").all() and (risk[~notified] == "low").mean() > 0.9


def test_the_insight_file_runs_segments_in_the_insight_framework(city, monkeypatch):
    con, _ = city
    insight = load_insight(EXAMPLE.with_name("insight-segments.yaml"))
    analysis = analysis_of(insight)
    assert set(analysis.tables(load_features())) == {"population", "child_protection", "city_services"}
    events: list[str] = []  # the pool is released once the persons are read, before they are clustered
    clustered = segments.segment
    monkeypatch.setattr(segments, "segment", lambda *args: events.append("segment") or clustered(*args))
    findings = analysis.run(InsightContext(con, load_features(), {}, DisclosureRules(), insight.seed,
                                           release=lambda: events.append("released")))
    assert events == ["released", "segment"]
    named = {name for section in findings.sections for name in section.outputs}
    assert named == set(findings.outputs)
    rules = DisclosureRules()
    checked = {name: suppress(output, rules) for name, output in findings.outputs.items()}
    assert analysis.summary(checked) == "customer segments: 5 groups by clustering, 5 described on profile cards"
