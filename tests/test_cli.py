"""The command line: each command works on a tiny workspace and fails with a plain message."""

import json
import os

from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"  # rich reads the width when the console is made, at import

from safepool.cli import app
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


def test_registers_list_and_check(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    listed = invoke("registers", "list", "-w", ws.root)
    assert listed.exit_code == 0 and "population" in listed.output and "sqlite" in listed.output
    checked = invoke("registers", "check", "-w", ws.root)
    assert checked.exit_code == 0, checked.output
    assert "wrong_check_character 1" in checked.output and "temporary 1" in checked.output
    assert not any(text in checked.output for text in identifying_strings())


def test_registers_check_reports_drift_and_fails(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    (ws.registers_dir / "kela" / "payments.csv").write_text("hetu,summa\n")
    checked = invoke("registers", "check", "-w", ws.root)
    assert checked.exit_code == 1
    assert "column maksupaiva (variable paid_on) is missing" in " ".join(checked.output.split())


def test_pool_build_and_show(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    scope = tmp_path / "scope.yaml"
    scope.write_text(SCOPE)
    built = invoke("pool", "build", "--scope", scope, "-w", ws.root)
    assert built.exit_code == 0, built.output
    assert "published" in built.output
    shown = invoke("pool", "show", "P-CLI", "-w", ws.root)
    assert shown.exit_code == 0 and "payments" in shown.output
    assert json.loads((ws.pool_dir / "P-CLI" / "manifest.json").read_text())["tables"]["payments"] == ["paid_on", "amount"]
    for output in (built.output, shown.output):
        assert not any(text in output for text in identifying_strings())


def test_pool_build_with_bad_scope_names_line(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    scope = tmp_path / "scope.yaml"
    scope.write_text(SCOPE.replace("2024Q4", "2024Q9"))
    result = invoke("pool", "build", "--scope", scope, "-w", ws.root)
    assert result.exit_code == 1
    assert "line 2, field window.end" in result.output


def test_pool_show_before_build(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    result = invoke("pool", "show", "NOPE", "-w", ws.root)
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
