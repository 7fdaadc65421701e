"""The study file: the shipped example loads, and each mistake is named with its field and line."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from safepool.study.cohort import COVARIATES, needed_columns
from safepool.study.studyfile import StudyFile, load_study
from safepool.yaml_files import FileProblem

EXAMPLE = Path(str(files("safepool.examples").joinpath("study.yaml")))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_example_loads_with_its_settings():
    study = load_study(EXAMPLE)
    assert study.permit == "SKILLS-DEMO"
    assert study.horizons == [4, 8, 12] and study.event_horizons == list(range(-8, 13))
    assert study.matching.exact == ["female"] and study.effect_horizon == 8
    assert set(study.covariates) <= set(COVARIATES)
    assert needed_columns(study)["skills_centre"] == ["entry_date", "language_level"]


@pytest.mark.parametrize("old, new, anchor, field, words", [
    ("  - log_earnings_4\n", "  - shoe_size\n", "covariates:", "covariates", "unknown covariate shoe_size"),
    ("outcomes: [employment,", "outcomes: [happiness,", "outcomes:", "outcomes", "unknown outcome happiness"),
    ("  end: 2024Q4", "  end: 2024Q7", "  end: 2024Q7", "period.end", "2024Q7"),
    ("  start: 2019Q1\n  end: 2024Q4", "  start: 2024Q1\n  end: 2019Q4", "period:", "period", "starts"),
    ("  exact: [female]", "  exact: [shoe_size]", "matching:", "matching", "shoe_size is not a column"),
    ("  caliper: 0.2", "  caliper: -1", "  caliper:", "matching.caliper", "greater than 0"),
    ("horizons: [4, 8, 12]", "horizons: [4, 8, 16]", "horizons:", "horizons", "outside 0..12"),
    ("baseline: -1", "baseline: 2", "baseline:", "baseline", "before entry"),
    ("subgroups: [sex,", "subgroups: [shoe_size,", "subgroups:", "subgroups", "unknown subgroup shoe_size"),
    ("subgroup_horizon: 8", "subgroup_horizon: 5", "subgroup_horizon:", "subgroup_horizon", "not one of the horizons"),
    ("  age: [18, 64]", "  age: [64, 18]", "  age:", "eligible.age", "lowest <= highest"),
    ("  ratio: 1", "  ratio: many", "  ratio:", "matching.ratio", "integer"),
    ("  table: skills_centre", "  table: skills centre", "  table:", "treatment.table", "pattern"),
])
def test_a_mistake_names_its_field_and_line(tmp_path, old, new, anchor, field, words):
    text = EXAMPLE.read_text()
    assert old in text
    changed = text.replace(old, new)
    line = next(i for i, row in enumerate(changed.splitlines(), 1) if row.startswith(anchor))
    with pytest.raises(FileProblem) as caught:
        load_study(write(tmp_path, changed))
    problems = caught.value.problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"line {line}, field {field}:"), problems[0]
    assert words in problems[0]


def test_unknown_field_missing_field_and_repeats(tmp_path):
    text = EXAMPLE.read_text().replace("permit: SKILLS-DEMO\n", "").replace("  ratio: 1", "  ratio: 1\n  colour: blue")
    text = text.replace("  - sex\n", "  - sex\n  - sex\n")
    with pytest.raises(FileProblem) as caught:
        load_study(write(tmp_path, text))
    shown = str(caught.value)
    assert "field permit: Field required" in shown
    assert "field matching.colour: Extra inputs are not permitted" in shown
    assert "covariate sex given more than once" in shown


def test_defaults_fill_what_the_file_leaves_out():
    study = StudyFile.model_validate({
        "permit": "P-1", "title": "t", "treatment": {"table": "skills_centre", "date": "entry_date"},
        "period": {"start": "2019Q1", "end": "2019Q4"}, "covariates": ["age"], "outcomes": ["employment"],
        "horizons": [4]})
    assert study.eligible.age == (18, 64) and study.matching.caliper == 0.2 and study.baseline == -1
    assert study.inference.ci == "cluster_jackknife" and study.effect_horizon == 4
