"""Sign-in limits (issue 11, point 6): failed sign-ins per account are limited (5 in 15 minutes by
default, a governance setting); past the limit the account is locked for a while, audited and
alerted, and the right password does not work until the lock ends or an admin lifts it. Password
spraying across accounts raises an alert."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from governed import PASSWORD, PROFILE_HASHERS, governance_with_users, sign_in
from safepool.faults import NotFound, Refused
from safepool.governance.alerts import PASSWORD_SPRAYING, REFUSAL_BURST, SIGN_IN_LOCKED, AlertSettings, run_alerts
from safepool.governance.context import Governance
from safepool.governance import settings as settings_module
from safepool.governance.settings import GovernanceSettings, PasswordHashing, save_settings
from safepool.governance.users import LOCKED, WRONG_PASSWORD, Role
from safepool.yaml_files import FileProblem


@pytest.fixture
def governance(tmp_path):
    return governance_with_users(tmp_path)


class Clock:
    """A clock the test moves on (the directory and its audit records follow it)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(governance):
    governance.users.clock = clock = Clock()
    return clock


def fail(governance, name: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Refused):
            governance.users.authenticate(name, "not the password")


def alerts(governance, rule: str, **settings):
    return [a for a in run_alerts(governance.audit, settings=AlertSettings(**settings)) if a.rule == rule]


def test_the_fifth_failure_locks_the_account_and_the_right_password_no_longer_works(governance, clock):
    fail(governance, "anna", 4)
    assert governance.users.sign_in_state("anna").failures == 4
    with pytest.raises(Refused, match=WRONG_PASSWORD):
        governance.users.authenticate("anna", "still not it")
    state = governance.users.sign_in_state("anna")
    assert state.locked_until == clock.now + dt.timedelta(minutes=15)
    with pytest.raises(Refused, match=f"{LOCKED}; try again after .* UTC or ask an admin"):
        governance.users.authenticate("anna", PASSWORD)
    locks = governance.audit.records(action="sign_in_locked")
    assert [(r.actor, r.target, r.detail["failures"]) for r in locks] == [("anna", "anna", 5)]
    refused = governance.audit.records(user="anna", action="login", outcome="refused")
    assert [r.detail["reason"] for r in refused] == [WRONG_PASSWORD] * 5 + [LOCKED]
    [alert] = alerts(governance, SIGN_IN_LOCKED)
    assert (alert.actor, alert.severity, alert.first_seq) == ("anna", "high", locks[0].seq)
    assert alert.message.startswith("an account was locked after 5 failed sign-ins within 15 minutes, until ")
    assert governance.audit.verify().ok


def test_200_wrong_passwords_and_the_right_one_is_still_refused(governance):
    fail(governance, "anna", 200)
    with pytest.raises(Refused, match=LOCKED):
        governance.users.authenticate("anna", PASSWORD)
    assert len(governance.audit.records(action="sign_in_locked")) == 1  # locked once; the rest bounce off
    assert len(alerts(governance, SIGN_IN_LOCKED)) == 1
    assert len(alerts(governance, REFUSAL_BURST)) == 1


def test_the_lock_ends_by_itself(governance, clock):
    fail(governance, "anna", 5)
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(Refused, match=LOCKED):
        governance.users.authenticate("anna", PASSWORD)
    clock.advance(seconds=2)
    assert governance.users.authenticate("anna", PASSWORD).name == "anna"
    assert governance.users.sign_in_state("anna").failures == 0


def test_failures_outside_the_window_do_not_count(governance, clock):
    fail(governance, "anna", 4)
    clock.advance(minutes=15, seconds=1)
    fail(governance, "anna", 4)
    assert governance.users.sign_in_state("anna").locked_until is None
    assert governance.users.authenticate("anna", PASSWORD).name == "anna"


def test_a_successful_sign_in_starts_the_count_afresh(governance, clock):
    fail(governance, "anna", 4)
    sign_in(governance, "anna")
    fail(governance, "anna", 4)
    assert governance.users.sign_in_state("anna") .locked_until is None
    fail(governance, "anna")
    assert governance.users.sign_in_state("anna").locked_until is not None


def test_an_admin_unlocks_an_account_audited(governance, clock):
    fail(governance, "anna", 5)
    with pytest.raises(Refused, match="is not a admin"):
        governance.users.unlock(sign_in(governance, "stella"), "anna")
    admin = sign_in(governance, "admin")
    assert governance.users.unlock(admin, "anna") is True
    assert governance.users.authenticate("anna", PASSWORD).name == "anna"
    unlocked = governance.audit.records(action="user_unlock", outcome="ok")
    assert [(r.actor, r.target, r.detail["was_locked"]) for r in unlocked] == [("admin", "anna", True)]
    assert governance.users.unlock(admin, "anna") is False  # not locked: still audited
    with pytest.raises(NotFound, match="no user nobody"):
        governance.users.unlock(admin, "nobody")
    assert governance.audit.verify().ok


def test_names_that_are_not_accounts_are_never_locked(governance):
    fail(governance, "nobody", 6)
    assert governance.audit.records(action="sign_in_locked") == []
    assert {r.actor for r in governance.audit.records(action="login", outcome="refused")} == {"(unknown user)"}


def test_one_account_locked_leaves_the_others_alone(governance):
    fail(governance, "anna", 5)
    assert sign_in(governance, "aaro").name == "aaro"


def test_concurrent_failures_are_all_counted(governance):
    """Sign-ins are decided inside the audit log's write lock: failures at once are not lost."""
    def attempt():
        try:
            governance.users.authenticate("anna", "not the password")
        except Refused:
            pass

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(governance.audit.records(action="sign_in_locked")) == 1
    assert len(governance.audit.records(user="anna", action="login", outcome="refused")) == 8
    assert governance.audit.verify().ok


def test_the_limits_are_governance_settings(tmp_path):
    (tmp_path / "governance").mkdir()
    (tmp_path / "governance" / "settings.yaml").write_text(
        "sign_in_failures: 2\nsign_in_window_minutes: 5\nsign_in_lockout_minutes: 60\n")
    governance = governance_with_users(tmp_path)
    assert governance.settings == GovernanceSettings(sign_in_failures=2, sign_in_window_minutes=5,
                                                     sign_in_lockout_minutes=60)
    fail(governance, "anna", 2)
    state = governance.users.sign_in_state("anna")
    assert state.locked_until is not None and state.locked_until - governance.audit.head().at == dt.timedelta(hours=1)


def test_a_mistake_in_the_settings_file_names_its_field_and_line(tmp_path):
    (tmp_path / "governance").mkdir()
    (tmp_path / "governance" / "settings.yaml").write_text("sign_in_failures: 0\nlockout: 5\npassword_hashing: md5\n")
    with pytest.raises(FileProblem) as caught:
        Governance.open(tmp_path)
    problems = caught.value.problems
    assert problems[0].startswith("line 1, field sign_in_failures:")
    assert problems[1].startswith("line 3, field password_hashing: Input should be 'rfc9106_low_memory' or")
    assert problems[2].startswith("line 2, field lockout: Extra inputs are not permitted")


def argon2_cost(governance: Governance, name: str) -> str:
    """The parameters stored in `name`'s hash ("m=...,t=...,p=..."), never the hash itself."""
    with governance.users.engine.connect() as con:
        stored = con.exec_driver_sql("SELECT password_hash FROM users WHERE name = ?", (name,)).scalar_one()
    return stored.split("$")[3]


@pytest.fixture
def profile_costs(monkeypatch):
    """The profiles' real hashers (the other tests hash at the lowest cost; tests/governed.py)."""
    monkeypatch.setattr(settings_module, "HASHERS", PROFILE_HASHERS)


def first_admin(root) -> Governance:
    root.mkdir(parents=True, exist_ok=True)
    governance = Governance.open(root)
    governance.users.add(None, "admin", PASSWORD, [Role.admin])
    return governance


def test_passwords_are_hashed_with_the_rfc_9106_profile_unless_the_settings_say_otherwise(tmp_path, profile_costs):
    assert argon2_cost(first_admin(tmp_path / "default"), "admin") == "m=65536,t=3,p=4"
    (tmp_path / "floor" / "governance").mkdir(parents=True)
    (tmp_path / "floor" / "governance" / "settings.yaml").write_text("password_hashing: owasp_minimum\n")
    governance = first_admin(tmp_path / "floor")
    assert argon2_cost(governance, "admin") == "m=19456,t=2,p=1"
    assert sign_in(governance, "admin").name == "admin"


def test_a_changed_profile_applies_to_new_passwords_and_every_stored_hash_still_verifies(tmp_path, profile_costs):
    first_admin(tmp_path)
    save_settings(tmp_path / "governance", GovernanceSettings(password_hashing=PasswordHashing.owasp_minimum))
    assert (tmp_path / "governance" / "settings.yaml").read_text() == "password_hashing: owasp_minimum\n"
    reopened = Governance.open(tmp_path)
    admin = sign_in(reopened, "admin")  # hashed under the default profile
    reopened.users.add(admin, "newcomer", PASSWORD, [Role.analyst])
    assert (argon2_cost(reopened, "admin"), argon2_cost(reopened, "newcomer")) == ("m=65536,t=3,p=4", "m=19456,t=2,p=1")
    with pytest.raises(Refused, match=WRONG_PASSWORD):
        reopened.users.authenticate("newcomer", PASSWORD + "x")


# --------------------------------------------------------------------------- password spraying


def test_spraying_four_guesses_at_each_of_nine_users_raises_one_alert_naming_all_nine(governance):
    victims = ["aaro", "admin", "anna", "apu", "bruno", "cecilia", "city", "dpo", "stella"]
    for _ in range(4):
        for name in victims:
            fail(governance, name)
    assert governance.audit.records(action="sign_in_locked") == []  # under every account's limit
    [alert] = alerts(governance, PASSWORD_SPRAYING)
    assert alert.actors == tuple(victims) and alert.actor is None and alert.severity == "high"
    assert alert.message == ("36 failed sign-ins on 9 accounts, at least 3 accounts within 10 minutes: "
                             "a possible password spraying attack")
    assert not any(name in alert.message for name in victims)
    for name in victims:  # and each of them can still sign in
        assert sign_in(governance, name).name == name


def test_spraying_needs_enough_accounts_within_the_window(governance, clock):
    fail(governance, "anna", 3)
    fail(governance, "aaro", 3)
    assert alerts(governance, PASSWORD_SPRAYING) == []  # two accounts: someone forgetting, perhaps
    clock.advance(minutes=11)
    fail(governance, "apu")
    assert alerts(governance, PASSWORD_SPRAYING) == []  # the third is too late
    fail(governance, "bruno")
    fail(governance, "city")
    [alert] = alerts(governance, PASSWORD_SPRAYING)
    assert alert.actors == ("apu", "bruno", "city")
    assert len(alerts(governance, PASSWORD_SPRAYING, spraying_accounts=4)) == 0


def test_safepool_user_unlock(tmp_path):
    from typer.testing import CliRunner

    import safepool.cli.unlock  # noqa: F401  (registers the command)
    from safepool.cli import app
    from tiny_registers import make_workspace

    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    fail(governance, "anna", 5)
    runner = CliRunner()
    args = ["user", "unlock", "anna", "-w", str(workspace.root)]
    refused = runner.invoke(app, args + ["--user", "stella"], env={"SAFEPOOL_PASSWORD": PASSWORD})
    assert refused.exit_code != 0 and "user_unlock refused: user stella is not" in refused.output
    done = runner.invoke(app, args + ["--user", "admin"], env={"SAFEPOOL_PASSWORD": PASSWORD})
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "User anna unlocked: the right password works again."
    assert governance.users.authenticate("anna", PASSWORD).name == "anna"


def test_a_refused_unlock_lifts_nothing(governance):
    fail(governance, "anna", 5)
    with pytest.raises(Refused):
        governance.users.unlock(sign_in(governance, "stella"), "anna")  # audited as user_unlock, refused
    with pytest.raises(Refused, match=LOCKED):
        governance.users.authenticate("anna", PASSWORD)
