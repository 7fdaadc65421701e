"""Every disclosure rule exactly at, one below and one above its threshold, under the default
policy and under a stricter one set by a workspace's admin; records carry no cell values."""

from __future__ import annotations

import json
import re
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
from safepool.disclosure.policy import workspace_policy
from governed import governance_with_users
from recorded_outputs import use_policy

STRICT = {"min_frequency": 10, "dominance_n": 3, "dominance_k": 0.8, "p_ratio": 0.2, "min_residual_df": 30,
          "zeros": "suppress", "rounding_base": 10}


@pytest.fixture(scope="module")
def policies(tmp_path_factory) -> dict[str, DisclosureRules]:
    """The policy of a fresh workspace, and of one whose admin made it strict."""
    fresh = workspace_policy(governance_with_users(tmp_path_factory.mktemp("fresh")))
    strict = use_policy(governance_with_users(tmp_path_factory.mktemp("strict")), **STRICT)
    return {"defaults": fresh, "strict": strict}


@pytest.fixture(params=["defaults", "strict"])
def rules(request, policies) -> DisclosureRules:
    return policies[request.param]


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


def quantiles(n: int, tops: list[list[float]] | None = None, totals: list[float] | None = None) -> QuantileTable:
    cells = pd.DataFrame({"area": ["north", "north"], "quantile": [0.5, 0.9], "value": [3.0, 7.0], "n": [n] * 2})
    if tops is not None:
        cells = cells.assign(top=tops, abs_total=totals)
    return QuantileTable("median days", cells, ["area"])


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_quantile_of_too_few_persons(rules, offset, expected):
    report = check(quantiles(rules.min_frequency + offset, [[3.0, 3.0]] * 2, [100.0, 200.0]), rules)
    assert report.verdict == expected
    if expected == "fail":
        assert report.failed_cells() == [{"area": "north", "quantile": 0.5}, {"area": "north", "quantile": 0.9}]


@pytest.mark.parametrize("offset, expected", [(-1, "pass"), (0, "pass"), (1, "fail")])
def test_a_quantiles_window_is_checked_for_dominance_like_a_magnitude(rules, offset, expected):
    """The values around the quantile: their n largest hold k of 1000 exactly, 1 less or 1 more."""
    rules = rules.model_copy(update={"p_ratio": 0.0})
    held = rules.dominance_k * 1000 + offset
    top = [held / rules.dominance_n] * rules.dominance_n + [1.0]
    report = check(quantiles(50, [top, [10.0, 10.0]], [1000.0, 1000.0]), rules)
    assert verdict_of(report, "dominance") == report.verdict == expected
    if expected == "fail":
        assert report.failed_cells() == [{"area": "north", "quantile": 0.5}]


def test_a_quantile_without_its_window_needs_a_persons_review(rules):
    report = check(quantiles(50), rules)
    assert report.verdict == "review" and verdict_of(report, "dominance") == "review"
    assert {"top", "abs_total"}.isdisjoint(quantiles(50, [[3.0, 3.0]] * 2, [100.0, 200.0]).public_table().columns)


def test_a_quantile_is_a_local_mean_of_at_least_the_minimum_frequency_of_values():
    from safepool.disclosure.kinds.quantile import local_mean, local_quantiles

    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 1000.0]
    mean, window = local_mean(values, 0.5, 5)
    assert len(window) == 5 and mean == pytest.approx(sum(window) / 5) and list(window) == [3.0, 4.0, 5.0, 6.0, 7.0]
    top, _ = local_mean(values, 1.0, 5)
    assert top == pytest.approx((4 + 5 + 6 + 7 + 1000) / 5)  # the maximum is never shown on its own
    assert local_mean(values[:4], 0.5, 5) is None
    rows = local_quantiles(values, [0.5, 0.95], DisclosureRules())
    assert [r["quantile"] for r in rows] == [0.5, 0.95] and all(r["n"] == 8 for r in rows)
    table = QuantileTable("q", pd.DataFrame([{"area": "a", **r} for r in rows]), ["area"])
    report = check(table, DisclosureRules())  # 1007 of the top window's 1022: dominated
    assert report.failed_cells() == [{"area": "a", "quantile": 0.95}]


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_extremes_need_permission_and_persons(rules, offset, expected):
    cells = pd.DataFrame({"area": ["north"], "statistic": ["max"], "value": [91.0], "n": [rules.min_frequency + offset]})
    table = ExtremeTable("oldest", cells, ["area"])
    assert verdict_of(check(table, rules), "extremes") == "fail"
    allowed = rules.model_copy(update={"allow_extremes": True})
    assert check(table, allowed).verdict == expected


def model(df_resid: float, level_count: int | None = 400) -> ModelResult:
    coefficients = pd.DataFrame({"term": ["const", "sex[m]"], "estimate": [1.5, -0.2], "std_error": [0.1, 0.05]})
    counts = None
    if level_count is not None:
        counts = pd.DataFrame({"term": ["sex", "sex"], "level": ["f", "m"], "count": [level_count, 400]})
    return ModelResult("employment model", coefficients, n_obs=500, df_resid=df_resid, cell_counts=counts)


@pytest.mark.parametrize("offset, expected", OFFSETS)
def test_residual_degrees_of_freedom(rules, offset, expected):
    report = check(model(rules.min_residual_df + offset), rules)
    assert verdict_of(report, "residual_df") == report.verdict == expected


def test_a_model_without_persons_per_level_needs_a_persons_review(rules):
    report = check(model(400, level_count=None), rules)
    assert report.verdict == "review" and verdict_of(report, "levels") == "review"
    assert check(model(rules.min_residual_df - 1, level_count=None), rules).verdict == "fail"


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


def test_the_workspaces_policy_changes_verdicts(policies):
    seven = frequency(7)
    assert check(seven, policies["defaults"]).verdict == "pass"
    strict = policies["strict"]
    assert (strict.min_frequency, strict.dominance_n, strict.zeros) == (10, 3, "suppress")
    assert check(seven, strict).verdict == "fail"


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
