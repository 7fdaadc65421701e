"""Every disclosure rule exactly at, one below and one above its threshold, under the default
rules and under rules read from a workspace's disclosure.yaml; records carry no cell values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from safepool.disclosure import (
    DisclosureRules,
    EffectTable,
    ExtremeTable,
    Figure,
    FrequencyTable,
    MagnitudeTable,
    ModelResult,
    QuantileTable,
    check,
)
from safepool.yaml_files import FileProblem

STRICT_YAML = """\
min_frequency: 10
dominance_n: 3
dominance_k: 0.8
p_ratio: 0.2
min_residual_df: 30
zeros: suppress
rounding_base: 10
"""


def strict_rules(tmp_path: Path) -> DisclosureRules:
    (tmp_path / "disclosure.yaml").write_text(STRICT_YAML)
    return DisclosureRules.load(tmp_path)


@pytest.fixture(params=["defaults", "from disclosure.yaml"])
def rules(request, tmp_path) -> DisclosureRules:
    return DisclosureRules.load(tmp_path) if request.param == "defaults" else strict_rules(tmp_path)


def verdict_of(report, rule: str) -> str:
    return next(f.verdict for f in report.findings if f.rule == rule)


def frequency(count: int) -> FrequencyTable:
    return FrequencyTable("by area", pd.DataFrame({"area": ["north", "south"], "count": [count, 100]}), ["area"])


OFFSETS = [(-1, "fail"), (0, "pass"), (1, "pass")]


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_min_frequency_of_a_count(rules, offset, expected):
    report = check(frequency(rules.min_frequency + offset), rules)
    assert verdict_of(report, "min_frequency") == expected
    assert report.verdict == expected
    assert report.failed_cells() == ([{"area": "north"}] if expected == "fail" else [])


@pytest.mark.parametrize("zeros, expected", [("allow", "pass"), ("suppress", "fail")])
def test_zero_counts_follow_the_zeros_policy(zeros, expected):
    rules = DisclosureRules(zeros=zeros)
    assert check(frequency(0), rules).verdict == expected
    assert verdict_of(check(frequency(0), rules), "min_frequency") == "pass"


def magnitude(n: int, top: list[float], abs_total: float) -> MagnitudeTable:
    cells = pd.DataFrame(
        {"area": ["north", "south"], "value": [abs_total, 5000.0], "n": [n, 50],
         "top": [top, [100.0, 100.0, 100.0]], "abs_total": [abs_total, 5000.0]}
    )
    return MagnitudeTable("earnings by area", cells, ["area"], "sum")


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_min_persons_behind_a_magnitude(rules, offset, expected):
    report = check(magnitude(rules.min_frequency + offset, [10.0, 10.0, 10.0], 1000.0), rules)
    assert verdict_of(report, "min_frequency") == expected


@pytest.mark.parametrize("offset, expected", [(-1, "pass"), (0, "pass"), (1, "fail")])
def test_dominance_at_its_share(rules, offset, expected):
    """The n largest hold k of 1000 exactly, 1 less or 1 more (fail only above k)."""
    rules = rules.model_copy(update={"p_ratio": 0.0})
    held = rules.dominance_k * 1000 + offset
    top = [held / rules.dominance_n] * rules.dominance_n + [1.0]
    report = check(magnitude(50, top, 1000.0), rules)
    assert verdict_of(report, "dominance") == expected


@pytest.mark.parametrize("offset, expected", [(-1, "fail"), (0, "pass"), (1, "pass")])
def test_p_ratio_at_its_share(rules, offset, expected):
    """The rest of the cell is p% of the largest exactly, 1 less or 1 more (fail only below)."""
    rules = rules.model_copy(update={"dominance_k": 1.0})
    largest, second = 1000.0, 400.0
    total = largest + second + rules.p_ratio * largest + offset
    report = check(magnitude(50, [largest, second, 1.0], total), rules)
    assert verdict_of(report, "p_ratio") == expected


def test_a_single_contributor_fails_both_contributor_rules():
    report = check(magnitude(1, [700.0], 700.0), DisclosureRules(min_frequency=1))
    assert verdict_of(report, "dominance") == verdict_of(report, "p_ratio") == "fail"


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_quantile_of_too_few_persons(rules, offset, expected):
    cells = pd.DataFrame({"area": ["north", "north"], "quantile": [0.5, 0.9], "value": [3.0, 7.0],
                          "n": [rules.min_frequency + offset] * 2})
    report = check(QuantileTable("median days", cells, ["area"]), rules)
    assert report.verdict == expected
    if expected == "fail":
        assert report.failed_cells() == [{"area": "north", "quantile": 0.5}, {"area": "north", "quantile": 0.9}]


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_extremes_need_permission_and_persons(rules, offset, expected):
    cells = pd.DataFrame({"area": ["north"], "statistic": ["max"], "value": [91.0], "n": [rules.min_frequency + offset]})
    table = ExtremeTable("oldest", cells, ["area"])
    assert verdict_of(check(table, rules), "extremes") == "fail"
    allowed = rules.model_copy(update={"allow_extremes": True})
    assert check(table, allowed).verdict == expected


def model(df_resid: float, level_count: int | None = None) -> ModelResult:
    coefficients = pd.DataFrame({"term": ["const", "sex[m]"], "estimate": [1.5, -0.2], "std_error": [0.1, 0.05]})
    counts = None
    if level_count is not None:
        counts = pd.DataFrame({"term": ["sex", "sex"], "level": ["f", "m"], "count": [level_count, 400]})
    return ModelResult("employment model", coefficients, n_obs=500, df_resid=df_resid, cell_counts=counts)


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_residual_degrees_of_freedom(rules, offset, expected):
    report = check(model(rules.min_residual_df + offset), rules)
    assert verdict_of(report, "residual_df") == report.verdict == expected


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_persons_per_level_of_a_model_term(rules, offset, expected):
    report = check(model(400, rules.min_frequency + offset), rules)
    assert report.verdict == expected
    if expected == "fail":
        assert report.failed_cells() == [{"term": "sex", "level": "f"}]


@pytest.mark.parametrize("arm", ["n_treated", "n_control"])
@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_persons_per_arm_of_an_effect(rules, arm, offset, expected):
    cells = pd.DataFrame({"horizon": [4, 8], "att": [0.05, 0.07], "se": [0.01, 0.02],
                          "n_treated": [300, 300], "n_control": [900, 900]})
    cells.loc[1, arm] = rules.min_frequency + offset
    report = check(EffectTable("ATT by horizon", cells, ["horizon"]), rules)
    assert report.verdict == expected
    assert report.failed_cells() == ([{"horizon": 8}] if expected == "fail" else [])


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_a_figure_is_checked_through_its_table_and_named(rules, offset, expected):
    figure = Figure("clients by area", frequency(rules.min_frequency + offset), {"mark": "bar"})
    report = check(figure, rules)
    assert (report.title, report.kind, report.verdict) == ("clients by area", "figure", expected)
    assert all("figure 'clients by area'" in f.message for f in report.findings)


def test_rules_from_disclosure_yaml_change_verdicts(tmp_path):
    seven = frequency(7)
    assert check(seven, DisclosureRules.load(tmp_path)).verdict == "pass"
    strict = strict_rules(tmp_path)
    assert (strict.min_frequency, strict.dominance_n, strict.zeros) == (10, 3, "suppress")
    assert check(seven, strict).verdict == "fail"


@pytest.mark.parametrize(
    "text, line, field",
    [
        ("min_frequency: 5\ndominance_k: lots\n", 2, "dominance_k"),
        ("zeros: allow\n\nzeros_policy: suppress\n", 3, "zeros_policy"),
        ("p_ratio: 0.1\nmin_frequency: 0\n", 2, "min_frequency"),
        ("allow_extremes: 'yes'\n", 1, "allow_extremes"),
    ],
)
def test_a_malformed_disclosure_yaml_names_line_and_field(tmp_path, text, line, field):
    (tmp_path / "disclosure.yaml").write_text(text)
    with pytest.raises(FileProblem) as error:
        DisclosureRules.load(tmp_path)
    assert f"line {line}, field {field}" in str(error.value)


def numbers_in(record: dict) -> set[str]:
    """Every number in the JSON text of a record, as written (messages included)."""
    return set(re.findall(r"\d+(?:\.\d+)?", json.dumps(record)))


def test_record_holds_no_failed_values_and_no_contributor_values():
    rules = DisclosureRules()
    counts = FrequencyTable("t", pd.DataFrame({"area": ["a", "b", "c"], "count": [3, 4217, 4]}), ["area"])
    report = check(counts, rules)
    assert report.verdict == "fail" and report.failed_cells() == [{"area": "a"}, {"area": "c"}]
    assert numbers_in(report.to_record()).isdisjoint({"3", "4", "4217"})

    cells = pd.DataFrame({"area": ["a", "b"], "value": [98765.25, 55555.5], "n": [40, 3],
                          "top": [[91234.75, 811.5], [30001.25, 20002.75]], "abs_total": [98765.25, 55555.5]})
    sums = MagnitudeTable("s", cells, ["area"], "sum")
    report = check(sums, rules)
    assert report.failed_cells() == [{"area": "b"}, {"area": "a"}]
    secrets = {"98765.25", "55555.5", "91234.75", "811.5", "30001.25", "20002.75", "40", "3"}
    assert numbers_in(report.to_record()).isdisjoint(secrets)
    assert {"top", "abs_total"}.isdisjoint(sums.public_table().columns)
