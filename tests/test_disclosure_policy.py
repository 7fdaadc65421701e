"""The workspace's disclosure policy: read by anyone signed in, changed only by an admin and audited
with its old and new value, its file refused when changed outside `safepool policy set`."""

from __future__ import annotations

import hashlib
import os

import pytest
from typer.testing import CliRunner

from governed import PASSWORD, sign_in
from recorded_outputs import by_area, governed_outputs, record
from safepool.disclosure import DisclosureRules
from safepool.disclosure.policy import (
    PolicyError,
    policy_history,
    policy_path,
    restore_policy,
    set_policy,
    show_policy,
    workspace_policy,
)
from safepool.governance.users import Refused

os.environ["COLUMNS"] = "250"
from safepool.cli import app  # noqa: E402  (the width above is read at import)


@pytest.fixture
def governance(tmp_path):
    return governed_outputs(tmp_path)


def test_a_fresh_workspace_has_the_designs_defaults_and_no_file(governance, tmp_path):
    assert workspace_policy(governance) == DisclosureRules()
    assert not policy_path(tmp_path).exists() and policy_history(governance.audit) == []


def test_an_admin_changes_a_setting_audited_with_old_and_new_value(governance, tmp_path):
    change = set_policy(governance, sign_in(governance, "admin"), "min_frequency", "10")
    assert (change.setting, change.old, change.new, change.actor) == ("min_frequency", 5, 10, "admin")
    assert workspace_policy(governance).min_frequency == 10
    audited = governance.audit.records(action="policy_set")[-1]
    assert audited.detail["old"] == 5 and audited.detail["new"] == 10 and audited.detail["setting"] == "min_frequency"
    assert audited.detail["file_sha256"] == hashlib.sha256(policy_path(tmp_path).read_bytes()).hexdigest()
    assert "min_frequency: 10" in policy_path(tmp_path).read_text()
    set_policy(governance, sign_in(governance, "admin"), "zeros", "suppress")
    set_policy(governance, sign_in(governance, "admin"), "dominance_k", 0.8)
    policy = workspace_policy(governance)
    assert (policy.min_frequency, policy.zeros, policy.dominance_k) == (10, "suppress", 0.8)
    assert [(c.setting, c.old, c.new) for c in policy_history(governance.audit)] == [
        ("min_frequency", 5, 10), ("zeros", "allow", "suppress"), ("dominance_k", 0.9, 0.8)]
    assert governance.audit.verify().ok


def test_the_register_checks_under_the_workspaces_policy(governance):
    seven = by_area({"north": 40, "south": 7})
    assert record(governance, "anna", "P-1", seven).verdict == "pass"
    set_policy(governance, sign_in(governance, "admin"), "min_frequency", "10")
    assert record(governance, "anna", "P-1", seven).verdict == "fail"


@pytest.mark.parametrize("setting, value, reason", [
    ("min_frequency", "0", "setting min_frequency: Input should be greater than or equal to 1"),
    ("zeros", "sometimes", "setting zeros: Input should be 'allow' or 'suppress'"),
    ("dominance_k", "lots", "setting dominance_k: Input should be a valid number"),
    ("min_frequncy", "10", "there is no setting 'min_frequncy'; the settings are min_frequency"),
    ("010190-123A", "10", "unknown setting; the settings are"),
])
def test_a_bad_setting_or_value_is_refused_and_audited(governance, setting, value, reason):
    with pytest.raises(Refused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        set_policy(governance, sign_in(governance, "admin"), setting, value)
    refusal = governance.audit.records(outcome="refused")[-1]
    assert refusal.action == "policy_set" and reason in refusal.detail["reason"]
    assert "010190-123A" not in refusal.detail_json
    assert workspace_policy(governance) == DisclosureRules()


def test_only_an_admin_changes_the_policy(governance):
    for user in ("anna", "cecilia", "stella"):
        with pytest.raises(Refused, match=f"user {user} is not a admin"):
            set_policy(governance, sign_in(governance, user), "min_frequency", "3")
        assert governance.audit.records(outcome="refused")[-1].action == "policy_set"
    with pytest.raises(Refused, match="is not a admin"):
        restore_policy(governance, sign_in(governance, "anna"))
    assert workspace_policy(governance).min_frequency == 5
    with pytest.raises(PolicyError, match="already 5; the policy is unchanged"):
        set_policy(governance, sign_in(governance, "admin"), "min_frequency", "5")


def test_anyone_signed_in_reads_the_policy_and_the_reading_is_audited(governance):
    set_policy(governance, sign_in(governance, "admin"), "rounding_base", "10")
    policy, history = show_policy(governance, sign_in(governance, "anna"))
    assert policy.rounding_base == 10 and [c.setting for c in history] == ["rounding_base"]
    assert governance.audit.records(action="policy_show")[-1].actor == "anna"


@pytest.mark.parametrize("tamper", ["edit", "delete", "replace with an earlier version"])
def test_a_policy_file_changed_outside_the_command_is_refused_until_restored(governance, tmp_path, tamper):
    admin = sign_in(governance, "admin")
    set_policy(governance, admin, "min_frequency", "10")
    earlier = policy_path(tmp_path).read_bytes()
    set_policy(governance, admin, "min_frequency", "12")
    path = policy_path(tmp_path)
    if tamper == "edit":
        path.write_text(path.read_text().replace("min_frequency: 12", "min_frequency: 1"))
    elif tamper == "delete":
        path.unlink()
    else:
        path.write_bytes(earlier)
    with pytest.raises(PolicyError, match=str(path)) as error:
        workspace_policy(governance)
    assert "safepool policy restore" in str(error.value)
    assert governance.audit.records(action="policy_check")[-1].outcome == "refused"
    with pytest.raises(PolicyError, match=str(path)):
        record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    with pytest.raises(Refused, match="restore it before changing the policy"):
        set_policy(governance, admin, "min_frequency", "1")
    change = restore_policy(governance, admin)
    assert change.action == "policy_restore" and workspace_policy(governance).min_frequency == 12
    assert governance.audit.records(action="policy_restore")[-1].detail["found_sha256"] != change.file_sha256
    with pytest.raises(PolicyError, match="nothing to restore"):
        restore_policy(governance, admin)


def test_a_hand_written_policy_file_is_refused(governance, tmp_path):
    policy_path(tmp_path).write_text("min_frequency: 1\n")
    with pytest.raises(PolicyError, match="was not written by `safepool policy set`"):
        workspace_policy(governance)
    restore_policy(governance, sign_in(governance, "admin"))
    assert workspace_policy(governance) == DisclosureRules()


def test_policy_commands(tmp_path, monkeypatch):
    from tiny_registers import make_workspace

    root = make_workspace(tmp_path / "ws").root
    governance = governed_outputs(root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)

    def invoke(*args):
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    changed = invoke("policy", "set", "min_frequency", "10", "--user", "admin", "-w", root)
    assert changed.exit_code == 0 and "min_frequency: 5 -> 10" in changed.output
    refused = invoke("policy", "set", "min_frequency", "3", "--user", "anna", "-w", root)
    assert refused.exit_code == 5 and "user anna is not an admin" in refused.output  # refused
    shown = invoke("policy", "show", "--user", "anna", "-w", root)
    assert shown.exit_code == 0 and "min_frequency" in shown.output and "5 -> 10" in shown.output
    policy_path(root).write_text(policy_path(root).read_text().replace("10", "2"))
    broken = invoke("policy", "show", "--user", "anna", "-w", root)
    assert broken.exit_code != 0 and "changed outside `safepool policy set`" in broken.output
    restored = invoke("policy", "restore", "--user", "admin", "-w", root)
    assert restored.exit_code == 0 and "restored" in restored.output
    assert workspace_policy(governance).min_frequency == 10
