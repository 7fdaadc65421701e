"""Which sums the group audit may take by their memberships: cells whose persons contribute alike.

The group audit (`safepool.query.group_audit`) finds a group of fewer persons than the minimum
frequency that a combination of cells' memberships pins down. For counts that is what the
values say. For sums it is so only when each person contributes the same amount to every cell
of the combination: then a cell's row in the algebra is v * (its membership) for one vector v of
the persons' amounts, and a combination of memberships that is one on a group G tells the sum of
v over G; a combination that is zero is one whose values cancel, an empty difference, which the
rank check (`safepool.query.empty_differences`) finds. Three sums of children over all women
speaking a language, those born before 1955 and those born later outside one district so tell
the children of the four women left, and an empty group is hidden as a group of four is.

Sums of different amounts are not set against each other here: the memberships of a count and of
a sum over nearly the same persons pin down a group whose values tell nothing, and had such a
group been hidden, the same cells over exactly the same persons (no empty difference of values)
would have been shown, so the hiding would tell the two apart.

Cells that share persons are compared person by person (`compared`): consistent when every shared
person contributes the same to both, else in conflict. A set of cells audited together (`family`)
holds no two in conflict, and grows from an incoming cell along consistent overlaps (cells that
share no one add nothing to a combination's support). A group that needs cells in conflict, or a
person's two different amounts in one combination, is left to the all-answers audit, which
checks single persons.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import numpy as np
from scipy import sparse

from safepool.query.audit_algebra import products

_SAME = 1e-9  # squared differences below this share of the squared amounts compared are rounding


def compared(new: sparse.csr_matrix, every: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """For each new cell (rows of `new`) and each cell of `every` (rows: their contributions per
    person; a stored zero is a member who contributes nothing): whether they share persons who all
    contribute the same to both (consistent), and whether they share a person who does not
    (in conflict). Sum over shared persons of (a - b)^2 = sum b^2 + sum a^2 - 2 sum ab."""
    member_new, member_every = _members(new), _members(every)
    squared_new, squared_every = new.multiply(new).tocsr(), every.multiply(every).tocsr()
    shared = products(member_new, member_every)
    scale = products(member_new, squared_every) + products(squared_new, member_every)
    difference = scale - 2.0 * products(new, every)
    conflicting = (shared > 0) & (difference > _SAME * scale)
    return (shared > 0) & ~conflicting, conflicting


def _members(rows: sparse.csr_matrix) -> sparse.csr_matrix:
    """The same matrix with one for every stored entry (members contributing zero included)."""
    return sparse.csr_matrix((np.ones(len(rows.data)), rows.indices, rows.indptr), shape=rows.shape)


def family(start: int, consistent: Mapping[int, Set[int]], conflicting: Mapping[int, Set[int]]) -> frozenset[int]:
    """The cells audited with `start`: grown from it along consistent overlaps, in the order of the
    cells' numbers, each taken when it is in conflict with none taken before."""
    taken = {start}
    waiting = sorted(consistent.get(start, ()))
    while waiting:
        cell = waiting.pop(0)
        if cell in taken or conflicting.get(cell, set()) & taken:
            continue
        taken.add(cell)
        waiting = sorted(set(waiting) | (set(consistent.get(cell, ())) - taken))
    return frozenset(taken)
