"""The query ledger's remembered cells, kept in memory between queries for the all-answers audit.

The differencing audit over all answers (`safepool.query.audit_algebra`) needs what every person
contributes to every remembered and incoming cell, and the persons compressed into classes of
proportional contributions. Read afresh, that is every remembered row on every query. Here it is
kept instead, and extended by the incoming cells only:

- a person's first value: the value in the lowest-numbered cell where the person's value is
  not zero (remembered cells keep their numbers and incoming ones are numbered after them, so it
  never changes once found); none while every value of the person is zero;
- the person's entries that count: every entry when there is no first value (the person counts
  by membership, weight 1), else the entries whose value is not zero, weighted by value / first
  value (rounded to `RATIO_DECIMALS`);
- an order-free hash of those (cell, weight) entries (the sum, wrapping at 2^64, of a 64-bit mix
  of each: NumPy adds at places several times faster than it xors there) and their number:
  persons with the same hash and number (mixed into one 64-bit key) form a class, as in the
  ledger's definition;
- the same of every cell the person has rows in, whatever the values (its presence): persons
  with the same presence form a membership group, for the group audit
  (`safepool.query.group_audit`), whose dimension over the remembered cells is kept too;
- each entry's contribution to the algebra (weight times first value, one by membership, zero for
  an entry that does not count), kept in the order of the cells: the rows of a sparse matrix of
  cells x persons as they are, appended to by each query;
- A A^T of the remembered cells, and random probes per person, drawn when first needed;
- for the comparison of an answer's cells with the remembered ones (`safepool.query.ledger_pairs`):
  each entry's value as the answer showed it, the rows of remembered sums of other cells (not
  entries of the algebra), and each remembered cell's size and definition, and the cells a sum
  kept as a definition adds up;
- which remembered sums (cells whose values are not all one value) share persons who contribute
  the same to both, and which share one who does not (`safepool.query.value_families`), with
  the positions of their entries: an incoming sum is compared with those only, and audited
  with the family it joins, with and without it, by the memberships of the persons whose value
  is not zero.

Cells of a family only (`family`: the sums a study's rows show, see `safepool.study.row_persons`)
are taken by the group audit of families of sums alone: their persons' amounts are kept for it
(`_family_entries`, read through `_amounts`), but they add nothing to the algebra (their contributions there are zero), to
the persons' patterns, first values and presence, or to the count audit, and two of them are never
in one family (they are sums of other quarters' values, which no consistent overlap makes the same
values). A person who is in such cells only has no first value and no entry that counts. Counts
meet them in families too (a share's row times its count is a count): once the ledger holds such
cells, a count is compared with them (never with sums or other counts, so a ledger without them
does no more work for a count).

A person whose values were all zero and who now gets a value that is not zero drops the zero
entries (they no longer count) and starts again from the incoming entries. The state is bound to
the ledger file's recorded state (permit, cells, rows, digest): it is used only for exactly that
state and is otherwise read again from the file. It lives in the process of the query, which has
the ledger open under its lock anyway; it is never written anywhere.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cache, partial

import numpy as np
import pandas as pd
from scipy import sparse

from safepool.query import empty_differences, group_audit, value_families
from safepool.query.audit_algebra import PROBES, Audit, Contributions, PersonClasses, audit, one_blas_thread
from safepool.query.deadline import AUDIT_STEP, time_left
from safepool.query.empty_differences import Identity
from safepool.query.growing import appended
from safepool.query.ledger_pairs import RememberedCells, RowBuffers
from safepool.query.person_table import PersonTable
from safepool.query.cell_numbers import distinct_numbers
from safepool.query.side_thread import SideThread

RATIO_DECIMALS = 9  # contributions in the same ratio to this many decimals are proportional
_KEPT = 2           # ledgers kept in memory per process (the most recently used)
_DISTINCT_KEPT = 2  # arrays of distinct persons whose look-up a memory keeps (4.8 MB each at 300,000)
_GRAM_CELLS = 2048  # A A^T is kept up to this many cells (32 MB), made afresh beyond
_SEED = 20261130
_SAMPLED = 16  # one person in this many (by a mix of the ledger key) is compared first for relations of sums
_PRESENT = np.nan  # the weight a cell's presence is hashed with: no entry's weight (those are numbers)
_GROUPED = ("counts", "counted rows")  # the kinds of remembered entries the group audit of counts takes
_GROUPS_HINT = 65_536  # slots the hash table of `_factorized` starts with

Key = tuple[str, int, int, str]  # permit, cells, rows, digest of the ledger file's state
Ranked = tuple[np.ndarray, np.ndarray]  # distinct persons, and each entry's rank among them
# consistent overlaps and conflicts by cell number (both ways), and the cells compared with every other
_Relations = tuple[dict[int, set[int]], dict[int, set[int]], set[int]]


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a 64-bit mix of each number (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def entry_hash(cell: np.ndarray, weight: np.ndarray | float) -> np.ndarray:
    """A 64-bit hash of each (cell, weight), `weight` one per entry or one for all; -0.0 and 0.0
    hash alike."""
    bits = (np.asarray(weight, dtype=np.float64) + 0.0).view(np.uint64)
    cell = np.asarray(cell, dtype=np.int64)
    if len(cell) > 1024 and int(cell.max()) - int(cell.min()) < len(cell) and (
            np.ndim(bits) == 0 or np.all(bits == bits[0])):
        # one weight for all (a count's entries, or a cell's presence): each cell number is hashed once
        low = int(cell.min())
        numbers = np.arange(low, int(cell.max()) + 1, dtype=np.int64)
        return _hashed(numbers, bits if np.ndim(bits) == 0 else bits[0])[cell - low]
    return _hashed(cell, bits)


def _hashed(cell: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """entry_hash of cell numbers (int64) and weights' bits (uint64), entry by entry."""
    with np.errstate(over="ignore"):
        return mix(mix(cell.view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)) ^ bits)


def _weights(value: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which entries count and their weights, for entries with the given values and their
    persons' first values (NaN: none). A weight of one (membership, or the first value itself:
    every entry of a count) needs no rounding, which is most of the time of the rest."""
    membership = np.isnan(first)
    counts = membership | (value != 0)
    weight = np.ones(len(value))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = value / first
        rounded = ~membership & (ratio != 1.0)
        if rounded.any():
            weight[rounded] = np.round(ratio[rounded], RATIO_DECIMALS) + 0.0
    return counts, weight


@dataclass
class _Extension:
    """The persons' state with some incoming entries added (not yet remembered)."""

    persons: np.ndarray   # uint64, every person, in the order first seen
    first: np.ndarray     # float64, NaN while all of a person's values are zero
    pattern: np.ndarray   # uint64, sum (wrapping) of the hashes of the entries that count
    count: np.ndarray     # int64, entries that count
    restarted: np.ndarray  # bool: the person's remembered entries no longer count (all were zero)
    index: np.ndarray     # int64, the person of each incoming entry
    counts: np.ndarray    # bool, whether each incoming entry counts
    contribution: np.ndarray  # float64, what each incoming entry contributes to the algebra
    in_family: np.ndarray  # bool, whether each incoming entry is of a cell of a family only
    owner: np.ndarray | None  # the incoming entries' owners it was made with, if any
    ranked: Ranked | None = None  # the entries' persons as ranks it was made with, if they were used
    # what the group audits and `add` take besides, filled in by `LedgerMemory._with_presence` (the algebra
    # needs none of it): each person's presence (uint64, the sum, wrapping, of the hashes of every entry's
    # cell) and entries (int64); the parts of persons, sorted (`LedgerMemory.parts`), the key of the person
    # each is a part of and the keys of the persons with parts (uint64); whether each entry's cell is a
    # count (`_alike`)
    presence: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    present: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    parts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    part_owner: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    owners: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    alike: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))


def _remembered(name: str) -> property:
    """The remembered entries' column `name`, without the buffers' room to grow."""
    return property(lambda memory: memory._entries[name][:memory._kept])


class LedgerMemory:
    """Remembered entries (cell, person, contribution) and each person's first value, pattern,
    count and probes."""

    def __init__(self, key: Key) -> None:
        self.key = key
        # remembered entries in the order of their cells: cell, person (index into persons) and what
        # the person contributes to the algebra (its value, or one by membership; zero for an entry
        # that does not count, which changes only when a person restarts); kept in buffers with room
        # to grow, so that remembering a query copies its own entries, not every remembered one
        self._entries = {"cell": np.empty(0, dtype=np.int64), "person": np.empty(0, dtype=np.int32),
                         "contribution": np.empty(0, dtype=np.float64), "value": np.empty(0, dtype=np.float64)}
        self._kept = 0
        # the rows of remembered sums of other cells (not in the entries: they add nothing to the
        # algebra), and each remembered cell's size, definition and the cells it adds up when it is
        # kept as those: what an incoming cell is compared with (`safepool.query.ledger_pairs`)
        self.sum_rows = RowBuffers()
        self.remembered = RememberedCells()
        # positions of the remembered entries of cells not all of one value ("sums") and of the others
        # ("counts", which the group audit takes), and of the rows of a family only that are counts
        # ("counted rows": the group audit takes them too, see `_count_rows`), in buffers with room to grow
        self._entries_of = {kind: np.empty(0, dtype=np.int64) for kind in ("sums", "counts", "counted rows")}
        self._kept_of = {"sums": 0, "counts": 0, "counted rows": 0}
        # the persons of the entries the group audit takes ("counts", "counted rows"), beside their
        # positions, and whether each person is in one: kept as entries come, so that an audit does
        # not gather them again from every remembered entry (a few million after ten questions of
        # 300,000 persons)
        self._persons_of = {kind: np.empty(0, dtype=np.int32) for kind in _GROUPED}
        self._in_count = np.zeros(0, dtype=bool)
        # positions of the remembered entries of cells of a family only, in order, and their amounts
        # (their contributions to the algebra are zero)
        self._family_entries = {"position": np.empty(0, dtype=np.int64), "amount": np.empty(0, dtype=np.float64)}
        self._families_kept = 0
        self.family = np.zeros(1, dtype=bool)  # per cell number: whether it is a cell of a family only
        self._incoming_family = np.empty(0, dtype=np.int64)  # the incoming cells of a family only, while audited
        self._incoming_numbers: set[int] = set()  # the same, as a set
        self.highest = 0  # the highest cell number remembered (sums included)
        self.persons = np.empty(0, dtype=np.uint64)
        self.first = np.empty(0, dtype=np.float64)
        self.pattern = np.empty(0, dtype=np.uint64)
        self.count = np.empty(0, dtype=np.int64)
        self.presence = np.empty(0, dtype=np.uint64)
        self.present = np.empty(0, dtype=np.int64)
        self.probes = np.empty((0, PROBES))  # random numbers per person for the audit, drawn when first needed
        # the members that are parts of a person (a study's control matched in two sets at other times
        # is its rows in two quarters, or its two baseline values, each a member) and the persons
        # that have parts, where they are members themselves, sorted; the ledger key of the person
        # of each; and the keys of the persons that have parts: the group audits count persons
        self.parts = np.empty(0, dtype=np.int64)
        self.part_owner = np.empty(0, dtype=np.uint64)
        self.owners = np.empty(0, dtype=np.uint64)
        self.withheld: set[Identity] = set()  # (definition, size, signature) of every cell withheld (never shown)
        self.withheld_rows = 0  # rows of the file's table of withheld cells
        self.fingerprint: tuple | None = None  # the ledger file as this process left it at this state
        self._table = PersonTable()  # where each of the persons is
        # arrays of distinct persons looked up (`_found_by_rank`): each with the index found for each
        # person (-1: not remembered) and the memory's number of persons when it was looked up
        self._distinct_found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._distinct_lock = threading.Lock()
        # A A^T over the remembered cells 1..highest (see `audit_algebra.audit`), while small enough,
        # and A z for the probes z (a person's probes never change once drawn), once the audit used them
        self.gram: np.ndarray | None = None
        self.shown: np.ndarray | None = None
        self.rank: int | None = None  # the rank of A A^T over the remembered cells, once an audit found it
        # the group audit's (minimum frequency, dimension) over the remembered cells, once found
        self.pinned: tuple[int, int] | None = None
        self.alike = np.zeros(1, dtype=bool)  # per cell number: whether its persons' values are all one value
        # among the other remembered cells (sums), those sharing persons who all contribute the same to
        # both, and those sharing a person who does not (`value_families`), by cell number both ways;
        # `related` the sums whose relations with every cell remembered before them were worked out (when
        # asked, or when the audit of their own question did): a relation is known once one of its two
        # cells is so, whichever came later
        self.consistent: dict[int, set[int]] = {}
        self.conflicting: dict[int, set[int]] = {}
        self.related: set[int] = set()
        # the group audit of families of remembered cells only, by (cells, minimum frequency): what the
        # incoming cells do not change (`_family_pinned`), kept until the memory takes a change
        self._families_pinned: dict[tuple[frozenset[int], int], int] = {}
        # the entries last audited, their extension and, once the audit is done, what it found and the
        # relations of its sums (`_related`)
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray, _Extension, Audit | None, _Relations | None] | None \
            = None

    cell = _remembered("cell")
    person = _remembered("person")
    contribution = _remembered("contribution")
    value = _remembered("value")  # as the answer showed it (the pairs compare values, not contributions)

    def _append(self, **columns: np.ndarray) -> None:
        """Add entries at the end of the buffers (`growing.appended`)."""
        added = len(next(iter(columns.values())))
        for name, values in columns.items():
            self._entries[name] = appended(self._entries[name], self._kept, values)
        self._kept += added

    @classmethod
    def of_rows(cls, key: Key, cell: np.ndarray, person: np.ndarray, value: np.ndarray,
                family: np.ndarray | None = None, owner: np.ndarray | None = None) -> LedgerMemory:
        memory = cls(key)
        memory.add(np.asarray(cell, dtype=np.int64), np.asarray(person, dtype=np.uint64),
                   np.asarray(value, dtype=np.float64), family=family, owner=owner)
        return memory

    def _amounts(self, positions: np.ndarray, contributions: np.ndarray) -> np.ndarray:
        """What the remembered entries at `positions` add to their cells' sums, for the group audit
        of families: their `contributions` (the algebra's), but a family-only cell's own amounts."""
        amounts = contributions[positions]
        if self._families_kept and len(positions):
            kept = self._family_entries["position"][:self._families_kept]
            at = np.minimum(np.searchsorted(kept, positions), self._families_kept - 1)
            hit = kept[at] == positions
            amounts[hit] = self._family_entries["amount"][at[hit]]
        return amounts

    def _positions(self, kind: str) -> np.ndarray:
        """The positions of the remembered entries of sums or of counts ("sums", "counts")."""
        return self._entries_of[kind][:self._kept_of[kind]]

    def _is_family(self, number: int) -> bool:
        """Whether a cell (remembered or incoming) is a cell of a family only."""
        return bool(self.family[number]) if number < len(self.family) else number in self._incoming_numbers

    # -- looking up persons -------------------------------------------------------------------

    def _lookup(self, person: np.ndarray, ranked: Ranked | None = None) -> np.ndarray:
        """Index of each person: remembered ones where they are (`PersonTable`, which takes the
        persons each remembered answer brings), the others after them in the order first seen.
        `ranked`: distinct persons and each entry's rank among them, when the caller has them; ranks
        that do not give the entries' persons are not used."""
        return self._indexed(person, _used_ranks(person, ranked))

    def _indexed(self, person: np.ndarray, ranked: Ranked | None) -> np.ndarray:
        """`_lookup` with ranks that give the persons (or none)."""
        distinct, rank = ranked if ranked is not None else (None, None)
        index = self._found_by_rank(distinct, rank) if ranked is not None else self._table.find(person)
        unknown = index < 0
        if unknown.any():  # numbered in the order first seen
            index[unknown] = len(self.persons) + (first_seen(rank[unknown], len(distinct)) if ranked is not None
                                                  else pd.factorize(person[unknown])[0])
        return index

    def _found_by_rank(self, distinct: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """`PersonTable.find` of entries given as ranks among distinct persons. The engine ranks a
        pool's persons among all of that pool's (`LedgerKeys.ordered`), one array for every question
        of the pool, so what was found for it is kept, and the persons a remembered answer brings
        are noted in it as the memory takes them (`_note_found`): a person is gathered by rank (1 ms
        against 7-12 ms at 300,000 persons), and looked up only when it came by other ranks, and then
        once, unless the memory has taken persons since (a person keeps its place)."""
        with self._distinct_lock:  # a search beside another thread's commit reads the same memory
            seen, found, looked = self._found_among(distinct)
            now = len(self.persons)  # noted per person looked up now (`looked`, -1: never)
            asked = np.zeros(len(seen), dtype=bool)
            asked[rank] = True
            stale = np.flatnonzero(asked & (found < 0) & (looked < now))
            found[stale] = self._table.find(seen[stale])
            looked[stale] = now
            return found[rank]

    def _found_among(self, distinct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The look-up kept for an array of distinct persons (made, and kept among the last few, if
        there is none): the array, each person's index (-1: not found) and the number of the
        memory's persons when it was looked up (-1: never). Under `_distinct_lock`."""
        kept = [entry for entry in self._distinct_found
                if entry[0] is distinct or (len(entry[0]) == len(distinct) and np.array_equal(entry[0], distinct))]
        entry = kept[0] if kept else (distinct if not distinct.flags.writeable else distinct.copy(),
                                      np.full(len(distinct), -1, dtype=np.int64),
                                      np.full(len(distinct), -1, dtype=np.int64))
        self._distinct_found = [*(other for other in self._distinct_found if other[0] is not entry[0]),
                                entry][-_DISTINCT_KEPT:]
        return entry

    def _note_found(self, ranked: Ranked, index: np.ndarray) -> None:
        """Note where the memory now holds the persons of entries given by rank (`_found_by_rank`)."""
        with self._distinct_lock:
            _, found, looked = self._found_among(ranked[0])
            found[ranked[1]] = index
            looked[ranked[1]] = len(self.persons)

    def known(self, person: np.ndarray) -> np.ndarray:
        """Index of each person the memory holds, -1 for one it does not."""
        return self._table.find(person)

    def rows_of(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """A remembered cell's persons (indices) and values: its entries, the rows kept for a sum of
        other cells, or, for a sum kept as the cells it adds up, theirs added up person by person."""
        members = self.remembered.members.get(number)
        if members is not None:
            parts = [self.rows_of(int(member)) for member in members]
            person, value = np.concatenate([p for p, _ in parts]), np.concatenate([v for _, v in parts])
            persons, at = np.unique(person, return_inverse=True)
            return persons, np.bincount(at, weights=value, minlength=len(persons))
        for cell, person, value in ((self.cell, self.person, self.value), self.sum_rows.columns()):
            low, high = np.searchsorted(cell, [number, number + 1])
            if high > low:
                return person[low:high].astype(np.int64), value[low:high]
        return np.empty(0, dtype=np.int64), np.empty(0)

    # -- adding entries -----------------------------------------------------------------------

    def extend(self, cell: np.ndarray, person: np.ndarray, value: np.ndarray,
               family: np.ndarray | None = None, owner: np.ndarray | None = None,
               ranked: Ranked | None = None) -> _Extension:
        """The persons' state with incoming entries (cells numbered above every remembered one); the
        entries of `family` (cells of a family only) are looked up, and count nowhere else. `owner`:
        the person each entry's member is part of (itself, when it is a person); `ranked`: see
        `_lookup`."""
        extension = self._extended(cell, person, value, family, owner, ranked)
        self._with_presence(extension, cell, person, value)
        return extension

    def _extended(self, cell: np.ndarray, person: np.ndarray, value: np.ndarray, family: np.ndarray | None,
                  owner: np.ndarray | None, ranked: Ranked | None) -> _Extension:
        """`extend` without what only the group audits and `add` take (`_with_presence`): the
        algebra begins on its thread while they are made."""
        ranked = _used_ranks(person, ranked)
        index = self._indexed(person, ranked)
        in_family = among(cell, family) if family is not None and len(family) else np.zeros(len(cell), dtype=bool)
        n_old = len(self.persons)
        total = int(index.max()) + 1 if len(index) else n_old
        total = max(total, n_old)
        persons = np.empty(total, dtype=np.uint64)
        persons[:n_old] = self.persons
        persons[index] = person
        first = np.full(total, np.nan)
        first[:n_old] = self.first
        pattern = np.zeros(total, dtype=np.uint64)
        pattern[:n_old] = self.pattern
        count = np.zeros(total, dtype=np.int64)
        count[:n_old] = self.count
        restarted = np.zeros(total, dtype=bool)
        # persons without a first value get the one of their lowest incoming cell where it is not zero
        first_of = first[index]  # each entry's person's first value
        lacking = (value != 0) & np.isnan(first_of)
        candidates = np.flatnonzero(lacking & ~in_family if in_family.any() else lacking)
        if len(candidates):
            lowest = np.full(total, np.iinfo(np.int64).max)
            np.minimum.at(lowest, index[candidates], cell[candidates])
            chosen = candidates[cell[candidates] == lowest[index[candidates]]]
            people = index[chosen]
            restarted[people] = people < n_old
            first[people] = value[chosen]
            pattern[people] = 0
            count[people] = 0
            first_of = first[index]
        counts, weight = _weights(value, first_of)
        if in_family.any():
            counts &= ~in_family
        taken = slice(None) if counts.all() else counts  # (no copies of the entries when all of them count)
        np.add.at(pattern, index[taken], entry_hash(cell[taken], weight[taken]))
        count += np.bincount(index[taken], minlength=total)
        contribution = _contributions(first, index, counts, weight)
        if in_family.any():
            contribution[in_family] = value[in_family]  # its own amount, for the families' audit only
        return _Extension(persons, first, pattern, count, restarted, index, counts, contribution, in_family, owner,
                          ranked)

    def _with_presence(self, extension: _Extension, cell: np.ndarray, person: np.ndarray, value: np.ndarray
                       ) -> None:
        """Fill in the persons' presence (every entry's cell but a family's), the parts of persons and
        which entries are of counts, for the group audits and `add`."""
        n_old, total, index = len(self.persons), len(extension.persons), extension.index
        held = ~extension.in_family if extension.in_family.any() else slice(None)  # (no copy of a query's entries)
        presence = np.zeros(total, dtype=np.uint64)
        presence[:n_old] = self.presence
        np.add.at(presence, index[held], entry_hash(cell[held], _PRESENT))
        present = np.zeros(total, dtype=np.int64)
        present[:n_old] = self.present
        present += np.bincount(index[held], minlength=total)
        extension.presence, extension.present = presence, present
        extension.parts, extension.part_owner, extension.owners = self._parts_with(
            index, person, extension.owner, extension.persons, n_old)
        extension.alike = _alike(cell, value)

    def _parts_with(self, index: np.ndarray, person: np.ndarray, owner: np.ndarray | None, persons: np.ndarray,
                    n_old: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The remembered parts, their owners and the owners' keys with those the incoming entries
        bring (`extend`): members that come with another owner, and every person (remembered or
        new) whose key is an owner's, so that a person and its parts count as one wherever they
        meet. Persons are looked up in full only when owners come that were not known (a study's
        check), the new persons of a query otherwise."""
        owners = self.owners
        added: list[tuple[np.ndarray, np.ndarray]] = []
        if owner is not None and len(owner):
            owner = np.asarray(owner, dtype=np.uint64)
            is_part = owner != person
            added.append((index[is_part], owner[is_part]))
            unknown = np.setdiff1d(owner[is_part], owners)
            if len(unknown):
                themselves = np.flatnonzero(np.isin(persons, unknown))
                added.append((themselves, persons[themselves]))
                owners = np.union1d(owners, unknown)
        if len(owners) and len(persons) > n_old:
            themselves = n_old + np.flatnonzero(np.isin(persons[n_old:], owners))
            added.append((themselves, persons[themselves]))
        if not any(len(at) for at, _ in added):
            return self.parts, self.part_owner, owners
        parts, first = np.unique(np.concatenate([self.parts, *(at for at, _ in added)]), return_index=True)
        return parts, np.concatenate([self.part_owner, *(keys for _, keys in added)])[first], owners

    def add(self, cell: np.ndarray, person: np.ndarray, value: np.ndarray, order: np.ndarray | None = None,
            sums: np.ndarray | None = None, family: np.ndarray | None = None, owner: np.ndarray | None = None) -> None:
        """Remember incoming entries (as the ledger file now holds them, in `order` when given, else
        in the order of their cells). The entries of `sums` (cells that are sums of other
        remembered cells) count in each person's pattern, but are not kept for the algebra; those
        of `family` (cells of a family only) are kept for the families' audit only; `owner`: the
        person each entry's member is part of (see `extend`)."""
        cell = np.asarray(cell, dtype=np.int64)
        person = np.asarray(person, dtype=np.uint64)
        value = np.asarray(value, dtype=np.float64)
        order = np.argsort(cell, kind="stable") if order is None else order
        last, self._last = self._last, None
        self._families_pinned = {}
        noted = None
        related = None
        if last is not None and all(len(a) == len(b) and np.array_equal(a, b)
                                    for a, b in zip(last[:3], (cell, person, value))) \
                and _same_owners(last[3].owner, owner):
            extension, noted, related = last[3], last[4], last[5]  # the audit was of exactly these entries
        else:
            extension = self.extend(cell, person, value, family, owner)
        in_family = among(cell, family) if family is not None and len(family) and len(cell) \
            else np.zeros(len(cell), dtype=bool)
        if len(cell):
            self.highest = max(self.highest, int(cell.max()))
        kept = noted is not None and len(noted.gram) == self.highest
        self.gram = noted.gram if kept and self.highest <= _GRAM_CELLS else None
        self.shown = noted.shown if kept else None
        self.rank = noted.rank if kept else None
        self.pinned = noted.pinned if noted is not None else None
        alike = np.zeros(self.highest + 1, dtype=bool)
        alike[:len(self.alike)] = self.alike
        in_alike = extension.alike & ~in_family
        alike[cell[in_alike]] = True
        self.alike = alike
        marked = np.zeros(self.highest + 1, dtype=bool)
        marked[:len(self.family)] = self.family
        marked[cell[in_family]] = True
        self.family = marked
        # the entries in the order of the file, gathered once (not at all when they come in it, as the
        # engine hands them over): cell, person (index), value, contribution, family, count (`alike`)
        in_place = _in_place(order)
        ordered = [column if in_place else column[order]
                   for column in (cell, extension.index, value, extension.contribution, in_family, extension.alike)]
        if sums is not None and len(sums):
            in_sums = among(ordered[0], sums)
            if in_sums.any():
                self.sum_rows.append(ordered[0][in_sums], ordered[1][in_sums], ordered[2][in_sums])
                ordered = [column[~in_sums] for column in ordered]
        ordered_cell, ordered_index, ordered_value, ordered_contribution, ordered_family, ordered_alike = ordered
        if extension.restarted.any():  # their remembered entries were all zero: they no longer count
            self.contribution[extension.restarted[self.person]] = 0.0
        if related is not None:  # else worked out when a family reaches them
            for ours, found in ((self.consistent, related[0]), (self.conflicting, related[1])):
                for one, others in found.items():
                    ours.setdefault(one, set()).update(others)
            self.related.update(related[2])
        first_position = self._kept
        self._append(cell=ordered_cell, person=ordered_index,
                     contribution=np.where(ordered_family, 0.0, ordered_contribution), value=ordered_value)
        if ordered_family.any():
            for name, values in (("position", first_position + np.flatnonzero(ordered_family)),
                                 ("amount", ordered_contribution[ordered_family])):
                self._family_entries[name] = appended(self._family_entries[name], self._families_kept, values)
            self._families_kept += int(ordered_family.sum())
        alike = self.alike[ordered_cell]
        counted_row = ordered_alike & ordered_family if ordered_family.any() \
            else ordered_family  # (no family: none, without the look at every value)
        in_count = np.zeros(len(extension.persons), dtype=bool)
        in_count[:len(self._in_count)] = self._in_count
        for kind, chosen in (("sums", ~alike), ("counts", alike), ("counted rows", counted_row)):
            positions = first_position + np.flatnonzero(chosen)
            if kind in _GROUPED:
                persons = self.person[first_position:][chosen]  # those just appended
                self._persons_of[kind] = appended(self._persons_of[kind], self._kept_of[kind], persons)
                in_count[persons] = True
            self._entries_of[kind] = appended(self._entries_of[kind], self._kept_of[kind], positions)
            self._kept_of[kind] += len(positions)
        self._in_count = in_count
        self._table.take(extension.persons, len(self.persons))
        self.persons, self.first = extension.persons, extension.first
        if extension.ranked is not None:
            self._note_found(extension.ranked, extension.index)
        self.pattern, self.count = extension.pattern, extension.count
        self.presence, self.present = extension.presence, extension.present
        self.parts, self.part_owner, self.owners = extension.parts, extension.part_owner, extension.owners
        if counted_row.any():
            self._count_rows(ordered_cell[counted_row], ordered_index[counted_row])

    def _count_rows(self, cell: np.ndarray, index: np.ndarray) -> None:
        """A study's rows that are counts (a share's arm at weight one: its clients with the value 1,
        or with 0) join the remembered counts in the group audit of every later query: their persons'
        presence counts them, and the group audit's dimension over the remembered cells is found
        again. They never take part as incoming cells (the study checks its own rows against each
        other, `safepool.study.row_persons`), so rows of one study that pin a group together are in
        that dimension before and after a query, and only what the query adds is found. Queries
        that share no one with the row meet it here: two open-ended counts whose difference is an
        entry quarter's clients (hidden) set against the row and the other quarters' counts."""
        self.presence, self.present = _present_in(self.presence, self.present, cell, index)
        self.pinned = None

    def _known(self, extension: _Extension) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The kept A A^T and A z without the remembered entries of persons who restart (they counted
        by membership, one in each of their cells, and no longer count)."""
        if not extension.restarted.any() or (self.gram is None and self.shown is None):
            return self.gram, self.shown
        gone = np.flatnonzero(extension.restarted[self.person] & (self.contribution != 0))
        members = sparse.csr_matrix((self.contribution[gone], (self.person[gone], self.cell[gone] - 1)),
                                    shape=(len(extension.persons), self.highest))
        return (None if self.gram is None else self.gram - (members.T @ members).toarray(),
                None if self.shown is None else self.shown - members.T @ self._probes(len(extension.persons)))

    # -- the audit ----------------------------------------------------------------------------

    def _probes(self, persons: int) -> np.ndarray:
        """The probes of the first `persons` persons: those drawn before, and new ones for the
        persons after them (from a seed and their position); they only rule classes out, so no
        answer depends on them. Kept for later audits (a person keeps its place)."""
        if len(self.probes) < persons:
            fresh = np.random.default_rng([_SEED, len(self.probes)])
            drawn = fresh.standard_normal((persons - len(self.probes), PROBES))
            self.probes = np.concatenate([self.probes, drawn])
        return self.probes[:persons]

    def audit(self, cell: np.ndarray, person: np.ndarray, value: np.ndarray, min_frequency: int,
              sums: np.ndarray | None = None, relations: np.ndarray | None = None,
              family: np.ndarray | None = None, owner: np.ndarray | None = None, ranked: Ranked | None = None
              ) -> Audit:
        """The all-answers audit (`audit_algebra.audit`) of the remembered and incoming entries (cells
        numbered above every remembered one). Incoming `sums` (sums of other incoming cells) count in
        the persons' patterns but add nothing to the row space, so their rows are left out. With
        `relations` (the relations the incoming cells' definitions imply, over their rows: see
        `empty_differences.implied_relations`), the cells are audited for empty differences too
        (with the same A A^T). A A^T and its rank are kept for `add` if it then remembers exactly
        these entries. Incoming `family` cells (of a family only) are taken by the group audit of
        families of sums alone; `owner`: the person each entry's member is part of (see `extend`);
        `ranked`: the entries' persons as ranks among distinct persons, when the caller has them.
        BLAS is held to one thread meanwhile, on both threads of the audit: the group audits'
        eigendecompositions (a few hundred cells) took two to five times as long
        with its second thread spinning against the algebra's thread and the work beside the process."""
        with one_blas_thread():
            return self._audited(cell, person, value, min_frequency, sums, relations, family, owner, ranked)

    def _audited(self, cell: np.ndarray, person: np.ndarray, value: np.ndarray, min_frequency: int,
                 sums: np.ndarray | None, relations: np.ndarray | None, family: np.ndarray | None,
                 owner: np.ndarray | None, ranked: Ranked | None) -> Audit:
        """`audit`, its BLAS held to one thread."""
        cell = np.asarray(cell, dtype=np.int64)
        value = np.asarray(value, dtype=np.float64)
        person = np.asarray(person, dtype=np.uint64)
        self._incoming_family = np.empty(0, dtype=np.int64) if family is None else np.asarray(family, dtype=np.int64)
        self._incoming_numbers = set(self._incoming_family.tolist())
        extension = self._extended(cell, person, value, self._incoming_family, owner, ranked)
        self._last = (cell, person, value, extension, None, None)
        old = self.contribution
        if extension.restarted.any():
            old = np.where(extension.restarted[self.person], 0.0, old)
        algebra = SideThread("ledger-algebra", partial(self._algebra, cell, extension, old, min_frequency, sums,
                                                       relations))
        try:
            self._with_presence(extension, cell, person, value)
            pinned, given, completing = self._groups_given_away(cell, extension, old, min_frequency, sums)
        except BaseException:
            algebra.join()
            raise
        found = replace(algebra.wait(), pinned=pinned, groups_given_away=given, completing=completing)
        self._last = (cell, person, value, extension, found, self._last[5])
        return found

    def _algebra(self, cell: np.ndarray, extension: _Extension, old: np.ndarray, min_frequency: int,
                 sums: np.ndarray | None, relations: np.ndarray | None) -> Audit:
        """The algebra of the all-answers audit (and, with `relations`, its empty differences) over the
        remembered entries (contributing `old`) and the incoming ones: on a thread of its own beside
        the group audits (`SideThread`), which touch neither the probes nor A A^T."""
        n = len(extension.persons)
        bounds = np.searchsorted(self.cell, np.arange(1, self.highest + 2))  # kept in the order of their cells
        remembered = sparse.csr_matrix((old, self.person, bounds), shape=(self.highest, n))
        taken: np.ndarray | slice = extension.counts.copy()
        if sums is not None and len(sums):
            taken &= ~among(cell, sums)
        taken = slice(None) if taken.all() else taken  # (every entry: none copied)
        incoming = _rows(cell[taken] - self.highest - 1, extension.index[taken], extension.contribution[taken],
                         (int(cell.max()) - self.highest if len(cell) else 0, n))
        found = audit(Contributions(remembered, incoming, *self._known(extension)), _classes(extension),
                      lambda: self._probes(n), min_frequency)
        if relations is not None:
            rank, empty = empty_differences.shortfall(found.gram, self.highest, relations[:, :incoming.shape[0]],
                                                      None if extension.restarted.any() else self.rank)
            found = replace(found, empty_differences=empty, rank=rank)
        return found

    def _groups_given_away(self, cell: np.ndarray, extension: _Extension, old: np.ndarray, min_frequency: int,
                           sums: np.ndarray | None) -> tuple[tuple[int, int], int, int | None]:
        """The group audit of the counts (its minimum frequency and dimension with the incoming cells),
        how much the incoming cells add to what it, the families of sums and a study's rows find, and
        the earliest incoming cell that completes a family or row found (see `Audit.completing`; the
        relations of the incoming sums are noted in `_last` for `add`). Only whether they add
        anything counts, so the rows, each a group audit of its own (most of a study's check),
        are audited only when the counts and the families add nothing."""
        uniform = extension.alike.copy()
        if sums is not None and len(sums):
            uniform &= ~among(cell, sums)
        if len(self._incoming_family):
            uniform &= ~among(cell, self._incoming_family)
        if self.pinned is None or self.pinned[0] != min_frequency:
            self.pinned = (min_frequency, self._pinned(self.presence, self.present, np.empty(0, dtype=np.int64),
                                                       np.empty(0, dtype=np.int64), min_frequency,
                                                       (self.parts, self.part_owner)))
        now = self._pinned(extension.presence, extension.present, cell[uniform], extension.index[uniform],
                           min_frequency, (extension.parts, extension.part_owner))
        summed = among(cell, sums) if sums is not None and len(sums) else np.zeros(len(cell), dtype=bool)
        kept = ~uniform & ~summed
        if self._families_kept or len(self._incoming_family):  # counts meet a study's rows in families too
            kept |= uniform
        related = self._related(cell[kept], extension.index[kept], extension.contribution[kept], extension.persons,
                                old, uniform[kept])
        self._last = (*self._last[:5], related)
        given, completing = self._families_given_away(cell, extension, kept, related, min_frequency)
        given += max(now - self.pinned[1], 0)
        if not given:
            given, completing = self._rows_given_away(cell, extension, uniform, min_frequency)
        return (min_frequency, now), given, completing

    def _rows_given_away(self, cell: np.ndarray, extension: _Extension, uniform: np.ndarray, min_frequency: int
                         ) -> tuple[int, int | None]:
        """How much the incoming rows that are counts (see `_count_rows`) add to the group audit of
        the counts, each row on its own (rows of one study are never set against each other here,
        as in the families): counts shown first, the row of the clients they leave one out of is
        found; and the first such row. All the rows are tried together first: what one row adds,
        all of them add too, so when all of them add nothing (the common case) no row needs a
        group audit of its own."""
        counted = extension.alike & among(cell, self._incoming_family) if len(self._incoming_family) \
            else np.zeros(len(cell), dtype=bool)
        if not counted.any():
            return 0, None
        adds = partial(self._row_adds, cell, extension, uniform, min_frequency=min_frequency)
        if not adds(counted):
            return 0, None
        added = {int(number): adds(counted & (cell == number)) for number in distinct_numbers(cell[counted])}
        return sum(added.values()), min((number for number, dimension in added.items() if dimension), default=None)

    def _row_adds(self, cell: np.ndarray, extension: _Extension, uniform: np.ndarray, row: np.ndarray,
                  min_frequency: int) -> int:
        """The dimension the entries of `row` add to the group audit of the counts (`uniform`), with
        the persons grouped by their presence in the row on both sides."""
        time_left(AUDIT_STEP)
        presence, present = _present_in(extension.presence, extension.present, cell[row], extension.index[row])
        with_row = uniform | row
        parts = (extension.parts, extension.part_owner)
        return max(self._pinned(presence, present, cell[with_row], extension.index[with_row], min_frequency, parts)
                   - self._pinned(presence, present, cell[uniform], extension.index[uniform], min_frequency, parts), 0)

    def _related(self, cell: np.ndarray, index: np.ndarray, contribution: np.ndarray, persons: np.ndarray,
                 remembered: np.ndarray, counting: np.ndarray) -> _Relations:
        """The consistent overlaps and conflicts (`value_families.compared`) of the given cells' entries
        (cell numbers, persons as indices into `persons`, every person so far, contributions, and
        whether the cell is a count, `counting`) with each other and with the other remembered cells,
        whose entries contribute `remembered` (as they stand with the incoming entries: a person who
        restarts no longer counts). Sums are compared with sums and a study's rows (cells of a family
        only); counts only with those rows, which are the one way a count meets sums in a family: a
        row's share of employed clients times its count is a count of them, which queries counting
        them one entry quarter at a time add up to (counts among themselves are the count audit's)."""
        new_numbers = distinct_numbers(cell)
        if not len(new_numbers):
            return {}, {}, set()
        theirs = np.zeros(len(persons), dtype=bool)
        theirs[index] = True
        new_counts = np.zeros(int(new_numbers[-1]) + 1, dtype=bool)
        new_counts[cell[counting]] = True
        new_counts = new_counts[new_numbers]
        new_family = np.array([self._is_family(int(n)) for n in new_numbers], dtype=bool)
        chosen = self._comparable(theirs, sums=not new_counts.all(), counts=bool(new_family.any()))
        chosen = chosen[~among(self.cell[chosen], new_numbers)]  # a remembered cell compared is one of the new
        old_cell = self.cell[chosen]
        old_numbers = distinct_numbers(old_cell)
        numbers = np.r_[old_numbers, new_numbers]
        new_row = np.searchsorted(new_numbers, cell)
        every = (np.r_[np.searchsorted(old_numbers, old_cell), len(old_numbers) + new_row],
                 np.r_[self.person[chosen], index], np.r_[self._amounts(chosen, remembered), contribution])
        row_family = np.r_[self.family[old_numbers], new_family]
        row_counts = np.r_[self.alike[old_numbers], new_counts]
        asked = np.where(new_counts[:, None], row_family[None, :],  # a count with a row only
                         new_family[:, None] | ~row_counts[None, :])  # a sum with sums and rows, a row with all
        found = value_families.compared(every, (new_row, index, contribution), len(numbers),
                                        mix(persons) % np.uint64(_SAMPLED) == 0, asked)
        relations: _Relations = ({}, {}, {int(number) for number in new_numbers})
        consistent, conflicting = found
        if row_family.any():  # two cells of a family only are never one family
            both = np.outer(new_family, row_family)
            consistent, conflicting = consistent & ~both, conflicting | (consistent & both)
        for related, matrix in zip(relations, (consistent, conflicting)):  # both ways, a row or column at once
            for row in np.flatnonzero(matrix.any(axis=1)):
                related.setdefault(int(new_numbers[row]), set()).update(numbers[matrix[row]].tolist())
            for column in np.flatnonzero(matrix.any(axis=0)):
                related.setdefault(int(numbers[column]), set()).update(new_numbers[matrix[:, column]].tolist())
            for number, others in related.items():  # (a cell is never compared with itself)
                others.discard(number)
        return relations

    def _comparable(self, theirs: np.ndarray, sums: bool, counts: bool) -> np.ndarray:
        """Positions of the remembered entries of the persons marked in `theirs` that `_related`
        compares: of sums and rows when `sums` (else of rows only), and of counts when `counts`."""
        if counts:
            return np.flatnonzero(theirs[self.person])
        positions = self._positions("sums") if sums else self._family_entries["position"][:self._families_kept]
        return positions[theirs[self.person[positions]]]

    def _relations_of(self, number: int, incoming: _Relations, persons: np.ndarray) -> tuple[set[int], set[int]]:
        """A cell's consistent overlaps and conflicts with every other (remembered or incoming):
        those of a remembered sum not yet worked out are worked out now and kept."""
        if number <= self.highest and number not in self.related:
            time_left(AUDIT_STEP)
            taken = slice(*np.searchsorted(self.cell, [number, number + 1]))
            # a person who restarts contributes alike to every remembered cell before and after, so
            # the relations of remembered cells are the same either way
            found = self._related(self.cell[taken], self.person[taken],
                                  self._amounts(np.arange(taken.start, taken.stop), self.contribution), persons,
                                  self.contribution, np.full(taken.stop - taken.start, self.alike[number]))
            for ours, more in zip((self.consistent, self.conflicting), found):
                for one, others in more.items():
                    ours.setdefault(one, set()).update(others)
            self.related.add(number)
        return (self.consistent.get(number, set()) | incoming[0].get(number, set()),
                self.conflicting.get(number, set()) | incoming[1].get(number, set()))

    def _families_given_away(self, cell: np.ndarray, extension: _Extension, kept: np.ndarray, related: _Relations,
                             min_frequency: int) -> tuple[int, int | None]:
        """How much the incoming sums (`kept`) add to what the group audit finds in the families of
        sums they join (`value_families.families`): each family audited with and without them; and
        the earliest incoming cell that completes a family that adds (its highest incoming cell)."""
        new_numbers = related[2]
        known: dict[int, tuple[int, tuple[set[int], set[int]]]] = {}

        def relations_of(number: int) -> tuple[set[int], set[int]]:
            """`_relations_of`, each cell's made once while no remembered cell is worked out (which
            may add to others' relations): the families of one audit walk the same cells again and
            again, a million times in a query after a study."""
            if number not in known or known[number][0] != len(self.related):
                found = self._relations_of(number, related, extension.persons)
                known[number] = (len(self.related), found)
            return known[number][1]

        is_family = cache(self._is_family)
        families = {grown for number in sorted(new_numbers)
                    for grown in value_families.families(number, relations_of, is_family)}
        given, completing = 0, None
        for cells in families:
            if len(cells) < 2:
                continue
            time_left(AUDIT_STEP)
            before = cells - new_numbers
            now = self._family_pinned(cells, cell, extension, kept, min_frequency)
            adds = max(now - (self._remembered_family_pinned(before, cell, extension, kept, min_frequency)
                              if len(before) > 1 else 0), 0)
            if adds:
                given += adds
                last = max(cells & new_numbers)
                completing = last if completing is None else min(completing, last)
        return given, completing

    def _remembered_family_pinned(self, cells: frozenset[int], cell: np.ndarray, extension: _Extension,
                                  kept: np.ndarray, min_frequency: int) -> int:
        """`_family_pinned` of remembered cells only, found once per state of the memory: it takes
        their entries whose amounts are not zero, of persons with a first value who do not restart
        (or of a family only), and a person with a first value keeps it whatever comes in (one
        without counts by membership, before and after a restart alike), so no incoming entry
        changes it. A check's audits (one per bisection step, several hundred where many cells of
        an answer are hidden) so share it."""
        key = (cells, min_frequency)
        if key not in self._families_pinned:
            self._families_pinned[key] = self._family_pinned(cells, cell, extension, kept, min_frequency)
        return self._families_pinned[key]

    def _family_pinned(self, cells: frozenset[int], cell: np.ndarray, extension: _Extension, kept: np.ndarray,
                       min_frequency: int) -> int:
        """The group audit of a family of cells (remembered ones and incoming ones chosen by `kept`)
        by the memberships of the persons whose value in them is not zero: one person of each set
        of persons in the same of these cells stands for it. A zero adds nothing to a family's
        sums, so the group a combination of them tells the sum of holds only the others. (With every
        member, two sums that differed by ten persons, nine of whom earned nothing, told the tenth's
        amount as a group of ten.) That a person's value is zero is guarded by the class audit, in
        which she counts by membership while all her values are zero."""
        numbers = np.array(sorted(cells), dtype=np.int64)
        old_numbers = numbers[numbers <= self.highest]
        starts = np.searchsorted(self.cell, old_numbers)
        ends = np.searchsorted(self.cell, old_numbers, side="right")
        taken = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)] or [np.empty(0, dtype=np.int64)])
        valued = ~np.isnan(extension.first)  # a person all of whose values are zero counts by membership
        of_family = self.family[self.cell[taken]]
        taken = taken[(self._amounts(taken, self.contribution) != 0)
                      & (of_family | (valued[self.person[taken]] & ~extension.restarted[self.person[taken]]))]
        incoming_family = among(cell, self._incoming_family) if len(self._incoming_family) \
            else np.zeros(len(cell), dtype=bool)
        incoming = kept & among(cell, numbers[numbers > self.highest]) & (extension.contribution != 0) \
            & (incoming_family | valued[extension.index])
        member_cell = np.r_[self.cell[taken], cell[incoming]]
        member = np.r_[self.person[taken], extension.index[incoming]]
        if not len(member):  # every value zero: no group
            return 0
        persons = len(extension.persons)
        # persons in the same cells add up the same codes in the same order (the entries come by cell)
        codes = np.bincount(member, weights=_cell_codes(member_cell), minlength=persons)
        held = np.bincount(member, minlength=persons)
        present = np.flatnonzero(held)
        of_person = np.full(persons, -1, dtype=np.int64)
        of_person[present] = _factorized(codes[present].view(np.uint64), held[present])
        group_persons = _group_persons(of_person[present], extension.parts, extension.part_owner, present)
        chosen = _standing(of_person[present], present, persons)[member]
        return group_audit.pinned(np.searchsorted(numbers, member_cell[chosen]), of_person[member[chosen]],
                                  group_persons, min_frequency)

    def _pinned(self, presence: np.ndarray, present: np.ndarray, cell: np.ndarray, index: np.ndarray,
                min_frequency: int, parts: tuple[np.ndarray, np.ndarray]) -> int:
        """The group audit (`group_audit.pinned`) of the remembered cells whose persons' values are
        all one value (see `_alike`) and the given entries (cells numbered above them, persons as
        indices), with the persons' presence and the `parts` of persons (with their owners): one
        person of each group of persons in the same cells stands for it. Only the persons in a count
        are grouped: those in none (a period's units, in sums only) are in groups of their own
        that no count holds, which add nothing to it, and grouping every person the ledger ever
        took in made each answer slower than the one before."""
        in_count = np.zeros(len(presence), dtype=bool)
        in_count[:len(self._in_count)] = self._in_count
        in_count[index] = True
        involved = np.flatnonzero(in_count)
        if not len(involved):
            return 0
        of_person = np.empty(len(presence), dtype=np.int64)  # set for the persons involved only
        of_group = of_person[involved] = _factorized(presence[involved], present[involved])
        standing = _standing(of_group, involved, len(presence))
        old = np.concatenate([self._positions(kind)[standing[self._persons_of[kind][:self._kept_of[kind]]]]
                              for kind in _GROUPED])
        new = standing[index]
        return group_audit.pinned(np.r_[self.cell[old], cell[new]] - 1, of_person[np.r_[self.person[old], index[new]]],
                                  _group_persons(of_group, *parts, involved), min_frequency)


def _group_persons(group: np.ndarray, parts: np.ndarray, part_owner: np.ndarray, member: np.ndarray | None = None
                   ) -> np.ndarray:
    """The persons in each group, from each member's group (members as person indices, each once;
    every person in order without `member`): the parts of a person and the person (`parts`,
    sorted, with their owners) count once in a group (`group_audit.group_persons`)."""
    groups = int(group.max()) + 1 if len(group) else 0
    every = np.bincount(group, minlength=groups)
    if not len(parts):
        return every
    if member is None:
        held, owner = group[parts], part_owner
    else:
        at = np.minimum(np.searchsorted(parts, member), len(parts) - 1)
        hit = parts[at] == member
        held, owner = group[hit], part_owner[at[hit]]
    return every - np.bincount(held, minlength=groups) + group_audit.group_persons(held, owner, groups)


def _in_place(order: np.ndarray) -> bool:
    """Whether an order leaves every entry where it is (0, 1, 2, ...)."""
    return not len(order) or (int(order[0]) == 0 and int(order[-1]) == len(order) - 1
                              and bool(np.all(order[1:] > order[:-1])))


def _same_owners(one: np.ndarray | None, other: np.ndarray | None) -> bool:
    """Whether two entries' owners (or their absence) are the same."""
    if one is None or other is None:
        return one is None and other is None
    return np.array_equal(one, other)


def _used_ranks(person: np.ndarray, ranked: Ranked | None) -> Ranked | None:
    """`ranked` (distinct persons, each entry's rank among them) when its ranks give the entries'
    persons, else None: ranks that do not are never used."""
    if ranked is None:
        return None
    distinct, rank = ranked
    if len(rank) != len(person) or not len(rank) or rank.max() >= len(distinct) \
            or not np.array_equal(distinct[rank], person):  # (whole and not below zero: `ranks_of`)
        return None
    return ranked


def first_seen(rank: np.ndarray, distinct: int) -> np.ndarray:
    """Each entry's number among the distinct persons of `rank` (ranks among `distinct` persons) in
    the order first seen: `pd.factorize`'s codes, found by the ranks rather than by hashing the
    keys (a ledger's first question, 299,100 new persons: 10 ms against 33-36 ms)."""
    count = len(rank)
    first = np.full(distinct, count, dtype=np.int64)
    np.minimum.at(first, rank, np.arange(count))
    is_first = first[rank] == np.arange(count)
    number = np.empty(distinct, dtype=np.int64)
    number[rank[is_first]] = np.arange(int(is_first.sum()))
    return number[rank]


def _present_in(presence: np.ndarray, present: np.ndarray, cell: np.ndarray, index: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The persons' presence and number of entries (new arrays) with the given entries (cell numbers,
    persons as indices) added: the grouping of the count audit with rows of a family only in it."""
    presence = presence.copy()
    np.add.at(presence, index, entry_hash(cell, _PRESENT))
    return presence, present + np.bincount(index, minlength=len(present))


def _standing(group: np.ndarray, person: np.ndarray, persons: int) -> np.ndarray:
    """Which of `persons` stand for their groups: the first of `person` in each `group` (numbered
    0..)."""
    first = np.empty(int(group.max()) + 1, dtype=np.int64)
    first[group[::-1]] = person[::-1]
    standing = np.zeros(persons, dtype=bool)
    standing[first] = True
    return standing


def _cell_codes(cell: np.ndarray) -> np.ndarray:
    """A number in [1, 2) per cell number, from its 64-bit hash: sums of them tell sets of cells
    apart (collisions as rare as the hash's)."""
    bits = entry_hash(cell, _PRESENT)
    return ((bits >> np.uint64(12)) | np.uint64(0x3FF0000000000000)).view(np.float64)


def among(cell: np.ndarray, chosen: Collection[int] | np.ndarray) -> np.ndarray:
    """Whether each cell number is one of the chosen: by a table over the numbers' range (cell
    numbers are few and close together, and a table is several times quicker than `np.isin`'s
    sort or pandas' hash table), else by `np.isin`."""
    chosen = np.asarray(chosen if isinstance(chosen, np.ndarray) else list(chosen), dtype=np.int64)
    if not len(cell):
        return np.zeros(0, dtype=bool)
    low = min(int(cell.min()), 0)
    high = max(int(cell.max()), int(np.max(chosen, initial=0)))
    if high - low > 4 * len(cell) + 1024:
        return np.isin(cell, chosen)
    table = np.zeros(high - low + 1, dtype=bool)
    table[chosen[chosen >= low] - low] = True
    return table[cell - low if low else cell]


def _alike(cell: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Whether each entry is in a cell whose persons' values are all one value that is not zero (a
    count of persons: its row in the algebra is its membership, each person's column scaled by a
    number of its own). The group audit takes only these cells: their memberships cancel exactly
    when their rows in the algebra do, which the search for empty differences finds, so a group
    the answers pin down and an empty one are both found. A sum's cell beside a count's over
    nearly the same persons is neither (as in `safepool.query.empty_differences`). Judged on the
    values as shown, not on the algebra's contributions: those are rounded ratios to a person's
    first value, which a count's one need not come back to exactly."""
    if not len(cell):
        return np.zeros(0, dtype=bool)
    order = np.argsort(cell, kind="stable") if np.any(cell[1:] < cell[:-1]) else None  # (in order: no copies)
    sorted_cell = cell if order is None else cell[order]
    starts = np.flatnonzero(np.r_[True, sorted_cell[1:] != sorted_cell[:-1]])
    ordered = value if order is None else value[order]
    alike = (np.maximum.reduceat(ordered, starts) == np.minimum.reduceat(ordered, starts)) & (ordered[starts] != 0)
    in_order = np.repeat(alike, np.diff(np.r_[starts, len(cell)]))
    if order is None:
        return in_order
    uniform = np.empty(len(cell), dtype=bool)
    uniform[order] = in_order
    return uniform


def _rows(row: np.ndarray, column: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """A CSR matrix of entries, made without sorting when they come in the order of their rows (as
    the ledger hands them over)."""
    if len(row) and np.any(row[1:] < row[:-1]):
        order = np.argsort(row, kind="stable")
        row, column, data = row[order], column[order], data[order]
    bounds = np.searchsorted(row, np.arange(shape[0] + 1))
    return sparse.csr_matrix((data, column.astype(np.int32), bounds), shape=shape)


def _contributions(first: np.ndarray, index: np.ndarray, counts: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """What each incoming entry contributes to the algebra: its weight times its person's scale (its
    first value, or one by membership); zero when it does not count."""
    scale = first[index]  # (gathered first: the entries' persons only, not every person's)
    scale[np.isnan(scale)] = 1.0
    return np.where(counts, weight * scale, 0.0)


def _classes(extension: _Extension) -> PersonClasses:
    """Persons with the same pattern and number of entries (one 64-bit key) form a class, found by
    hashing (about half the time of sorting the keys); no answer depends on the classes' numbers."""
    of_person = _factorized(extension.pattern, extension.count)
    scale = np.where(np.isnan(extension.first), 1.0, extension.first)
    size = np.bincount(of_person)
    return PersonClasses(of_person, size, scale, np.bincount(of_person, weights=scale * scale, minlength=len(size)))


def _factorized(pattern: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """Numbers 0.. for the distinct (pattern, entries) pairs, mixed into one 64-bit key. The hash
    table starts at `_GROUPS_HINT` slots rather than one per key: there are far fewer groups than
    persons, and a table that fits the cache is found in about half the time (300,000 keys of 60
    groups: 1.3-1.6 ms against 3.3 ms; of 3,000 groups 2-4 ms against 8-13 ms; of 100,000 groups
    7 ms against 12-16 ms; all distinct, the same). The numbers are the same either way. A person's
    entries are few, so each count is mixed once and looked up (one gather against the mix's five
    passes over every person)."""
    entries = np.asarray(entries, dtype=np.int64)
    few = len(entries) > 1024 and int(entries.min()) >= 0 and int(entries.max()) < len(entries)
    with np.errstate(over="ignore"):
        counts = np.arange(int(entries.max()) + 1, dtype=np.int64) if few else entries
        mixed = mix(counts.view(np.uint64) + np.uint64(0x632BE59BD9B4E019))
        keys = pattern ^ (mixed[entries] if few else mixed)
    return pd.factorize(keys, size_hint=_GROUPS_HINT)[0]


_MEMORIES: OrderedDict[str, LedgerMemory] = OrderedDict()
_GUARD = threading.Lock()  # queries of other permits may run in other threads of the process


def recalled(path: str, key: Key) -> LedgerMemory | None:
    """The memory of the ledger file at `path` if it holds exactly the state `key` (used only
    under that ledger's lock, like the file)."""
    with _GUARD:
        memory = _MEMORIES.get(path)
        if memory is None or memory.key != key:
            return None
        _MEMORIES.move_to_end(path)
        return memory


def recalled_state(path: str, permit: str, cells: int, digest: str) -> LedgerMemory | None:
    """The memory of the ledger file at `path` if it holds the permit's record state (cells, digest)."""
    with _GUARD:
        memory = _MEMORIES.get(path)
        if memory is None or (memory.key[0], memory.key[1], memory.key[3]) != (permit, cells, digest):
            return None
        _MEMORIES.move_to_end(path)
        return memory


def keep(path: str, memory: LedgerMemory | None) -> None:
    """Keep (or, with None, forget) the memory of the ledger file at `path`."""
    with _GUARD:
        _MEMORIES.pop(path, None)
        if memory is not None:
            _MEMORIES[path] = memory
            while len(_MEMORIES) > _KEPT:
                _MEMORIES.popitem(last=False)
