"""The Session: one way in, every action checked against the one access policy table and audited.

The central test walks every role through every action of the table: an action the table does
not give a role is refused before the library is called (Refused, audited with the action's
name); an action it gives is not refused by the table (the library may still refuse on its own
finer rules, also audited), and a read is audited as a view.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

import safepool
from governed import PASSWORD, approved_permit, governance_with_users, sign_in, tiny_request
from recorded_outputs import CONTEXT, by_area, record
from safepool.errors import SafepoolError
from safepool.governance import access_policy
from safepool.governance.context import Governance
from safepool.governance.permits import Phase
from safepool.governance.users import Role
from safepool.pool.build import build_for_permit
from safepool.session import Invalid, NotFound, Outputs, PermitSession, Refused, Session, Unavailable, connect
from tiny_registers import make_workspace

EXAMPLE_STUDY = Path(__file__).resolve().parents[1] / "src" / "safepool" / "examples" / "study.yaml"
EXAMPLE_INSIGHT = EXAMPLE_STUDY.with_name("insight-paths.yaml")
ONE_ROLE = {Role.admin: "admin", Role.steward: "stella", Role.analyst: "anna", Role.checker: "cecilia",
            Role.approver: "apu", Role.manager: "city"}
QUESTION = "SELECT sex, count(DISTINCT pid) AS persons FROM population GROUP BY sex"
# Stewards of each kind (name, holders, linkage authority): the access policy's second part
# (access_policy.STEWARDS) decides which of them may do a steward's action.
KINDS_OF_STEWARD = {"holder": ("kelda", ["Kela"], False), "linkage": ("linus", [], True),
                    "unassigned": ("umberto", [], False)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """P-1 built and in analytic review with one recorded output of anna's; P-2 and P-PENDING pending;
    P-ADV, P-BUILD and P-READY approved, in the data request phase."""
    root = tmp_path_factory.mktemp("session") / "ws"
    workspace = make_workspace(root)
    governance = governance_with_users(workspace.root)
    stella = sign_in(governance, "stella")
    for permit in ("P-1", "P-ADV", "P-BUILD", "P-READY"):
        approved_permit(governance, permit)
    approved_permit(governance, "P-REL", released=False)  # its holders have not decided yet
    admin = sign_in(governance, "admin")
    for name, holders, linkage in KINDS_OF_STEWARD.values():
        governance.users.add(admin, name, PASSWORD, [Role.steward])
        if holders or linkage:
            governance.holders.assign(admin, name, holders, linkage=linkage)
    build_for_permit(workspace, governance, stella, "P-1")
    governance.permits.advance(stella, "P-1", Phase.analytic_review)
    output = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    for pending in ("P-2", "P-PENDING"):
        governance.permits.request(sign_in(governance, "anna"), tiny_request(), pending)
    study = root.parent / "study.yaml"
    data = yaml.safe_load(EXAMPLE_STUDY.read_text())
    data["permit"] = "P-1"
    study.write_text(yaml.safe_dump(data))
    insight = root.parent / "insight.yaml"
    data = yaml.safe_load(EXAMPLE_INSIGHT.read_text())
    data["permit"] = "P-1"
    insight.write_text(yaml.safe_dump(data))
    return {"root": workspace.root, "output": output.id, "study": study, "insight": insight}


def calls(world, role: Role):
    """One call of each action of the table, as a person of `role` would make it."""
    out = world["output"]
    return {
        "user_list": lambda s: s.users(),
        "user_add": lambda s: s.add_user(f"new.{role.value}", PASSWORD, ["analyst"]),
        "user_unlock": lambda s: s.unlock_user("aaro"),
        "doctor": lambda s: s.doctor(),
        "audit_show": lambda s: s.audit_records(permit="P-1"),
        "audit_verify": lambda s: s.audit_verify(),
        "audit_alerts": lambda s: s.audit_alerts(),
        "policy_show": lambda s: s.policy(),
        "policy_set": lambda s: s.set_policy("min_frequency", s.governance.outputs.policy().min_frequency + 1),
        "policy_restore": lambda s: s.restore_policy(),
        "registers_list": lambda s: s.registers(),
        "registers_check": lambda s: s.check_registers(),
        "credentials_list": lambda s: s.credentials(),
        "credentials_set": lambda s: s.set_credential("payments", "a source password"),
        "steward_list": lambda s: s.stewards(),
        "steward_assign": lambda s: s.assign_steward("stella", ["Kela"]),
        "steward_revoke": lambda s: (s.revoke_steward("stella", ["Kela"]), s.assign_steward("stella", ["Kela"])),
        "release_decide": lambda s: s.permit("P-REL").release("release", holder="Kela"),
        "linkage_show": lambda s: s.permit("P-1").linkage(),
        "permit_list": lambda s: s.permits(),
        "permit_show": lambda s: s.permit("P-1").show(),
        "permit_request": lambda s: s.request_permit(tiny_request(), f"P-REQ-{role.value}"),
        "permit_approve": lambda s: s.permit("P-2").approve("approver"),
        "permit_reject": lambda s: s.permit("P-2").reject("the benefit does not carry the risk"),
        "permit_advance": lambda s: s.permit("P-ADV").advance("preparing_data"),
        "pool_build": lambda s: s.permit("P-BUILD").build(),
        "pool_ledger_keys": lambda s: s.permit("P-1").give_ledger_keys(),
        "pool_show": lambda s: s.permit("P-1").pool(),
        "pool_variables": lambda s: s.permit("P-1").variables(),
        "query": lambda s: s.permit("P-1").query(QUESTION),
        "study_run": lambda s: s.permit("P-1").study(world["study"]),
        "insight_run": lambda s: s.permit("P-1").insight(world["insight"]),
        "insight_handover": lambda s: s.permit("P-1").handover(world["insight"]),
        "output_list": lambda s: s.outputs.list(),
        "output_show": lambda s: s.outputs.show(out),
        "output_request": lambda s: s.permit("P-1").outputs.request_release([out], CONTEXT),
        "output_review": lambda s: s.outputs.review(out, "approve", "looked at every cell"),
        "output_release": lambda s: s.outputs.release([out]),
        "keys_destroy": lambda s: s.permit("P-ADV").destroy_key("the permit's retention period has ended"),
        "reidentify": lambda s: s.permit("P-1").reidentify(["12345"], "preventive services for this group"),
    }


def test_the_calls_cover_the_table_exactly(world):
    assert set(calls(world, Role.admin)) == set(access_policy.POLICY)
    assert set(access_policy.WORDS) == set(access_policy.POLICY)
    assert access_policy.VIEWS <= set(access_policy.POLICY)


@pytest.mark.parametrize("action", sorted(access_policy.POLICY))
@pytest.mark.parametrize("role", list(ONE_ROLE), ids=[r.value for r in ONE_ROLE])
def test_every_role_through_every_action(world, role, action):
    user = ONE_ROLE[role]
    session = connect(world["root"], user=user, password=PASSWORD)
    audit = session.governance.audit
    mark = audit.head().seq
    table_refusal = access_policy.refusal(user, action)
    call = calls(world, role)[action]
    if role not in access_policy.POLICY[action]:
        with pytest.raises(Refused) as refused:
            call(session)
        assert table_refusal in str(refused.value)
        last = audit.records(user=user)[-1]
        assert (last.action, last.outcome, last.detail["reason"]) == (action, "refused", table_refusal)
        assert last.seq > mark
        return
    try:
        call(session)
        failed = None
    except SafepoolError as error:  # the library's own, finer rules; never the table's
        failed = error
    assert failed is None or table_refusal not in str(failed)
    new = [r for r in audit.records(user=user) if r.seq > mark]
    assert not [r for r in new if r.outcome == "refused" and r.detail.get("reason") == table_refusal]
    if failed is None:
        assert new, f"{action} by {user} left no audit record"
        if action in access_policy.VIEWS:
            assert any(r.action == action and r.outcome == "ok" for r in new), [r.action for r in new]


@pytest.mark.parametrize("action", sorted(a for a, roles in access_policy.POLICY.items() if Role.steward in roles))
@pytest.mark.parametrize("kind", list(KINDS_OF_STEWARD))
def test_every_kind_of_steward_through_every_steward_action(world, kind, action):
    """A register holder's steward, the linkage authority and a steward assigned to nothing: the
    table's second part refuses (audited) a steward an action that is for other stewards, before
    the library is called; an action for their kind is never refused by it."""
    user = KINDS_OF_STEWARD[kind][0]
    session = connect(world["root"], user=user, password=PASSWORD)
    audit = session.governance.audit
    mark = audit.head().seq
    wanted = access_policy.STEWARDS.get(action)
    kinds = {"holder": {access_policy.HOLDER}, "linkage": {access_policy.LINKAGE}, "unassigned": set()}[kind]
    call = calls(world, Role.steward)[action]
    if wanted is not None and not wanted & kinds:
        refusal = access_policy.steward_refusal(user, action)
        with pytest.raises(Refused) as refused:
            call(session)
        assert refusal in str(refused.value)
        last = audit.records(user=user)[-1]
        assert (last.action, last.outcome, last.detail["reason"]) == (action, "refused", refusal) and last.seq > mark
        assert not session.may(action)
        return
    assert session.may(action)
    try:
        call(session)
        failed = ""
    except SafepoolError as error:  # the library's own, finer rules (a holder's own registers, phases)
        failed = str(error)
    assert access_policy.refusal(user, action) not in failed
    assert wanted is None or access_policy.steward_refusal(user, action) not in failed


def test_views_that_needed_no_sign_in_are_audited(world):
    session = connect(world["root"], user="admin", password=PASSWORD)
    session.audit_records()
    session.audit_verify()
    session.users()
    session.permits()
    seen = [r.action for r in session.governance.audit.records(user="admin")[-4:]]
    assert seen == ["audit_show", "audit_verify", "user_list", "permit_list"]
    analyst = connect(world["root"], user="anna", password=PASSWORD)
    analyst.permit("P-1").show()
    last = analyst.governance.audit.records(user="anna")[-1]
    assert (last.action, last.permit, last.outcome, last.detail["view"]) == ("permit_show", "P-1", "ok", True)


def test_connect_is_exported_and_signs_in(world):
    assert safepool.connect is connect and safepool.Session is Session
    with pytest.raises(Refused, match="wrong user name or password"):
        safepool.connect(world["root"], user="anna", password="not the password")
    with safepool.connect(world["root"], user="anna", password=PASSWORD) as session:
        assert session.user == "anna" and Role.analyst in session.roles
        assert session.may("query") and not session.may("pool_build")
        assert isinstance(session.permit("P-1"), PermitSession) and isinstance(session.outputs, Outputs)


def test_variables_through_the_permit(world):
    session = connect(world["root"], user="anna", password=PASSWORD)
    tables = session.permit("P-1").variables()
    assert set(tables) == {"population", "payments", "visits"}
    sex = tables["population"]["sex"]
    assert sex.level == "categorical" and sex.codes == {"F": "female", "M": "male"}
    assert tables["payments"]["amount"].unit == "EUR"


def test_a_phase_refusal_names_the_command_that_moves_the_permit_on(world):
    analyst = connect(world["root"], user="anna", password=PASSWORD)
    with pytest.raises(Refused) as refused:
        analyst.permit("P-READY").query(QUESTION)
    message = str(refused.value)
    assert "permit P-READY is in phase data_request" in message
    assert "the linkage authority builds its pool with `safepool pool build --permit P-READY`" in message
    with pytest.raises(Refused, match=r"P-PENDING is awaiting its decision, not analytic_review or analysis or "
                                      r"reporting; it needs approval from .*: each approves with "
                                      r"`safepool permit approve P-PENDING --as ROLE`"):
        analyst.permit("P-PENDING").variables()
    steward = connect(world["root"], user="stella", password=PASSWORD)
    with pytest.raises(Refused, match="P-1 is in phase analytic_review, so it cannot move to reporting; .*`safepool permit "):
        steward.permit("P-1").advance("reporting")
    assert steward.governance.audit.records(user="stella")[-1].outcome == "refused"


def test_outputs_of_one_permit_stay_with_it(world):
    session = connect(world["root"], user="cecilia", password=PASSWORD)
    with pytest.raises(NotFound, match="not an output of permit P-2"):
        session.permit("P-2").outputs.show(world["output"])
    shown = session.outputs.show(world["output"])
    header, *rows = next(iter(shown.tables.values()))
    assert "area" in header and any("north" in row for row in rows)


def test_bad_names_are_invalid(world):
    session = connect(world["root"], user="stella", password=PASSWORD)
    with pytest.raises(Invalid, match="unknown phase 'later'"):
        session.permit("P-ADV").advance("later")
    admin = connect(world["root"], user="admin", password=PASSWORD)
    with pytest.raises(Invalid, match="unknown role 'wizard'"):
        admin.add_user("merlin", PASSWORD, ["wizard"])


def test_an_unreachable_metadata_database_is_unavailable(world, monkeypatch):
    monkeypatch.setenv("SAFEPOOL_METADATA_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(Unavailable) as unavailable:
        connect(world["root"], user="anna", password=PASSWORD)
    assert "secret" not in str(unavailable.value) and "cannot be reached" in str(unavailable.value)


def test_every_public_method_names_an_action_of_the_table():
    """No way in around the table: each public method of the Session's classes either calls
    `_authorise` with an action of the table, or hands on to an object that does."""
    handing_on = {"permit", "outputs", "may", "close", "policy_file", "user", "roles", "steward_scope",
                  "handed_file"}  # a path checked before another method, checked itself, reads the file
    for cls in (Session, PermitSession, Outputs):
        for name, member in vars(cls).items():
            if name.startswith("_") or name in handing_on:
                continue
            source = inspect.getsource(member.fget if isinstance(member, property) else member)
            actions = [a for a in access_policy.POLICY if f'_authorise("{a}"' in source]
            assert actions, f"{cls.__name__}.{name} is not checked against the access policy"


def test_a_person_signed_in_through_the_library_gets_the_same_refusal(world):
    governance = Governance.open(world["root"])
    refused_before = len(governance.audit.records(outcome="refused"))
    session = Session(connect(world["root"], user="apu", password=PASSWORD).workspace, governance,
                      sign_in(governance, "apu"))
    with pytest.raises(Refused, match=r"user apu is not a steward \(only a steward may build pools\)"):
        session.permit("P-BUILD").build()
    assert len(governance.audit.records(outcome="refused")) == refused_before + 1
