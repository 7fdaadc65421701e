"""Users, roles, the permit process and scope enforcement, each refusal audited."""

import datetime as dt

import pytest

from governed import PASSWORD, approved_permit, governance_with_users, sign_in, tiny_request
from safepool.errors import SafepoolError
from safepool.governance.assessment import ApprovalRole
from safepool.governance.permits import Phase
from safepool.governance.users import Refused, Role
from safepool.pool import access
from safepool.pool.build import build_for_permit
from tiny_registers import make_workspace


@pytest.fixture
def setup(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    return workspace, governance_with_users(workspace.root)


def refusals(governance):
    return [r for r in governance.audit.records(outcome="refused")]


def test_passwords_are_hashed_and_wrong_ones_refused(setup):
    _, governance = setup
    with governance.users.engine.connect() as con:
        stored = [row[0] for row in con.exec_driver_sql("SELECT password_hash FROM users")]
    assert all(h.startswith("$argon2") and PASSWORD not in h for h in stored)
    with pytest.raises(Refused, match="wrong user name or password"):
        governance.users.authenticate("anna", "not her password")
    with pytest.raises(Refused, match="wrong user name or password"):
        governance.users.authenticate("nobody", PASSWORD)
    logged = refusals(governance)
    assert [r.actor for r in logged[-2:]] == ["anna", "(unknown user)"]
    assert all(r.action == "login" for r in logged[-2:])


def test_only_admins_add_users(setup):
    _, governance = setup
    with pytest.raises(Refused, match="is not a admin"):
        governance.users.add(sign_in(governance, "anna"), "eve", PASSWORD, [Role.analyst])
    with pytest.raises(Refused, match="first user"):
        governance.users.add(None, "eve", PASSWORD, [Role.admin])
    assert governance.users.actor("eve") is None


def test_high_risk_permit_needs_approver_city_and_dpo(setup):
    _, governance = setup
    permit = governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-1")
    assert permit.assessment.approvals == [ApprovalRole.approver, ApprovalRole.city_management,
                                           ApprovalRole.data_protection_officer]
    assert permit.phase == Phase.assessment_decision and permit.status == "pending"
    governance.permits.approve(sign_in(governance, "apu"), "P-1", ApprovalRole.approver)
    with pytest.raises(Refused, match="needs approval from approver, city_management, data_protection_officer"):
        governance.permits.approve(sign_in(governance, "bruno"), "P-1", ApprovalRole.branch_management)
    governance.permits.approve(sign_in(governance, "city"), "P-1", ApprovalRole.city_management)
    assert governance.permits.get("P-1").status == "pending"
    permit = governance.permits.approve(sign_in(governance, "dpo"), "P-1", ApprovalRole.data_protection_officer)
    assert permit.status == "approved" and permit.phase == Phase.data_request
    phases = [t.phase for t in governance.permits.transitions("P-1")]
    assert phases[:2] == ["identify need", "preliminary estimate"] and phases[-1] == "data request"


def test_nobody_approves_their_own_request(setup):
    _, governance = setup
    governance.users.add(sign_in(governance, "admin"), "ava", PASSWORD, [Role.analyst, Role.approver])
    ava = sign_in(governance, "ava")
    governance.permits.request(ava, tiny_request(), "P-2")
    before = governance.permits.get("P-2")
    with pytest.raises(Refused, match="nobody approves a permit they requested"):
        governance.permits.approve(ava, "P-2", ApprovalRole.approver)
    assert governance.permits.get("P-2") == before
    assert refusals(governance)[-1].permit == "P-2"


def test_a_role_that_may_not_act_is_refused(setup):
    _, governance = setup
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-3")
    with pytest.raises(Refused, match="cannot approve as approver"):
        governance.permits.approve(sign_in(governance, "cecilia"), "P-3", ApprovalRole.approver)
    with pytest.raises(Refused, match="cannot approve as city_management"):
        governance.permits.approve(sign_in(governance, "bruno"), "P-3", ApprovalRole.city_management)


def test_transition_out_of_order_is_refused_and_changes_nothing(setup):
    _, governance = setup
    approved_permit(governance, "P-4")
    with pytest.raises(Refused, match="the next phase is preparing data, not analysis"):
        governance.permits.advance(sign_in(governance, "anna"), "P-4", Phase.analysis)
    assert governance.permits.get("P-4").phase == Phase.data_request


def test_pool_only_under_an_approved_permit_and_by_a_steward(setup):
    workspace, governance = setup
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-5")
    with pytest.raises(Refused, match="permit P-5 is not approved"):
        build_for_permit(workspace, governance, sign_in(governance, "stella"), "P-5")
    approved_permit(governance, "P-6")
    with pytest.raises(Refused, match="user anna is not a steward"):
        build_for_permit(workspace, governance, sign_in(governance, "anna"), "P-6")
    built = build_for_permit(workspace, governance, sign_in(governance, "stella"), "P-6")
    assert set(built.linkage.registers) == {"population", "payments", "visits"}
    assert governance.permits.get("P-6").phase == Phase.preparing_data
    build_record = governance.audit.records(action="pool_build")[-1]
    assert build_record.permit == "P-6" and build_record.rows == built.stage_rows["rows written"]
    assert build_record.result_hash and build_record.outcome == "ok"


def test_analyst_access_is_checked_against_the_permit(setup):
    workspace, governance = setup
    approved_permit(governance, "P-7")
    stella, anna = sign_in(governance, "stella"), sign_in(governance, "anna")
    build_for_permit(workspace, governance, stella, "P-7")
    with pytest.raises(Refused, match="data is not ready"):
        access.open_for_analysis(workspace.pool_dir, governance, anna, "P-7")
    governance.permits.advance(stella, "P-7", Phase.analytic_review, "data prepared")
    with pytest.raises(Refused, match="user aaro is not named in permit P-7"):
        access.open_for_analysis(workspace.pool_dir, governance, sign_in(governance, "aaro"), "P-7")
    with pytest.raises(Refused, match=r"outside the permit: register taxes; variable visits.service"):
        access.open_for_analysis(workspace.pool_dir, governance, anna, "P-7",
                                 {"taxes": ["x"], "visits": ["month", "service"]})
    con = access.open_for_analysis(workspace.pool_dir, governance, anna, "P-7", {"payments": ["amount"]})
    assert con.execute("SELECT count(*) FROM payments").fetchall()[0][0] == 3
    assert governance.audit.records(action="pool_access", outcome="ok")[-1].actor == "anna"


def test_high_risk_is_reassessed_before_analysis(setup):
    workspace, governance = setup
    approved_permit(governance, "P-8")
    stella, anna = sign_in(governance, "stella"), sign_in(governance, "anna")
    build_for_permit(workspace, governance, stella, "P-8")
    governance.permits.advance(stella, "P-8", Phase.analytic_review)
    with pytest.raises(Refused, match="must be reassessed"):
        governance.permits.advance(anna, "P-8", Phase.analysis)
    governance.permits.approve(sign_in(governance, "apu"), "P-8", ApprovalRole.approver)
    assert governance.permits.advance(anna, "P-8", Phase.analysis).phase == Phase.analysis


def test_the_steward_who_built_may_not_analyse(setup):
    workspace, governance = setup
    governance.users.add(sign_in(governance, "admin"), "sam", PASSWORD, [Role.steward, Role.analyst])
    governance.holders.assign(sign_in(governance, "admin"), "sam", linkage=True)
    approved_permit(governance, "P-9")
    sam = sign_in(governance, "sam")
    build_for_permit(workspace, governance, sam, "P-9")
    governance.permits.advance(sam, "P-9", Phase.analytic_review)
    with pytest.raises(Refused, match="not named in permit"):
        access.open_for_analysis(workspace.pool_dir, governance, sam, "P-9")


def test_expiry_closes_access_but_keeps_the_pool(setup):
    workspace, governance = setup
    approved_permit(governance, "P-10")
    stella, anna = sign_in(governance, "stella"), sign_in(governance, "anna")
    build_for_permit(workspace, governance, stella, "P-10")
    governance.permits.advance(stella, "P-10", Phase.analytic_review)
    later = dt.date.today() + dt.timedelta(days=400)
    with pytest.raises(Refused, match="permit P-10 expired on"):
        access.open_for_analysis(workspace.pool_dir, governance, anna, "P-10", today=later)
    with pytest.raises(Refused, match="expired"):
        build_for_permit(workspace, governance, stella, "P-10", today=later)
    assert (workspace.pool_dir / "P-10" / "pool.duckdb").is_file()
    assert governance.audit.records(permit="P-10", outcome="refused")[-1].action == "pool_build"


def test_unknown_permit_is_a_clear_error(setup):
    _, governance = setup
    with pytest.raises(SafepoolError, match="no permit NOPE"):
        governance.permits.get("NOPE")


def test_audit_chain_holds_after_the_whole_process(setup):
    workspace, governance = setup
    approved_permit(governance, "P-11")
    build_for_permit(workspace, governance, sign_in(governance, "stella"), "P-11")
    assert governance.audit.verify().ok
