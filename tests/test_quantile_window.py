"""A quantile's window per cell (`safepool.query.quantile_window`), against a sort of each cell."""

from __future__ import annotations

import numpy as np
import pytest

from safepool.query.quantile_window import window_rows, window_start


@pytest.mark.parametrize(("quantile", "values", "width", "start"), [
    (0.5, 11, 5, 3),     # rank 5 centred: 3..7
    (0.5, 10, 5, 3),     # rank 4.5: the window 2.5..6.5 rounded half up to 3..7
    (0.0, 100, 5, 0),    # kept inside at the bottom
    (1.0, 100, 5, 95),   # and at the top
    (0.5, 3, 5, 0),      # fewer values than the width: all of them
    (0.1, 31, 5, 1),     # 0.1 x 30 = 3 exactly (not 3.0000000000000004): 3 - 2 + 0.5 -> 1
    (0.25, 9, 3, 1),     # 2 - 1 + 0.5 = 1.5 -> 1 (half up happens before the floor)
])
def test_the_window_starts_at_the_quantiles_rank_centred_and_kept_inside(quantile: float, values: int, width: int,
                                                                        start: int) -> None:
    assert window_start(quantile, values, width) == start


def _by_sorting(keys: dict[str, np.ndarray], person: np.ndarray, value: np.ndarray, quantile: float,
                width: int) -> dict[tuple, tuple[int, float]]:
    """The same windows found by sorting each cell's values (the reference)."""
    cells: dict[tuple, list[int]] = {}
    for row in range(len(value)):
        cells.setdefault(tuple(int(keys[k][row]) for k in keys), []).append(row)
    found: dict[tuple, tuple[int, float]] = {}
    for cell, rows in cells.items():
        ordered = sorted(value[rows])
        low = window_start(quantile, len(ordered), width)
        high = min(low + width - 1, len(ordered) - 1)
        for row in rows:
            if ordered[low] <= value[row] <= ordered[high]:
                rows_, total = found.get((*cell, int(person[row])), (0, 0.0))
                found[(*cell, int(person[row]))] = (rows_ + 1, total + float(value[row]))
    return found


def _as_found(answer: dict[str, np.ndarray], keys: list[str]) -> dict[tuple, tuple[int, float]]:
    return {(*(int(answer[k][i]) for k in keys), int(answer["person"][i])): (int(answer["r"][i]), float(answer["c"][i]))
            for i in range(len(answer["person"]))}


@pytest.mark.parametrize("seed", range(6))
def test_windows_are_those_a_sort_of_each_cell_finds_with_ties_taken_whole(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 400))
    keys = {"k0": rng.integers(0, 3, rows).astype(np.int32), "k1": rng.integers(0, 4, rows).astype(np.int32)}
    person = rng.integers(0, 10**12, rows)
    person[rows // 2:] = person[: rows - rows // 2]  # some persons with two rows
    value = rng.integers(0, 6, rows).astype(float) * 1000.0  # many ties
    quantile = float(rng.choice([0.1, 0.25, 0.5, 0.75, 0.9]))
    answer = window_rows({**keys, "person": person, "x": value}, ["k0", "k1"], quantile, 5)
    assert _as_found(answer, ["k0", "k1"]) == _by_sorting(keys, person, value, quantile, 5)
    assert answer["k0"].dtype == np.int32 and answer["r"].dtype == np.int64


def test_windows_do_not_depend_on_the_rows_order() -> None:
    rng = np.random.default_rng(7)
    rows = 5000
    found = {"k0": rng.integers(0, 2, rows), "person": rng.permutation(10**6)[:rows], "x": rng.normal(3e4, 9e3, rows)}
    first = _as_found(window_rows(found, ["k0"], 0.5, 10), ["k0"])
    shuffled = rng.permutation(rows)
    again = _as_found(window_rows({k: v[shuffled] for k, v in found.items()}, ["k0"], 0.5, 10), ["k0"])
    assert first == again and sum(r for r, _ in first.values()) == 20


def test_no_keys_is_one_cell_and_no_rows_is_no_cell() -> None:
    value = np.arange(20, dtype=float)
    answer = window_rows({"person": np.arange(20), "x": value}, [], 0.5, 5)
    assert sorted(answer["c"].tolist()) == [8.0, 9.0, 10.0, 11.0, 12.0]  # rank 9.5: 7.5..11.5, half up
    empty = window_rows({"k0": np.empty(0, dtype=np.int32), "person": np.empty(0, dtype=np.int64),
                         "x": np.empty(0)}, ["k0"], 0.5, 5)
    assert all(len(column) == 0 for column in empty.values()) and set(empty) == {"k0", "person", "r", "c"}
