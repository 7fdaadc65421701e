"""The values behind a study's rows as the differencing ledger takes them (safepool.study.row_persons):
one member per person of an arm, standing for the values of that person the row's sum takes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from safepool.study.row_persons import ARMS, row_persons


def _cells(order: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Client 7 (time 10) at horizons 0 and 4; person 8 its control at time 10 and, in another set,
    at time 12; person 9 a control at horizon 4 only."""
    source = pd.DataFrame({"pid": [7, 8, 8, 9], "t": [10, 10, 12, 10]})
    cells = pd.DataFrame({"horizon": [0, 4, 0, 0, 4], "treated": [True, True, False, False, False],
                          "row": [0, 0, 1, 2, 3]})
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
