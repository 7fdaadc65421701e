"""Transactions (issue 11, point 3): a state change and its audit record commit together or not at
all; ids are taken inside the insert's transaction; every phase or status change is a
compare-and-set on the state it read, so of two conflicting actions exactly one wins and the other
gets Conflict (audited), from several processes at once, and nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from governed import PASSWORD, governance_with_users, sign_in, tiny_request
from recorded_outputs import CONTEXT, by_area, governed_outputs, record
from safepool.disclosure.output_tables import OutputStatus, output_reviews_table, outputs_table, releases_table
from safepool.faults import Conflict, Refused
from safepool.governance.assessment import ApprovalRole
from safepool.governance.permits import Phase, approvals_table, permits_table
from safepool.governance.users import Role

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

# One person acting in a process of their own. Each first waits at a barrier just before its
# transaction opens (after everything it read and checked), so that every party acts on the same
# state: the race the compare-and-set has to settle.
CHILD = r"""
import json, os, sys, time
from contextlib import contextmanager
from pathlib import Path

import governed
from recorded_outputs import CONTEXT, by_area
from safepool.errors import SafepoolError
from safepool.faults import Conflict
from safepool.governance.assessment import ApprovalRole
from safepool.governance.context import Governance
from safepool.governance.permits import Phase

root, barrier, parties, name, action, *args = sys.argv[1:]
governance = Governance.open(Path(root))
actor = governed.sign_in(governance, name)
opened = governance.audit.transaction
waited = []


@contextmanager
def at_the_barrier():
    if not waited:
        waited.append(True)
        Path(barrier, name).touch()
        deadline = time.monotonic() + 60
        while len(os.listdir(barrier)) < int(parties) and time.monotonic() < deadline:
            time.sleep(0.005)
    with opened() as tx:
        yield tx


governance.audit.transaction = at_the_barrier
try:
    if action == "approve":
        result = governance.permits.approve(actor, args[0], ApprovalRole(args[1])).status
    elif action == "reject":
        result = governance.permits.reject(actor, args[0], "not now").status
    elif action == "advance":
        result = governance.permits.advance(actor, args[0], Phase[args[1]]).phase.name
    elif action == "review":
        result = governance.outputs.review(actor, args[0], args[1], "reviewed at once").status
    elif action == "release":
        result = governance.outputs.release(actor, args).name
    elif action == "request":
        governance.outputs.request_release(actor, args, CONTEXT)
        result = "requested"
    elif action == "record":
        result = [governance.outputs.record(actor, args[0], by_area({"north": 40 + i, "south": 33}),
                                            "query", "table").id for i in range(int(args[1]))]
    else:
        raise SystemExit(f"unknown action {action}")
    print(json.dumps({"who": name, "outcome": "ok", "result": result}))
except Conflict as error:
    print(json.dumps({"who": name, "outcome": "conflict", "message": str(error)}))
except SafepoolError as error:
    print(json.dumps({"who": name, "outcome": type(error).__name__, "message": str(error)}))
"""


def race(root: Path, tmp_path: Path, *parties: tuple[str, str, list[str]]) -> dict[str, dict]:
    """Run each (user, action, args) in its own process, all released at once; their outcomes."""
    barrier = tmp_path / f"barrier-{len(list(tmp_path.glob('barrier-*')))}"
    barrier.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")]))
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(barrier), str(len(parties)), name,
                                  action, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for name, action, args in parties]
    outcomes = {}
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err
        outcome = json.loads(out.strip().splitlines()[-1])
        outcomes[outcome["who"]] = outcome
    return outcomes


def one_wins(outcomes: dict[str, dict]) -> tuple[str, str]:
    """Exactly one party won and every other got Conflict; (winner, loser)."""
    won = [who for who, o in outcomes.items() if o["outcome"] == "ok"]
    lost = [who for who, o in outcomes.items() if o["outcome"] == "conflict"]
    assert len(won) == 1 and len(lost) == len(outcomes) - 1, outcomes
    return won[0], lost[0]


def count(governance, table, *where) -> int:
    with governance.audit.engine.connect() as con:
        return con.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def conflicts(governance, action: str):
    return [r for r in governance.audit.records(action=action, outcome="error") if r.detail["reason"] == "conflict"]


# --------------------------------------------------------------------------- one transaction


def test_a_state_change_and_its_record_commit_together_or_not_at_all(tmp_path):
    governance = governance_with_users(tmp_path)
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-1")
    head = governance.audit.head().seq
    with pytest.raises(RuntimeError, match="boom"):
        with governance.audit.transaction() as tx:
            tx.conn.execute(permits_table.update().where(permits_table.c.id == "P-1").values(status="approved"))
            tx.append(actor="apu", role="approver", action="permit_transition", permit="P-1")
            raise RuntimeError("boom")
    assert governance.permits.get("P-1").status == "pending"  # the change rolled back ...
    assert governance.audit.head().seq == head  # ... and its record with it
    with governance.audit.transaction() as tx:
        tx.conn.execute(permits_table.update().where(permits_table.c.id == "P-1").values(built_by="stella"))
        record = tx.append(actor="stella", role="steward", action="pool_build", permit="P-1")
    assert governance.permits.get("P-1").built_by == "stella" and governance.audit.head() == record
    assert governance.audit.verify().ok


def test_a_refusal_inside_a_transaction_is_audited_after_the_rollback(tmp_path):
    governance = governance_with_users(tmp_path)
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-1")
    with pytest.raises(Refused, match="permit_approve refused: not today"):
        with governance.audit.transaction() as tx:
            tx.conn.execute(permits_table.update().where(permits_table.c.id == "P-1").values(status="approved"))
            tx.append(actor="apu", role="approver", action="permit_transition", permit="P-1")
            raise tx.refuse("apu", "approver", "permit_approve", "not today", permit="P-1")
    assert governance.permits.get("P-1").status == "pending"
    last = governance.audit.head()
    assert (last.action, last.outcome, last.detail, last.permit) == (
        "permit_approve", "refused", {"reason": "not today"}, "P-1")
    assert governance.audit.records(action="permit_transition", user="apu") == []


def test_nothing_else_appends_while_a_transaction_is_open(tmp_path):
    """Appending beside an open transaction would wait for its own lock: it is refused at once."""
    governance = governance_with_users(tmp_path)
    with pytest.raises(RuntimeError, match="inside an open audit transaction"):
        with governance.audit.transaction():
            governance.audit.append(actor="x", role="none", action="login")
    with pytest.raises(RuntimeError, match="already open"):
        with governance.audit.transaction():
            with governance.audit.transaction():
                pass
    assert governance.audit.verify().ok


def test_a_stale_phase_is_a_conflict_and_changes_nothing(tmp_path, monkeypatch):
    """advance reads the phase, then writes it only if it is unchanged (compare-and-set)."""
    governance = governance_with_users(tmp_path)
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-1")
    for role, who in ((ApprovalRole.approver, "apu"), (ApprovalRole.city_management, "city"),
                      (ApprovalRole.data_protection_officer, "dpo")):
        governance.permits.approve(sign_in(governance, who), "P-1", role)
    stella = sign_in(governance, "stella")
    stale = governance.permits.get("P-1")
    governance.permits.advance(stella, "P-1", Phase.preparing_data)
    monkeypatch.setattr(governance.permits, "get", lambda permit_id: stale)  # as read before the other's change
    with pytest.raises(Conflict, match="permit_transition: permit P-1 changed"):
        governance.permits.advance(stella, "P-1", Phase.preparing_data)
    monkeypatch.undo()
    assert governance.permits.get("P-1").phase == Phase.preparing_data
    assert [t.phase for t in governance.permits.transitions("P-1")].count("preparing data") == 1
    assert len(conflicts(governance, "permit_transition")) == 1


# --------------------------------------------------------------------------- races between processes


@pytest.fixture
def pending_permit(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    governance = governance_with_users(root)
    governance.users.add(sign_in(governance, "admin"), "ada", PASSWORD, [Role.approver])
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-1")
    return root, governance


def test_two_approvals_in_one_role_one_wins(pending_permit, tmp_path):
    root, governance = pending_permit
    outcomes = race(root, tmp_path, ("apu", "approve", ["P-1", "approver"]), ("ada", "approve", ["P-1", "approver"]))
    winner, loser = one_wins(outcomes)
    assert "permit_approve: permit P-1 changed while this action was being made" in outcomes[loser]["message"]
    with governance.audit.engine.connect() as con:
        given = con.execute(select(approvals_table.c.actor).where(approvals_table.c.permit == "P-1")).scalars().all()
    assert given == [winner]
    assert [c.actor for c in conflicts(governance, "permit_approve")] == [loser]
    assert [r.actor for r in governance.audit.records(action="permit_transition")][-1] == winner
    assert governance.audit.verify().ok


def test_approvals_in_different_roles_both_count(pending_permit, tmp_path):
    """Not a conflict: each role approves once, and the last one approves the permit."""
    root, governance = pending_permit
    outcomes = race(root, tmp_path, ("apu", "approve", ["P-1", "approver"]),
                    ("city", "approve", ["P-1", "city_management"]),
                    ("dpo", "approve", ["P-1", "data_protection_officer"]))
    assert {o["outcome"] for o in outcomes.values()} == {"ok"}, outcomes
    permit = governance.permits.get("P-1")
    assert (permit.status, permit.phase) == ("approved", Phase.data_request)
    assert count(governance, approvals_table, approvals_table.c.permit == "P-1") == 3
    assert [t.note for t in governance.permits.transitions("P-1")].count("all approvals given: permit approved") == 1
    assert governance.audit.verify().ok


def test_approve_against_reject_one_wins(pending_permit, tmp_path):
    root, governance = pending_permit
    outcomes = race(root, tmp_path, ("apu", "approve", ["P-1", "approver"]), ("ada", "reject", ["P-1"]))
    winner, _ = one_wins(outcomes)
    permit = governance.permits.get("P-1")
    assert permit.status == ("rejected" if winner == "ada" else "pending")
    assert count(governance, approvals_table, approvals_table.c.permit == "P-1") == (winner == "apu")
    assert governance.audit.verify().ok


def test_two_stewards_advancing_one_permit_one_wins(pending_permit, tmp_path):
    root, governance = pending_permit
    for role, who in ((ApprovalRole.approver, "apu"), (ApprovalRole.city_management, "city"),
                      (ApprovalRole.data_protection_officer, "dpo")):
        governance.permits.approve(sign_in(governance, who), "P-1", role)
    governance.users.add(sign_in(governance, "admin"), "steve", PASSWORD, [Role.steward])
    outcomes = race(root, tmp_path, ("stella", "advance", ["P-1", "preparing_data"]),
                    ("steve", "advance", ["P-1", "preparing_data"]))
    one_wins(outcomes)
    assert governance.permits.get("P-1").phase == Phase.preparing_data
    assert [t.phase for t in governance.permits.transitions("P-1")].count("preparing data") == 1
    assert governance.audit.verify().ok


@pytest.fixture
def outputs_ready(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    return root, governed_outputs(root)


def requested(governance, permit="P-1", counts=None):
    output = record(governance, "anna", permit, by_area(counts or {"north": 40, "south": 33}))
    governance.outputs.request_release(sign_in(governance, "anna"), [output.id], CONTEXT)
    return output.id


def test_two_checkers_reviewing_one_output_one_wins(outputs_ready, tmp_path):
    root, governance = outputs_ready
    output_id = requested(governance)
    outcomes = race(root, tmp_path, ("cecilia", "review", [output_id, "approve"]),
                    ("cedric", "review", [output_id, "reject"]))
    winner, loser = one_wins(outcomes)
    final = governance.outputs.show(sign_in(governance, "cecilia"), output_id)
    assert final.status == (OutputStatus.approved if winner == "cecilia" else OutputStatus.rejected)
    assert [r.reviewer for r in final.reviews] == [winner]
    assert [c.actor for c in conflicts(governance, "output_review")] == [loser]
    assert governance.audit.verify().ok


def test_two_approvals_of_a_two_checker_output_never_leave_it_stuck(outputs_ready, tmp_path):
    """Both read "no reviews yet": the second is a conflict, not a second '1 of 2' that loses the first."""
    root, governance = outputs_ready
    output_id = requested(governance, permit="P-2")
    outcomes = race(root, tmp_path, ("cecilia", "review", [output_id, "approve"]),
                    ("cedric", "review", [output_id, "approve"]))
    winner, loser = one_wins(outcomes)
    assert governance.outputs.show(sign_in(governance, winner), output_id).status == OutputStatus.release_requested
    again = governance.outputs.review(sign_in(governance, loser), output_id, "approve", "")  # looked again
    assert again.status == OutputStatus.approved and len(again.reviews) == 2


def test_two_releases_of_one_output_one_wins(outputs_ready, tmp_path):
    root, governance = outputs_ready
    output_id = requested(governance)
    governance.outputs.review(sign_in(governance, "cecilia"), output_id, "approve", "")
    outcomes = race(root, tmp_path, ("cecilia", "release", [output_id]), ("cedric", "release", [output_id]))
    winner, _ = one_wins(outcomes)
    assert outcomes[winner]["result"] == "P-1-R001"
    assert sorted(p.name for p in (root / "release" / "P-1").iterdir()) == ["P-1-R001"]  # nothing half-written
    assert count(governance, releases_table) == 1
    assert governance.outputs.show(sign_in(governance, "cecilia"), output_id).release_id == "P-1-R001"
    assert governance.audit.verify().ok


def test_releases_of_different_outputs_get_unique_dense_ids(outputs_ready, tmp_path):
    root, governance = outputs_ready
    first = requested(governance, counts={"north": 40, "south": 33})
    second = requested(governance, counts={"north": 50, "south": 43})
    for output_id in (first, second):
        governance.outputs.review(sign_in(governance, "cecilia"), output_id, "approve", "")
    outcomes = race(root, tmp_path, ("cecilia", "release", [first]), ("cedric", "release", [second]))
    assert sorted(o["result"] for o in outcomes.values()) == ["P-1-R001", "P-1-R002"], outcomes
    assert sorted(p.name for p in (root / "release" / "P-1").iterdir()) == ["P-1-R001", "P-1-R002"]
    assert governance.audit.verify().ok


def test_outputs_recorded_at_once_get_unique_dense_ids_and_nothing_is_lost(outputs_ready, tmp_path):
    root, governance = outputs_ready
    outcomes = race(root, tmp_path, ("anna", "record", ["P-1", "3"]), ("anton", "record", ["P-1", "3"]))
    ids = sorted(i for o in outcomes.values() for i in o["result"])
    assert ids == [f"P-1-{n:04d}" for n in range(1, 7)]
    with governance.audit.engine.connect() as con:
        stored = con.execute(select(outputs_table.c.id).where(outputs_table.c.permit == "P-1")).scalars().all()
    assert sorted(stored) == ids
    assert sorted(p.name for p in (root / "outputs" / "P-1").iterdir()) == ids
    assert sorted(r.target for r in governance.audit.records(action="output_record")) == ids
    assert governance.audit.verify().ok


def test_two_release_requests_of_one_output_one_wins(outputs_ready, tmp_path):
    root, governance = outputs_ready
    output = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    outcomes = race(root, tmp_path, ("anna", "request", [output.id]), ("anton", "request", [output.id]))
    # anton is not its author: refused (audited) before any transaction; anna's goes through
    assert outcomes["anna"]["outcome"] == "ok" and outcomes["anton"]["outcome"] == "Refused"
    assert count(governance, output_reviews_table) == 0
    assert governance.outputs.show(sign_in(governance, "anna"), output.id).request_round == 1


@pytest.mark.postgres
def test_two_approvals_in_one_role_one_wins_on_postgresql(tmp_path, postgres_database, monkeypatch):
    url = postgres_database.url_with_password.replace("postgresql://", "postgresql+psycopg://", 1)
    monkeypatch.setenv("SAFEPOOL_METADATA_URL", url)
    root = tmp_path / "ws"
    root.mkdir()
    governance = governance_with_users(root)
    governance.users.add(sign_in(governance, "admin"), "ada", PASSWORD, [Role.approver])
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-1")
    outcomes = race(root, tmp_path, ("apu", "approve", ["P-1", "approver"]), ("ada", "approve", ["P-1", "approver"]),
                    ("city", "approve", ["P-1", "city_management"]))
    assert outcomes["city"]["outcome"] == "ok", outcomes  # another role: not a conflict
    one_wins({who: o for who, o in outcomes.items() if who != "city"})
    assert count(governance, approvals_table, approvals_table.c.permit == "P-1") == 2
    assert governance.audit.verify().ok
    governance.audit.engine.dispose()
