"""Secondary suppression: complementary cells so that no suppressed cell can be worked out.

The table with its totals is laid out as a grid whose last row and column are the margins
(a one-way table is a single row ending in its total). Any change to the cells that keeps
every published number the same moves the suppressed cells together along a cycle: in a
two-way table a rectangle of four suppressed cells (the hypercube method), in a one-way
table a pair. For each primary cell we choose the cheapest rectangle (fewest new cells, then
the smallest values, avoiding totals) whose cells can move by at least the cell's required
protection without any count going below zero; the cell's feasible values then span at
least that width. If no rectangle reaches the target, the widest one is taken, and if no
rectangle can move at all the whole table is suppressed.

Along a cycle a margin moves against its cells (a row total rises with its cell), which is
what `sign` records: +1 for inner cells and the grand total, -1 for row and column totals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_MARGIN_PENALTY = 0.5  # a total costs one and a half cells: hiding it hides a whole row


@dataclass
class Grid:
    """The numbers secondary suppression works on; every array has the grid's shape."""

    values: np.ndarray      # the additive quantity (counts, sums, or persons behind means)
    sign: np.ndarray        # +1 inner cells and grand total, -1 row/column totals
    candidate: np.ndarray   # cells that exist and may be suppressed
    nonnegative: bool       # whether every value is known to be >= 0 (bounds the attacker)


def protect(grid: Grid, primary: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The suppression pattern: `primary` plus complementary cells protecting each primary cell.

    `targets` gives, per primary cell, the width its feasible interval should reach.
    """
    suppressed = primary & grid.candidate
    for i, j in zip(*np.nonzero(suppressed.copy())):
        cycles = _rectangles(grid, suppressed, i, j) if grid.values.shape[0] > 1 else _pairs(grid, suppressed, j)
        chosen = _choose(cycles, float(targets[i, j]))
        if chosen is None:
            return grid.candidate.copy()
        for cell in cycles.cells_of(chosen):
            suppressed[cell] = True
    return suppressed


@dataclass
class _Cycles:
    """Every cycle through one primary cell, indexed like the grid, with what each would cost."""

    valid: np.ndarray
    width: np.ndarray
    new_cells: np.ndarray
    new_values: np.ndarray
    cells_of: Callable[[tuple[int, int]], list[tuple[int, int]]]


def _choose(cycles: _Cycles, target: float) -> tuple[int, int] | None:
    """The cheapest cycle reaching `target`, else the widest that moves at all, else None."""
    valid, width = cycles.valid.ravel(), cycles.width.ravel()
    new_cells, new_values = cycles.new_cells.ravel(), cycles.new_values.ravel()
    enough = valid & (width >= target)
    if enough.any():
        best = np.lexsort((-width, new_values, new_cells, ~enough))[0]
    elif (valid & (width > 0)).any():
        best = np.lexsort((new_values, new_cells, -np.where(valid, width, -1.0)))[0]
    else:
        return None
    return np.unravel_index(best, cycles.valid.shape)


def _score(grid: Grid, valid: np.ndarray, corners: list[tuple], cells_of) -> _Cycles:
    """Width and cost of every cycle; a corner is (value, direction, newly suppressed, is a total).

    Moving the cycle one way lowers the corners whose direction is -1, the other way those
    whose direction is +1; each way stops when one of them reaches zero.
    """
    down = up = np.inf
    new_cells = new_values = 0.0
    for value, direction, new, total in corners:
        down = np.minimum(down, np.where(direction < 0, value, np.inf))
        up = np.minimum(up, np.where(direction > 0, value, np.inf))
        new_cells = new_cells + new * (1 + _MARGIN_PENALTY * total)
        new_values = new_values + new * np.abs(value)
    width = down + up if grid.nonnegative else np.inf
    shape = valid.shape
    return _Cycles(valid, np.broadcast_to(width, shape), np.broadcast_to(new_cells, shape),
                   np.broadcast_to(new_values, shape), cells_of)


def _rectangles(grid: Grid, suppressed: np.ndarray, i: int, j: int) -> _Cycles:
    """Every rectangle (i, j), (i, j2), (i2, j), (i2, j2), over all (i2, j2) at once."""
    rows, cols = grid.values.shape
    usable = grid.candidate | suppressed
    total = grid.sign < 0
    row, col = (slice(i, i + 1), slice(None)), (slice(None), slice(j, j + 1))
    valid = usable[row] & usable[col] & usable
    valid &= (np.arange(rows)[:, None] != i) & (np.arange(cols)[None, :] != j)
    corners = [
        (grid.values[i, j], grid.sign[i, j], False, False),
        (grid.values[row], -grid.sign[row], ~suppressed[row], total[row]),
        (grid.values[col], -grid.sign[col], ~suppressed[col], total[col]),
        (grid.values, grid.sign, ~suppressed, total),
    ]
    return _score(grid, valid, corners, lambda chosen: [(i, chosen[1]), (chosen[0], j), tuple(chosen)])


def _pairs(grid: Grid, suppressed: np.ndarray, j: int) -> _Cycles:
    """Every pair (0, j), (0, j2) of a one-way table, over all j2 at once."""
    valid = (grid.candidate | suppressed) & (np.arange(grid.values.shape[1])[None, :] != j)
    corners = [
        (grid.values[0, j], grid.sign[0, j], False, False),
        (grid.values, -grid.sign, ~suppressed, grid.sign < 0),
    ]
    return _score(grid, valid, corners, lambda chosen: [(0, chosen[1])])
