"""Differencing: a table set beside one already released must not reveal a small group."""

import math

import pandas as pd

from safepool.disclosure.differencing import DifferencingFlag, FrequencyCells, compare, flags_against
from safepool.disclosure.mitigation import suppress
from safepool.disclosure.outputs import Figure, FrequencyTable, MagnitudeTable, ModelResult
from safepool.disclosure.rules import DisclosureRules

THRESHOLD = 5


def cells(rows, groups):
    return FrequencyCells.of_output(FrequencyTable("t", pd.DataFrame(rows), list(groups)))


BY_AREA_EVERYONE = cells([{"area": "north", "count": 40}, {"area": "south", "count": 33}], ["area"])


def test_a_narrower_filter_that_leaves_out_three_persons_is_flagged_with_both_outputs():
    adults = cells([{"area": "north", "count": 40}, {"area": "south", "count": 30}], ["area"])
    flag = compare("P-1-0002", adults, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD)
    assert flag is not None and flag.output == "P-1-0002" and flag.other == "P-1-0001"
    assert {"by": ["area"], "group": {"area": "south"}, "how": "difference"} in flag.cells
    assert "P-1-0001" in flag.message and "P-1-0002" in flag.message and "fewer than 5" in flag.message
    # the size of the revealed group is never named
    assert "3" not in flag.message.replace("P-1-0001", "").replace("P-1-0002", "")


def test_a_narrower_filter_that_leaves_out_large_groups_only_is_not_flagged():
    adults = cells([{"area": "north", "count": 30}, {"area": "south", "count": 25}], ["area"])
    assert compare("P-1-0002", adults, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD) is None
    assert compare("P-1-0002", BY_AREA_EVERYONE, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD) is None


def test_marginal_totals_that_differ_by_a_small_group_are_flagged():
    by_sex = cells([{"sex": "F", "count": 36}, {"sex": "M", "count": 35}], ["sex"])  # 71 against 73
    flag = compare("P-1-0003", by_sex, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD)
    assert flag is not None and flag.cells == [{"by": [], "group": {}, "how": "difference"}]
    assert "the whole table" in flag.message
    by_sex_far = cells([{"sex": "F", "count": 30}, {"sex": "M", "count": 30}], ["sex"])
    assert compare("P-1-0003", by_sex_far, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD) is None


def test_populations_that_are_not_nested_give_no_flag():
    other_people = cells([{"area": "north", "count": 42}, {"area": "south", "count": 30}], ["area"])
    assert compare("P-1-0002", other_people, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD) is None


def test_a_suppressed_cell_solved_from_a_released_margin_is_flagged():
    by_area_sex = cells([
        {"area": "north", "sex": "F", "count": 20}, {"area": "north", "sex": "M", "count": 20},
        {"area": "south", "sex": "F", "count": math.nan}, {"area": "south", "sex": "M", "count": 30},
    ], ["area", "sex"])
    flag = compare("P-1-0004", by_area_sex, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD)
    assert flag is not None
    assert {"by": ["area"], "group": {"area": "south"}, "how": "suppressed cell recoverable"} in flag.cells
    assert "can be solved for" in flag.message


def test_two_suppressed_cells_under_one_margin_cannot_be_solved():
    by_area_sex = cells([
        {"area": "north", "sex": "F", "count": 20}, {"area": "north", "sex": "M", "count": 20},
        {"area": "south", "sex": "F", "count": math.nan}, {"area": "south", "sex": "M", "count": math.nan},
    ], ["area", "sex"])
    assert compare("P-1-0004", by_area_sex, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD) is None


def test_figures_are_compared_through_their_table_and_means_by_their_persons():
    table = FrequencyTable("t", pd.DataFrame([{"area": "north", "count": 40}, {"area": "south", "count": 31}]),
                           ["area"])
    figure_cells = FrequencyCells.of_output(Figure("f", table, {"mark": "bar"}))
    assert figure_cells is not None
    flags = flags_against("P-1-0005", figure_cells, {"P-1-0001": BY_AREA_EVERYONE, "P-1-0005": figure_cells},
                          THRESHOLD)
    assert [f.other for f in flags] == ["P-1-0001"]
    means = MagnitudeTable("m", pd.DataFrame([{"area": "north", "value": 1.0, "n": 9, "top": [1.0, 1.0],
                                               "abs_total": 9.0}]), ["area"], "mean")
    assert FrequencyCells.of_output(means) == FrequencyCells(("area",), ((("north",), 9),))
    model = ModelResult("m", pd.DataFrame({"term": ["a"], "estimate": [1.0]}), n_obs=40, df_resid=30)
    assert FrequencyCells.of_output(model) is None


def test_cells_and_flags_survive_the_record_round_trip():
    record = BY_AREA_EVERYONE.to_record()
    assert FrequencyCells.from_record(record) == BY_AREA_EVERYONE
    adults = cells([{"area": "north", "count": 40}, {"area": "south", "count": 30}], ["area"])
    flag = compare("P-1-0002", adults, "P-1-0001", BY_AREA_EVERYONE, THRESHOLD)
    assert DifferencingFlag.from_record(flag.to_record()) == flag


def test_a_row_marked_suppressed_counts_as_hidden_even_if_its_value_was_left_in():
    table = FrequencyTable("t", pd.DataFrame({"area": ["north", "south"], "count": [40, 2],
                                              "status": ["shown", "suppressed (primary: min_frequency)"]}), ["area"])
    assert FrequencyCells.of_output(table).rows == ((("north",), 40), (("south",), None))


def test_total_rows_of_a_mitigated_table_are_sums_not_cells():
    two_way = FrequencyTable("t", pd.DataFrame({
        "area": ["north", "north", "south", "south", "east", "east"], "sex": ["F", "M"] * 3,
        "count": [20, 20, 2, 31, 15, 16]}), ["area", "sex"])
    mitigated = suppress(two_way, DisclosureRules())
    assert (mitigated.output.cells["area"] == "Total").any()
    same_people = cells([{"area": "north", "count": 40}, {"area": "south", "count": 33}, {"area": "east", "count": 31}],
                        ["area"])
    assert compare("P-1-0002", FrequencyCells.of_output(mitigated.output), "P-1-0001", same_people, THRESHOLD) is None

    only_total_shown = cells([{"area": "north", "count": math.nan}, {"area": "south", "count": math.nan},
                              {"area": "Total", "count": 73}], ["area"])
    by_sex = cells([{"sex": "F", "count": 36}, {"sex": "M", "count": 35}], ["sex"])
    flag = compare("P-1-0003", by_sex, "P-1-0002", only_total_shown, THRESHOLD)
    assert flag is not None and flag.cells == [{"by": [], "group": {}, "how": "difference"}]
