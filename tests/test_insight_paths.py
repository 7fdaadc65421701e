"""Service paths (issue 13, point 4): computed in the engine, rare paths merged, every count
checked, the planted language difference found, and the same numbers under any pseudonyms."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from safepool.disclosure import DisclosureRules
from safepool.features import load_features
from safepool.insight.analysis import InsightContext
from safepool.insight.paths import OTHER_PATHS, OTHER_TRANSITIONS
from safepool.insight.spec import analysis_of, insight_model, load_insight
from safepool.synth._catalogue import register_entries
from safepool.yaml_files import FileProblem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import synthetic_pool  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "src/safepool/examples/insight-paths.yaml"
POLICY = DisclosureRules()


@pytest.fixture(scope="module")
def pool():
    con, truth = synthetic_pool(seed=3, persons=16000, clients_per_year=60)
    yield con, truth
    con.close()


def run_paths(con: duckdb.DuckDBPyConnection, **changes):
    insight = load_insight(EXAMPLE)
    if changes:
        insight = insight_model().model_validate({**insight.model_dump(), "analysis": {
            **insight.analysis.model_dump(), **changes}})
    dictionary = {r.name: {v.name: v for v in r.variables} for r in register_entries()}
    analysis = analysis_of(insight)
    return analysis, analysis.run(InsightContext(con, load_features(), dictionary, POLICY, insight.seed))


def rekeyed(con: duckdb.DuckDBPyConnection, salt: str) -> None:
    """The same pool under other pseudonyms (and parents' links), rows in another order, in place
    of the tables the paths read."""
    for table in ("population", "child_protection", "city_services"):
        columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
        keyed = ", ".join(f"md5('{salt}' || {c}) AS {c}" if c in ("pid", "mother_id", "father_id") else c
                          for c in columns)
        con.execute(f"CREATE OR REPLACE TABLE {table}_{len(salt)} AS SELECT {keyed} FROM {table} "
                    f"ORDER BY md5('{salt}' || CAST(rowid AS VARCHAR))")


def test_the_paths_find_the_planted_language_difference(pool):
    con, truth = pool
    _, findings = run_paths(con)
    reach = findings.outputs["paths_reach"].cells.set_index(["family_language_group",
                                                              "used a preventive service before"])["count"]
    share = {g: reach[(g, "yes")] / (reach[(g, "yes")] + reach[(g, "no")]) for g in ("finnish", "foreign")}
    assert share["finnish"] > share["foreign"] + 0.1, share  # early childhood education: 85% against 58%
    planted = truth["city"]["early_childhood_education_share"]
    assert planted["finnish"] > planted["foreign"]


def test_rare_transitions_and_paths_are_merged_before_anything_is_checked(pool):
    con, _ = pool
    _, findings = run_paths(con, steps=2, variants=30)
    for name, merged in (("paths_transitions", OTHER_TRANSITIONS), ("paths_variants", OTHER_PATHS)):
        cells = findings.outputs[name].cells
        label = cells.columns[1]
        overall = cells.groupby(label)["count"].sum()
        named = overall.drop(merged, errors="ignore")
        assert (named >= POLICY.min_frequency).all(), name
        assert merged in overall.index


def test_every_label_is_a_code_label_a_group_name_or_fixed_text(pool):
    con, _ = pool
    analysis, findings = run_paths(con, steps=2)
    dictionary = {r.name: {v.name: v for v in r.variables} for r in register_entries()}
    words = set(dictionary["child_protection"]["event_type"].codes.values())
    words |= set(dictionary["city_services"]["service"].codes.values()) | {"open care"}
    for name in ("paths_transitions", "paths_variants"):
        for label in findings.outputs[name].cells.iloc[:, 1].unique():
            if label in (OTHER_TRANSITIONS, OTHER_PATHS):
                continue
            steps = [step.strip("[]") for step in label.split(" → ")]
            assert set(steps) <= words, label


def test_the_same_numbers_under_other_pseudonyms_and_row_order(pool):
    con, _ = pool
    tables = []
    for salt in ("first key", "another key"):
        rekeyed(con, salt)
        other = con.cursor()
        for table in ("population", "child_protection", "city_services"):
            other.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM main.{table}_{len(salt)}")
        _, findings = run_paths(other, steps=2)
        other.close()
        tables.append({name: output.cells.reset_index(drop=True) for name, output in findings.outputs.items()
                       if hasattr(output, "cells")})
    for name in tables[0]:
        pd.testing.assert_frame_equal(tables[0][name], tables[1][name], obj=name)


def test_an_insight_file_mistake_is_named_with_its_field_and_line(tmp_path):
    text = EXAMPLE.read_text().replace("  steps: 1\n", "  steps: 9\n").replace("anchor: notification",
                                                                               "anchor: notification\n  colour: red")
    path = tmp_path / "paths.yaml"
    path.write_text(text)
    with pytest.raises(FileProblem) as raised:
        load_insight(path)
    message = str(raised.value)
    assert "analysis.paths.steps" in message or "analysis.steps" in message
    assert "colour" in message and "line" in message
    assert yaml.safe_load(EXAMPLE.read_text())["analysis"]["kind"] == "paths"
