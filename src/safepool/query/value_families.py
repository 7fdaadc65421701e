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
would have been shown, so the hiding would tell the two apart. A count meets a family through a
study's row only (a cell of a family only, see `safepool.query.ledger_memory`): a share's row is a
count of its clients.

Cells that share persons are compared person by person (`compared`): consistent when every shared
person contributes the same to both, else in conflict. A set of cells audited together (`family`)
holds no two in conflict, and grows from an incoming cell along consistent overlaps (cells that
share no one add nothing to a combination's support). A group that needs cells in conflict, or a
person's two different amounts in one combination, is left to the all-answers audit, which
checks single persons.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Set

import numpy as np

from safepool.query.cell_numbers import distinct_numbers, places_among

_SAME = 1e-9  # squared differences below this share of the squared amounts compared are rounding
Entries = tuple[np.ndarray, np.ndarray, np.ndarray]  # row, person, contribution of each entry


def compared(every: Entries, new: Entries, rows: int, sampled: np.ndarray, asked: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """For each new cell and each of `rows` cells (the new ones last): whether they share persons
    who all contribute the same to both (consistent), and whether they share a person who does not
    (in conflict). `every` holds the entries of all of them (row, person, contribution; members
    contributing zero included), `new` the new cells' (numbered 0..); `sampled` marks some persons
    (which ones changes how much is compared, never what is found). Cells of different amounts
    that share many persons are in conflict at the sampled ones already; only the pairs that the
    sample does not find in conflict are compared over every shared person, so the exact work is
    that of few pairs, not of all. `asked` (new cells x rows), when given, marks the only pairs
    compared; the others are neither."""
    width = int(new[0].max()) + 1 if len(new[0]) else 0
    others = np.ones((width, rows), dtype=bool) if asked is None else asked.copy()
    others[np.arange(width), rows - width + np.arange(width)] = False  # a cell is not compared with itself
    in_sample = _within(every, sampled[every[1]]), _within(new, sampled[new[1]])
    conflicting = _differences(*in_sample, rows, width, others, len(sampled))[1]
    consistent, found = _differences(every, new, rows, width, others & ~conflicting, len(sampled))
    return consistent, conflicting | found


def _within(entries: Entries, chosen: np.ndarray) -> Entries:
    return entries[0][chosen], entries[1][chosen], entries[2][chosen]


def _differences(every: Entries, new: Entries, rows: int, width: int, asked: np.ndarray, persons: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """`compared` over the pairs (new cell, row) marked in `asked` (width x rows), exactly. The new
    entries are taken in layers (the first entry of each person, then the second, ...), each
    layer's cells compared at once with the entries of its persons: squared differences over the
    shared persons against their squared amounts."""
    row, person, value = every
    new_row, new_person, new_value = new
    entries_of = np.bincount(new_person, minlength=persons)
    wanted = asked.T.ravel()  # by row * width + new cell
    keep = (entries_of[person] > 0) & asked.any(axis=0)[row]
    row, person, value = row[keep], person[keep], value[keep]
    cell_of = np.full(persons, -1, dtype=np.int64)
    amount = np.zeros(persons)
    keys, ours, theirs = [], [], []
    for depth, layer in enumerate(_layers(new_row, new_person, persons)):
        if depth:  # only persons with more new entries than the layers before
            deeper = entries_of[person] > depth
            row, person, value = row[deeper], person[deeper], value[deeper]
        cell_of[new_person[layer]] = new_row[layer]
        amount[new_person[layer]] = new_value[layer]
        key = row * width + cell_of[person]
        taken = wanted[key]
        keys.append(key[taken])
        ours.append(value[taken])
        theirs.append(amount[person[taken]])
    # the pairs that share someone are added up at the end, over those pairs only (a layer's sums over
    # every pair, half a million in a study's check, took most of its time), placed by a table over
    # their numbers when those are few beside the entries (a sort of the entries was most of a
    # query's comparison of its sums)
    key = np.concatenate(keys)
    pair = distinct_numbers(key)
    of_pair = places_among(key, pair)
    mine, other = np.concatenate(ours), np.concatenate(theirs)
    difference = np.bincount(of_pair, weights=(mine - other) ** 2, minlength=len(pair))
    scale = np.bincount(of_pair, weights=mine ** 2 + other ** 2, minlength=len(pair))
    conflicting, consistent = np.zeros(rows * width, dtype=bool), np.zeros(rows * width, dtype=bool)
    differ = difference > _SAME * scale
    conflicting[pair[differ]] = True
    consistent[pair[~differ]] = True
    return consistent.reshape(rows, width).T, conflicting.reshape(rows, width).T


def _layers(row: np.ndarray, person: np.ndarray, persons: int) -> list[np.ndarray]:
    """The entries (in the order of their rows) split so that each person is in a layer once: the
    first entry of each person, the second, ...; one layer when every person is in one new cell,
    the common case. A person's rank is counted row by row."""
    bounds = np.searchsorted(row, np.arange(int(row.max(initial=-1)) + 2))
    seen = np.zeros(persons, dtype=np.int64)
    rank = np.empty(len(person), dtype=np.int64)
    for start, end in zip(bounds[:-1], bounds[1:]):
        rank[start:end] = seen[person[start:end]]
        seen[person[start:end]] += 1
    if not len(rank) or rank.max() == 0:
        return [np.arange(len(person))]
    by_rank = np.argsort(rank, kind="stable")
    edges = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))
    return [by_rank[edges[k]:edges[k + 1]] for k in range(len(edges) - 1)]


def family(start: int, relations_of: Callable[[int], tuple[Set[int], Set[int]]],
           left_out: Callable[[int], bool] = lambda cell: False, taken: Set[int] = frozenset()) -> frozenset[int]:
    """The cells audited with `start`: grown from it (and the cells `taken` already) along consistent
    overlaps, in the order of the cells' numbers, each taken when it is in conflict with none taken
    before and not `left_out`. `relations_of(cell)` gives a cell's consistent overlaps and conflicts
    with every other cell (asked only of the cells reached, so that what is worked out is the
    family's, not every pair's). `taken` must be a family as this grows it (`families` hands one
    over): every overlap of it outside it is left out or in conflict with it, and stays so, so the
    growth starts from `start`'s overlaps alone.

    The waiting cells are a heap (the smallest number next), and a cell turned away is never asked
    again: what turns it away (being left out, or a conflict with a cell taken) still holds as the
    family grows. (A sorted list made again at every step took most of a query's two minutes once
    a study's rows had joined its counts in thousands of families.)"""
    grown = {start, *taken}
    turned_away: set[int] = set()
    waiting = sorted(relations_of(start)[0] - grown) if taken else \
        sorted(set().union(*(relations_of(cell)[0] for cell in grown)) - grown)
    queued = set(waiting)
    while waiting:
        cell = heapq.heappop(waiting)
        queued.discard(cell)
        if left_out(cell):
            turned_away.add(cell)
            continue
        consistent, conflicting = relations_of(cell)
        if not conflicting.isdisjoint(grown):
            turned_away.add(cell)
            continue
        grown.add(cell)
        fresh = consistent - grown  # (set operations: a loop over each overlap took most of a search)
        fresh -= turned_away
        fresh -= queued
        for other in fresh:
            heapq.heappush(waiting, other)
        queued |= fresh
    return frozenset(grown)


def families(start: int, relations_of: Callable[[int], tuple[Set[int], Set[int]]],
             of_family_only: Callable[[int], bool]) -> set[frozenset[int]]:
    """The families audited with `start` when some cells are of a family only (a study's rows: at
    most one in a family, see `safepool.query.ledger.Ledger.check`): the family grown without them,
    and one more for each of them it reaches, grown on through it. Which one a family takes must
    not depend on the cells' numbers: queries over every client, one entry quarter each, share no
    one and meet only through a row, and an earlier study's row of other clients would otherwise
    take its place."""
    if of_family_only(start):
        return {family(start, relations_of, of_family_only)}
    base = family(start, relations_of, of_family_only)
    reached = sorted({cell for member in base for cell in relations_of(member)[0] if of_family_only(cell)})
    grown = {base}
    for row in reached:
        if not relations_of(row)[1] & base:
            grown.add(family(row, relations_of, of_family_only, base))
    return grown
