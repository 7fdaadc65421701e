"""Arrays that grow at their end, query after query, without copying what they hold each time."""

from __future__ import annotations

import numpy as np


def appended(buffer: np.ndarray, kept: int, values: np.ndarray) -> np.ndarray:
    """The buffer (its first `kept` values in use) with `values` after them; when full, grown to
    twice what it holds, so that what it holds is copied about once in all, not on every query."""
    if len(buffer) < kept + len(values):
        grown = np.empty(max(2 * kept, kept + len(values)), dtype=buffer.dtype)
        grown[:kept] = buffer[:kept]
        buffer = grown
    buffer[kept:kept + len(values)] = values
    return buffer
