"""Suppression and rounding: what a mitigated table shows, and proof by linear programming that
no suppressed cell can be worked out from the cells and totals that are shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from safepool.disclosure import (
    DisclosureInputError,
    DisclosureRules,
    EffectTable,
    ExtremeTable,
    Figure,
    FrequencyTable,
    MagnitudeTable,
    ModelResult,
    QuantileTable,
    check,
    round_counts,
    suppress,
)

RULES = DisclosureRules()
TOTAL = "Total"


def feasible_ranges(table, quantity: str, rules: DisclosureRules) -> dict[tuple, tuple[float, float]]:
    """What an attacker can work out about each suppressed cell: its least and greatest value.

    Unknowns are the inner cells; every shown cell and total is an equation; counts are >= 0,
    and a cell whose status says it failed min_frequency is known to lie in 1..threshold-1.
    """
    cells, groups = table.cells, list(table.groups)
    is_total = cells[groups].astype(str).eq(TOTAL).to_numpy()
    inner = cells[~is_total.any(axis=1)].reset_index(drop=True)
    variables = {tuple(row): k for k, row in enumerate(inner[groups].itertuples(index=False))}

    def form(row) -> np.ndarray:
        coefficients = np.zeros(len(variables))
        for key, k in variables.items():
            if all(str(row[g]) == TOTAL or row[g] == key[n] for n, g in enumerate(groups)):
                coefficients[k] = 1.0
        return coefficients

    equations, published, bounds = [], [], [(0, None)] * len(variables)
    hidden = {}
    for _, row in cells.iterrows():
        key = tuple(row[g] for g in groups)
        if row["status"].startswith("suppressed"):
            hidden[key] = form(row)
            if key in variables and row["status"] == "suppressed (primary: min_frequency)" and quantity == "count":
                bounds[variables[key]] = (1, rules.min_frequency - 1)
        else:
            equations.append(form(row))
            published.append(float(row[quantity]))
    ranges = {}
    for key, objective in hidden.items():
        options = dict(A_eq=np.array(equations) if equations else None, b_eq=published or None, bounds=bounds)
        low = linprog(objective, **options)
        high = linprog(-objective, **options)
        assert low.status in (0, 3) and high.status in (0, 3), (low.message, high.message)
        ranges[key] = (low.fun if low.status == 0 else -np.inf, -high.fun if high.status == 0 else np.inf)
    return ranges


def assert_protected(mitigated, quantity: str, rules: DisclosureRules, cover_threshold: bool = False) -> dict:
    """Every suppressed cell keeps a range wider than zero; with `cover_threshold`, a cell that
    failed min_frequency may still be anything from 1 to threshold-1 (nothing beyond its status)."""
    ranges = feasible_ranges(mitigated.output, quantity, rules)
    for key, (low, high) in ranges.items():
        assert high - low > 1e-6, f"cell {key} can be worked out to [{low}, {high}]"
    if cover_threshold:
        for key, text in statuses(mitigated).items():
            if text == "suppressed (primary: min_frequency)":
                assert ranges[key] == pytest.approx((1, rules.min_frequency - 1)), key
    assert mitigated.report.verdict == "pass"
    return ranges


def two_way(counts: list[list[int]]) -> FrequencyTable:
    rows = [(f"r{i}", f"c{j}", count) for i, line in enumerate(counts) for j, count in enumerate(line)]
    return FrequencyTable("clients by area and age", pd.DataFrame(rows, columns=["area", "age", "count"]), ["area", "age"])


def statuses(mitigated) -> dict[tuple, str]:
    cells, groups = mitigated.output.cells, mitigated.output.groups
    return {tuple(row[g] for g in groups): row["status"] for _, row in cells.iterrows()}


def test_two_way_table_secondary_suppression_hides_small_cells_from_the_margins():
    table = two_way([[3, 10, 12], [7, 8, 9], [20, 21, 22]])
    mitigated = suppress(table, RULES)
    status = statuses(mitigated)
    assert status[("r0", "c0")] == "suppressed (primary: min_frequency)"
    secondary = [key for key, text in status.items() if text == "suppressed (secondary)"]
    assert len(secondary) == 3
    assert status[("r0", TOTAL)] == status[(TOTAL, TOTAL)] == "shown"
    assert_protected(mitigated, "count", RULES, cover_threshold=True)
    assert "secondary suppression" in mitigated.note and "1 cell(s)" in mitigated.note


def test_primary_suppression_alone_would_be_recoverable():
    """The oracle can fail: with only the primary cell hidden, the totals give it away."""
    rows = [("r0", "c0", np.nan, "suppressed (primary: min_frequency)"), ("r0", "c1", 10, "shown"),
            ("r1", "c0", 7, "shown"), ("r1", "c1", 8, "shown"), ("r0", TOTAL, 13, "shown"), ("r1", TOTAL, 15, "shown"),
            (TOTAL, "c0", 10, "shown"), (TOTAL, "c1", 18, "shown"), (TOTAL, TOTAL, 28, "shown")]
    leaky = FrequencyTable("t", pd.DataFrame(rows, columns=["area", "age", "count", "status"]), ["area", "age"])
    assert feasible_ranges(leaky, "count", RULES)[("r0", "c0")] == pytest.approx((3, 3))


def test_one_way_table_with_total():
    table = FrequencyTable("by area", pd.DataFrame({"area": list("abcde"), "count": [2, 40, 17, 9, 60]}), ["area"])
    mitigated = suppress(table, RULES)
    status = statuses(mitigated)
    assert status[("a",)].startswith("suppressed (primary")
    assert status[("d",)] == "suppressed (secondary)"
    assert status[(TOTAL,)] == "shown"
    assert_protected(mitigated, "count", RULES, cover_threshold=True)


def test_a_failing_total_is_suppressed_and_protected():
    table = two_way([[1, 2, 0], [30, 40, 50], [60, 70, 80]])
    mitigated = suppress(table, RULES)
    status = statuses(mitigated)
    assert status[("r0", TOTAL)] == "suppressed (primary: min_frequency)"
    assert_protected(mitigated, "count", RULES)


def test_zero_counts_under_the_suppress_policy_do_not_reveal_themselves():
    rules = DisclosureRules(zeros="suppress")
    table = two_way([[0, 10, 12], [7, 8, 9], [20, 21, 22]])
    mitigated = suppress(table, rules)
    status = statuses(mitigated)
    assert status[("r0", "c0")] == "suppressed (primary: min_frequency or zeros)"
    assert_protected(mitigated, "count", rules)


def test_shown_cells_keep_their_values_and_hidden_ones_are_blank():
    table = two_way([[3, 10, 12], [7, 8, 9], [20, 21, 22]])
    shown = suppress(table, RULES).output.public_table()
    inner = shown[(shown["area"] != TOTAL) & (shown["age"] != TOTAL)]
    merged = inner.merge(table.cells, on=["area", "age"], suffixes=("", "_true"))
    visible = merged["status"] == "shown"
    assert (merged.loc[visible, "count"] == merged.loc[visible, "count_true"]).all()
    assert merged.loc[~visible, "count"].isna().all()


def sum_table(values: list[list[float]], dominated: set[tuple[int, int]]) -> MagnitudeTable:
    rows = []
    for i, line in enumerate(values):
        for j, value in enumerate(line):
            top = [value * 0.95, value * 0.01] if (i, j) in dominated else [value * 0.2, value * 0.2]
            rows.append((f"r{i}", f"c{j}", value, 40, top, value))
    cells = pd.DataFrame(rows, columns=["area", "sector", "value", "n", "top", "abs_total"])
    return MagnitudeTable("earnings", cells, ["area", "sector"], "sum")


def test_sum_table_dominated_cell_is_protected():
    table = sum_table([[5000.0, 12000.0, 9000.0], [7000.0, 8000.0, 6000.0]], {(0, 1)})
    mitigated = suppress(table, RULES)
    status = statuses(mitigated)
    assert status[("r0", "c1")] == "suppressed (primary: dominance, p_ratio)"
    ranges = assert_protected(mitigated, "value", RULES)
    low, high = ranges[("r0", "c1")]
    assert high - low >= RULES.p_ratio * 12000
    assert {"top", "abs_total"}.isdisjoint(mitigated.output.public_table().columns)
    assert mitigated.output.public_table()["value"].isna().sum() == sum(s.startswith("suppressed") for s in status.values())


def test_mean_table_is_protected_on_its_persons():
    cells = pd.DataFrame({"area": ["a", "a", "b", "b"], "sex": ["f", "m", "f", "m"], "value": [3.0, 4.0, 5.0, 6.0],
                          "n": [3, 30, 40, 50], "top": [[1.0, 1.0]] * 4, "abs_total": [9.0, 120.0, 200.0, 300.0]})
    mitigated = suppress(MagnitudeTable("mean visits", cells, ["area", "sex"], "mean"), RULES)
    assert sum(statuses(mitigated)[k].startswith("suppressed") for k in [("a", "f"), ("a", "m"), ("b", "f"), ("b", "m")]) == 4
    assert_protected(mitigated, "n", RULES)


small_or_large = st.one_of(st.integers(0, 6), st.integers(0, 80))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(2, 5).flatmap(lambda r: st.integers(2, 5).flatmap(
        lambda c: st.lists(st.lists(small_or_large, min_size=c, max_size=c), min_size=r, max_size=r))),
    st.sampled_from(["allow", "suppress"]),
)
def test_generated_two_way_tables_never_reveal_a_suppressed_cell(counts, zeros):
    rules = DisclosureRules(zeros=zeros)
    mitigated = suppress(two_way(counts), rules)
    assert_protected(mitigated, "count", rules)


@settings(max_examples=60, deadline=None)
@given(st.lists(small_or_large, min_size=1, max_size=8), st.sampled_from(["allow", "suppress"]))
def test_generated_one_way_tables_never_reveal_a_suppressed_cell(counts, zeros):
    rules = DisclosureRules(zeros=zeros)
    table = FrequencyTable("t", pd.DataFrame({"area": [f"a{k}" for k in range(len(counts))], "count": counts}), ["area"])
    assert_protected(suppress(table, rules), "count", rules)


def test_rounding_to_the_base():
    table = FrequencyTable("t", pd.DataFrame({"area": list("abcdef"), "count": [0, 2, 3, 7, 8, 124]}), ["area"])
    mitigated = round_counts(table, RULES)
    assert mitigated.method == "rounding"
    assert mitigated.output.cells["count"].tolist() == [0, 0, 5, 5, 10, 125]
    assert set(mitigated.output.cells["status"]) == {"rounded to base 5"}
    assert "nearest multiple of 5" in mitigated.note
    assert mitigated.report.verdict == "pass"


def test_rounding_to_a_base_below_the_threshold_suppresses_what_still_fails():
    rules = DisclosureRules(rounding_base=3, min_frequency=10)
    table = FrequencyTable("t", pd.DataFrame({"area": list("abc"), "count": [4, 11, 40]}), ["area"])
    mitigated = round_counts(table, rules)
    assert mitigated.output.cells["status"].tolist() == [
        "suppressed (primary: min_frequency)", "rounded to base 3", "rounded to base 3"]
    assert np.isnan(mitigated.output.cells["count"][0]) and mitigated.output.cells["count"][1] == 12
    assert "1 rounded count(s)" in mitigated.note and mitigated.report.verdict == "pass"


def test_other_kinds_are_suppressed_cell_by_cell_or_whole():
    model = ModelResult("m", pd.DataFrame({"term": ["a", "b"], "estimate": [1.0, 2.0]}), n_obs=12, df_resid=4)
    mitigated = suppress(model, RULES)
    assert mitigated.output.coefficients["estimate"].isna().all()
    assert set(mitigated.output.coefficients["status"]) == {"suppressed (primary: residual_df)"}
    assert mitigated.report.verdict == "pass"

    effects = EffectTable("att", pd.DataFrame({"h": [1, 2], "att": [0.1, 0.2], "n_treated": [3, 50],
                                                "n_control": [90, 90]}), ["h"])
    cells = suppress(effects, RULES).output.cells
    assert cells["status"].tolist() == ["suppressed (primary: min_frequency)", "shown"]
    assert cells.loc[0, ["att", "n_treated", "n_control"]].isna().all() and cells.loc[1, "att"] == 0.2

    for table in (QuantileTable("q", pd.DataFrame({"g": ["a"], "quantile": [0.5], "value": [7.0], "n": [2]}), ["g"]),
                  ExtremeTable("x", pd.DataFrame({"g": ["a"], "statistic": ["max"], "value": [7.0], "n": [20]}), ["g"])):
        mitigated = suppress(table, RULES)
        assert mitigated.output.cells["value"].isna().all() and mitigated.report.verdict == "pass"


def test_a_figure_is_mitigated_through_its_table_and_its_inline_data():
    table = FrequencyTable("t", pd.DataFrame({"area": ["a", "b", "c"], "count": [3, 40, 9]}), ["area"])
    spec = {"mark": "bar", "data": {"values": table.cells.to_dict("records")}}
    mitigated = suppress(Figure("clients", table, spec), RULES)
    assert mitigated.report.verdict == "pass" and mitigated.report.kind == "figure"
    values = {row["area"]: row["count"] for row in mitigated.output.spec["data"]["values"]}
    assert values["a"] is None and values["c"] is None and values["b"] == 40
    assert spec["data"]["values"][0]["count"] == 3


def test_mitigation_refuses_what_it_cannot_do():
    with pytest.raises(DisclosureInputError, match="already been mitigated"):
        suppress(suppress(two_way([[3, 10], [7, 8]]), RULES).output, RULES)
    three = FrequencyTable("t", pd.DataFrame({"a": [1], "b": [1], "c": [1], "count": [9]}), ["a", "b", "c"])
    with pytest.raises(DisclosureInputError, match="one or two group columns"):
        suppress(three, RULES)
    assert suppress(three, RULES, margins=False).report.verdict == "pass"
    with pytest.raises(DisclosureInputError, match="cannot be mitigated"):
        suppress(FrequencyTable("t", pd.DataFrame({"a": [1], "count": ["many"]}), ["a"]), RULES)
    with pytest.raises(DisclosureInputError, match="only frequency tables"):
        round_counts(ExtremeTable("x", pd.DataFrame(), []), RULES)
    assert check(suppress(two_way([[3, 10], [7, 8]]), RULES).output, RULES).verdict == "pass"
