"""The query ledger holds under load and cannot be reset quietly.

Driven directly with synthetic cells (columns cell, person, value) in a governed workspace:
parallel processes of one permit queue and every check is remembered; a ledger file moved
away, replaced by another permit's, rolled back to an older copy or edited stops the permit's
queries, audited, for good; an interrupted update is recovered and said so; withheld answers,
audited the way the query engine writes them, make the differencing alert fire.
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, select, update

from governed import approved_permit, governance_with_users, sign_in
from safepool.errors import SafepoolError
from safepool.governance.alerts import DIFFERENCING, LEDGER_MISMATCH, run_alerts
from safepool.governance.context import Governance
from safepool.governance.ledger_state import STOPPED, query_ledgers_table
from safepool.governance.users import Actor
from safepool.query.definitions import EntryDefinitions
from safepool.query.ledger import (
    ALL_ANSWERS,
    LEDGER_DIR,
    MISMATCH_ACTION,
    PAIRS,
    RECOVERED_ACTION,
    WITHHELD,
    Ledger,
    LedgerBusy,
    LedgerTampered,
    genesis_digest,
    query_outcome,
    withheld_entries,
)

MIN_FREQUENCY = 5
PERMIT, OTHER = "P-1", "P-2"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Users and two approved permits, built once (signing in and approving take a while)."""
    root = tmp_path_factory.mktemp("template") / "ws"
    (root / "pool").mkdir(parents=True)
    governance = governance_with_users(root)
    approved_permit(governance, PERMIT)
    approved_permit(governance, OTHER)
    governance.permits.engine.dispose()
    return root


@pytest.fixture
def ws(template, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(template, root)
    governance = Governance.open(root)
    yield root, governance, sign_in(governance, "anna")
    governance.permits.engine.dispose()


def cell(persons, values=None, number: int = 0) -> pd.DataFrame:
    persons = np.asarray(list(persons), dtype="uint64")
    values = np.ones(len(persons)) if values is None else np.asarray(values, dtype=float)
    return pd.DataFrame({"cell": number, "person": persons, "value": values})


def answer(governance: Governance, actor: Actor, ledger: Ledger, incoming: pd.DataFrame, column_of: dict[int, int],
           measures: list[str], digest: str = "0" * 64) -> dict[int, str]:
    """What the engine does inside the ledger's lock: check, then audit the query with the ledger's state."""
    withheld = ledger.check(incoming, column_of, MIN_FREQUENCY)
    governance.audit.append(actor=actor.name, role=actor.main_role, action="query", permit=ledger.permit,
                            outcome=query_outcome(withheld),
                            detail={"query_sha256": digest,
                                    "withheld": withheld_entries([(column_of[c], check) for c, check in withheld.items()],
                                                                 measures),
                                    **ledger.state()})
    return withheld


def ledger_file(root: Path, permit: str = PERMIT) -> Path:
    return root / "pool" / LEDGER_DIR / f"{permit}.duckdb"


def mismatches(governance: Governance, permit: str = PERMIT) -> list:
    return governance.audit.records(permit=permit, action=MISMATCH_ACTION)


def record_of(governance: Governance, permit: str = PERMIT):
    with governance.permits.engine.connect() as conn:
        return conn.execute(select(query_ledgers_table).where(query_ledgers_table.c.permit == permit)).first()


def remember_twice(root: Path, governance: Governance, actor: Actor, permit: str = PERMIT, first: int = 0) -> None:
    with Ledger.open(root / "pool", governance, actor, permit) as ledger:
        assert answer(governance, actor, ledger, cell(range(first, first + 20)), {0: 0}, ["persons"]) == {}
    with Ledger.open(root / "pool", governance, actor, permit) as ledger:
        assert answer(governance, actor, ledger, cell(range(first + 100, first + 130)), {0: 0}, ["persons"]) == {}


def assert_refused(root: Path, governance: Governance, actor: Actor, reason: str, permit: str = PERMIT) -> None:
    before = len(mismatches(governance, permit))
    with pytest.raises(LedgerTampered, match=f"the query ledger {permit} does not match its record") as info:
        with Ledger.open(root / "pool", governance, actor, permit):
            pass
    assert reason in str(info.value) and "until a data security officer investigates" in str(info.value)
    refused = mismatches(governance, permit)
    assert len(refused) == before + 1
    assert (refused[-1].outcome, refused[-1].actor) == ("refused", actor.name) and reason in refused[-1].detail["reason"]
    assert record_of(governance, permit).status == STOPPED


# -- a fresh ledger and its record ----------------------------------------------------------------


def test_a_fresh_permit_starts_empty_and_every_check_moves_its_record(ws):
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state() == {"ledger": PERMIT, "ledger_cells": 0, "ledger_digest": genesis_digest(PERMIT)}
        assert answer(governance, anna, ledger, pd.concat([cell(range(10)), cell(range(10, 30), number=1)]),
                      {0: 0, 1: 1}, ["persons", "persons"]) == {}
        state = ledger.state()
        assert state["ledger_cells"] == 2 and state["ledger_digest"] != genesis_digest(PERMIT)
    row = record_of(governance)
    assert (row.status, row.cells, row.digest, row.pending_cells) == ("active", 2, state["ledger_digest"], None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state() == state
        ledger.verify_contents()
    [query] = governance.audit.records(action="query")
    assert query.detail["ledger_cells"] == 2 and query.detail["ledger_digest"] == state["ledger_digest"]
    assert genesis_digest(OTHER) != genesis_digest(PERMIT)


def test_a_permit_id_cannot_name_another_path(ws):
    root, governance, anna = ws
    with pytest.raises(SafepoolError, match="letters, digits"):
        with Ledger.open(root / "pool", governance, anna, "../P-1"):
            pass


def test_the_ledger_is_only_used_inside_its_block(ws):
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        pass
    with pytest.raises(RuntimeError, match="outside its `Ledger.open` block"):
        ledger.check(cell(range(10)), {0: 0}, MIN_FREQUENCY)


def test_a_cell_with_two_values_swapped_is_not_taken_for_the_remembered_one(ws):
    """DuckDB's hash(a, b) is hash(a) xor hash(b): a signature built from it would not see two
    values swapped between persons, and the cell would skip every check as "the same cell"."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(cell(range(20), [1.0, 2.0] + [3.0] * 18), {0: 0}, MIN_FREQUENCY) == {}
        swapped = cell(range(20), [2.0, 1.0] + [3.0] * 18)
        assert ledger.compare(swapped, MIN_FREQUENCY) == ({0}, set())
        assert ledger.check(swapped, {0: 0}, MIN_FREQUENCY) == {0: PAIRS}


@pytest.mark.parametrize("size", [20 - MIN_FREQUENCY, 20 - MIN_FREQUENCY + 1, 20 + MIN_FREQUENCY - 1, 20 + MIN_FREQUENCY])
def test_only_cells_of_a_near_size_are_compared_and_the_boundary_is_exact(ws, size):
    """A cell is compared with a remembered one only when their sizes differ by fewer persons than
    the minimum frequency (more apart, they differ by at least that many persons); at the boundary
    a cell nested in the remembered one is close when it lacks fewer persons, and is not otherwise."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(cell(range(20)), {0: 0}, MIN_FREQUENCY) == {}
        nested = cell(range(size))
        close = abs(size - 20) < MIN_FREQUENCY
        assert ledger.compare(nested, MIN_FREQUENCY) == (({0} if close else set()), set())
        assert ledger.check(nested, {0: 0}, MIN_FREQUENCY) == ({0: PAIRS} if close else {})


def test_a_cell_compared_in_the_block_keeps_its_outcome_and_only_new_cells_are_compared(ws, monkeypatch):
    """`pairs` compares every row of an answer and `check` then what it would show: a cell compared
    before in the block (same persons and values) keeps its outcome without being compared again;
    the comparison runs on the block's first comparison, for a cell new to the block, and again
    once the block remembered more. A cell without persons beside cells asked again runs it on no
    rows (a hypothesis example once found that case broken)."""
    root, governance, anna = ws
    statements = []
    run = Ledger._compared_near
    monkeypatch.setattr(Ledger, "_compared_near", lambda self, *a: statements.append(len(a[1])) or run(self, *a))
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(cell(range(20)), {0: 0}, MIN_FREQUENCY) == {}  # nothing remembered: no comparison
        assert statements == []
        near, far = cell(range(18), number=0), cell(range(100, 160), number=1)
        both = pd.concat([near, far], ignore_index=True)
        assert ledger.pairs(both, {0: 0, 1: 0}, MIN_FREQUENCY) == ({0: PAIRS}, False)
        assert statements == [2]  # the block's first comparison: both cells, the far one on no rows
        assert ledger.pairs(far.assign(cell=0), {0: 0}, MIN_FREQUENCY) == ({}, False)
        assert statements == [2]  # compared before in this block
        assert ledger.pairs(near.assign(cell=3), {3: 0}, MIN_FREQUENCY) == ({3: PAIRS}, False)
        assert statements == [2]  # the outcome kept: still close
        assert ledger.pairs(cell(range(17), number=0), {0: 0}, MIN_FREQUENCY) == ({0: PAIRS}, False)
        assert statements == [2, 1]  # a cell new to the block
        assert ledger.check(far.assign(cell=0), {0: 0}, MIN_FREQUENCY) == {}  # remembered now
        # the first comparison since: a cell asked again beside one without persons runs it on no rows
        assert ledger.pairs(cell(range(20), number=0), {0: 0, 1: 0}, MIN_FREQUENCY) == ({}, False)
        assert statements == [2, 1, 0]
        assert ledger.pairs(cell(range(100, 158), number=0), {0: 0}, MIN_FREQUENCY) == ({0: PAIRS}, False)
        assert statements == [2, 1, 0, 1]  # compared with what is remembered now
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:  # a new block compares afresh
        assert ledger.pairs(near, {0: 0}, MIN_FREQUENCY) == ({0: PAIRS}, False)
        assert statements == [2, 1, 0, 1, 1]


@pytest.mark.parametrize("read_again", [False, True])
def test_a_cell_without_a_definition_beside_one_with_is_the_same_cell_when_asked_again(ws, read_again):
    """A study's rows have no definition beside its groups' definitions: asked again, each is the
    cell remembered (not an empty difference of two questions), whether the memory took them in
    (pandas once made the missing definition NaN there) or the file is read again."""
    from safepool.query import ledger_memory

    root, governance, anna = ws
    both = pd.concat([cell(range(20)), cell(range(40, 60), number=1)], ignore_index=True)
    defined = EntryDefinitions({0: "persons of group a"})
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(both, {0: 0, 1: 1}, MIN_FREQUENCY, definitions=defined) == {}
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.pairs(both, {0: 0, 1: 1}, MIN_FREQUENCY, definitions=defined) == ({}, True)
        assert ledger.check(both, {0: 0, 1: 1}, MIN_FREQUENCY, definitions=defined) == {}


# -- totals left out of the all-answers algebra ---------------------------------------------------


@pytest.mark.parametrize("read_again", [False, True])
def test_a_total_left_out_of_the_algebra_still_lets_three_answers_be_caught(ws, read_again):
    """A total that adds up shown cells of its column is left out of the all-answers algebra (it
    adds nothing to it), remembered as such in memory (or, `read_again`, not: the file is read
    again); the cells it adds up still give person 0 away with two later cells (b - d + e), which
    no pair of cells does (each pair differs by 10 persons or more)."""
    from safepool.query import ledger_memory

    root, governance, anna = ws
    b, c, total = cell(range(10)), cell(range(10, 20), number=1), cell(range(20), number=2)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([b, c, total]), {0: 0, 1: 0, 2: 0}, MIN_FREQUENCY, sums={2: [0, 1]}) == {}
        assert ledger._sums == {2: [0, 1]}
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    d, e = cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.compare(pd.concat([d, e]), MIN_FREQUENCY) == (set(), set())
        assert ledger.check(pd.concat([d, e]), {0: 0, 1: 0}, MIN_FREQUENCY) == {1: ALL_ANSWERS}  # e, after d


@pytest.mark.parametrize("read_again", [False, True])
def test_a_total_with_rows_left_out_of_the_algebra_is_still_compared_person_by_person(ws, read_again):
    """A total that comes with rows and adds up shown cells is kept out of the algebra's entries,
    but its rows are still what a later cell is compared with: its persons but one are close to
    it, the same persons with one value changed are close, and the same rows are the total asked
    again, whether the memory took it in or the file is read again."""
    from safepool.query import ledger_memory

    root, governance, anna = ws
    b, c = cell(range(10), [2.0] * 10), cell(range(10, 20), [3.0] * 10, number=1)
    total = pd.concat([b, c]).assign(cell=2)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([b, c, total]), {0: 0, 1: 0, 2: 0}, MIN_FREQUENCY, sums={2: [0, 1]}) == {}
        assert ledger._sums == {2: [0, 1]}
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.compare(total.iloc[1:].assign(cell=0), MIN_FREQUENCY) == ({0}, set())
        changed = total.assign(cell=0, value=[5.0] + [2.0] * 9 + [3.0] * 10)
        assert ledger.compare(changed, MIN_FREQUENCY) == ({0}, set())
        assert ledger.compare(total.assign(cell=0), MIN_FREQUENCY) == (set(), {0})


@pytest.mark.parametrize("claimed", [
    cell(range(1, 20), number=2),                     # person 0 left out: not the sum
    cell(range(20), [1.0] + [2.0] * 19, number=2),    # another value for one person
    cell(range(20), [0.0] + [1.0] * 19, number=2),    # a zero (counts by membership, does not add up)
])
def test_a_claimed_total_that_does_not_add_up_stays_in_the_algebra(ws, claimed):
    """A cell claimed to be a sum of others is checked before it is left out: b + c - claimed
    gives person 0 away, so the answer is withheld whatever the claim; a total with a zero is
    never left out (a person whose values are all zero counts by membership, which does not add
    up over cells)."""
    root, governance, anna = ws
    b, c = cell(range(10)), cell(range(10, 20), number=1)
    if claimed["value"].iloc[0] == 0.0:  # b and c must hold person 0's zero too, for a sum to be possible
        b = cell(range(10), [0.0] + [1.0] * 9)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        withheld = ledger.check(pd.concat([b, c, claimed]), {0: 0, 1: 0, 2: 0}, MIN_FREQUENCY, sums={2: [0, 1]})
        assert ledger._sums == {}
        if claimed["value"].iloc[0] != 0.0:
            assert withheld == {2: ALL_ANSWERS}  # the cell that gives person 0 away after b and c
        else:  # person 0 counts by membership like persons 1-9 (the same cells): one class of ten
            assert withheld == {}


# -- totals handed over without rows ---------------------------------------------------------------


def file_rows(root: Path) -> tuple[list[int], list[tuple[int, int]]]:
    """The cells with rows in the ledger file, and its sums' (cell, member) rows."""
    with duckdb.connect(str(ledger_file(root)), read_only=True) as con:
        return ([c for (c,) in con.execute("SELECT DISTINCT cell FROM contributions ORDER BY cell").fetchall()],
                con.execute("SELECT cell, member FROM sum_members ORDER BY ALL").fetchall())


@pytest.mark.parametrize("read_again", [False, True])
def test_a_total_without_rows_is_kept_as_the_cells_it_adds_up_and_still_counts(ws, read_again):
    """The engine hands a total over as the cells it adds up: the file keeps the definition, no
    rows, bound into the digest (verify_contents recomputes it); three later answers with those
    cells still give person 0 away (b - d + e), and a cell of the total's persons but one is close
    to it, whether the memory is kept or the file is read again."""
    from safepool.query import ledger_memory

    root, governance, anna = ws
    b, c = cell(range(10)), cell(range(10, 20), number=1)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([b, c]), {0: 0, 1: 0, 2: 0}, MIN_FREQUENCY, sums={2: [0, 1]}) == {}
        assert ledger.cells == 3 and ledger.rows == 20
        ledger.verify_contents()
    assert file_rows(root) == ([1, 2], [(3, 1), (3, 2)])
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    d, e = cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.compare(cell(range(1, 20)), MIN_FREQUENCY) == ({0}, set())  # the total but person 0
        assert ledger.compare(cell(range(20)), MIN_FREQUENCY) == (set(), {0})     # the total itself
        assert ledger.check(pd.concat([d, e]), {0: 0, 1: 0}, MIN_FREQUENCY) == {1: ALL_ANSWERS}


def test_a_total_without_rows_is_compared_and_taken_for_a_remembered_cell(ws):
    """A total that comes without rows is the same as a remembered cell of its persons and values
    (its size and signature from its cells'), and close to one that lacks a person."""
    root, governance, anna = ws
    b, c = cell(range(10)), cell(range(10, 20), number=1)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        ledger.remember(cell(range(20), number=7))
        assert ledger.compare(pd.concat([b, c]), MIN_FREQUENCY, defined={2: [0, 1]}) == (set(), {2})
    with Ledger.open(root / "pool", governance, anna, OTHER) as ledger:
        ledger.remember(cell(range(1, 20), number=7))
        assert ledger.compare(pd.concat([b, c]), MIN_FREQUENCY, defined={2: [0, 1]}) == ({2}, set())


@pytest.mark.parametrize("case", ["shared person", "shared person, cells in key order", "zero",
                                  "cell remembered before"])
def test_a_total_that_cannot_be_kept_as_its_cells_gets_its_rows_made(ws, case):
    """A total whose cells share a person, or hold a zero, or of which a cell was remembered before,
    gets each person's sum over its cells as rows (as the engine would make them)."""
    root, governance, anna = ws
    b, c = cell(range(10)), cell(range(10, 20), number=1)
    if case == "shared person":
        c = cell([*range(10, 20), 3], [1.0] * 10 + [2.0], number=1)
    if case == "shared person, cells in key order":  # as the engine hands them over
        c = cell([3, *range(10, 20)], [2.0] + [1.0] * 10, number=1)
    if case == "zero":
        b = cell(range(10), [0.0] + [1.0] * 9)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        if case == "cell remembered before":
            ledger.remember(cell(range(10), number=5))
        first = ledger.cells
        ledger.check(pd.concat([b, c]), {0: 0, 1: 0, 2: 0}, MIN_FREQUENCY, sums={2: [0, 1]})
        ledger.verify_contents()
        kept = ledger._con().execute(f"SELECT person, value FROM contributions WHERE cell = {ledger.cells} "
                                  "ORDER BY person").fetchall()
    expected = pd.concat([b, c]).groupby("person")["value"].sum()
    assert kept == [(int(p), float(v)) for p, v in expected.items()]
    assert file_rows(root)[1] == []
    assert ledger.cells == first + (2 if case == "cell remembered before" else 3)


def test_a_ledger_file_written_before_sums_were_kept_as_cells_is_still_read(ws):
    """A file from before has no table of sums (its totals are rows): it is read as it is, gets the
    empty table, and compares and verifies as before."""
    from safepool.query import ledger_memory

    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        ledger.remember(cell(range(20)))
    with duckdb.connect(str(ledger_file(root))) as con:
        con.execute("DROP TABLE sum_members")
    ledger_memory.keep(str(ledger_file(root)), None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.compare(cell(range(1, 20)), MIN_FREQUENCY) == ({0}, set())
        ledger.verify_contents()
    assert file_rows(root) == ([1], [])



def test_a_file_changed_since_this_process_left_it_gets_its_tables_again(ws):
    """The schema statements are skipped only for a file exactly as this process left it: one whose
    table of sums another hand dropped since (the memory of it still kept here) is brought up to
    date when it is opened, and takes a total kept as its cells."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        ledger.remember(cell(range(20)))
    with duckdb.connect(str(ledger_file(root))) as con:
        con.execute("DROP TABLE sum_members")
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert not ledger._as_left
        ledger.check(pd.concat([cell(range(100, 120), number=0), cell(range(120, 140), number=1)]),
                     {0: 0, 1: 0, 2: 0}, MIN_FREQUENCY, sums={2: [0, 1]})
        ledger.verify_contents()
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger._as_left  # as this process left it: opened without the statements
        assert ledger._con().execute("SELECT count(*) FROM sum_members").fetchall() == [(2,)]
        ledger.verify_contents()


def test_a_check_that_finds_a_cell_leaves_no_pending_state_and_a_kept_one_commits_it(ws):
    """The write's thread records the new state as pending while the audit runs: an audit that finds
    a cell clears it (nothing of the answer is remembered, the file is as recorded), and an answer
    kept commits it, so the next open finds the record and the file at one state."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([cell(range(10)), cell(range(10, 20), number=1),
                                       cell(range(20), number=2)]), {0: 0, 1: 0, 2: 0}, MIN_FREQUENCY) == {}
        kept = (ledger.cells, ledger.digest)
    assert (record_of(governance).cells, record_of(governance).pending_cells) == (3, None)
    d, e = cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([d, e]), {0: 0, 1: 0}, MIN_FREQUENCY) == {1: ALL_ANSWERS}
        assert (ledger.cells, ledger.digest) == kept
        row = record_of(governance)
        assert (row.cells, row.digest, row.pending_cells, row.pending_digest) == (*kept, None, None)
        ledger.verify_contents()
    # cleared by the check itself, not found pending when the search let others in and the file was
    # checked again (that would be audited as an interrupted update)
    assert governance.audit.records(action=RECOVERED_ACTION) == []

# -- under load ---------------------------------------------------------------------------------

WORKERS, CHECKS, PERSONS_PER_CELL = 3, 20, 10


def _analyst(root: str, actor: Actor, worker: int, failures) -> None:
    """One analyst's process: CHECKS queries of two new cells each, audited inside the lock."""
    governance = Governance.open(Path(root))
    try:
        for k in range(CHECKS):
            first = (worker * CHECKS + k) * 2 * PERSONS_PER_CELL
            incoming = pd.concat([cell(range(first, first + PERSONS_PER_CELL), np.arange(1, 11), number=0),
                                  cell(range(first + PERSONS_PER_CELL, first + 2 * PERSONS_PER_CELL), number=1)])
            with Ledger.open(Path(root) / "pool", governance, actor, PERMIT) as ledger:
                before = ledger.state()["ledger_cells"]
                withheld = answer(governance, actor, ledger, incoming, {0: 0, 1: 1}, ["sum", "persons"])
                if withheld or ledger.state()["ledger_cells"] != before + 2:
                    failures.put(f"worker {worker} check {k}: withheld {withheld}")
    except Exception as exc:  # reported to the test, never swallowed
        failures.put(f"worker {worker}: {type(exc).__name__}: {exc}")
    finally:
        governance.permits.engine.dispose()


@pytest.mark.slow
def test_analysts_of_one_permit_querying_at_once_all_get_answers(ws):
    root, governance, anna = ws
    aaro = sign_in(governance, "aaro")
    context = multiprocessing.get_context("spawn")
    failures = context.Queue()
    workers = [context.Process(target=_analyst, args=(str(root), [anna, aaro, anna][w], w, failures))
               for w in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    problems = []
    while not failures.empty():
        problems.append(failures.get())
    assert problems == [] and all(w.exitcode == 0 for w in workers)

    queries = governance.audit.records(action="query")
    assert len(queries) == WORKERS * CHECKS and all(q.outcome == "ok" for q in queries)
    # one query at a time: each saw the ledger exactly as the one before left it
    assert sorted(q.detail["ledger_cells"] for q in queries) == list(range(2, 2 * WORKERS * CHECKS + 1, 2))
    assert [q.detail["ledger_cells"] for q in queries] == list(range(2, 2 * WORKERS * CHECKS + 1, 2))
    assert len({q.detail["ledger_digest"] for q in queries}) == len(queries)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state() == {"ledger": PERMIT, "ledger_cells": 2 * WORKERS * CHECKS, "ledger_digest": queries[-1].detail["ledger_digest"]}
        ledger.verify_contents()
        assert ledger._con().execute("SELECT count(*) FROM contributions").fetchall()[0][0] \
            == 2 * WORKERS * CHECKS * PERSONS_PER_CELL
    row = record_of(governance)
    assert (row.cells, row.digest, row.pending_cells) == (2 * WORKERS * CHECKS, queries[-1].detail["ledger_digest"], None)
    assert mismatches(governance) == [] and governance.audit.verify().ok


def test_a_query_waits_for_its_turn_and_gives_up_clearly(ws):
    root, governance, anna = ws
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with Ledger.open(root / "pool", governance, anna, PERMIT):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    with pytest.raises(LedgerBusy, match=f"the query ledger {PERMIT} stayed in use by other queries"):
        with Ledger.open(root / "pool", governance, anna, PERMIT, timeout=0.2):
            pass
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with Ledger.open(root / "pool", governance, anna, PERMIT, timeout=10) as ledger:
        waited = time.monotonic() - started
        assert ledger.state()["ledger_cells"] == 0
    holder.join()
    assert waited >= 0.2
    with Ledger.open(root / "pool", governance, anna, OTHER, timeout=0.2):  # another permit never waits
        pass


def remember_a_total(root: Path, governance: Governance, actor: Actor) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remember b (persons 0-9), c (10-19) and their total; give back d and e, which with them give
    person 0 away (b - d + e), so that a check of both searches for e."""
    b, c, total = cell(range(10)), cell(range(10, 20), number=1), cell(range(20), number=2)
    with Ledger.open(root / "pool", governance, actor, PERMIT) as ledger:
        assert answer(governance, actor, ledger, pd.concat([b, c, total]), {0: 0, 1: 0, 2: 0}, ["persons"]) == {}
    return cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)


def wait_in_the_search(monkeypatch, searching: Path, answered: Path) -> None:
    """Make `Ledger._searched` say it began (a file) and wait until another answer is in (a file)."""
    searched = Ledger._searched

    def waiting(self, *args):
        searching.touch()
        given_up = time.monotonic() + 60
        while not answered.exists() and time.monotonic() < given_up:
            time.sleep(0.01)
        return searched(self, *args)

    monkeypatch.setattr(Ledger, "_searched", waiting)


def _searching_analyst(root: str, actor: Actor, searching: str, answered: str, results) -> None:
    """One analyst's process: an answer whose check searches for the cell to hide (waiting inside
    the search until the test has answered another query), then the answer without that cell."""
    with pytest.MonkeyPatch.context() as patched:
        wait_in_the_search(patched, Path(searching), Path(answered))
        governance = Governance.open(Path(root))
        try:
            d, e = cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)
            with Ledger.open(Path(root) / "pool", governance, actor, PERMIT) as ledger:
                results.put(ledger.check(pd.concat([d, e]), {0: 0, 1: 0}, MIN_FREQUENCY))
                results.put(answer(governance, actor, ledger, d, {0: 0}, ["persons"]))
        except Exception as exc:  # reported to the test, never swallowed
            results.put(f"{type(exc).__name__}: {exc}")
        finally:
            governance.permits.engine.dispose()


@pytest.mark.slow
def test_another_analyst_is_answered_while_a_check_searches_for_cells_to_hide(ws, tmp_path):
    """A search for the cells to hide (minutes for a study's small groups) lets other processes in:
    a query asked meanwhile is answered at once, and the searching check goes on from the state that
    query left. What it then remembers was audited against everything, the file agrees with its
    record and with every remembered row, and the cell it hid is kept as withheld."""
    root, governance, anna = ws
    remember_a_total(root, governance, anna)
    searching, answered = tmp_path / "searching", tmp_path / "answered"
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    worker = context.Process(target=_searching_analyst,
                             args=(str(root), sign_in(governance, "aaro"), str(searching), str(answered), results))
    worker.start()
    try:
        given_up = time.monotonic() + 120
        while not searching.exists() and worker.is_alive() and time.monotonic() < given_up:
            time.sleep(0.01)
        assert searching.exists()
        with Ledger.open(root / "pool", governance, anna, PERMIT, timeout=5) as ledger:  # not the worker's turn
            assert answer(governance, anna, ledger, cell(range(100, 120)), {0: 0}, ["persons"]) == {}
    finally:
        answered.touch()
        worker.join(timeout=120)
    assert [results.get(timeout=10), results.get(timeout=10)] == [{1: ALL_ANSWERS}, {}]
    assert worker.exitcode == 0

    queries = governance.audit.records(action="query")
    assert [(q.actor, q.detail["ledger_cells"]) for q in queries] == [("anna", 3), ("anna", 4), ("aaro", 5)]
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state()["ledger_digest"] == queries[-1].detail["ledger_digest"]
        ledger.verify_contents()
        assert ledger._con().execute("SELECT size FROM withheld").fetchall() == [(10,)]  # e, kept as withheld
        # asked again after all that, e is hidden again; d and the total are the same questions
        assert ledger.check(pd.concat([cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)]),
                            {0: 0, 1: 0}, MIN_FREQUENCY) == {1: ALL_ANSWERS}
    assert mismatches(governance) == [] and governance.audit.verify().ok


def test_threads_of_one_process_still_wait_while_a_check_searches(ws, tmp_path, monkeypatch):
    """The memory a search reads is the process's: its other threads keep waiting for their turn."""
    root, governance, anna = ws
    d, e = remember_a_total(root, governance, anna)
    searching, answered = tmp_path / "searching", tmp_path / "answered"
    wait_in_the_search(monkeypatch, searching, answered)
    found = []
    searcher = threading.Thread(target=lambda: found.append(_checked_in_a_block(root, governance, anna, d, e)))
    searcher.start()
    try:
        given_up = time.monotonic() + 60
        while not searching.exists() and time.monotonic() < given_up:
            time.sleep(0.01)
        with pytest.raises(LedgerBusy, match="stayed in use by other queries for 0.2 s"):
            with Ledger.open(root / "pool", governance, anna, PERMIT, timeout=0.2):
                pass
    finally:
        answered.touch()
        searcher.join(timeout=60)
    assert found == [{1: ALL_ANSWERS}]
    with Ledger.open(root / "pool", governance, anna, PERMIT, timeout=0.2) as ledger:  # given back whole
        assert ledger.state()["ledger_cells"] == 3


def _checked_in_a_block(root: Path, governance: Governance, actor: Actor, *incoming: pd.DataFrame) -> dict[int, str]:
    with Ledger.open(root / "pool", governance, actor, PERMIT) as ledger:
        return ledger.check(pd.concat(incoming), {number: 0 for number in range(len(incoming))}, MIN_FREQUENCY)


# -- no quiet reset -----------------------------------------------------------------------------


def test_a_moved_ledger_stops_the_permit_instead_of_answering_what_it_withheld(ws):
    root, governance, anna = ws
    everyone = cell(range(20))
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert answer(governance, anna, ledger, everyone, {0: 0}, ["persons"]) == {}
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert answer(governance, anna, ledger, cell(range(19)), {0: 0}, ["persons"]) == {0: PAIRS}
    ledger_file(root).rename(root / "moved-away.duckdb")
    assert_refused(root, governance, anna, "the ledger file is missing")
    assert not ledger_file(root).exists()  # not recreated
    assert_refused(root, governance, anna, "stopped earlier: the ledger file is missing")
    (root / "moved-away.duckdb").rename(ledger_file(root))  # the right file back: still stopped
    assert_refused(root, governance, anna, "stopped earlier")
    with Ledger.open(root / "pool", governance, anna, OTHER) as ledger:  # other permits go on
        assert answer(governance, anna, ledger, cell(range(19)), {0: 0}, ["persons"]) == {}
    assert [a.permit for a in run_alerts(governance.audit) if a.rule == LEDGER_MISMATCH] == [PERMIT]


def test_another_permits_ledger_in_its_place_is_refused(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna, PERMIT)
    remember_twice(root, governance, anna, OTHER, first=1000)
    shutil.copyfile(ledger_file(root, OTHER), ledger_file(root, PERMIT))
    assert_refused(root, governance, anna, "the ledger file belongs to another ledger")
    assert_refused(root, governance, anna, "stopped earlier")


def test_an_older_copy_of_the_ledger_is_refused(ws):
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        answer(governance, anna, ledger, cell(range(20)), {0: 0}, ["persons"])
    shutil.copyfile(ledger_file(root), root / "older.duckdb")
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        answer(governance, anna, ledger, cell(range(100, 130)), {0: 0}, ["persons"])
    shutil.copyfile(root / "older.duckdb", ledger_file(root))
    assert_refused(root, governance, anna, "the ledger file holds another state than its record")
    [refused] = mismatches(governance)
    assert (refused.detail["record_cells"], refused.detail["file_cells"]) == (2, 1)
    assert_refused(root, governance, anna, "stopped earlier")


def test_an_emptied_ledger_is_refused_even_with_a_matching_number_of_cells(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    ledger_file(root).unlink()
    con = duckdb.connect(str(ledger_file(root)))  # a new file that claims nothing
    con.execute("CREATE TABLE ledger_state (permit VARCHAR, cells BIGINT, rows BIGINT, digest VARCHAR)")
    con.execute("INSERT INTO ledger_state VALUES (?, 0, 0, ?)", [PERMIT, genesis_digest(PERMIT)])
    con.close()
    assert_refused(root, governance, anna, "the ledger file holds another state than its record")


def test_a_file_that_is_not_a_ledger_is_refused(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    ledger_file(root).write_bytes(b"not a database")
    assert_refused(root, governance, anna, "the ledger file cannot be read as a ledger")


def test_edited_rows_are_refused_and_verify_contents_finds_changed_values(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    con = duckdb.connect(str(ledger_file(root)))
    con.execute("UPDATE contributions SET value = 2 WHERE person = 3")  # same rows, another value
    con.close()
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        with pytest.raises(LedgerTampered, match="do not add up to its digest"):
            ledger.verify_contents()
    assert_refused(root, governance, anna, "stopped earlier")


def test_deleted_rows_are_refused(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    con = duckdb.connect(str(ledger_file(root)))
    con.execute("DELETE FROM contributions WHERE person = 3")
    con.close()
    assert_refused(root, governance, anna, "the ledger file's rows do not match its own state (edited)")


def test_a_file_without_a_record_is_refused(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna, OTHER)
    shutil.copyfile(ledger_file(root, OTHER), ledger_file(root, PERMIT))  # PERMIT never queried
    assert_refused(root, governance, anna, "a ledger file exists without a record")


def test_a_deleted_record_is_refused_when_the_audit_log_shows_answers(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    with governance.permits.engine.begin() as conn:
        conn.execute(delete(query_ledgers_table).where(query_ledgers_table.c.permit == PERMIT))
    ledger_file(root).unlink()  # record and file gone: it would look fresh but for the audit log
    assert_refused(root, governance, anna, "the ledger's record is missing while the audit log shows it remembered")


# -- interrupted updates --------------------------------------------------------------------------


def test_an_update_interrupted_before_the_file_is_dropped_and_said_so(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    state = record_of(governance)
    with governance.permits.engine.begin() as conn:  # step 1 done, then the process died
        conn.execute(update(query_ledgers_table).where(query_ledgers_table.c.permit == PERMIT)
                     .values(pending_cells=state.cells + 1, pending_digest="f" * 64))
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state() == {"ledger": PERMIT, "ledger_cells": state.cells, "ledger_digest": state.digest}
    assert record_of(governance).pending_cells is None
    [recovered] = governance.audit.records(action=RECOVERED_ACTION)
    assert "before it reached the ledger file" in recovered.detail["recovered"] and recovered.outcome == "ok"


def test_an_update_interrupted_after_the_file_is_completed_and_said_so(ws, monkeypatch):
    root, governance, anna = ws
    remember_twice(root, governance, anna)

    def crash(self, cells, digest):
        raise KeyboardInterrupt  # the process dies between the file and the record

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "_commit_pending", crash)
        with pytest.raises(KeyboardInterrupt):
            with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
                ledger.check(cell(range(200, 240)), {0: 0}, MIN_FREQUENCY)
    assert record_of(governance).pending_cells == 3
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state()["ledger_cells"] == 3
        ledger.verify_contents()
    row = record_of(governance)
    assert (row.cells, row.pending_cells, row.status) == (3, None, "active")
    [recovered] = governance.audit.records(action=RECOVERED_ACTION)
    assert "after it reached the ledger file" in recovered.detail["recovered"]


def disk_full_at(patched: pytest.MonkeyPatch, statement: str) -> None:
    """The ledger file's statements that start with `statement` fail as on a full disk."""

    class FullDisk:
        def __init__(self, con):
            self.con = con

        def __getattr__(self, name):
            return getattr(self.con, name)

        def execute(self, sql, *args):
            if sql.startswith(statement):
                raise duckdb.IOException("no space left on device")
            return self.con.execute(sql, *args)

    real = Ledger._con
    patched.setattr(Ledger, "_con", lambda self: FullDisk(real(self)))


def test_a_failed_file_update_leaves_the_record_as_it_was(ws, monkeypatch):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    before = record_of(governance)
    with pytest.raises(ValueError, match="finite"):
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            ledger.remember(cell(range(300, 320), [np.inf] * 20))

    with monkeypatch.context() as patched:
        disk_full_at(patched, "UPDATE ledger_state")
        with pytest.raises(duckdb.IOException):
            with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
                ledger.remember(cell(range(300, 320)))
    assert record_of(governance).pending_cells is None
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state() == {"ledger": PERMIT, "ledger_cells": before.cells, "ledger_digest": before.digest}
        assert ledger._con().execute("SELECT count(*) FROM contributions").fetchall()[0][0] == 50
        ledger.verify_contents()
    assert governance.audit.records(action=RECOVERED_ACTION) == [] and mismatches(governance) == []


@pytest.mark.parametrize("statement", ["INSERT INTO contributions", "COMMIT"], ids=["write", "commit"])
def test_a_write_or_commit_that_fails_leaves_the_record_and_the_memory_as_they_were(ws, monkeypatch, statement):
    """The check writes the change beside the audit (uncommitted), and commits it beside the memory
    taking the change in: a write or a commit that fails comes out of the check as raised; nothing
    is pending, remembered or half-written, the memory that took the change in is not kept, and
    the next check reads the state the file and the record still hold (the same cells are then
    remembered once)."""
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    before = record_of(governance)
    with monkeypatch.context() as patched:
        disk_full_at(patched, statement)
        with pytest.raises(duckdb.IOException, match="no space"):
            with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
                ledger.check(cell(range(300, 320)), {0: 0}, MIN_FREQUENCY)
    assert (record_of(governance).cells, record_of(governance).pending_cells) == (before.cells, None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state() == {"ledger": PERMIT, "ledger_cells": before.cells, "ledger_digest": before.digest}
        assert ledger._memory().key == ledger._key() and ledger._memory().highest == before.cells
        assert answer(governance, anna, ledger, cell(range(300, 320)), {0: 0}, ["persons"]) == {}
        assert ledger._con().execute("SELECT count(*) FROM contributions").fetchall()[0][0] == 70
        ledger.verify_contents()
    assert record_of(governance).cells == before.cells + 1 and mismatches(governance) == []


def test_an_audit_that_fails_rolls_back_the_write_beside_it(ws, monkeypatch):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    before = record_of(governance)
    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "_gives_away", lambda *args: (_ for _ in ()).throw(MemoryError("audit")))
        with pytest.raises(MemoryError):
            with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
                ledger.check(cell(range(300, 320)), {0: 0}, MIN_FREQUENCY)
    assert (record_of(governance).cells, record_of(governance).pending_cells) == (before.cells, None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.state() == {"ledger": PERMIT, "ledger_cells": before.cells, "ledger_digest": before.digest}
        assert ledger._con().execute("SELECT count(*) FROM contributions").fetchall()[0][0] == 50
        ledger.verify_contents()


def test_an_answer_with_a_cell_found_is_not_written_at_all(ws):
    """Two cells of ten persons, then (1..9 and 20..29) in one column and 20..29 in another: together
    they give person 0 away (no pair does), so the second cell is found. The change written beside
    the audit (both cells) is rolled back and nothing is remembered: the engine hides the cell and
    asks again with what it would show then, which is remembered when it passes."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert answer(governance, anna, ledger, pd.concat([cell(range(10)), cell(range(10, 20), number=1)]),
                      {0: 0, 1: 0}, ["persons"]) == {}
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        incoming = pd.concat([cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)])
        assert answer(governance, anna, ledger, incoming, {0: 0, 1: 1}, ["persons", "persons"]) == {1: ALL_ANSWERS}
        assert ledger.state()["ledger_cells"] == 2
        assert answer(governance, anna, ledger, incoming[incoming["cell"] == 0], {0: 0}, ["persons"]) == {}
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        rows = ledger._con().execute("SELECT cell, min(person), count(*) FROM contributions GROUP BY cell "
                                     "ORDER BY cell").fetchall()
        assert rows == [(1, 0, 10), (2, 10, 10), (3, 1, 19)]
        ledger.verify_contents()


@pytest.mark.parametrize("read_again", [False, True], ids=["kept in memory", "read from the file"])
def test_a_cell_the_all_answers_audit_found_is_hidden_again_when_asked_again(ws, read_again):
    """Persons 0..9, 10..19 and (1..9, 20..29) remembered; then 20..29 alone gives person 0 away
    with them (no pair does). The engine hides it and checks what is left, here nothing: the found
    cell is still kept, as withheld, bound into the digest. Asked again, the comparison alone finds
    it (no audit), in this process or another; a tampered table of withheld cells is found by
    `verify_contents`."""
    from safepool.query import ledger_memory

    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([cell(range(10)), cell(range(10, 20), number=1),
                                       cell([*range(1, 10), *range(20, 30)], number=2)]),
                            {0: 0, 1: 1, 2: 2}, MIN_FREQUENCY) == {}
    found = cell(range(20, 30))
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        digest = ledger.digest
        assert ledger.pairs(found, {0: 0}, MIN_FREQUENCY) == ({}, False)
        assert ledger.check(found, {0: 0}, MIN_FREQUENCY) == {0: ALL_ANSWERS}
        assert ledger.check(found.iloc[:0], {}, MIN_FREQUENCY) == {}  # what the engine shows then: nothing
        assert (ledger.cells, ledger.rows) == (3, 39) and ledger.digest != digest
        ledger.verify_contents()
    assert record_of(governance).digest == ledger.digest
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.pairs(found, {0: 0}, MIN_FREQUENCY) == ({0: ALL_ANSWERS}, False)
        assert ledger.check(pd.concat([found, cell(range(40, 50), number=1)]), {0: 0, 1: 1},
                            MIN_FREQUENCY) == {0: ALL_ANSWERS}
        # the same persons under another question are not hidden for being those of the withheld cell
        # (that would tell them apart): the audit checks them again
        assert ledger.pairs(found, {0: 0}, MIN_FREQUENCY, definitions=EntryDefinitions({0: "another"})) == ({}, False)
        # another cell is not that one: the comparison leaves it to the audit
        assert ledger.pairs(cell(range(21, 30)), {0: 0}, MIN_FREQUENCY) == ({}, False)
    con = duckdb.connect(str(ledger_file(root)))
    assert con.execute("SELECT position, after, size FROM withheld").fetchall() == [(0, 3, 10)]
    con.execute("DELETE FROM withheld")
    con.close()
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        with pytest.raises(LedgerTampered, match="do not add up to its digest"):
            ledger.verify_contents()


def test_a_write_that_fails_beside_the_audit_is_raised_when_a_cell_is_found(ws, monkeypatch):
    """The path of a cell found rolls the written change back; a write that failed
    (such as a file found replaced when it was opened) stops the query there too."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert answer(governance, anna, ledger, pd.concat([cell(range(10)), cell(range(10, 20), number=1)]),
                      {0: 0, 1: 0}, ["persons"]) == {}
    before = record_of(governance)
    written: list[object] = []
    real = Ledger._write

    def once_failing(self, change):  # the write beside the audit fails; a later one would not
        written.append(change)
        if len(written) == 1:
            raise RuntimeError("replaced")
        real(self, change)

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "_write", once_failing)
        with pytest.raises(RuntimeError, match="replaced"):
            with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
                ledger.check(pd.concat([cell([*range(1, 10), *range(20, 30)]), cell(range(20, 30), number=1)]),
                             {0: 0, 1: 1}, MIN_FREQUENCY)
    assert len(written) == 1
    assert (record_of(governance).cells, record_of(governance).pending_cells) == (before.cells, None)


# -- withheld answers and the differencing alert --------------------------------------------------


def test_withheld_answers_are_audited_as_withheld_and_the_alert_fires(ws):
    root, governance, anna = ws
    pool = root / "pool"
    group = range(40)
    values = np.arange(1, 41, dtype=float)
    asked = [
        (cell(group, values), {}),                          # everyone: answered
        (cell(range(39), values[:39]), {0: PAIRS}),         # everyone but the last: withheld
        (cell(range(1, 40), values[1:]), {0: PAIRS}),       # everyone but the first: withheld
        (pd.concat([cell(range(20), values[:20]), cell(range(20, 39), values[20:39], number=1)]),
         {1: ALL_ANSWERS}),                                 # halves, the second without one person
    ]
    for i, (incoming, expected) in enumerate(asked):
        with Ledger.open(pool, governance, anna, PERMIT) as ledger:
            column_of = {c: c for c in incoming["cell"].unique().tolist()}
            measures = ["sum"] * len(column_of)
            assert answer(governance, anna, ledger, incoming, column_of, measures, digest=f"{i:064x}") == expected
    queries = governance.audit.records(action="query")
    assert [q.outcome for q in queries] == ["ok", WITHHELD, WITHHELD, WITHHELD]
    assert queries[1].detail["withheld"] == [{"column": 1, "measure": "sum", "cells": 1,
                                              "check": "differencing (pairs)"}]
    assert queries[3].detail["withheld"] == [{"column": 2, "measure": "sum", "cells": 1,
                                              "check": "differencing (all answers)"}]
    assert queries[3].detail["ledger_cells"] == 1  # nothing of an answer with a cell found is remembered
    [alert] = [a for a in run_alerts(governance.audit) if a.rule == DIFFERENCING]
    assert (alert.actor, alert.permit, alert.first_seq, alert.last_seq) == ("anna", PERMIT, queries[1].seq,
                                                                            queries[3].seq)
    assert "3 answers by one user had cells hidden" in alert.message


def test_a_damaged_state_is_refused_without_quoting_it(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    con = duckdb.connect(str(ledger_file(root)))
    con.execute("UPDATE ledger_state SET digest = '010203A1234 not a digest'")
    con.close()
    assert_refused(root, governance, anna, "the ledger file's own state is damaged")
    assert "010203A1234" not in mismatches(governance)[-1].detail_json


def test_a_cell_asked_again_in_the_same_process_leaves_the_file_unread_until_it_changes(ws, monkeypatch):
    """A process that left the file as it is and kept its memory answers a question asked again
    without opening the file; a file touched since (even with its times put back) is opened and
    checked again, and a rolled-back one is still refused."""
    import os

    root, governance, anna = ws
    opened: list[Path] = []
    connect = Ledger._connect
    monkeypatch.setattr(Ledger, "_connect", lambda self: opened.append(self.path) or connect(self))
    remember_twice(root, governance, anna)
    shutil.copyfile(ledger_file(root), root / "older.duckdb")
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert answer(governance, anna, ledger, cell(range(20, 60)), {0: 0}, ["persons"]) == {}
        state = ledger.state()
    opened.clear()
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert answer(governance, anna, ledger, cell(range(20, 60)), {0: 0}, ["persons"]) == {}
        assert ledger.state() == state
    assert opened == []
    times = os.stat(ledger_file(root))
    os.utime(ledger_file(root), ns=(times.st_atime_ns, times.st_mtime_ns))  # its change time moves
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert answer(governance, anna, ledger, cell(range(20, 60)), {0: 0}, ["persons"]) == {}
    assert opened == [ledger_file(root)]
    opened.clear()
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:  # a file put in its place while in use
        assert answer(governance, anna, ledger, cell(range(200, 240)), {0: 0}, ["persons"]) == {}
        ledger._close()
        shutil.copyfile(ledger_file(root), root / "same.duckdb")
        (root / "same.duckdb").rename(ledger_file(root))
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:  # not trusted: opened and checked
        assert answer(governance, anna, ledger, cell(range(200, 240)), {0: 0}, ["persons"]) == {}
    assert opened == [ledger_file(root), ledger_file(root)]
    shutil.copyfile(root / "older.duckdb", ledger_file(root))
    assert_refused(root, governance, anna, "the ledger file holds another state than its record")


def test_two_permits_ledgers_used_at_once_in_one_process_keep_their_own_cells(ws):
    """Both files are attached in the one DuckDB instance the process keeps for their folder;
    two threads, one per permit, write, commit and checkpoint at the same time."""
    root, governance, anna = ws
    failures: list[BaseException] = []

    def remember(permit: str, first: int) -> None:
        try:
            for round_number in range(12):
                start = first + 100 * round_number
                with Ledger.open(root / "pool", governance, anna, permit) as ledger:
                    assert answer(governance, anna, ledger, cell(range(start, start + 40)), {0: 0}, ["persons"]) == {}
        except BaseException as exc:  # raised in the test's thread below
            failures.append(exc)

    threads = [threading.Thread(target=remember, args=(permit, first))
               for permit, first in ((PERMIT, 0), (OTHER, 50_000))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for permit in (PERMIT, OTHER):
        with Ledger.open(root / "pool", governance, anna, permit) as ledger:
            assert ledger.state()["ledger_cells"] == 12
            ledger.verify_contents()
        assert record_of(governance, permit).cells == 12


def attached_files() -> list[str]:
    """The files attached in this process's DuckDB instances (none once every ledger is closed)."""
    from safepool import duckdb_connection

    return [name for instance in duckdb_connection._FOLDERS.values() for (name,) in instance.execute(
        "SELECT database_name FROM duckdb_databases() WHERE NOT internal AND database_name <> 'memory'").fetchall()]


def test_a_file_moved_away_while_it_is_attached_is_refused_and_not_left_attached(ws, monkeypatch):
    """Left attached, the file would stay locked for the process's life: every other process would
    find the ledger busy, and this one would find it unreadable."""
    import safepool.query.ledger as ledger_module

    root, governance, anna = ws
    remember_twice(root, governance, anna)
    attach = ledger_module.attach_duckdb

    def moved_meanwhile(path):
        attached = attach(path)
        Path(path).rename(f"{path}.away")
        return attached

    monkeypatch.setattr(ledger_module, "attach_duckdb", moved_meanwhile)
    with pytest.raises(LedgerTampered, match="the ledger file is missing"):
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            ledger.verify_contents()  # reads the file, which is attached then
    monkeypatch.undo()
    assert record_of(governance).status == STOPPED and len(mismatches(governance)) == 1
    assert attached_files() == []
    Path(f"{ledger_file(root)}.away").rename(ledger_file(root))
    with duckdb.connect(str(ledger_file(root))) as another:  # not locked by this process
        assert another.execute("SELECT cells FROM ledger_state").fetchone() == (2,)


def test_a_folder_in_place_of_the_file_is_refused(ws):
    root, governance, anna = ws
    remember_twice(root, governance, anna)
    ledger_file(root).unlink()
    ledger_file(root).mkdir()
    assert_refused(root, governance, anna, "the ledger file cannot be read as a ledger")
    assert attached_files() == []


def test_a_fresh_ledger_that_cannot_be_made_in_its_folder_is_refused_without_naming_paths(ws, tmp_path):
    root, governance, anna = ws
    (root / "pool" / LEDGER_DIR).mkdir(exist_ok=True)
    ledger_file(root).symlink_to(tmp_path / "elsewhere" / "ledger.duckdb")  # outside the folder, and missing
    assert_refused(root, governance, anna, "the ledger file cannot be made in its folder")
    [refused] = mismatches(governance)
    assert str(tmp_path) not in refused.detail_json
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("seed", range(6))
def test_the_comparison_finds_what_a_person_by_person_reference_finds(ws, seed):
    """Random remembered cells (a sum kept as the cells it adds up and one kept with its rows among
    them) and random incoming cells over 40 persons with few values: each incoming cell is the
    same as a remembered one when some remembered cell holds exactly its persons and values, and
    else close when some remembered cell of a near size shares a person with it and differs from
    it by 1 to MIN_FREQUENCY - 1 persons, as found by comparing every pair person by person;
    whether the memory took the cells in or the file is read again."""
    from safepool.query import ledger_memory

    rng = np.random.default_rng(seed)

    def random_cell(number: int) -> pd.DataFrame:
        persons = np.sort(rng.choice(40, size=int(rng.integers(5, 25)), replace=False))
        return cell(persons, rng.choice([1.0, 2.0, 7.5], size=len(persons)), number=number)

    root, governance, anna = ws
    a, b = cell(range(0, 12), number=0), cell(range(12, 20), [2.0] * 8, number=1)
    total = pd.concat([a, b]).assign(cell=3)  # a sum of a and b that comes with its rows
    others = [random_cell(number) for number in range(4, 10)]
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        ledger.remember(pd.concat([a, b, total, *others], ignore_index=True), sums=[3], defined={2: [0, 1]})
        kept = {(int(c), int(p)): float(v) for c, p, v in
                ledger._con().execute("SELECT cell, person, value FROM contributions").fetchall()}
        sums = dict(ledger.contents()[1])
    if seed % 2:
        ledger_memory.keep(str(ledger_file(root)), None)
    remembered: dict[int, dict[int, float]] = {}
    for (number, person), value in kept.items():
        remembered.setdefault(number, {})[person] = value
    for number, members in sums.items():
        remembered[number] = {p: v for m in members for p, v in remembered[m].items()}
    incoming = [random_cell(0) for _ in range(8)] + [a, total.assign(cell=0), total.iloc[1:].assign(cell=0)]
    found = []
    for asked in incoming:
        mine = dict(zip(asked["person"].astype(int), asked["value"]))
        differing = []
        for theirs in remembered.values():
            common = set(mine) & set(theirs)
            same = sum(abs(mine[p] - theirs[p]) <= 1e-9 * max(abs(mine[p]), abs(theirs[p]), 1) for p in common)
            if common and abs(len(mine) - len(theirs)) < MIN_FREQUENCY:
                differing.append(len(mine) + len(theirs) - len(common) - same)
        expected = (set(), {0}) if 0 in differing else \
            ({0} if any(0 < d < MIN_FREQUENCY for d in differing) else set(), set())
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.compare(asked, MIN_FREQUENCY) == expected
        found.append(expected)
    assert (set(), {0}) in found and ({0}, set()) in found  # a, the total, and the total but one person
