"""A permit's own query ledger, kept before the workspace had one, goes on counting: it is carried
over into the workspace's ledger at the permit's first query, once, and a stopped one stays stopped."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from safepool.disclosure.mitigation import SHOWN
from safepool.query.ledger import LEDGER_DIR, WORKSPACE_LEDGER, Ledger, LedgerTampered
from safepool.query.ledger_carry_over import CARRIED, CARRIED_ACTION
from test_ledger import record_of
from safepool.pool.ledger_keys import LEDGER_KEYS_FILE
from safepool.query.engine import run_query
from safepool.query.ledger_carry_over import LedgerNotCarried
from test_query_attacks import second_permit
from test_query_engine import PERMIT, ask, copy_of, template  # noqa: F401

EVERYONE = "SELECT sum(amount) AS s FROM payments WHERE amount < 10000"
BUT_ONE = "SELECT sum(amount) AS s FROM payments JOIN population USING (pid) WHERE amount < 10000 " \
          "AND birth_year <> 1940"


@pytest.fixture
def setup(template, tmp_path):  # noqa: F811
    return copy_of(template, tmp_path / "ws")


@pytest.fixture
def elsewhere(template, tmp_path):  # noqa: F811
    return copy_of(template, tmp_path / "elsewhere")


def remember_as_before(setup, elsewhere, permit: str = PERMIT, question: str = EVERYONE) -> None:
    """The permit's own ledger as the engine kept it before: the answer to `question` (a sum of
    payments), each person by DuckDB's hash of the permit's pseudonym, with the definition the
    engine gives that question (read from the workspace ledger of a copy asked it: `elsewhere`)."""
    workspace, governance, anna = setup
    ask(elsewhere, question)
    with duckdb.connect(str(elsewhere[0].pool_dir / LEDGER_DIR / f"{WORKSPACE_LEDGER}.duckdb"), read_only=True) as con:
        definition = con.execute("SELECT definition FROM cells ORDER BY cell DESC LIMIT 1").fetchall()[0][0]
    where = "amount < 10000" + (" AND birth_year <> 1940" if question == BUT_ONE else "")
    with duckdb.connect(str(workspace.pool_dir / permit / "pool.duckdb"), read_only=True) as con:
        rows = con.execute(f"SELECT 0 AS cell, hash(pid) AS person, sum(amount) AS value FROM payments "
                           f"JOIN population USING (pid) WHERE {where} GROUP BY pid ORDER BY person").df()
    with Ledger.open(workspace.pool_dir, governance, anna, permit) as ledger:
        ledger.carry(rows.astype({"person": np.uint64}), {}, {0: definition}, 5)


def test_what_a_permit_remembered_before_is_carried_over_once_and_still_counts(setup, elsewhere):
    workspace, governance, anna = setup
    remember_as_before(setup, elsewhere)
    later = ask(setup, BUT_ONE)
    assert np.isnan(later.table.loc[0, "s"]) and later.table.loc[0, "status"] == "suppressed"
    [carried] = governance.audit.records(action=CARRIED_ACTION)
    assert (carried.permit, carried.detail["cells"], carried.detail["persons_not_carried"]) == (PERMIT, 1, 0)
    assert governance.audit.records(action="query")[-1].outcome == "withheld"
    folder = workspace.pool_dir / LEDGER_DIR
    assert not (folder / f"{PERMIT}.duckdb").exists() and (folder / f"{PERMIT}.carried.duckdb").exists()
    record = record_of(governance)
    assert (record.status, record.stopped_reason) == ("stopped", CARRIED)
    ask(setup, "SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex")
    assert len(governance.audit.records(action=CARRIED_ACTION)) == 1  # once


def test_the_same_question_asked_again_after_the_carry_over_is_answered_as_it_was(setup, elsewhere):
    remember_as_before(setup, elsewhere)
    again = ask(setup, EVERYONE)
    assert again.table.loc[0, "status"] == SHOWN


def test_a_stopped_permit_ledger_keeps_the_permits_queries_stopped(setup, elsewhere):
    workspace, governance, anna = setup
    remember_as_before(setup, elsewhere)
    (workspace.pool_dir / LEDGER_DIR / f"{PERMIT}.duckdb").unlink()  # moved away: the permit was stopped
    for _ in range(2):
        with pytest.raises(LedgerTampered, match=f"the query ledger {PERMIT} does not match its record"):
            ask(setup, BUT_ONE)
    assert governance.audit.records(action=CARRIED_ACTION) == []
    assert governance.audit.records(action="query") == []


def test_persons_the_pool_no_longer_holds_are_counted_not_carried(setup, elsewhere):
    workspace, governance, anna = setup
    remember_as_before(setup, elsewhere)
    with Ledger.open(workspace.pool_dir, governance, anna, PERMIT) as ledger:
        stranger = pd.DataFrame({"cell": [0] * 6, "person": np.arange(1, 7, dtype=np.uint64), "value": 1.0})
        ledger.remember(stranger)
    ask(setup, EVERYONE)
    [carried] = governance.audit.records(action=CARRIED_ACTION)
    assert (carried.detail["cells"], carried.detail["persons_not_carried"]) == (2, 6)


def test_every_permits_ledger_is_carried_before_another_permit_is_answered(setup, elsewhere):
    """A review got a person's value across two permits after the upgrade: the first permit's old
    answer was carried only at that permit's own next query. Every permit's ledger is carried
    before any query is answered."""
    workspace, governance, anna = setup
    remember_as_before(setup, elsewhere)
    other = second_permit(setup)
    later = run_query(workspace.pool_dir, governance, anna, other, BUT_ONE)
    assert np.isnan(later.table.loc[0, "s"]) and later.table.loc[0, "status"] == "suppressed"
    assert [r.permit for r in governance.audit.records(action=CARRIED_ACTION)] == [PERMIT]


def test_a_permits_ledger_that_cannot_be_carried_stops_every_query_until_it_can(setup, elsewhere):
    workspace, governance, anna = setup
    remember_as_before(setup, elsewhere)
    other = second_permit(setup)
    (workspace.pool_dir / PERMIT / LEDGER_KEYS_FILE).unlink()  # a pool built before ledger keys
    with pytest.raises(LedgerNotCarried, match=f"permit {PERMIT} is not yet carried .*`safepool pool ledger-keys {PERMIT}`"):
        run_query(workspace.pool_dir, governance, anna, other, BUT_ONE)
    refused = governance.audit.records(action="query_refused")[-1]
    assert (refused.permit, refused.outcome) == (other, "refused")
    assert governance.audit.records(action="query") == []


def test_answers_of_two_permits_set_against_each_other_before_are_not_carried_both(setup, elsewhere):
    """Before the ledger spanned permits, everyone in one permit and everyone but one in the other
    were both shown. Carried unchecked, the two would make every later answer fail the all-answers
    audit; the second is left out (counted), and the workspace answers on."""
    workspace, governance, anna = setup
    other = second_permit(setup)
    remember_as_before(setup, elsewhere)
    remember_as_before(setup, elsewhere, other, BUT_ONE)
    answer = ask(setup, "SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex")
    assert answer.table["status"].eq(SHOWN).all()
    carried = {r.permit: r.detail for r in governance.audit.records(action=CARRIED_ACTION)}
    assert carried[PERMIT]["cells_not_carried"] == 0 and carried[other]["cells_not_carried"] == 1
