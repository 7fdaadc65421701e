"""A pool built before ledger keys existed gets them from the registers, in any phase, without
being built again: the same keys a build gives, or nothing written when the registers changed."""

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from governed import governance_with_users, sign_in
from safepool.faults import Unavailable
from safepool.pool.build import build_pool, give_ledger_keys
from safepool.pool.ledger_keys import LEDGER_KEYS_FILE, LedgerKeys, LedgerKeysMissing
from safepool.query.person_sums import cell_person_order, person_order
from safepool.pool.scope import Scope
from tiny_registers import CHEN, make_workspace


@pytest.fixture
def setup(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    build_pool(workspace, Scope(permit="P-1", window={"start": "2009Q1", "end": "2024Q4"},
                                registers={"population": "*", "payments": "*"}))
    return workspace, governance


def test_an_older_pool_gets_the_ledger_keys_a_build_gives_it(setup):
    workspace, governance = setup
    path = workspace.pool_dir / "P-1" / LEDGER_KEYS_FILE
    built = np.load(path)
    path.unlink()  # as a pool of an earlier version
    assert give_ledger_keys(workspace, governance, sign_in(governance, "stella"), "P-1") == 3
    assert np.array_equal(np.load(path), built)
    assert path.stat().st_mode & 0o077 == 0 and not list(path.parent.glob(".*.tmp"))
    record = governance.audit.records(action="pool_ledger_keys")[-1]
    assert (record.actor, record.permit, record.outcome, record.detail) == ("stella", "P-1", "ok", {"persons": 3})


def test_registers_that_lost_a_person_of_the_pool_write_nothing(setup):
    workspace, governance = setup
    path = workspace.pool_dir / "P-1" / LEDGER_KEYS_FILE
    path.unlink()
    source = workspace.registers_dir / "dvv" / "population.parquet"
    rows = pq.read_table(source)
    column = next(name for name in rows.column_names if CHEN in rows.column(name).to_pylist())
    pq.write_table(rows.filter(pc.not_equal(rows.column(column), CHEN)), source)
    with pytest.raises(Unavailable, match="1 persons of its pool are no longer in the registers"):
        give_ledger_keys(workspace, governance, sign_in(governance, "stella"), "P-1")
    assert not path.exists() and not list(path.parent.glob(".*"))
    assert governance.audit.records(action="pool_ledger_keys") == []


def test_persons_put_in_order_again_are_the_same_and_cannot_be_changed():
    """`LedgerKeys.ordered` keeps the last answers' persons in order: asked again for the same
    pseudonyms (the same rows of a table) it gives what it gave, for others (even as many, or the
    same ones in another order) their own order, and what it keeps cannot be written to."""
    rng = np.random.default_rng(7)
    pids = np.sort(rng.choice(2**62, size=500, replace=False).astype(np.uint64))
    keys = LedgerKeys(pids, rng.permutation(pids) ^ np.uint64(0x5DEECE66D))
    asked = rng.permutation(pids)[:300]
    first = keys.ordered(asked)
    fresh = person_order(keys.of(asked))  # the same order; ranked among all the pool's keys
    assert np.array_equal(first.by_person, fresh.by_person) and len(first.distinct) == len(pids)
    assert np.array_equal(first.distinct[first.rank], fresh.distinct[fresh.rank])
    assert keys.ordered(asked.copy()) is first
    other = asked[::-1].copy()
    again = keys.ordered(other)
    assert again is not first and np.array_equal(again.distinct[again.rank], keys.of(other)[again.by_person])
    keys.ordered(rng.permutation(pids)[:300]), keys.ordered(pids[:10])  # two others: the first is forgotten
    assert keys.ordered(asked) is not first
    with pytest.raises(ValueError):
        first.distinct[0] = 0
    in_order, cells, distinct, rank = cell_person_order(np.arange(300) % 3, first)
    assert np.array_equal(distinct[rank], keys.of(asked)[in_order]) and np.all(np.diff(cells) >= 0)


def test_a_person_without_a_ledger_key_or_a_key_file_naming_one_twice_is_refused():
    """The look-up of ledger keys finds every person of a pool or refuses, naming no one: a
    pseudonym the file does not hold, or a file that holds a pseudonym twice."""
    pids = np.arange(10, 20, dtype=np.uint64)
    keys = LedgerKeys(pids, pids * np.uint64(7919))
    assert np.array_equal(keys.of(np.array([19, 10, 10], dtype=np.uint64)), np.array([19, 10, 10]) * 7919)
    ordered = keys.ordered(np.array([19, 10, 10, 15], dtype=np.uint64))  # a person in two rows
    assert ordered.by_person.tolist() == [1, 2, 3, 0] and ordered.rank.tolist() == [0, 0, 5, 9]
    with pytest.raises(LedgerKeysMissing, match="has no ledger key") as raised:
        keys.ordered(np.array([12, 99], dtype=np.uint64))
    assert "99" not in str(raised.value)
    twice = LedgerKeys(np.array([1, 1, 2], dtype=np.uint64), np.array([5, 6, 7], dtype=np.uint64))
    with pytest.raises(LedgerKeysMissing, match="twice"):
        twice.of(np.array([2], dtype=np.uint64))


def test_two_persons_of_one_ledger_key_are_one_person_to_the_ledger():
    """Keys of 60 bits of two persons can meet (by a small chance): both are then ranked as one key."""
    pids = np.arange(1, 6, dtype=np.uint64)
    keys = LedgerKeys(pids, np.array([50, 40, 50, 10, 20], dtype=np.uint64))
    ordered = keys.ordered(np.array([1, 2, 3, 4], dtype=np.uint64))
    assert ordered.distinct.tolist() == [10, 20, 40, 50] and ordered.distinct[ordered.rank].tolist() == [10, 40, 50, 50]
    assert keys.of(np.array([5, 3], dtype=np.uint64)).tolist() == [20, 50]


def test_questions_of_one_pool_in_several_threads_put_their_persons_in_the_same_order():
    """The pool's index and ranks are made once, whichever thread's question comes first."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    pids = np.sort(rng.choice(2**62, size=20_000, replace=False).astype(np.uint64))
    keys = LedgerKeys(pids, rng.permutation(pids) ^ np.uint64(0x9E3779B9))
    asked = [rng.permutation(pids)[: 5_000 + 1_000 * i] for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(keys.ordered, asked))
    for persons, order in zip(asked, found):
        fresh = person_order(LedgerKeys(pids, keys.items()[1]).of(persons))
        assert np.array_equal(order.by_person, fresh.by_person)
        assert np.array_equal(order.distinct[order.rank], fresh.distinct[fresh.rank])
