"""The synthesiser's fast gathers equal their plain numpy and Arrow forms."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

try:
    import safepool  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from safepool.synth._hetu import take_strings
from safepool.synth._time import cells_by_quarter, count_per_year


def test_take_strings_equals_arrow_take_with_a_few_other_widths():
    rng = np.random.default_rng(3)
    codes = [f"{i:06d}-{i % 1000:03d}X" for i in range(500)]
    values = pa.array(codes + [" 000001-001X", "000002-002X\t", "  000003-003X", "", "äö"])
    for sliced in (values, values.slice(7)):
        index = rng.integers(0, len(sliced), 20_000)
        index[rng.choice(index.size, 300, replace=False)] = rng.integers(len(sliced) - 5, len(sliced), 300)
        got = take_strings(sliced, index)
        got.validate(full=True)
        assert got.equals(sliced.take(pa.array(index)))


def test_take_strings_equals_arrow_take_for_uniform_and_mixed_labels():
    rng = np.random.default_rng(4)
    for labels in (["2019Q1", "2019Q2"], ["a", "bb", "ccc", "dddd"], ["11", "12", "22"]):
        values = pa.array(labels)
        index = rng.integers(0, len(labels), 5_000)
        assert take_strings(values, index).equals(values.take(pa.array(index)))


def test_cells_by_quarter_equals_nonzero_of_the_transpose():
    rng = np.random.default_rng(5)
    for shape in ((0, 8), (1, 8), (2_000, 64)):
        mask = rng.random(shape) < 0.4
        quarter, person = cells_by_quarter(mask)
        expected_quarter, expected_person = np.nonzero(mask.T)
        assert quarter.dtype == person.dtype == np.int32
        assert np.array_equal(quarter, expected_quarter) and np.array_equal(person, expected_person)


def test_count_per_year_equals_the_sum_over_each_years_quarters():
    rng = np.random.default_rng(6)
    quarterly = rng.random((3_000, 64)) < 0.5
    counted = count_per_year(quarterly)
    assert np.array_equal(counted, quarterly.reshape(3_000, 16, 4).sum(axis=2))
    assert np.array_equal(counted * 3.0, quarterly.reshape(3_000, 16, 4).sum(axis=2) * 3.0)
