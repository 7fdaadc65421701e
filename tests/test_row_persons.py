"""The values behind a study's rows as the differencing ledger takes them (safepool.study.row_persons):
one member per person of an arm, standing for the values of that person the row's sum takes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from safepool.study.row_persons import ARMS, BASELINE_ARMS, baseline_hidden, row_persons, value_code


def _cells(order: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Client 7 (time 10) at horizons 0 and 4; person 8 its control at time 10 and, in another set,
    at time 12; person 9 a control at horizon 4 only."""
    source = pd.DataFrame({"pid": [7, 8, 8, 9], "t": [10, 10, 12, 10]})
    cells = pd.DataFrame({"horizon": [0, 4, 0, 0, 4], "treated": [True, True, False, False, False],
                          "row": [0, 0, 1, 2, 3], "w": [1.0, 1.0, 0.5, 0.5, 1.0],
                          "level": [10.0, 20.0, 30.0, 50.0, 70.0], "y": [4.0, 14.0, 27.0, 45.0, 69.0]})
    return cells.iloc[order].reset_index(drop=True), source


def _arms(table: pd.DataFrame) -> dict[tuple[int, str], dict[int, int]]:
    return {(int(h), arm): dict(zip(persons.persons.tolist(), persons.values.tolist()))
            for h, row in zip(table["horizon"], table["row persons"]) for arm, persons in row.items()}


def test_each_person_is_one_member_of_an_arm_whatever_the_order_of_the_cells():
    cells, source = _cells([0, 1, 2, 3, 4])
    arms = _arms(row_persons(cells, source, "pid", "earnings"))
    assert set(arms) == {(0, ARMS[True]), (4, ARMS[True]), (0, ARMS[False]), (4, ARMS[False])}
    assert list(arms[(0, ARMS[False])]) == [8]  # one member, for its values at times 10 and 12
    assert arms[(0, ARMS[True])][7] != arms[(4, ARMS[True])][7]  # other quarters, other values
    shuffled, _ = _cells([4, 2, 0, 3, 1])
    assert _arms(row_persons(shuffled, source, "pid", "earnings")) == arms


def test_another_outcome_is_other_values():
    cells, source = _cells([0, 1, 2, 3, 4])
    level = _arms(row_persons(cells, source, "pid", "earnings"))
    other = _arms(row_persons(cells, source, "pid", "benefits"))
    for arm in level:
        for person, code in level[arm].items():
            assert code != other[arm][person]
    # the member of a control in two sets stands for both its values, not for either
    single = _arms(row_persons(cells.iloc[[2]], source, "pid", "earnings"))[(0, ARMS[False])][8]
    assert single != level[(0, ARMS[False])][8]
    assert np.uint64(single) != 0


def test_a_difference_in_differences_adds_its_baselines_one_member_per_person_and_value():
    cells, source = _cells([0, 1, 2, 3, 4])
    rows = row_persons(cells, source, "pid", "earnings", baseline=-1)
    at_zero = rows.loc[rows["horizon"] == 0, "row persons"].iloc[0]
    controls = at_zero[BASELINE_ARMS[False]]
    assert sorted(controls.persons.tolist()) == [8, 8]  # person 8 at times 10 and 12: two baseline values
    assert set(controls.values.tolist()) == set(value_code("earnings", np.array([9, 11])).tolist())
    # every horizon differences the same baseline: client 7's member is one at horizons 0 and 4
    at_four = rows.loc[rows["horizon"] == 4, "row persons"].iloc[0]
    assert at_zero[BASELINE_ARMS[True]].values.tolist() == at_four[BASELINE_ARMS[True]].values.tolist()
    assert BASELINE_ARMS[True] not in row_persons(cells, source, "pid", "earnings")["row persons"].iloc[0]


def test_each_arm_is_also_the_sum_a_query_would_add_up_whatever_the_order():
    """The mean of an arm times its weight is the sum of its persons' weighted values: each person
    once, with what it adds (a control in two sets adds both); a baseline arm adds the levels less
    what the estimator differences."""
    cells, source = _cells([0, 1, 2, 3, 4])
    for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1]):
        cells, _ = _cells(order)
        rows = row_persons(cells, source, "pid", "earnings", baseline=-1).set_index("horizon")["row persons"]
        sums = {(h, arm): dict(zip(a.sums().persons.tolist(), a.sums().values.tolist()))
                for h, row in rows.items() for arm, a in row.items()}
        assert sums[(0, ARMS[True])] == {7: 10.0} and sums[(4, ARMS[True])] == {7: 20.0}
        assert sums[(0, ARMS[False])] == {8: 0.5 * 30 + 0.5 * 50} and sums[(4, ARMS[False])] == {9: 70.0}
        assert sums[(0, BASELINE_ARMS[True])] == {7: 6.0}
        assert sums[(0, BASELINE_ARMS[False])] == {8: 0.5 * 3 + 0.5 * 5}


def _did_table(followed: dict[int, list[int]], step: int, same_control: bool = False
               ) -> tuple[pd.DataFrame, pd.Series]:
    """Event-study rows at `followed`'s horizons, each following those sets (set s: a client and a
    control at time s, their pseudonyms taken in the order `step` gives; with `same_control`, the
    control of set 11 is that of set 10, matched again a quarter later)."""
    cells = pd.DataFrame([(h, treated, s) for h, sets in followed.items() for s in sets for treated in (True, False)],
                         columns=["horizon", "treated", "set"])
    source = pd.DataFrame({"pid": np.r_[100 + np.arange(20), 200 + np.arange(20)][::step],
                           "t": np.r_[np.arange(20), np.arange(20)]})
    if same_control:
        source.loc[31, "pid"] = source.loc[30, "pid"]
    cells["row"] = cells["set"] + np.where(cells["treated"], 0, 20)
    cells[["w", "level", "y"]] = 1.0, 2.0, 1.0
    persons = row_persons(cells, source, "pid", "earnings", baseline=-1)
    table = pd.DataFrame({"outcome": "earnings", "method": "did", "horizon": persons["horizon"]})
    return table, persons["row persons"]


def test_rows_whose_baselines_would_single_out_a_few_sets_are_hidden_whatever_the_persons():
    followed = {0: list(range(12)), 1: list(range(11)), 2: list(range(5)), -2: list(range(12))}
    for step in (1, -1):
        table, persons = _did_table(followed, step)
        hidden = baseline_hidden({"event_study": table}, {"event_study": persons}, -1, 5)["event_study"]
        # 0 and -2 follow the same sets; 1 differs from 0 by one set; 2 from 0 by seven
        assert dict(zip(table["horizon"], hidden)) == {-2: False, 0: False, 1: True, 2: False}


def test_a_control_in_two_sets_counts_once_among_the_persons_a_baseline_difference_singles_out():
    """Horizon 1 follows the sets of horizon 0 less five: five clients, and five controls' baseline
    values. When two of those sets were matched to one control (at two times), the five values are
    of four persons, fewer than the minimum frequency, and the row is hidden; with five controls
    it is shown."""
    followed = {0: list(range(12)), 1: list(range(7))}
    for same_control, expected in ((False, False), (True, True)):
        for step in (1, -1):
            table, persons = _did_table(followed, step, same_control=same_control)
            hidden = baseline_hidden({"event_study": table}, {"event_study": persons}, -1, 5)["event_study"]
            assert dict(zip(table["horizon"], hidden)) == {0: False, 1: expected}
