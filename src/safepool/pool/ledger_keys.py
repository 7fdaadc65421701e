"""Each pool person's ledger key: the one name the query ledger knows a person by in every permit.

A permit's pseudonyms are its own, so that two permits' pools cannot be linked. The query ledger
must link them all the same: an analyst of two permits over the same persons could otherwise ask
a question in one and the same question without one person in the other, and subtract. So the
steward zone, while it builds a pool, gives each of its persons a ledger key, the first 60 bits of
HMAC-SHA256 of the normalised identity code under the workspace's ledger secret (kept in the key
store, `KeyStore.ledger_secret`): the same person has the same ledger key in every pool of the
workspace, and nobody without the secret and the identity codes can tell whose it is.

The keys are written beside the pool file, never in it (`LEDGER_KEYS_FILE`: pseudonyms in order
and their ledger keys, one NumPy array), so that no analysis that reads the pool can reach them
and destroying the permit's key can shred them with it. Only the query engine reads them, to
hand the ledger each cell's persons by their ledger keys; they are never an output. This module
holds no secret and sits outside the steward zone.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from safepool.faults import NotFound
from safepool.query.person_sums import PersonOrder, by_person_order, ranked_order

LEDGER_KEYS_FILE = "ledger-keys.npy"
LEDGER_DIR = ".query-ledger"  # where the query ledger keeps its files, beside the pools
# the ledger every query of the workspace is checked against (never a permit id: those begin with a
# letter or digit), so that the answers of two permits over the same persons cannot be set against
# each other
WORKSPACE_LEDGER = "_workspace"
_ORDERS_KEPT = 2  # orders of an answer's persons kept per pool (about 10 MB each at 300,000 persons)


class LedgerKeysMissing(NotFound):
    """The pool has no ledger keys (built before they existed) or unreadable ones."""


class LedgerKeys:
    """Pseudonyms (sorted) and their ledger keys."""

    def __init__(self, pids: np.ndarray, keys: np.ndarray) -> None:
        self._pids, self._keys = pids, keys
        self._orders: list[tuple[np.ndarray, PersonOrder]] = []  # the last pseudonyms put in order, and how
        self._orders_lock = threading.Lock()  # queries of one pool may run in several threads
        self._found: tuple[pd.Index, np.ndarray, np.ndarray] | None = None  # see `_look_up`

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """The pseudonyms (sorted) and their ledger keys."""
        return self._pids, self._keys

    def of(self, pids: np.ndarray) -> np.ndarray:
        """The ledger key of each of `pids` (pseudonyms as the pool stores them), in their order."""
        _, _, distinct = self._look_up()
        return distinct[self._ranks(pids)]

    def ordered(self, pids: np.ndarray) -> PersonOrder:
        """The ledger keys of `pids` put in order, ranked among all of the pool's keys (`ranked_order`,
        by counting on the keys' ranks: 5-8 ms for 290,000 persons of 300,000, against 41 ms for a
        look-up among the sorted pseudonyms and a sort of the keys found; the ledger's memory then
        finds the persons of every question of the pool by one array). The pool hands a table's
        persons over in the same order whenever the same rows are asked for (the population counted
        by one variable, then by another), so the last few are kept by their pseudonyms and given
        again. What is kept cannot be written to, so no caller can change it for the next."""
        pids = np.asarray(pids).astype(np.uint64, copy=False)
        with self._orders_lock:
            for at, (seen, order) in enumerate(self._orders):
                if len(seen) == len(pids) and np.array_equal(seen, pids):
                    self._orders.append(self._orders.pop(at))
                    return order
        order = ranked_order(self._ranks(pids), self._look_up()[2])
        seen = pids.copy()
        for array in (seen, order.by_person, order.rank):
            array.flags.writeable = False
        with self._orders_lock:
            self._orders = [*self._orders, (seen, order)][-_ORDERS_KEPT:]
        return order

    def _ranks(self, pids: np.ndarray) -> np.ndarray:
        """Each of `pids`' ledger key as its rank among the pool's distinct keys (sorted)."""
        index, rank, _ = self._look_up()
        found = index.get_indexer(np.asarray(pids).astype(np.uint64, copy=False))
        if len(found) and found.min() < 0:
            raise LedgerKeysMissing("a person of the pool has no ledger key: the pool's ledger keys do not "
                                    "match it; the linkage authority writes them again (`safepool pool ledger-keys`)")
        return rank[found]

    def _look_up(self) -> tuple[pd.Index, np.ndarray, np.ndarray]:
        """The pseudonyms as a hash index (a look-up of 300,000 takes 4-5 ms, against 17 ms for a sort
        and a search among the sorted ones), each one's key as its rank among the distinct keys,
        and those keys, sorted: made once per pool in a process (about 45 ms at 300,000 persons),
        under the lock, so that two threads' questions never make the index's hash table at once."""
        with self._orders_lock:
            if self._found is None:
                index = pd.Index(self._pids)
                if not index.is_unique:
                    raise LedgerKeysMissing("the pool's ledger keys name a person twice: the linkage authority "
                                            "writes them again (`safepool pool ledger-keys`)")
                index.get_indexer(self._pids[:1])  # its hash table made here
                self._found = (index, *_ranked_keys(self._keys))
            return self._found


def _ranked_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's rank among the distinct keys, and those keys sorted (read-only: they are handed to
    every question of the pool). Keys of distinct persons are distinct but by a chance of about
    one in 10^7 at 300,000 persons, so they are put in order (27 ms) and only keys that come
    twice are counted as one (`np.unique`, 37 ms)."""
    order, ordered = by_person_order(keys)
    if len(ordered) > 1 and np.any(ordered[1:] == ordered[:-1]):
        distinct, rank = np.unique(keys, return_inverse=True)
    else:
        distinct, rank = ordered, np.empty(len(keys), dtype=np.int64)
        rank[order] = np.arange(len(keys))
    distinct.flags.writeable = False
    return rank, distinct


def write_ledger_keys(folder: Path, pids: np.ndarray, keys: np.ndarray, name: str = LEDGER_KEYS_FILE) -> None:
    """Write the ledger keys of a pool into its (private) folder, as `name`."""
    pids = np.asarray(pids).astype(np.uint64)
    order = np.argsort(pids, kind="stable")
    with open(folder / name, "wb") as file:  # np.save would add ".npy" to another name
        np.save(file, np.stack([pids[order], np.asarray(keys).astype(np.uint64)[order]]), allow_pickle=False)


def ledger_keys_in_use(pool_dir: Path) -> bool:
    """Whether a pool of the workspace has ledger keys, or the workspace's query ledger exists: then
    the workspace's secret of ledger keys must never be made anew (the permits' own ledgers of an
    earlier version knew no ledger keys)."""
    return (Path(pool_dir) / LEDGER_DIR / f"{WORKSPACE_LEDGER}.duckdb").exists() or \
        any((Path(pool_dir) / permit / LEDGER_KEYS_FILE).exists() for permit in _pools(pool_dir))


def _pools(pool_dir: Path) -> list[str]:
    """The names published in the pools' folder (hidden entries, scratch and the ledger's, left out)."""
    try:
        return [entry.name for entry in Path(pool_dir).iterdir() if not entry.name.startswith(".")]
    except FileNotFoundError:
        return []


_KEPT = 4  # pools whose ledger keys a process keeps (a few MB each at 300,000 persons)
_loaded: dict[str, tuple[tuple[int, int, int, int], LedgerKeys]] = {}
_lock = threading.Lock()


def ledger_keys(pool_dir: Path, permit: str) -> LedgerKeys:
    """The ledger keys of the permit's pool, kept in this process while the file is unchanged (a
    pool published again is a new file)."""
    path = Path(pool_dir) / permit / LEDGER_KEYS_FILE
    try:
        real = os.path.realpath(path)
        info = os.stat(real)
    except OSError:
        raise LedgerKeysMissing(f"the pool of permit {permit} was built before ledger keys existed: the linkage "
                                f"authority gives it them with `safepool pool ledger-keys {permit}`") from None
    noted = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    with _lock:
        kept = _loaded.get(real)
        if kept is not None and kept[0] == noted:
            return kept[1]
    try:
        both = np.load(real, allow_pickle=False)
        if both.ndim != 2 or both.shape[0] != 2 or both.dtype != np.uint64:
            raise ValueError("not ledger keys")
    except (OSError, ValueError):
        raise LedgerKeysMissing(f"the ledger keys of permit {permit}'s pool cannot be read: the linkage authority "
                                f"writes them again with `safepool pool ledger-keys {permit}`") from None
    found = LedgerKeys(both[0], both[1])
    with _lock:
        _loaded.pop(real, None)
        _loaded[real] = (noted, found)
        while len(_loaded) > _KEPT:
            _loaded.pop(next(iter(_loaded)))
    return found
