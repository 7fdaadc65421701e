"""Register holders keep to their own registers (issue 14): holder-scoped stewards, each holder's
release of its data into a permit, the linkage report by holder, and the bad input that is refused
(audited, nothing changed).

The tiny workspace has three holders: DVV (population), Kela (payments) and the City of Espoo
(visits). kela.steward, dvv.steward and espoo.steward steward one each; sf.steward is the linkage
authority (stella, of tests/governed.py, is both for every holder).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from governed import PASSWORD, approved_permit, governance_with_users, sign_in
from safepool.cli import app
from safepool.governance.holders import Decision, steward_holders_table
from safepool.governance.users import Role
from safepool.session import Invalid, Refused, connect
from test_cli import readable
from tiny_registers import ANNA, identifying_strings, make_workspace

STEWARDS = {"kela.steward": "Kela", "dvv.steward": "dvv", "espoo.steward": "city of espoo"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    workspace = make_workspace(tmp_path_factory.mktemp("holders") / "ws")
    governance = governance_with_users(workspace.root)
    admin = connect(workspace.root, user="admin", password=PASSWORD)
    for name in (*STEWARDS, "sf.steward"):
        admin.add_user(name, PASSWORD, ["steward"])
    for name, holder in STEWARDS.items():
        admin.assign_steward(name, [holder])
    admin.assign_steward("sf.steward", linkage_authority=True)
    return workspace, governance


def session(world, user: str):
    return connect(world[0].root, user=user, password=PASSWORD)


def last_record(governance, user: str):
    return governance.audit.records(user=user)[-1]


def assert_refused_and_audited(world, user: str, action: str, call, match: str) -> None:
    """The call is refused with `match`, the refusal is the user's last audit record."""
    with pytest.raises(Refused, match=match):
        call()
    record = last_record(world[1], user)
    assert (record.action, record.outcome) == (action, "refused")


# --------------------------------------------------------------------------- 1. holder-scoped stewards


def test_an_admin_assigns_stewards_to_the_holders_the_catalogue_names(world):
    _, governance = world
    found = session(world, "anna").stewards()  # anyone signed in sees who stewards what
    assert found["kela.steward"].holders == {"Kela"} and not found["kela.steward"].linkage
    assert found["dvv.steward"].holders == {"DVV"} and found["espoo.steward"].holders == {"City of Espoo"}
    assert found["sf.steward"].linkage and not found["sf.steward"].holders
    assigned = [r for r in governance.audit.records(action="steward_assign") if r.target == "kela.steward"]
    assert assigned[0].detail == {"holders": ["Kela"], "linkage_authority": False}


def test_a_holders_steward_checks_and_keeps_credentials_of_its_own_registers_only(world):
    workspace, governance = world
    kela = session(world, "kela.steward")
    assert [check.register for check in kela.check_registers()] == ["payments"]
    assert_refused_and_audited(world, "kela.steward", "registers_check", lambda: kela.check_registers(["visits"]),
                               "user kela.steward is the steward of Kela: register visits is held by City of Espoo")
    kela.set_credential("payments", "kela source password")
    assert [(c.register, c.held) for c in kela.credentials()] == [("payments", True)]
    before = (workspace.steward_dir / "credentials.yaml").read_bytes()
    assert_refused_and_audited(world, "kela.steward", "credentials_set",
                               lambda: kela.set_credential("population", "not kela's"), "held by DVV")
    assert (workspace.steward_dir / "credentials.yaml").read_bytes() == before
    assert "kela source password" not in str(governance.audit.records(user="kela.steward"))


def test_a_holders_steward_opens_no_pool_and_holds_no_key(world):
    approved_permit(world[1], "H-POOL")
    session(world, "sf.steward").permit("H-POOL").build()
    kela = session(world, "kela.steward").permit("H-POOL")
    refusal = "user kela.steward is not the linkage authority (only the linkage authority may {})"
    for action, call in (("pool_show", kela.pool), ("pool_variables", kela.variables), ("pool_build", kela.build),
                         ("keys_destroy", lambda: kela.destroy_key("the retention has ended")),
                         ("reidentify", lambda: kela.reidentify(["123"], "preventive services"))):
        words = {"pool_show": "inspect pools", "pool_variables": "read a pool's variables",
                 "pool_build": "build pools", "keys_destroy": "destroy keys", "reidentify": "re-identify persons"}
        assert_refused_and_audited(world, "kela.steward", action, call, refusal.format(words[action]).replace(
            "(", r"\(").replace(")", r"\)"))
    assert (world[0].steward_dir / "keys" / "H-POOL.key").exists()


# --------------------------------------------------------------------------- 2. each holder releases


def test_the_pool_holds_only_what_the_holders_released(world):
    workspace, governance = world
    approved_permit(governance, "H-REL", released=False)
    sf = session(world, "sf.steward").permit("H-REL")
    assert sf.show().waiting == ("DVV", "Kela", "City of Espoo")
    assert_refused_and_audited(world, "sf.steward", "pool_build", sf.build,
                               "permit H-REL waits for the release of DVV, Kela and City of Espoo")
    assert not (workspace.pool_dir / "H-REL").exists() and sf.show().permit.phase.name == "data_request"

    session(world, "dvv.steward").permit("H-REL").release("release")
    kela = session(world, "kela.steward").permit("H-REL").release(
        "fewer", withhold=["payments.amount"], reason="amounts are not needed")
    assert kela.decision == Decision.release_fewer and kela.withheld == {"payments": ["amount"]}
    espoo = session(world, "espoo.steward").permit("H-REL").release(
        "refuse", reason="special category data is not released for this purpose")
    assert espoo.left_out == ["visits"]

    details = sf.show()
    assert details.waiting == () and "the linkage authority builds its pool" in details.next_step
    assert [r.holder for r in details.releases] == ["DVV", "Kela", "City of Espoo"]
    notes = [t.note for t in details.transitions]
    assert any("scope narrowed: visits left out" in note and "special category data" in note for note in notes)
    document = details.markdown()
    assert "## 7. Release of the data by its holders" in document
    assert "| Kela | released with fewer variables | payments | payments: amount | kela.steward |" in document

    sf.build()
    variables = sf.variables()
    assert set(variables) == {"population", "payments"} and list(variables["payments"]) == ["paid_on"]
    decided = governance.audit.records(permit="H-REL", action="release_decide")
    assert [(r.actor, r.detail["decision"]) for r in decided] == [
        ("dvv.steward", "release"), ("kela.steward", "release_fewer"), ("espoo.steward", "refuse")]
    assert decided[1].detail["withheld"] == {"payments": ["amount"]}


def test_a_permit_every_holder_refuses_is_stopped(world):
    _, governance = world
    approved_permit(governance, "H-STOP", released=False)
    stella = session(world, "stella").permit("H-STOP")
    for holder in ("DVV", "Kela", "City of Espoo"):
        stella.release("refuse", holder=holder, reason="not for this purpose")
    details = stella.show()
    assert details.permit.status == "stopped" and details.next_step == "a new request is needed"
    assert details.transitions[-1].note == "permit stopped: every register holder refused its data"
    with pytest.raises(Refused, match="permit H-STOP was stopped, not data_request or preparing_data; a new request"):
        stella.build()


# --------------------------------------------------------------------------- 3. linkage by holder


def test_a_holder_sees_its_own_registers_counts_and_overlap_only_as_checked_counts(world):
    _, governance = world
    approved_permit(governance, "H-LINK")
    sf = session(world, "sf.steward").permit("H-LINK")
    sf.build()
    whole = sf.linkage()["whole"]
    kela = session(world, "kela.steward").permit("H-LINK").linkage()
    (view,) = kela["holders"]
    assert kela["whole"] is None and view["holder"] == "Kela" and list(view["registers"]) == ["payments"]
    assert view["registers"]["payments"] == whole["registers"]["payments"]
    assert view["quarantined_rows_by_reason"] == {"missing": 1, "wrong_check_character": 1}
    assert "persons_by_register_count" not in view and "persons_linked_across_registers" not in view
    assert whole["persons_with_other_holders"]["payments"] == 2  # both of Kela's persons are in DVV's register
    assert view["persons_with_other_holders"] == {"payments": None}  # 2 < 5: not shown to Kela
    admin = session(world, "admin")
    admin.set_policy("min_frequency", 1)
    try:
        shown = session(world, "kela.steward").permit("H-LINK").linkage()["holders"][0]
        assert shown["persons_with_other_holders"] == {"payments": 2}
    finally:
        admin.set_policy("min_frequency", 5)
    assert_refused_and_audited(world, "kela.steward", "linkage_show",
                               lambda: session(world, "kela.steward").permit("H-LINK").linkage(holder="DVV"),
                               "user kela.steward is the steward of Kela, not the steward of DVV")
    text = str(session(world, "kela.steward").permit("H-LINK").linkage())
    assert not any(code in text for code in identifying_strings())


# --------------------------------------------------------------------------- 5. bad input


def assignments(governance):
    with governance.audit.engine.connect() as con:
        return con.execute(steward_holders_table.select()).all()


def test_an_unknown_holder_is_refused_audited_and_nothing_changes(world):
    _, governance = world
    admin = session(world, "admin")
    before = assignments(governance)
    assert_refused_and_audited(world, "admin", "steward_assign", lambda: admin.assign_steward("kela.steward", ["Kelaa"]),
                               "no register holder 'Kelaa' in the catalogue; it names DVV; Kela; City of Espoo")
    assert_refused_and_audited(world, "admin", "steward_assign", lambda: admin.assign_steward("anna", ["Kela"]),
                               "user anna is not a steward")
    assert_refused_and_audited(world, "admin", "steward_assign", lambda: admin.assign_steward("kela.steward", ["Kela"]),
                               "user kela.steward is already the steward of Kela")
    assert assignments(governance) == before


def test_a_holder_named_by_an_identity_code_is_not_echoed(world):
    _, governance = world
    approved_permit(governance, "H-ECHO", released=False)
    for call in (lambda: session(world, "admin").assign_steward("kela.steward", [ANNA]),
                 lambda: session(world, "kela.steward").permit("H-ECHO").release("release", holder=ANNA)):
        with pytest.raises(Refused) as refused:
            call()
        assert ANNA not in str(refused.value) and "(a name not shown)" in str(refused.value)
    assert ANNA not in str([r.detail for r in governance.audit.records()])


def test_a_steward_deciding_for_a_holder_not_theirs_is_refused(world):
    _, governance = world
    approved_permit(governance, "H-OTHER", released=False)
    kela = session(world, "kela.steward").permit("H-OTHER")
    assert_refused_and_audited(world, "kela.steward", "release_decide", lambda: kela.release("release", holder="DVV"),
                               "user kela.steward is not the steward of Digital|not the steward of DVV")
    assert governance.holders.releases("H-OTHER") == []


def test_a_second_decision_on_the_same_release_is_refused(world):
    _, governance = world
    approved_permit(governance, "H-TWICE", released=False)
    kela = session(world, "kela.steward").permit("H-TWICE")
    first = kela.release("release")
    assert_refused_and_audited(world, "kela.steward", "release_decide",
                               lambda: kela.release("refuse", reason="changed my mind"),
                               "Kela has decided on permit H-TWICE already")
    assert governance.holders.releases("H-TWICE") == [first]


def test_a_build_with_a_holder_undecided_is_refused_naming_it(world):
    workspace, governance = world
    approved_permit(governance, "H-WAIT", released=False)
    session(world, "dvv.steward").permit("H-WAIT").release("release")
    session(world, "kela.steward").permit("H-WAIT").release("release")
    before = governance.permits.get("H-WAIT")
    assert_refused_and_audited(world, "sf.steward", "pool_build", session(world, "sf.steward").permit("H-WAIT").build,
                               "permit H-WAIT waits for the release of City of Espoo: each holder's steward decides")
    assert governance.permits.get("H-WAIT") == before and not (workspace.pool_dir / "H-WAIT").exists()
    assert not (workspace.steward_dir / "keys" / "H-WAIT.key").exists()


def test_a_malformed_release_is_invalid_and_changes_nothing(world):
    _, governance = world
    approved_permit(governance, "H-BAD", released=False)
    kela = session(world, "kela.steward").permit("H-BAD")
    with pytest.raises(Invalid, match="unknown decision 'maybe'"):
        kela.release("maybe")
    with pytest.raises(Invalid, match="a reason is required to refuse"):
        kela.release("refuse")
    with pytest.raises(Invalid, match="permit H-BAD asks for no variable 'sex' of register payments"):
        kela.release("fewer", withhold=["payments.sex"], reason="not needed")
    with pytest.raises(Invalid, match="'population.sex' is not a variable of the holder's registers"):
        kela.release("fewer", withhold=["population.sex"], reason="not needed")
    assert governance.holders.releases("H-BAD") == []


def test_an_admin_revokes_a_stewards_holders_and_the_next_call_is_refused(world):
    workspace, governance = world
    admin = session(world, "admin")
    admin.add_user("leaving.steward", PASSWORD, ["steward"])
    admin.assign_steward("leaving.steward", ["Kela", "DVV"], linkage_authority=True)
    leaving = session(world, "leaving.steward")  # signed in before the revocation
    assert [check.register for check in leaving.check_registers(["payments"])] == ["payments"]

    scope = admin.revoke_steward("leaving.steward", ["kela"])
    assert scope.holders == {"DVV"} and scope.linkage
    assert_refused_and_audited(world, "leaving.steward", "registers_check",
                               lambda: leaving.check_registers(["payments"]), "register payments is held by Kela")
    assert [check.register for check in leaving.check_registers(["population"])] == ["population"]
    revoked = governance.audit.records(action="steward_revoke")[-1]
    assert (revoked.actor, revoked.target, revoked.outcome) == ("admin", "leaving.steward", "ok")
    assert revoked.detail == {"holders": ["Kela"], "linkage_authority": False}

    assert admin.revoke_steward("leaving.steward", ["DVV"], linkage_authority=True).kinds == frozenset()
    assert "leaving.steward" not in admin.stewards()
    approved_permit(governance, "H-LEFT")
    assert_refused_and_audited(world, "leaving.steward", "pool_build", leaving.permit("H-LEFT").build,
                               "not the linkage authority")
    assert not (workspace.pool_dir / "H-LEFT").exists()


def test_revoking_what_a_steward_does_not_hold_is_refused_audited_and_changes_nothing(world):
    _, governance = world
    admin = session(world, "admin")
    before = governance.holders.assignments()
    assert_refused_and_audited(world, "admin", "steward_revoke", lambda: admin.revoke_steward("kela.steward", ["DVV"]),
                               "user kela.steward is not the steward of DVV")
    assert_refused_and_audited(world, "admin", "steward_revoke",
                               lambda: admin.revoke_steward("kela.steward", linkage_authority=True),
                               "user kela.steward is not the linkage authority")
    assert_refused_and_audited(world, "admin", "steward_revoke", lambda: admin.revoke_steward("nobody.here", ["Kela"]),
                               "no user nobody.here")
    assert_refused_and_audited(world, "admin", "steward_revoke", lambda: admin.revoke_steward("kela.steward", ["Nowhere"]),
                               "no register holder 'Nowhere'")
    with pytest.raises(Invalid, match="name a register holder"):
        admin.revoke_steward("kela.steward")
    assert_refused_and_audited(world, "kela.steward", "steward_revoke",
                               lambda: session(world, "kela.steward").revoke_steward("dvv.steward", ["DVV"]),
                               "only an admin may revoke stewards' assignments")
    assert governance.holders.assignments() == before


# --------------------------------------------------------------------------- the commands


def test_the_commands(world, monkeypatch):
    workspace, governance = world
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    monkeypatch.setenv("COLUMNS", "80")
    root = str(workspace.root)

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, [*args, "-w", root], catch_exceptions=False)
        assert result.exit_code == code, result.output
        readable(result.output)
        return result.output

    governance.users.add(sign_in(governance, "admin"), "new.steward", PASSWORD, [Role.steward])
    assert "User new.steward is now the steward of City of Espoo" in run(
        "steward", "assign", "new.steward", "--holder", "City of Espoo", "--user", "admin")
    assert "no register holder 'Nowhere'" in run("steward", "assign", "new.steward", "--holder", "Nowhere",
                                                 "--user", "admin", code=5)
    assert "new.steward" in run("steward", "list", "--user", "anna")
    assert "User new.steward is now not assigned to any register holder" in run(
        "steward", "revoke", "new.steward", "--holder", "City of Espoo", "--user", "admin")
    assert "is not the steward of City of Espoo" in " ".join(run(
        "steward", "revoke", "new.steward", "--holder", "City of Espoo", "--user", "admin", code=5).split())
    run("steward", "assign", "new.steward", "--holder", "City of Espoo", "--user", "admin")
    approved_permit(governance, "H-CLI", released=False)
    assert "Kela released: payments" in run("permit", "release", "H-CLI", "--decision", "release",
                                            "--user", "kela.steward")
    run("permit", "release", "H-CLI", "--decision", "release", "--user", "kela.steward", code=5)
    assert "still to decide: DVV, City of Espoo" in " ".join(run("permit", "show", "H-CLI", "--user", "anna").split())
    run("permit", "release", "H-CLI", "--decision", "release", "--user", "dvv.steward")
    assert "scope is narrowed: visits left out" in run(
        "permit", "release", "H-CLI", "--decision", "refuse", "--reason", "not for this", "--user", "new.steward")
    run("pool", "build", "--permit", "H-CLI", "--user", "sf.steward")
    shown = run("pool", "linkage", "H-CLI", "--user", "kela.steward")
    assert "Linkage of Kela's registers" in shown and "\npopulation " not in shown and "visits" not in shown
    assert "persons also in another holder's registers: not shown" in shown
    assert "\npopulation " in run("pool", "linkage", "H-CLI", "--user", "sf.steward")
    monkeypatch.setenv("SAFEPOOL_SOURCE_PASSWORD", "a kela password")
    assert "Source password of register payments kept" in run("registers", "set-credential", "payments",
                                                              "--user", "kela.steward")
    assert "payments" in run("registers", "credentials", "--user", "kela.steward")
    run("registers", "set-credential", "visits", "--user", "kela.steward", code=5)
