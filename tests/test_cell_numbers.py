"""Distinct numbers and their places, by a table over a small range or by a sort over a large one."""

from __future__ import annotations

import numpy as np
import pytest

from safepool.query.cell_numbers import by_cell, distinct_numbers, places_among


@pytest.mark.parametrize("pairs", [50, 1 << 20])
def test_pairs_sharing_someone_are_placed_as_a_sort_places_them(pairs):
    """The pairs found in the entries and each entry's place among them, by a table over a small
    grid of pairs or by a sort over a large one, are those `np.unique` gives."""
    key = np.random.default_rng(pairs).integers(0, min(pairs, 40), 500) * (pairs // 40 or 1)
    pair = distinct_numbers(key)
    place = places_among(key, pair)
    expected_pair, expected_place = np.unique(key, return_inverse=True)
    assert pair.tolist() == expected_pair.tolist()
    assert place.tolist() == expected_place.tolist()
    assert distinct_numbers(np.empty(0, dtype=np.int64)).tolist() == []


@pytest.mark.parametrize("low, span", [(0, 40), (-7, 40), (1_000_000, 3_000), (0, 1 << 40)],
                         ids=["few cells", "below zero", "high numbers", "a wide range"])
def test_rows_are_put_in_the_stable_order_of_their_cells(low, span):
    """The order of rows by cell number is the stable sort's, whether the numbers are counted as
    16-bit ones (a span under 2**15, wherever it starts) or sorted as they are."""
    cell = low + np.random.default_rng(span).integers(0, span, 2_000)
    assert by_cell(cell).tolist() == np.argsort(cell, kind="stable").tolist()
    assert by_cell(np.empty(0, dtype=np.int64)).tolist() == []
