"""The cells of an answer: each combination of group codes the model allows (the grid), its labels,
and which cell each row of the pool's per-person sums falls in.

The labels come from the code lists, bins and date parts alone, never from a row of the pool, so
the same grid always gets the same labels: they are made by the engine once per process for each
statement that makes them (3-6 ms of a question's first ask, for a few dozen cells) and kept,
read-only, by the statement's text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from safepool.query.budget import Budget
from safepool.query.compile import Compiler
from safepool.query.model import refuse

_LOOKUP_CELLS = 1 << 22  # codes of key combinations looked up in a table up to this many (32 MB)
_KEPT = 64  # grids whose labels a process keeps
_kept: OrderedDict[str, tuple[pd.DataFrame, np.ndarray]] = OrderedDict()
_lock = threading.Lock()  # queries may run in several threads of a process


def numbered(budget: Budget, step: str, compiler: Compiler, grid: np.ndarray, keys: list[np.ndarray], rows: int
             ) -> tuple[pd.DataFrame, np.ndarray]:
    """The labels of each cell of the grid, the cells numbered in the order of their labels, and
    each of the `rows` rows' cell (`keys`: the rows' group codes)."""
    if compiler.keys and len(grid):
        listed = ", ".join("(" + ", ".join(str(int(k)) for k in combo) + ")" for combo in grid)
        labels, number = _labelled(budget, step, f"SELECT {', '.join(compiler.labels())} FROM (VALUES {listed}) "
                                                 f"AS v({', '.join(compiler.keys)})")
    else:
        labels = pd.DataFrame({f"g{i}": pd.Series(dtype=object) for i in range(len(keys))}, index=range(len(grid)))
        number = np.arange(len(grid), dtype=np.int64)
    return labels.copy(), number[in_grid(grid, keys, rows)]


def _labelled(budget: Budget, step: str, sql: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The labels `sql` makes, in their order, and each grid row's number in it (kept by `sql`)."""
    with _lock:
        kept = _kept.get(sql)
        if kept is not None:
            _kept.move_to_end(sql)
            return kept
    labels = budget.frame(step, sql)
    named = list(labels.itertuples(index=False, name=None))
    order = sorted(range(len(labels)), key=named.__getitem__)
    number = np.empty(len(labels), dtype=np.int64)
    number[order] = np.arange(len(labels))
    number.flags.writeable = False
    made = (labels.iloc[order].reset_index(drop=True), number)
    with _lock:
        _kept[sql] = made
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
    return made


def in_grid(grid: np.ndarray, keys: list[np.ndarray], rows: int) -> np.ndarray:
    """The row of the grid that each of the `rows` rows' keys are (every row's keys are a row of the
    grid: the pool leaves out rows of no cell, and the filters leave no other label possible)."""
    if not keys or rows == 0:
        return np.zeros(rows, dtype=np.int64)
    if len(grid) == 0:
        raise refuse("a row's group labels are outside the answer's cells")  # the model and the pool disagree
    lows = [min(int(grid[:, i].min()), int(key.min())) for i, key in enumerate(keys)]
    spans = [max(int(grid[:, i].max()), int(key.max())) - low + 1 for i, (key, low) in enumerate(zip(keys, lows))]

    def coded(columns: list[np.ndarray]) -> np.ndarray:
        code = np.zeros(len(columns[0]), dtype=np.int64)
        for column, low, span in zip(columns, lows, spans):
            code = code * span + (column - low)
        return code

    at, wanted = coded([grid[:, i] for i in range(grid.shape[1])]), coded(keys)
    if float(np.prod(spans, dtype=np.float64)) <= _LOOKUP_CELLS:  # a table of every code: one gather per row
        position = np.full(int(np.prod(spans)), -1, dtype=np.int64)
        position[at] = np.arange(len(at))
        found = position[wanted]
        inside = bool((found >= 0).all())
    else:
        order = np.argsort(at)
        found = np.minimum(np.searchsorted(at[order], wanted), len(at) - 1)
        inside = bool(np.array_equal(at[order][found], wanted))
        found = order[found]
    if not inside:
        raise refuse("a row's group labels are outside the answer's cells")  # the model and the pool disagree
    return found
