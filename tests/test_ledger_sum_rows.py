"""The rows of totals kept as definitions, made from the rows of the cells they add up."""

from __future__ import annotations

import numpy as np
import pandas as pd

from safepool.query.ledger_sums import cell_rows, sum_rows, with_sum_rows


def rows() -> pd.DataFrame:
    """Three cells in cell order (persons 1-7, no one in two), with a rank column beside."""
    return pd.DataFrame({"cell": np.array([0, 0, 0, 1, 1, 2, 2], dtype=np.int64),
                         "person": np.array([5, 9, 11, 2, 7, 3, 4], dtype=np.uint64),
                         "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "rank": np.arange(7)})


def test_a_totals_rows_are_its_cells_rows_under_its_number():
    incoming = rows()
    made = sum_rows(incoming, {10: [2, 0], 11: [1]})
    expected = pd.concat([incoming.iloc[5:7], incoming.iloc[0:3], incoming.iloc[3:5]], ignore_index=True)
    expected["cell"] = np.array([10] * 5 + [11] * 2, dtype=np.int64)
    pd.testing.assert_frame_equal(made, expected)
    assert sum_rows(incoming, {}).empty and list(sum_rows(incoming, {}).columns) == list(incoming.columns)


def test_a_cells_rows_are_asked_for_by_its_number():
    rows_of = cell_rows(rows(), {10: [0, 2]})
    person, value = rows_of(10)
    assert person.tolist() == [5, 9, 11, 3, 4] and value.tolist() == [1.0, 2.0, 3.0, 6.0, 7.0]
    person, value = rows_of(1)
    assert person.tolist() == [2, 7] and value.tolist() == [4.0, 5.0]
    person, value = rows_of(99)  # a cell without rows holds no one
    assert person.tolist() == [] and value.tolist() == []


def test_a_totals_rows_are_added_in_their_place_among_the_cells():
    """A total numbered between its cells (cells 0, 2 and 4; the total 3 of 0 and 4) gets their rows
    in its place, the rows numbered afresh."""
    found = with_sum_rows(rows().assign(cell=rows()["cell"] * 2), {3: [0, 4]})
    assert found["cell"].tolist() == [0, 0, 0, 2, 2, 3, 3, 3, 3, 3, 4, 4]
    assert found.loc[found["cell"] == 3, "person"].tolist() == [5, 9, 11, 3, 4]
    assert found.index.tolist() == list(range(12))
