"""The ledger's checks of an answer have a time budget of their own, as the pool's statements have.

A review asked one query crossing entry quarter with observed quarter after a study had run: the
pool answered in well under a second and the ledger's checks then ran for 29 minutes. The checks
run in Python and NumPy and cannot be interrupted, so they ask the query's deadline between their
steps; past it the query is refused and nothing of it is remembered, recorded or half-written.
"""

from __future__ import annotations

import threading
import time

import pytest

from safepool.query import deadline as query_deadline
from safepool.query.deadline import Deadline, not_counted, time_left, watched
from safepool.query.ledger import WORKSPACE_LEDGER, Ledger
from safepool.query.ledger_memory import LedgerMemory
from safepool.query.model import QueryRefused
from safepool.query.request import AggregateRequest
from safepool.query.side_thread import SideThread
from test_query_engine import PERMIT, ask, setup, template  # noqa: F401 (fixtures)

BY_SEX = AggregateRequest(table="population", measure="persons", by=["sex"])
BY_YEAR = AggregateRequest(table="population", measure="persons", by=["year(birth_year)"])


def _ledger_cells(setup) -> int:
    workspace, governance, anna = setup
    with Ledger.open(workspace.pool_dir, governance, anna, WORKSPACE_LEDGER, permit=PERMIT) as ledger:
        return ledger.cells


def _expired() -> None:
    """The current query's deadline moved to now, as a long check would leave it."""
    current = query_deadline._CURRENT.get()
    assert current is not None, "the ledger's checks run under the query's deadline"
    current.ends = time.monotonic()


def test_a_query_past_its_time_in_the_ledgers_checks_is_refused_and_leaves_nothing(setup, monkeypatch):
    workspace, governance, anna = setup
    ask(setup, BY_SEX)
    cells = _ledger_cells(setup)
    answered = len(governance.audit.records(action="query"))
    audit = LedgerMemory.audit

    def long_audit(self, *args, **kwargs):
        _expired()
        return audit(self, *args, **kwargs)

    monkeypatch.setattr(LedgerMemory, "audit", long_audit)
    with pytest.raises(QueryRefused, match="longer than the policy's budget of 120 seconds .*while it was trying to "
                                           "check the answer against the earlier answers") as refusal:
        ask(setup, BY_YEAR)
    assert "120 seconds" in str(refusal.value)
    assert _ledger_cells(setup) == cells  # nothing of it remembered
    assert len(governance.audit.records(action="query")) == answered  # no answer recorded
    refused = governance.audit.records(action="query_refused")[-1]
    assert refused.outcome == "refused" and "check the answer against the earlier answers" in refused.detail["reason"]
    assert governance.audit.verify().ok

    monkeypatch.setattr(LedgerMemory, "audit", audit)  # the same question in time is answered and remembered
    answer = ask(setup, BY_YEAR)
    assert not answer.table.empty and _ledger_cells(setup) > cells


def test_time_left_refuses_only_past_the_deadline_and_only_inside_a_query():
    time_left("anything")  # no query: nothing to hold to (a study's run)
    with watched(Deadline(60)):
        time_left("add up")
    with watched(Deadline(0.0)), pytest.raises(QueryRefused, match="budget of 0 seconds .*trying to add up"):
        time_left("add up")
    time_left("anything")  # the block's deadline is gone with it


def test_work_on_a_side_thread_holds_to_the_deadline_of_the_code_that_started_it():
    with watched(Deadline(0.0)):
        beside = SideThread("beside", lambda: time_left("work beside"))
    with pytest.raises(QueryRefused, match="work beside"):
        beside.wait()
    elsewhere = threading.Thread(target=lambda: time_left("elsewhere"))  # no deadline of its own
    elsewhere.start()
    elsewhere.join()


def test_waiting_for_another_querys_turn_is_not_counted():
    with watched(Deadline(0.05)):
        with not_counted():
            time.sleep(0.1)
        time_left("check")  # the wait moved the deadline on
        time.sleep(0.1)
        with pytest.raises(QueryRefused):
            time_left("check")
