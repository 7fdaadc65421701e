"""The command line: a thin shell over the Session. Every command is readable at 80 columns (ids
never cut, paths never split), and every expected failure is one line and its exit code."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
import yaml
from typer.testing import CliRunner

from governed import PASSWORD, approved_permit, governance_with_users, sign_in, tiny_request
from safepool.cli import app
from safepool.cli.common import EXIT_CODES, PROBLEMS_FOUND, exit_code
from safepool.governance.context import Governance
from safepool.faults import Conflict, Invalid, NotFound, Refused, Unavailable
from tiny_registers import ANNA, identifying_strings, make_workspace

runner = CliRunner()
CODES = {kind: code for kind, code, _ in EXIT_CODES}
INVALID, NOT_FOUND, REFUSED = CODES[Invalid], CODES[NotFound], CODES[Refused]
CONFLICT, UNAVAILABLE = CODES[Conflict], CODES[Unavailable]


def invoke(*args, columns: int = 80, env: dict[str, str] | None = None):
    """Run a command as a person would, in a terminal `columns` wide."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns), **(env or {})},
                         catch_exceptions=False)


def readable(output: str, columns: int = 80) -> str:
    """Every line fits `columns`, except a path alone on its line (never split); nothing is cut
    with an ellipsis; an error is one line."""
    for line in output.splitlines():
        if line.startswith("error: "):
            continue
        assert "…" not in line, line
        assert len(line) <= columns or (" " not in line.strip() and "/" in line), line
    assert "Traceback" not in output
    return output


def leaks(output: str) -> list[str]:
    """Identity codes, names and addresses of the tiny registers found in `output` (whole words)."""
    return [text for text in identifying_strings() if re.search(rf"(?<!\w){re.escape(text)}(?!\w)", output)]


def one_error_line(result, code: int) -> str:
    """The one error, its lines wrapped at 80 columns (the line `error: ...` and the ones indented
    under it) joined again."""
    assert result.exit_code == code, result.output
    lines = result.output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(starts) == 1 and "Traceback" not in result.output, result.output
    error = [lines[starts[0]]]
    for line in lines[starts[0] + 1:]:
        if not line.startswith("       "):
            break
        error.append(line.strip())
    assert all(len(line) <= 80 for line in error if " " in line.strip()), result.output
    return " ".join(error)


def test_exit_codes_are_distinct_and_typed():
    codes = [code for _, code, _ in EXIT_CODES]
    assert len(set(codes)) == len(codes) and PROBLEMS_FOUND not in codes and 0 not in codes and 2 not in codes
    assert [kind for kind, _, _ in EXIT_CODES][:5] == [Invalid, NotFound, Refused, Conflict, Unavailable]


def test_init_makes_the_zones(tmp_path):
    result = invoke("init", tmp_path / "ws")
    assert result.exit_code == 0, result.output
    assert readable(result.output).splitlines() == ["Workspace ready at:", f"  {tmp_path / 'ws'}"]
    for zone in ("steward/keys", "steward/quarantine", "registers", "pool", "safepool.yaml"):
        assert (tmp_path / "ws" / zone).exists()
    again = invoke("init", tmp_path / "ws")
    assert "already a safepool workspace" in one_error_line(again, CONFLICT)


@pytest.fixture
def governed(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    governance = governance_with_users(ws.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    monkeypatch.setenv("SAFEPOOL_WORKSPACE", str(ws.root))
    return ws, governance


def test_every_command_reads_well_at_80_columns(governed, tmp_path):
    """The life of a permit on the tiny registers, every command run in a terminal 80 wide."""
    ws, governance = governed
    said: dict[str, str] = {}

    def run(name, *args, code=0, env=None):
        result = invoke(*args, env=env)
        assert result.exit_code == code, f"{name}: {result.output}"
        said[name] = readable(result.output)
        assert not leaks(result.output), name
        return result.output

    run("user add", "user", "add", "extra.analyst", "--role", "analyst", "--user", "admin",
        env={"SAFEPOOL_NEW_PASSWORD": PASSWORD})
    assert "extra.analyst" in run("user list", "user", "list", "--user", "admin")
    registers = run("registers list", "registers", "list", "--user", "anna")
    assert "  registers/kela/payments.csv" in registers.splitlines()
    checked = run("registers check", "registers", "check", "--user", "stella")
    assert "1 row with a wrong check character" in checked and "wrong_check_character" not in checked

    form = tmp_path / "form.yaml"
    form.write_text(yaml.safe_dump(tiny_request().model_dump(mode="json")))
    assert "needs approval from" in run("permit request", "permit", "request", form, "--id", "P-CLI", "--user", "anna")
    signers = {"approver": "apu", "branch_management": "bruno", "city_management": "city",
               "data_protection_officer": "dpo"}
    for role in governance.permits.get("P-CLI").assessment.approvals:
        run(f"permit approve {role}", "permit", "approve", "P-CLI", "--as", role, "--user", signers[role])
    listed = run("permit list", "permit", "list", "--user", "cecilia")
    assert "P-CLI" in listed and "data_request" in listed
    decision = tmp_path / "decision.md"
    shown = run("permit show", "permit", "show", "P-CLI", "--markdown", decision, "--user", "apu")
    assert "`safepool permit release P-CLI --decision release|fewer|refuse`" in " ".join(shown.split())
    assert f"  {decision}" in shown.splitlines() and "approved as approver" in decision.read_text()
    for holder in ("DVV", "Kela", "City of Espoo"):  # stella stewards every holder of the tiny registers
        run(f"permit release {holder}", "permit", "release", "P-CLI", "--decision", "release", "--holder", holder,
            "--user", "stella")
    assert "`safepool pool build --permit P-CLI`" in " ".join(run("permit show", "permit", "show", "P-CLI",
                                                                  "--user", "apu").split())

    built = run("pool build", "pool", "build", "--permit", "P-CLI", "--user", "stella")
    assert "1 row with a wrong check character" in built and f"  {ws.pool_dir / 'P-CLI'}" in built.splitlines()
    run("pool show steward", "pool", "show", "P-CLI", "--user", "stella")
    early = invoke("variables", "--permit", "P-CLI", "--user", "anna")
    line = one_error_line(early, REFUSED)
    assert "permit P-CLI is in phase preparing_data" in line
    assert "the linkage authority moves it on with `safepool permit advance P-CLI analytic_review`" in line
    run("permit advance", "permit", "advance", "P-CLI", "analytic_review", "--user", "stella")
    variables = run("variables", "variables", "--permit", "P-CLI", "--user", "anna")
    assert "  sex: categorical, 2 codes" in variables.splitlines()
    assert run("pool variables", "pool", "variables", "P-CLI", "--user", "anna") == variables
    run("pool show analyst", "pool", "show", "P-CLI", "--user", "anna")

    run("policy set", "policy", "set", "min_frequency", "1", "--user", "admin")  # the tiny registers hold 4 persons
    # four persons' payments over the amount bins: empty bins are suppressed like small ones, and the
    # bins with payments with them, so that the empty ones cannot be worked out: nothing to record
    by_amount = run("query", "query", "--permit", "P-CLI", "--user", "anna", "--table", "payments", "--measure",
                    "persons", "--by", "bin(amount)", "--title", "Persons by amount paid")
    assert "cell(s) suppressed" in by_amount and "Recorded as output" not in by_amount
    answer = run("query sql", "query", "--permit", "P-CLI", "--user", "anna", "--sql",
                 "SELECT sex, count(DISTINCT pid) AS persons FROM population GROUP BY sex", "--title", "Persons by sex")
    output_id = answer.split("Recorded as output(s) ")[1].split()[0]
    assert output_id in run("outputs list", "outputs", "list", "--user", "cecilia")
    show = run("outputs show", "outputs", "show", output_id, "--user", "cecilia")
    assert "Public table" in show and "Disclosure checks" in show and "min_frequency" in show
    assert f"  {ws.root / 'outputs' / 'P-CLI' / output_id}" in show.splitlines()
    run("outputs request-release", "outputs", "request-release", output_id, "--context",
        "Persons by sex, for the permit's report on who the registers hold.", "--user", "anna")
    run("outputs review", "outputs", "review", output_id, "--decision", "approve", "--comment",
        "every cell looked at", "--user", "cecilia")
    released = run("outputs release", "outputs", "release", output_id, "--user", "cecilia")
    assert released.splitlines()[-1].startswith(f"  {ws.root / 'release' / 'P-CLI'}")

    assert "min_frequency" in run("policy show", "policy", "show", "--user", "anna")
    audit = run("audit show", "audit", "show", "--permit", "P-CLI", "--user", "admin")
    assert "pool_build" in audit and f"target {output_id}" in audit
    assert run("audit verify", "audit", "verify", "--user", "admin").startswith("Audit log intact")
    alerts = invoke("audit", "alerts", "--user", "admin")
    assert alerts.exit_code in (0, PROBLEMS_FOUND) and readable(alerts.output)

    reidentify = tmp_path / "pseudonyms.txt"
    reidentify.write_text("0234567890123456789\n")
    line = one_error_line(invoke("reidentify", "P-CLI", "--pseudonyms", reidentify, "--justification",
                                 "preventive services", "--user", "stella"), REFUSED)
    assert "does not allow re-identification" in line
    run("user unlock", "user", "unlock", "anna", "--user", "admin")
    run("keys destroy", "keys", "destroy", "P-CLI", "--justification", "the permit's retention has ended",
        "--yes", "--user", "stella")
    assert not (ws.steward_dir / "keys" / "P-CLI.key").exists()


def test_the_other_commands_read_well_at_80_columns(governed, tmp_path):
    """The commands the life of a permit above does not take."""
    ws, governance = governed
    synthetic = invoke("synth", "--out", tmp_path / "synthetic", "--persons", "100")
    assert synthetic.exit_code == 0, synthetic.output
    assert f"  {tmp_path / 'synthetic' / 'registers'}" in readable(synthetic.output).splitlines()
    governance.permits.request(sign_in(governance, "anna"), tiny_request(), "P-NO")
    rejected = invoke("permit", "reject", "P-NO", "--reason", "the benefit does not carry the risk", "--user", "apu")
    assert rejected.exit_code == 0 and readable(rejected.output) == "Permit P-NO: rejected\n"
    assert invoke("policy", "set", "min_frequency", "7", "--user", "admin").exit_code == 0
    (ws.root / "disclosure.yaml").write_text("min_frequency: 2\n")
    restored = invoke("policy", "restore", "--user", "admin")
    assert restored.exit_code == 0 and f"  {ws.root / 'disclosure.yaml'}" in readable(restored.output).splitlines()
    doctor = invoke("doctor", "--user", "stella")
    assert doctor.exit_code in (0, PROBLEMS_FOUND) and readable(doctor.output)


def test_registers_check_reports_drift_and_exits_1(governed):
    ws, _ = governed
    (ws.registers_dir / "kela" / "payments.csv").write_text("hetu,summa\n")
    checked = invoke("registers", "check", "--user", "stella")
    assert checked.exit_code == PROBLEMS_FOUND
    assert "column maksupaiva (variable paid_on) is missing" in " ".join(readable(checked.output).split())


def test_refusals_are_one_line_with_the_refused_code(governed):
    ws, governance = governed
    approved_permit(governance, "P-CLI")
    line = one_error_line(invoke("pool", "build", "--permit", "P-CLI", "--user", "anna"), REFUSED)
    assert "user anna is not a steward" in line
    line = one_error_line(invoke("audit", "show", "--user", "anna"), REFUSED)
    assert "user anna is not an approver, a manager or an admin" in line
    assert governance.audit.records(user="anna")[-1].outcome == "refused"
    wrong = invoke("permit", "list", "--user", "stella", env={"SAFEPOOL_PASSWORD": "guess"})
    assert "wrong user name or password" in one_error_line(wrong, REFUSED)


def test_reads_need_a_sign_in_and_are_audited(governed):
    ws, governance = governed
    approved_permit(governance, "P-CLI")
    for args in (("audit", "show"), ("audit", "verify"), ("audit", "alerts"), ("user", "list"),
                 ("permit", "list"), ("permit", "show", "P-CLI"), ("registers", "list")):
        assert invoke(*args).exit_code == 2, args  # --user is required
    invoke("permit", "show", "P-CLI", "--user", "anna")
    last = governance.audit.records(user="anna")[-1]
    assert (last.action, last.permit, last.outcome) == ("permit_show", "P-CLI", "ok")


def test_not_found_and_invalid(governed, tmp_path):
    ws, _ = governed
    line = one_error_line(invoke("pool", "show", "NOPE", "--user", "stella"), NOT_FOUND)
    assert "no pool has been built for permit NOPE" in line
    line = one_error_line(invoke("permit", "advance", "P-CLI", "later", "--user", "stella"), INVALID)
    assert "unknown phase 'later'" in line
    line = one_error_line(invoke("audit", "show", "--since", "yesterday", "--user", "admin"), INVALID)
    assert "is not a time like" in line
    approved_permit(governed[1], "P-DOC")
    nowhere = tmp_path / "no such folder" / "decision.md"
    line = one_error_line(invoke("permit", "show", "P-DOC", "--markdown", nowhere, "--user", "anna"), INVALID)
    assert f"cannot write {nowhere}" in line


def test_a_locked_metadata_database_is_one_line(governed):
    ws, _ = governed
    holder = sqlite3.connect(ws.root / "governance" / "metadata.sqlite", isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = invoke("permit", "list", "--user", "anna", env={"SAFEPOOL_METADATA_TIMEOUT": "1"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "locked by another process" in one_error_line(result, UNAVAILABLE)


def test_an_unreachable_postgresql_is_one_line(governed):
    url = "postgresql+psycopg://safepool:very-secret@127.0.0.1:1/metadata"
    result = invoke("permit", "list", "--user", "anna", env={"SAFEPOOL_METADATA_URL": url})
    line = one_error_line(result, UNAVAILABLE)
    assert "cannot be reached" in line and "very-secret" not in result.output and "127.0.0.1" not in result.output


def test_a_query_nested_3000_deep_is_one_line(governed):
    ws, governance = governed
    approved_permit(governance, "P-CLI")
    assert invoke("pool", "build", "--permit", "P-CLI", "--user", "stella").exit_code == 0
    assert invoke("permit", "advance", "P-CLI", "analytic_review", "--user", "stella").exit_code == 0
    deep = "SELECT count(DISTINCT pid) AS persons FROM population WHERE " + "(" * 3000 + "sex = 'F'" + ")" * 3000
    result = invoke("query", "--permit", "P-CLI", "--user", "anna", "--sql", deep)
    from safepool.query.model import QueryRefused

    assert "nested too deeply" in one_error_line(result, exit_code(QueryRefused("deep")))


def test_a_broken_source_is_one_line_without_its_values(governed):
    ws, governance = governed
    approved_permit(governance, "P-CLI")
    path = ws.registers_dir / "kela" / "payments.csv"
    path.write_text(path.read_text() + f'"{ANNA}" Anna Aalto,2019-06-05,100,extra,fields\n')
    result = invoke("pool", "build", "--permit", "P-CLI", "--user", "stella")
    line = one_error_line(result, UNAVAILABLE)
    assert "payments" in line
    assert not leaks(result.output)


def test_not_a_workspace(tmp_path):
    result = invoke("registers", "list", "--user", "anna", "-w", tmp_path, env={"SAFEPOOL_PASSWORD": PASSWORD})
    assert "not a safepool workspace" in one_error_line(result, NOT_FOUND)


def test_first_admin_then_users_from_the_command_line(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.setenv("SAFEPOOL_NEW_PASSWORD", PASSWORD)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    line = one_error_line(invoke("user", "add", "root", "--role", "analyst", "-w", ws.root), INVALID)
    assert "very first user is an admin" in line
    assert invoke("user", "add", "root", "--role", "admin", "-w", ws.root).exit_code == 0
    again = invoke("user", "add", "other", "--role", "admin", "-w", ws.root)
    assert again.exit_code == REFUSED
    added = invoke("user", "add", "city", "--role", "manager", "--function", "city_management", "--user", "root",
                   "-w", ws.root)
    assert added.exit_code == 0, added.output
    users = invoke("user", "list", "--user", "root", "-w", ws.root).output
    assert "city_management" in users
    recorded = json.dumps([r.detail for r in Governance.open(ws.root).audit.records()])
    assert PASSWORD not in recorded
