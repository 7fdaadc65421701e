"""Where each person the ledger's memory holds is, kept in the order of the keys as persons come.

The memory numbers its persons (ledger keys) in the order first seen, and every audit looks up
the persons of an answer: hundreds of thousands of keys per question. A hash table built afresh
whenever new persons came (the first question after any that brought a period's units, or the
first persons) cost 30-60 ms of a question of 300,000 persons, and a look-up in a hash table
reads its slots at random: on this kind of machine that alone is 10-45 ms.

An answer's entries come cell by cell, each cell's persons in the order of their keys (see
`safepool.query.person_sums`), so a binary search in the keys kept in order reads nearby places
from one key to the next; and new persons are merged in (one pass over what is kept, no sort of
it). Measured on 300,000 persons in two cells: 8.6-10 ms against 9.6 ms for pandas' look-up in a
hash table already built, 42 ms with the building; taking 300,000 new persons into as many, 20 ms.
"""

from __future__ import annotations

import numpy as np


class PersonTable:
    """Positions of distinct 64-bit keys in an array of them that only grows at its end."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)      # every key taken, in order
        self._position = np.empty(0, dtype=np.int64)  # the position of each of those in the persons

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The position of each of `keys` in the persons the table took, -1 for a key it does
        not hold."""
        keys = np.asarray(keys, dtype=np.uint64)
        if not len(self._keys) or not len(keys):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.where(self._keys[at] == keys, self._position[at], -1)

    def take(self, persons: np.ndarray, first: int) -> None:
        """Take `persons[first:]`: keys the table does not hold, each once, at their positions. They
        come cell by cell, each cell's in order, so a stable sort of them merges a few runs."""
        added = np.asarray(persons[first:], dtype=np.uint64)
        if not len(added):
            return
        order = np.argsort(added, kind="stable")
        added, position = added[order], first + order
        if not len(self._keys):
            self._keys, self._position = added, position
            return
        # merged in one pass: where each new key goes in the longer array, and the kept ones around it
        at = np.searchsorted(self._keys, added) + np.arange(len(added))
        kept = np.ones(len(self._keys) + len(added), dtype=bool)
        kept[at] = False
        for name, new in (("_keys", added), ("_position", position)):
            merged = np.empty(len(kept), dtype=new.dtype)
            merged[at], merged[kept] = new, getattr(self, name)
            setattr(self, name, merged)
