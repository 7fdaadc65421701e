"""Row orders fixed by the data: a stable sort on many columns, done as a sort on a few.

np.lexsort (and pandas' sort_values) make one pass over the rows per key; the study sorts
hundreds of thousands of units on some thirty columns, most of them 0/1 or small counts. Each
key is first turned into order-preserving integer codes (equal values share a code; missing
values come last), and consecutive codes are packed into one int64 key while their bits fit;
when the next would not fit, the key is replaced by its rank among its distinct values, which
keeps the order in fewer bits. One sort of the final key, the row number as its last part,
gives exactly the permutation np.lexsort gives on the columns themselves (stable: rows equal
on every key keep their order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KEY_BITS = 62  # bits of one packed key (int64, sign bit left alone)


def order_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0.. in the order of the values (NaN last, -0.0 as 0.0), and how many codes
    there may be: the values less their minimum when they are whole numbers of a small range
    (no sort needed), else their ranks among the distinct values."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        values = values.view(np.uint8)
    if values.size == 0:
        return np.zeros(0, dtype=np.int64), 1
    if values.dtype.kind in "iu" or (values.dtype.kind == "f" and np.array_equal(values, np.rint(values))):
        low, high = values.min(), values.max()
        if float(high) - float(low) < values.size:
            return (values - low).astype(np.int64), int(high - low) + 1
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).ravel(), distinct.size


def lexicographic_order(keys: Sequence[np.ndarray]) -> np.ndarray:
    """The stable order of the rows by keys[0], then keys[1], ... (np.lexsort(keys[::-1]))."""
    rows = len(keys[0]) if len(keys) else 0
    packed, bits = np.zeros(rows, dtype=np.int64), 0
    for key in keys:
        codes, count = order_codes(key)
        width = max(int(count - 1).bit_length(), 1)
        if bits + width > KEY_BITS:
            packed, bits = _ranked(packed)
        packed = (packed << width) | codes
        bits += width
    index_bits = max(int(rows - 1).bit_length(), 1)
    if bits + index_bits > KEY_BITS:
        packed, bits = _ranked(packed)
    # the row number breaks every tie: the keys are then distinct, and any sort of them is the stable one
    return np.argsort((packed << index_bits) | np.arange(rows, dtype=np.int64))


def _ranked(packed: np.ndarray) -> tuple[np.ndarray, int]:
    """The packed key as its rank among its distinct values (same order, fewer bits), and the bits it needs."""
    distinct, ranks = np.unique(packed, return_inverse=True)
    return ranks.astype(np.int64).ravel(), max(int(distinct.size - 1).bit_length(), 1)


def frame_order(frame: pd.DataFrame, by: Sequence[str]) -> np.ndarray:
    """The stable order of the frame's rows by the columns `by`, missing values last: the order
    frame.sort_values(by, kind="stable", na_position="last") puts them in (text in code-point order)."""
    keys = []
    for column in by:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            keys.append(series.to_numpy(dtype="float64", na_value=np.nan))
        else:
            codes, levels = pd.factorize(series, sort=True)
            keys.append(np.where(codes < 0, len(levels), codes))
    return lexicographic_order(keys)
