"""The packed sort gives exactly the order of np.lexsort and of pandas' stable sort_values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from safepool.study.ordering import frame_order, lexicographic_order, order_codes


def random_keys(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Keys of every kind the study sorts on: cells, 0/1, small counts with NaN and -0.0,
    wide integers, continuous values with ties."""
    return [rng.integers(-3, 3, n), rng.random(n) < 0.5,
            np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 4, n) * 0.5),
            np.where(rng.random(n) < 0.2, -0.0, rng.integers(0, 3, n).astype(float)),
            rng.integers(0, 2**40, n), rng.normal(size=n).round(1), rng.integers(0, 2**62, n),
            rng.integers(0, 5, n).astype(float)]


@pytest.mark.parametrize("seed", range(20))
def test_lexicographic_order_is_lexsort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = random_keys(rng, int(rng.integers(0, 400)))
    assert np.array_equal(lexicographic_order(keys), np.lexsort(keys[::-1]))


def test_many_wide_keys_are_ranked_and_still_exact() -> None:
    rng = np.random.default_rng(1)
    keys = [rng.integers(0, 1000, 5000) for _ in range(12)] + [rng.random(5000) for _ in range(4)]
    assert np.array_equal(lexicographic_order(keys), np.lexsort(keys[::-1]))


def test_codes_keep_the_order_of_the_values() -> None:
    codes, count = order_codes(np.array([2.0, -0.0, 0.0, np.nan, 1.5, 2.0]))
    assert codes.tolist() == [2, 0, 0, 3, 1, 2] and count == 4
    codes, count = order_codes(np.array([7, 3, 5, 3, 3, 3]))
    assert codes.tolist() == [4, 0, 2, 0, 0, 0] and count == 5  # whole numbers of a small range: no sort
    codes, count = order_codes(np.array([700, 3, 5]))
    assert codes.tolist() == [2, 0, 1] and count == 3  # a wide range: ranks


@pytest.mark.parametrize("seed", range(5))
def test_frame_order_is_stable_sort_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    frame = pd.DataFrame({
        "t": rng.integers(0, 3, n),
        "label": pd.array(rng.choice(["b", "a", "ä", "B", None], n), dtype="str"),
        "entry": pd.array(np.where(rng.random(n) < 0.5, None, rng.integers(0, 4, n)), dtype="Int64"),
        "flag": rng.integers(0, 2, n).astype("uint8"),
        "x": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 3, n) / 3),
        "name": rng.integers(0, 10**6, n).astype(str),  # never a key: stands for the pseudonym
    })
    by = ["t", "label", "entry", "flag", "x"]
    expected = frame.sort_values(by, kind="stable", na_position="last")
    assert frame.index[frame_order(frame, by)].tolist() == expected.index.tolist()
