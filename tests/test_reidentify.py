"""Re-identification: only a steward, only under a permit that asked for it, always audited."""

import datetime as dt
import os
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("COLUMNS", "250")  # rich reads the width when the console is made, at import

from governed import PASSWORD, approved_permit, governance_with_users, sign_in
from safepool.cli import app
from safepool.governance.context import Governance
from safepool.governance.users import Refused, Role
from safepool.identity.keystore import KeyStore
from safepool.identity.pseudonym import Pseudonymiser
from safepool.identity.reidentify import reidentify
from safepool.pool import access
from safepool.pool.build import build_for_permit
from safepool.pool.pseudonyms import shown
from safepool.workspace import Workspace
from test_zones import ANALYST_ZONE, STEWARD_ZONE, all_modules, in_zone, reachable
from tiny_registers import ANNA, BO, CHEN, DINA, identifying_strings, make_workspace

ALLOWED = {"requested": True, "ground": "preventive_services",
           "justification": "focus preventive services on the at-risk group the analysis found"}
WHY = "offer preventive family services to the at-risk group found in the analysis"
UNKNOWN = "1034567890123456789"  # 19 digits below 2**60: a pseudonym no one has
# The persons in the permit's scope (window 2009Q1-2024Q4) whose codes link.
IN_SCOPE = [ANNA, BO, CHEN, DINA]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Two permits' pools, built once for the file; each test gets its own copy."""
    workspace = make_workspace(tmp_path_factory.mktemp("reidentify") / "ws")
    governance = governance_with_users(workspace.root)
    approved_permit(governance, "R-1", reidentification=ALLOWED)
    approved_permit(governance, "N-1")
    stella = sign_in(governance, "stella")
    for permit in ("R-1", "N-1"):
        build_for_permit(workspace, governance, stella, permit)
    return workspace.root


@pytest.fixture
def setup(built, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(built, root, symlinks=True)
    return Workspace.open(root), Governance.open(root)


def pool_pseudonyms(workspace, permit):
    """The pseudonyms in a permit's pool, as people see them (the form re-identification takes)."""
    con = access.connect(workspace.pool_dir, permit)
    try:
        return sorted(shown(r[0]) for r in con.execute(
            "SELECT pid FROM population UNION SELECT pid FROM payments UNION SELECT pid FROM visits").fetchall())
    finally:
        con.close()


def read_matches(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "pseudonym,identity_code"
    return dict(line.split(",") for line in lines[1:])


def reidentified_files(workspace):
    folder = workspace.steward_dir / "reidentified"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_the_steward_gets_exactly_the_right_codes(setup):
    workspace, governance = setup
    wanted = pool_pseudonyms(workspace, "R-1")
    assert len(wanted) == len(IN_SCOPE)
    result = reidentify(workspace, governance, sign_in(governance, "stella"), "R-1",
                        wanted[:3] + [wanted[0], UNKNOWN], WHY)
    assert (result.requested, result.matched, result.unmatched) == (4, 3, 1)
    key = KeyStore(workspace.steward_dir / "keys").get("R-1")
    expected = {shown(Pseudonymiser(key).pseudonym(code)): code for code in IN_SCOPE}
    assert set(expected) == set(wanted)
    assert read_matches(result.path) == {p: expected[p] for p in wanted[:3]}

    assert result.path.parent == workspace.steward_dir / "reidentified"
    assert result.path.name.startswith("R-1-") and result.path.suffix == ".csv"
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(result.path.parent.stat().st_mode) == 0o700
    assert reidentified_files(workspace) == [result.path]  # no temporary file left behind
    # Nothing identifying in what is returned besides the path.
    assert not any(text in repr(result) for text in identifying_strings())


def test_all_in_scope_are_found_and_an_unknown_is_counted(setup):
    workspace, governance = setup
    wanted = pool_pseudonyms(workspace, "R-1")
    result = reidentify(workspace, governance, sign_in(governance, "stella"), "R-1", wanted + [UNKNOWN], WHY)
    assert (result.requested, result.matched, result.unmatched) == (5, 4, 1)
    assert sorted(read_matches(result.path).values()) == sorted(IN_SCOPE)


def test_pseudonyms_of_another_permit_do_not_match(setup):
    workspace, governance = setup
    other = pool_pseudonyms(workspace, "N-1")
    result = reidentify(workspace, governance, sign_in(governance, "stella"), "R-1", other, WHY)
    assert (result.matched, result.unmatched) == (0, len(other))
    assert read_matches(result.path) == {}


def test_the_audit_record_holds_counts_and_justification_but_no_identity(setup):
    workspace, governance = setup
    wanted = pool_pseudonyms(workspace, "R-1")
    reidentify(workspace, governance, sign_in(governance, "stella"), "R-1", wanted[:2] + [UNKNOWN], WHY)
    record = governance.audit.records(action="reidentify")[-1]
    assert (record.actor, record.permit, record.outcome, record.rows) == ("stella", "R-1", "ok", 2)
    assert record.detail == {"requested": 3, "matched": 2, "justification": WHY}
    stored = record.detail_json + repr(record)
    assert not any(text in stored for text in identifying_strings())
    assert not any(p in stored for p in wanted)  # not even the pseudonyms
    assert governance.audit.verify().ok


def refused_case(workspace, governance, user, permit, justification=WHY, pseudonyms=None, today=None):
    wanted = pool_pseudonyms(workspace, "R-1")[:2] if pseudonyms is None else pseudonyms
    before = len(governance.audit.records(action="reidentify", outcome="refused"))
    with pytest.raises(Refused) as caught:
        reidentify(workspace, governance, sign_in(governance, user), permit, wanted, justification, today=today)
    logged = governance.audit.records(action="reidentify", outcome="refused")
    assert len(logged) == before + 1
    assert logged[-1].permit == permit and logged[-1].actor == user
    assert reidentified_files(workspace) == []
    assert not any(text in str(caught.value) + logged[-1].detail_json for text in identifying_strings())
    return str(caught.value)


def test_an_analyst_is_refused(setup):
    workspace, governance = setup
    assert "user anna is not a steward" in refused_case(workspace, governance, "anna", "R-1")


def test_a_permit_without_reidentification_is_refused(setup):
    workspace, governance = setup
    message = refused_case(workspace, governance, "stella", "N-1", pseudonyms=pool_pseudonyms(workspace, "N-1"))
    assert "permit N-1 does not allow re-identification" in message


def test_an_empty_justification_is_refused(setup):
    workspace, governance = setup
    assert "a justification is required" in refused_case(workspace, governance, "stella", "R-1", justification="  ")


def test_an_expired_permit_is_refused(setup):
    workspace, governance = setup
    later = dt.date.today() + dt.timedelta(days=400)
    assert "permit R-1 expired on" in refused_case(workspace, governance, "stella", "R-1", today=later)


def test_a_justification_holding_an_identity_code_is_refused(setup):
    workspace, governance = setup
    message = refused_case(workspace, governance, "stella", "R-1", justification=f"start with {ANNA}, she needs help")
    assert "justification looks like it holds a personal identity code" in message


def test_a_justification_holding_a_secret_is_refused(setup):
    workspace, governance = setup
    message = refused_case(workspace, governance, "stella", "R-1",
                           justification="ticket 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    assert "looks like a key or secret" in message


def test_a_steward_among_the_permits_analysts_is_refused(setup):
    workspace, governance = setup
    governance.users.add(sign_in(governance, "admin"), "sam", PASSWORD, [Role.steward, Role.analyst])
    governance.holders.assign(sign_in(governance, "admin"), "sam", linkage=True)
    approved_permit(governance, "R-2", reidentification=ALLOWED, people=["anna", "sam"])
    build_for_permit(workspace, governance, sign_in(governance, "stella"), "R-2")
    message = refused_case(workspace, governance, "sam", "R-2", pseudonyms=pool_pseudonyms(workspace, "R-2"))
    assert "user sam is among the permit's analysts" in message


def test_malformed_pseudonyms_are_counted_not_echoed(setup):
    workspace, governance = setup
    wanted = pool_pseudonyms(workspace, "R-1")
    message = refused_case(workspace, governance, "stella", "R-1",
                           pseudonyms=[wanted[0], ANNA, "12a4", "", wanted[2], wanted[1][1:], wanted[1] + "7", "9" * 19])
    assert "6 of 8 pseudonyms are malformed (item 2, 3, 4, 6, 7, ... of the list; a pseudonym is shown as 19 digits)" \
        in message
    assert wanted[1][1:] not in message


def test_the_command_names_the_line_that_holds_no_pseudonym_and_not_what_it_holds(setup, tmp_path, monkeypatch):
    workspace, governance = setup
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    wanted = pool_pseudonyms(workspace, "R-1")
    listing = tmp_path / "at-risk.txt"
    listing.write_text("\n".join([wanted[0], "", wanted[1].lstrip("0") + "x"]) + "\n", encoding="utf-8")
    args = ["reidentify", "R-1", "--pseudonyms", str(listing), "--justification", WHY, "-w", str(workspace.root)]
    result = CliRunner().invoke(app, args + ["--user", "stella"], catch_exceptions=False)
    assert result.exit_code != 0
    assert f"{listing}, line 3: not a pseudonym (a pseudonym is shown as 19 digits)" in " ".join(result.output.split())
    assert not any(p.lstrip("0") in result.output for p in wanted)
    assert reidentified_files(workspace) == []


def test_without_the_key_nothing_is_found_and_the_error_is_audited(setup):
    workspace, governance = setup
    wanted = pool_pseudonyms(workspace, "R-1")
    KeyStore(workspace.steward_dir / "keys").destroy("R-1")
    with pytest.raises(Exception, match="no key for permit R-1"):
        reidentify(workspace, governance, sign_in(governance, "stella"), "R-1", wanted, WHY)
    assert governance.audit.records(action="reidentify")[-1].outcome == "error"
    assert reidentified_files(workspace) == []


def test_the_command_prints_counts_and_the_path_only(setup, tmp_path, monkeypatch):
    workspace, governance = setup
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    wanted = pool_pseudonyms(workspace, "R-1")
    listing = tmp_path / "at-risk.txt"
    listing.write_text("\n".join(wanted[:2] + ["", UNKNOWN]) + "\n", encoding="utf-8")
    runner = CliRunner()
    args = ["reidentify", "R-1", "--pseudonyms", str(listing), "--justification", WHY, "-w", str(workspace.root)]
    result = runner.invoke(app, args + ["--user", "stella"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 pseudonyms requested, 2 matched, 1 unmatched" in result.output
    files = reidentified_files(workspace)
    assert len(files) == 1 and str(files[0]) in result.output
    assert not any(text in result.output for text in identifying_strings())
    assert not any(p in result.output for p in wanted)
    assert set(read_matches(files[0])) == set(wanted[:2])

    refused = runner.invoke(app, args + ["--user", "anna"], catch_exceptions=False)
    assert refused.exit_code != 0 and "not a steward" in refused.output
    assert len(reidentified_files(workspace)) == 1


def test_reidentification_lives_in_the_steward_zone():
    modules = all_modules()
    assert "safepool.identity.reidentify" in modules
    assert in_zone("safepool.identity.reidentify", STEWARD_ZONE)
    for name in (n for n in modules if in_zone(n, ANALYST_ZONE)):
        assert "safepool.identity.reidentify" not in reachable(name, modules), name
