"""The synthesiser's fast stable order is numpy's stable argsort, ties and all."""

import numpy as np
import pytest

from safepool.synth._people import _categorical
from safepool.synth._sort import stable_order
from safepool.synth._time import any_per_year, cells


@pytest.mark.parametrize("low, high", [(0, 5), (-1_000_000, 1_000_000), (0, 2**62)])
def test_stable_order_is_a_stable_argsort(low, high):
    key = np.random.default_rng(1).integers(low, high, 50_000)  # many ties when the range is small
    assert np.array_equal(stable_order(key), np.argsort(key, kind="stable"))


def test_stable_order_of_nothing():
    assert stable_order(np.empty(0, dtype=np.int64)).size == 0


def test_cells_any_per_year_and_categorical_match_their_plain_numpy_forms():
    rng = np.random.default_rng(2)
    matrix = rng.integers(0, 9, (50, 64))
    mask = rng.random((50, 64)) < 0.3
    quarter, person = np.nonzero(mask.T)
    assert np.array_equal(cells(matrix, person, quarter), matrix[person, quarter])
    assert np.array_equal(any_per_year(mask), mask.reshape(50, 16, 4).any(axis=2))
    probs = rng.random((1_000, 5))
    u = np.random.default_rng(3).random(1_000) * np.cumsum(probs, axis=1)[:, -1]
    expected = np.minimum((np.cumsum(probs, axis=1) < u[:, None]).sum(axis=1), 4)
    assert np.array_equal(_categorical(np.random.default_rng(3), probs), expected)


def test_take_strings_equals_arrows_take_for_fixed_and_varying_widths():
    import pyarrow as pa

    from safepool.synth._hetu import take_strings

    index = np.random.default_rng(4).integers(0, 3, 100)
    for values in (pa.array(["010101-123A", "020202-456B", "030303-789C"]),  # one width: gathered as bytes
                   pa.array([" 010101-123A", "020202-456B", "x"]),  # widths differ: Arrow's take
                   pa.array(["aa", "bb", "cc", "dd"]).slice(1)):  # a slice: offsets do not start at 0
        assert take_strings(values, index).equals(values.take(pa.array(index)))
