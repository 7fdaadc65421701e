"""The group audit finds every group of fewer persons than the minimum frequency that a set
difference of answers pins down, and flags nothing about which no such combination tells.

Brute force over small generated answers (cells as memberships of 6 to 14 persons): every union
of groups of persons in the same cells, of fewer than the minimum frequency in all, and every
sign of its groups. A combination that weighs its persons alike (one or minus one) must be found;
whatever is found must have some combination that tells of fewer persons than the minimum
frequency alone (leaving them out lowers the rank).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from safepool.query import group_audit

MIN_FREQUENCY = 5


def groups_of(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each group's memberships (cell, group) from one person of it, and each person's group."""
    patterns, group = np.unique(cells.T, axis=0, return_inverse=True)
    cell, member = np.nonzero(patterns.T)
    return cell, member, group


def sizes_of(group: np.ndarray, owner: np.ndarray | None) -> np.ndarray:
    """The persons of each group; `owner`: the person of each member (each its own without)."""
    return np.bincount(group) if owner is None else group_audit.group_persons(group, owner, int(group.max()) + 1)


def audited(cells: np.ndarray, owner: np.ndarray | None = None) -> int:
    cell, member, group = groups_of(cells)
    return group_audit.pinned(cell, member, sizes_of(group, owner), MIN_FREQUENCY)


def small_unions(cells: np.ndarray, owner: np.ndarray | None = None):
    """Unions of small groups of fewer than MIN_FREQUENCY persons (as a mask over members and their groups)."""
    _, _, group = groups_of(cells)
    sizes = sizes_of(group, owner)
    small = [g for g in range(len(sizes)) if sizes[g] < MIN_FREQUENCY and cells[:, group == g].any()]
    for held in range(1, MIN_FREQUENCY):
        for chosen in itertools.combinations(small, held):
            if sizes[list(chosen)].sum() < MIN_FREQUENCY:
                yield np.isin(group, chosen), chosen, group


def a_signed_group_follows(cells: np.ndarray, owner: np.ndarray | None = None) -> bool:
    for inside, chosen, group in small_unions(cells, owner):
        for signs in itertools.product([1.0, -1.0], repeat=len(chosen) - 1):
            target = np.zeros(cells.shape[1])
            for g, sign in zip(chosen, (1.0, *signs)):
                target[group == g] = sign
            if np.abs(np.linalg.lstsq(cells.T, target, rcond=None)[0] @ cells - target).max() < 1e-6:
                return True
    return False


def something_of_few_follows(cells: np.ndarray, owner: np.ndarray | None = None) -> bool:
    return any(np.linalg.matrix_rank(cells) > np.linalg.matrix_rank(cells[:, ~inside])
               for inside, _, _ in small_unions(cells, owner))


@pytest.mark.parametrize("seed", range(4))
def test_every_signed_group_is_found_and_nothing_else(seed):
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(300):
        persons, cells = int(rng.integers(6, 15)), int(rng.integers(2, 7))
        memberships = (rng.random((cells, persons)) < rng.uniform(0.2, 0.8)).astype(float)
        memberships = memberships[memberships.any(axis=1)]
        if not len(memberships):
            continue
        pinned = audited(memberships)
        if a_signed_group_follows(memberships):
            assert pinned > 0
        if pinned:
            assert something_of_few_follows(memberships)
        found.append(pinned > 0)
    assert any(found) and not all(found)


@pytest.mark.parametrize("seed", range(3))
def test_a_person_of_several_members_counts_once_in_a_group(seed):
    """Members that are parts of persons (a study's control matched in two sets at other times has
    two values, or its rows in two quarters): the same brute force, each group counted in persons.
    A union of groups of five members of four persons is found; whatever is found tells of fewer
    persons than the minimum frequency."""
    rng = np.random.default_rng(100 + seed)
    found, beyond_members = [], []
    for _ in range(200):
        members, cells = int(rng.integers(6, 13)), int(rng.integers(2, 6))
        owner = np.arange(members)
        twice = rng.choice(members, size=int(rng.integers(2, 5)), replace=False)
        owner[twice[1:]] = owner[twice[0]]  # one person of two to four members
        memberships = (rng.random((cells, members)) < rng.uniform(0.2, 0.8)).astype(float)
        memberships = memberships[memberships.any(axis=1)]
        if not len(memberships):
            continue
        pinned = audited(memberships, owner)
        if a_signed_group_follows(memberships, owner):
            assert pinned > 0
            beyond_members.append(not a_signed_group_follows(memberships))
        if pinned:
            assert something_of_few_follows(memberships, owner)
        found.append(pinned > 0)
    assert any(found) and not all(found)
    assert any(beyond_members)  # some are found only because members are counted as persons


def test_five_members_of_four_persons_in_one_group_are_a_group_of_four():
    """Two cells that differ by five members, two of them one person's: found; five persons: not."""
    cells = np.array([[1.0] * 15, [1.0] * 10 + [0.0] * 5])
    owner = np.arange(15)
    assert audited(cells, owner) == 0
    owner[11] = owner[10]
    assert audited(cells, owner) > 0


def test_three_answers_pin_down_four_women_however_another_answer_splits_them():
    """The review's route: K, K born before 1955, K born later outside district 5 leave the four of
    district 5; a table by year of birth puts each of them in another cell."""
    rng = np.random.default_rng(1)
    persons = 400
    early = rng.random(persons) < 0.1
    district5 = np.zeros(persons, dtype=bool)
    district5[np.flatnonzero(~early)[:4]] = True
    year = np.where(district5, np.arange(persons) % 4, rng.integers(0, 4, persons))
    everyone = np.ones(persons)
    cells = [everyone, early.astype(float), (~early & ~district5).astype(float)]
    assert audited(np.array(cells)) > 0
    by_year = [(year == y).astype(float) for y in range(4)]
    assert audited(np.array(by_year + cells)) > 0
    assert audited(np.array(by_year + cells[:2])) == 0  # without the third answer: nothing of them


def test_cells_of_many_persons_that_differ_by_many_pin_down_nothing():
    rng = np.random.default_rng(2)
    persons = 2000
    sex, band, district = rng.integers(0, 2, persons), rng.integers(0, 8, persons), rng.integers(0, 20, persons)
    cells = [np.ones(persons)] + [(sex == s).astype(float) for s in range(2)] \
        + [((sex == s) & (band == b)).astype(float) for s in range(2) for b in range(8)] \
        + [(district == d).astype(float) for d in range(20)] \
        + [((district == d) & (band < 4)).astype(float) for d in range(20)]
    assert audited(np.array(cells)) == 0


def test_every_cell_is_audited_whatever_the_hash_of_its_persons():
    """The third cell holds two persons; its hash was once the first cell's (groups 2, 3, 4, 5 and
    groups 3, 5 of two members each, the hashes of a cell's number of members and of its members
    made alike), and it was dropped as a repeat of the first."""
    cells = np.array([[1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1], [1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1],
                      [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]], dtype=float)
    assert a_signed_group_follows(cells)
    assert audited(cells) > 0


def test_an_audit_asked_again_is_remembered_by_every_input_it_was_found_of(monkeypatch):
    """A check's search asks the same group audits again and again, so their dimensions are
    remembered; by a digest of every input, so that an input differing in any of them (here the
    groups' sizes, or the minimum frequency) is audited afresh, never answered from another."""
    cell, group = np.array([0, 1, 1]), np.array([0, 0, 1])  # a cell of group 0 and one of groups 0 and 1
    found = []
    monkeypatch.setattr(group_audit, "_dimension", lambda *args: found.append(args) or 7)
    monkeypatch.setattr(group_audit, "_FOUND", group_audit._Remembered(4))
    assert group_audit.pinned(cell, group, np.array([2, 3]), 5) == 7
    assert group_audit.pinned(cell.copy(), group.copy(), np.array([2, 3]), 5) == 7 and len(found) == 1
    assert group_audit.pinned(cell, group, np.array([2, 30]), 5) == 7 and len(found) == 2
    assert group_audit.pinned(cell, group, np.array([2, 3]), 6) == 7 and len(found) == 3
    assert group_audit.pinned(group, cell, np.array([2, 3]), 5) == 7 and len(found) == 4  # cells and groups swapped
    for size in range(5):  # four kept, the least recently used forgotten
        group_audit.pinned(cell, group, np.array([2, 100 + size]), 5)
    group_audit.pinned(cell, group, np.array([2, 3]), 5)
    assert len(found) == 10
