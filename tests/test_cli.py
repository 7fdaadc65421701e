"""The command line: each command works on a tiny workspace and fails with a plain message."""

import json
import os

from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"  # rich reads the width when the console is made, at import

from safepool.cli import app
import yaml

from governed import PASSWORD, approved_permit, governance_with_users, tiny_request
from tiny_registers import identifying_strings, make_workspace

runner = CliRunner()

SCOPE = """permit: P-CLI
window: {start: 2009Q1, end: 2024Q4}
registers:
  population: "*"
  payments: [paid_on, amount]
  visits: "*"
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_init_makes_the_zones(tmp_path):
    result = invoke("init", tmp_path / "ws")
    assert result.exit_code == 0, result.output
    for zone in ("steward/keys", "steward/quarantine", "registers", "pool", "safepool.yaml"):
        assert (tmp_path / "ws" / zone).exists()
    again = invoke("init", tmp_path / "ws")
    assert again.exit_code == 1 and "already a safepool workspace" in again.output


def test_registers_list_and_check(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    governance = governance_with_users(ws.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    listed = invoke("registers", "list", "-w", ws.root)
    assert listed.exit_code == 0 and "population" in listed.output and "sqlite" in listed.output
    refused = invoke("registers", "check", "--user", "anna", "-w", ws.root)
    assert refused.exit_code == 1 and "user anna is not a steward" in refused.output
    checked = invoke("registers", "check", "--user", "stella", "-w", ws.root)
    assert checked.exit_code == 0, checked.output
    assert governance.audit.records(action="registers_check")[-1].rows == 4 + 7 + 4
    assert "wrong_check_character 1" in checked.output and "temporary 1" in checked.output
    assert not any(text in checked.output for text in identifying_strings())


def test_registers_check_reports_drift_and_fails(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    governance_with_users(ws.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    (ws.registers_dir / "kela" / "payments.csv").write_text("hetu,summa\n")
    checked = invoke("registers", "check", "--user", "stella", "-w", ws.root)
    assert checked.exit_code == 1
    assert "column maksupaiva (variable paid_on) is missing" in " ".join(checked.output.split())


def governed_cli_workspace(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    governance = governance_with_users(ws.root)
    approved_permit(governance, "P-CLI")
    return ws, governance


def test_pool_build_under_a_permit_and_show(tmp_path, monkeypatch):
    ws, _ = governed_cli_workspace(tmp_path)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    built = invoke("pool", "build", "--permit", "P-CLI", "--user", "stella", "-w", ws.root)
    assert built.exit_code == 0, built.output
    assert "published" in built.output
    shown = invoke("pool", "show", "P-CLI", "--user", "stella", "-w", ws.root)
    assert shown.exit_code == 0 and "payments" in shown.output
    assert json.loads((ws.pool_dir / "P-CLI" / "manifest.json").read_text())["tables"]["payments"] == ["paid_on", "amount"]
    for output in (built.output, shown.output):
        assert not any(text in output for text in identifying_strings())


def test_pool_build_refused_for_an_analyst(tmp_path, monkeypatch):
    ws, _ = governed_cli_workspace(tmp_path)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    result = invoke("pool", "build", "--permit", "P-CLI", "--user", "anna", "-w", ws.root)
    assert result.exit_code == 1 and "user anna is not a steward" in result.output


def test_wrong_password_is_refused(tmp_path, monkeypatch):
    ws, _ = governed_cli_workspace(tmp_path)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", "guess")
    result = invoke("pool", "build", "--permit", "P-CLI", "--user", "stella", "-w", ws.root)
    assert result.exit_code == 1 and "wrong user name or password" in result.output


def test_permit_commands_end_to_end(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.setenv("SAFEPOOL_NEW_PASSWORD", PASSWORD)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    assert invoke("user", "add", "root", "--role", "admin", "-w", ws.root).exit_code == 0
    for name, role, function in (("anna", "analyst", None), ("apu", "approver", None),
                                 ("city", "manager", "city_management"), ("dpo", "manager", "data_protection_officer")):
        args = ["user", "add", name, "--role", role, "--user", "root", "-w", ws.root]
        result = invoke(*(args + (["--function", function] if function else [])))
        assert result.exit_code == 0, result.output
    form = tmp_path / "form.yaml"
    form.write_text(yaml.safe_dump(tiny_request().model_dump(mode="json")))
    requested = invoke("permit", "request", form, "--id", "P-9", "--user", "anna", "-w", ws.root)
    assert "needs approval from approver, city_management, data_protection_officer" in requested.output
    own = invoke("permit", "approve", "P-9", "--as", "approver", "--user", "anna", "-w", ws.root)
    assert own.exit_code == 1 and "nobody approves a permit they requested" in own.output
    for user, role in (("apu", "approver"), ("city", "city_management"), ("dpo", "data_protection_officer")):
        assert invoke("permit", "approve", "P-9", "--as", role, "--user", user, "-w", ws.root).exit_code == 0
    listed = invoke("permit", "list", "-w", ws.root)
    assert "approved" in listed.output and "data request" in listed.output
    pdf, md = tmp_path / "decision.pdf", tmp_path / "decision.md"
    shown = invoke("permit", "show", "P-9", "--pdf", pdf, "--markdown", md, "-w", ws.root)
    assert shown.exit_code == 0 and pdf.read_bytes().startswith(b"%PDF") and "approved as approver" in md.read_text()
    assert invoke("audit", "verify", "-w", ws.root).output.startswith("Audit log intact")
    audit = invoke("audit", "show", "--permit", "P-9", "--action", "permit_transition", "-w", ws.root)
    assert "apu" in audit.output and "dpo" in audit.output
    alerts = invoke("audit", "alerts", "-w", ws.root)
    assert alerts.exit_code in (0, 1)


def test_pool_show_before_build(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    governance_with_users(ws.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    result = invoke("pool", "show", "NOPE", "--user", "stella", "-w", ws.root)
    assert result.exit_code == 1 and "no pool has been built for permit NOPE" in result.output


def test_keys_destroy(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    scope = tmp_path / "scope.yaml"
    scope.write_text(SCOPE)
    invoke("pool", "build", "--scope", scope, "-w", ws.root)
    result = invoke("keys", "destroy", "P-CLI", "--yes", "-w", ws.root)
    assert result.exit_code == 0 and not (ws.steward_dir / "keys" / "P-CLI.key").exists()


def test_not_a_workspace(tmp_path):
    result = invoke("registers", "list", "-w", tmp_path)
    assert result.exit_code == 1 and "not a safepool workspace" in result.output
