"""Secondary suppression: complementary cells so that no suppressed cell can be worked out.

The table with its totals is laid out as a grid whose last row and column are the totals (a
one-way table is a single row ending in its total). Any change to the hidden cells that keeps
every published number the same moves them together along a cycle: in a two-way table a
rectangle of four suppressed cells (the hypercube method), in a one-way table a pair. Along a
cycle a total moves against its cells' pattern, which `sign` records: +1 for inner cells and
the grand total, -1 for row and column totals.

For each primary cell we take the cheapest rectangle (fewest new cells, totals counting extra,
then the smallest values) along which the cell can move by at least its target, within
everything a reader knows about each corner: counts are never negative, and a cell marked as
failing the minimum frequency lies between 1 and the threshold less one. If no rectangle
reaches the target the widest that moves at all is taken; if none moves, the whole table is
suppressed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_TOTAL_PENALTY = 0.5  # a total costs one and a half cells: hiding it hides a whole row's sum

Index = tuple


@dataclass
class Grid:
    """The numbers secondary suppression works on; every array has the grid's shape."""

    values: np.ndarray     # the additive quantity (counts, sums, or persons behind means)
    sign: np.ndarray       # +1 inner cells and grand total, -1 row and column totals
    candidate: np.ndarray  # cells that exist and may be suppressed
    lower: np.ndarray      # least value a reader knows each cell can have (0 for counts)
    upper: np.ndarray      # greatest such value (inf unless a status bounds it)


def protect(grid: Grid, primary: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The suppression pattern: `primary` plus complementary cells protecting each primary cell.

    `targets` gives, per primary cell, how wide its feasible range should be.
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
    """The cheapest cycle reaching `target`, else the widest that moves, else None."""
    valid, width = cycles.valid.ravel(), cycles.width.ravel()
    if not valid.any():
        return None
    new_cells, new_values = cycles.new_cells.ravel(), cycles.new_values.ravel()
    enough = valid & (width >= target)
    if enough.any():
        best = np.lexsort((-width, new_values, new_cells, ~enough))[0]
    else:
        best = np.lexsort((new_values, new_cells, -np.where(valid, width, -1.0)))[0]
    return np.unravel_index(best, cycles.valid.shape)


def _score(grid: Grid, suppressed: np.ndarray, valid: np.ndarray, corners: list[tuple[Index, int]], cells_of) -> _Cycles:
    """Width and cost of every cycle. A corner is (index into the grid, +1 or -1 around the cycle).

    Moving the cycle one way raises some corners and lowers the others; it stops when one
    reaches what a reader knows to be its bound. The width is how far it goes both ways
    together; the first corner is the primary cell, which costs nothing.
    """
    forward = backward = np.inf
    new_cells = new_values = 0.0
    for n, (index, turn) in enumerate(corners):
        value = grid.values[index]
        rises = turn * grid.sign[index] > 0
        room_up, room_down = grid.upper[index] - value, value - grid.lower[index]
        forward = np.minimum(forward, np.where(rises, room_up, room_down))
        backward = np.minimum(backward, np.where(rises, room_down, room_up))
        if n:
            new = ~suppressed[index]
            new_cells = new_cells + new * (1 + _TOTAL_PENALTY * (grid.sign[index] < 0))
            new_values = new_values + new * np.abs(value)
    width = np.broadcast_to(forward + backward, valid.shape)
    return _Cycles(valid & (width > 0), width, np.broadcast_to(new_cells, valid.shape),
                   np.broadcast_to(new_values, valid.shape), cells_of)


def _rectangles(grid: Grid, suppressed: np.ndarray, i: int, j: int) -> _Cycles:
    """Every rectangle (i, j), (i, j2), (i2, j), (i2, j2), over all (i2, j2) at once."""
    rows, cols = grid.values.shape
    usable = grid.candidate | suppressed
    row, col, every = (slice(i, i + 1), slice(None)), (slice(None), slice(j, j + 1)), (slice(None), slice(None))
    valid = usable[row] & usable[col] & usable
    valid &= (np.arange(rows)[:, None] != i) & (np.arange(cols)[None, :] != j)
    corners = [((i, j), 1), (row, -1), (col, -1), (every, 1)]
    return _score(grid, suppressed, valid, corners, lambda chosen: [(i, chosen[1]), (chosen[0], j), tuple(chosen)])


def _pairs(grid: Grid, suppressed: np.ndarray, j: int) -> _Cycles:
    """Every pair (0, j), (0, j2) of a one-way table, over all j2 at once."""
    valid = (grid.candidate | suppressed) & (np.arange(grid.values.shape[1])[None, :] != j)
    corners = [((0, j), 1), ((slice(None), slice(None)), -1)]
    return _score(grid, suppressed, valid, corners, lambda chosen: [(0, chosen[1])])
