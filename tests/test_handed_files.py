"""Files a person hands safepool by path: none is read from inside the workspace's zones, and no
message of a file's loading echoes its text (only names the model declares, plain typos, plain
values)."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governed import PASSWORD, governance_with_users
from safepool.cli import app
from safepool.cli.common import exit_code
from safepool.faults import Invalid
from safepool.query.request import AggregateRequest
from safepool.session import connect
from safepool.study.studyfile import StudyFile, load_study
from safepool.workspace import ZONES, Workspace, handed_file
from safepool.yaml_files import FileProblem, load_model

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "safepool" / "examples"
SHADOW_KEY = "root:*:20228:0:99999:7:::"
IDENTITY_CODE = "010101-123A"
# What a zone's file might hold: user names, a password, an identity code.
SECRET = f"""demo.admin:
  password: Hunter2-very-secret
{IDENTITY_CODE}: Matti Meikäläinen
table: population
measure: persons
"""


def secret_lines() -> list[str]:
    """Every piece of the secret file that must never be printed (its lines and their parts)."""
    pieces = {line.strip() for line in SECRET.splitlines()}
    pieces |= {part.strip() for line in SECRET.splitlines() for part in line.split(":") if len(part.strip()) > 3}
    return sorted(pieces - {"table", "measure", "population", "persons"})


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("handed") / "ws"
    Workspace.init(root)
    governance_with_users(root)
    for zone in ZONES:
        (root / zone / "secret.yaml").write_text(SECRET)
    return root.resolve()


@pytest.fixture
def signed(monkeypatch):
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)


def query(workspace: Path, request: Path):
    return runner.invoke(app, ["query", "--permit", "P-1", "--user", "anna", "--workspace", str(workspace),
                               "--request", str(request)])


def assert_refused(result, option: str, zone: str = "steward") -> None:
    text = said(result)
    assert result.exit_code == exit_code(Invalid("")), result.output
    assert option in text and f"protected {zone}/ folder" in text and "Traceback" not in text
    for piece in secret_lines():
        assert piece not in result.output, piece


def test_a_request_file_in_the_steward_zone_is_refused(workspace, signed):
    assert_refused(query(workspace, workspace / "steward" / "secret.yaml"), "--request FILE")


def test_a_link_from_elsewhere_into_the_steward_zone_is_refused(workspace, signed, tmp_path):
    link = tmp_path / "request.yaml"
    link.symlink_to(workspace / "steward" / "secret.yaml")
    assert_refused(query(workspace, link), "--request FILE")
    folder = tmp_path / "innocent"
    folder.symlink_to(workspace / "steward")
    assert_refused(query(workspace, folder / "secret.yaml"), "--request FILE")
    relative = tmp_path / "relative.yaml"
    relative.symlink_to(os.path.relpath(workspace / "steward" / "secret.yaml", tmp_path))
    assert_refused(query(workspace, relative), "--request FILE")


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_is_refused_for_every_command_that_takes_a_file(workspace, signed, zone):
    file = workspace / zone / "secret.yaml"
    common = ["--user", "anna", "--workspace", str(workspace)]
    assert_refused(query(workspace, file), "--request FILE", zone)
    assert_refused(runner.invoke(app, ["study", "run", str(file), *common]), "FILE (the study file)", zone)
    assert_refused(runner.invoke(app, ["insight", "run", str(file), *common]), "FILE (the insight file)", zone)
    assert_refused(runner.invoke(app, ["insight", "handover", str(file), *common]), "FILE (the insight file)", zone)
    assert_refused(runner.invoke(app, ["permit", "request", str(file), "--id", "P-9", *common]),
                   "FORM (the permit request form)", zone)


@pytest.mark.parametrize("zone", ZONES)
def test_the_session_refuses_files_in_the_zones_too(workspace, zone):
    file = workspace / zone / "secret.yaml"
    with connect(workspace, "anna", PASSWORD) as session:
        for call, argument in [(lambda: session.request_permit(file, "P-9"), "form"),
                               (lambda: session.permit("P-1").study(str(file)), "study"),
                               (lambda: session.permit("P-1").insight(file), "insight"),
                               (lambda: session.permit("P-1").handover(file), "insight")]:
            with pytest.raises(Invalid) as caught:
                call()
            message = str(caught.value)
            assert message.startswith(f"{argument} (") and f"protected {zone}/ folder" in message
            assert not any(piece in message for piece in secret_lines())
        refused = session.governance.audit.records(action="handed_file_refused")[-4:]
        assert [(r.actor, r.outcome, r.target) for r in refused] == [("anna", "refused", f"{zone}/")] * 4
        assert all(str(workspace) not in str(r.detail) and "secret" not in str(r.detail) for r in refused)


def test_files_outside_the_zones_and_the_shipped_examples_are_handed_over(workspace, tmp_path):
    assert handed_file(workspace, EXAMPLES / "study.yaml", "FILE") == (EXAMPLES / "study.yaml").resolve()
    assert isinstance(load_study(handed_file(workspace, EXAMPLES / "study.yaml", "FILE")), StudyFile)
    mine = tmp_path / "request.yaml"
    mine.write_text("table: population\nmeasure: persons\n")
    assert AggregateRequest.load(handed_file(workspace, mine, "--request")).table == "population"
    beside = workspace / "request.yaml"  # the workspace's own folder is no zone (safepool.yaml is public)
    beside.write_text("table: population\nmeasure: persons\n")
    assert handed_file(workspace, beside, "--request") == beside
    with pytest.raises(Invalid, match="protected steward/ folder"):
        handed_file(workspace, workspace / "registers" / ".." / "steward" / "keys", "--request")


def test_keys_that_are_not_plain_names_are_never_echoed(tmp_path):
    path = tmp_path / "shadow.yaml"
    path.write_text(f"{SHADOW_KEY}\n{IDENTITY_CODE}: x\ntable: population\nmeasure: persons\n")
    with pytest.raises(FileProblem) as caught:
        AggregateRequest.load(path)
    message = str(caught.value)
    assert SHADOW_KEY not in message and SHADOW_KEY.rstrip(":") not in message and "root:" not in message
    assert IDENTITY_CODE not in message and "010101" not in message
    assert "line 1, an unknown field" in message and "line 2, an unknown field" in message


def test_a_typo_is_still_named(tmp_path):
    path = tmp_path / "request.yaml"
    path.write_text("table: population\nmeasurre: persons\n")
    with pytest.raises(FileProblem) as caught:
        AggregateRequest.load(path)
    assert "line 2, field measurre: Extra inputs are not permitted" in str(caught.value)
    assert "field measure: Field required" in str(caught.value)


def test_a_nested_key_that_is_not_a_plain_name_is_hidden_but_its_line_is_given(tmp_path):
    path = tmp_path / "study.yaml"
    text = (EXAMPLES / "study.yaml").read_text()
    assert "\nmatching:\n" in text
    path.write_text(text.replace("\nmatching:\n", f"\nmatching:\n  \"{IDENTITY_CODE}\": 1\n", 1))
    with pytest.raises(FileProblem) as caught:
        load_study(path)
    message = str(caught.value)
    line = text[:text.index("\nmatching:\n")].count("\n") + 3
    assert IDENTITY_CODE not in message and f"line {line}, an unknown field in matching" in message


VALUES = [SHADOW_KEY, IDENTITY_CODE, "Hunter2 very/secret", "x:y:z"]


def test_values_never_appear_in_messages(tmp_path):
    path = tmp_path / "request.yaml"
    path.write_text(f"""table: "{SHADOW_KEY}"
measure: "{IDENTITY_CODE}"
value: "Hunter2 very/secret"
join: ["{IDENTITY_CODE}", "x:y:z"]
by: ["sex; {IDENTITY_CODE}"]
filters:
  - "{IDENTITY_CODE} = {SHADOW_KEY}"
  - {{variable: "{IDENTITY_CODE}", operator: "~~", value: "Hunter2 very/secret"}}
quantiles: ["{SHADOW_KEY}"]
title: {{"{IDENTITY_CODE}": 1}}
""")
    with pytest.raises(FileProblem) as caught:
        AggregateRequest.load(path)
    message = str(caught.value)
    assert "line 1, field table:" in message and "line 2, field measure:" in message
    for value in VALUES:
        assert value not in message, value
    assert "010101" not in message and "Hunter2" not in message


def test_a_validators_quoted_value_is_hidden_unless_plain(tmp_path):
    path = tmp_path / "request.yaml"
    path.write_text(f'table: population\nmeasure: persons\njoin: ["{IDENTITY_CODE}"]\n')
    with pytest.raises(FileProblem) as caught:
        AggregateRequest.load(path)
    assert IDENTITY_CODE not in str(caught.value) and "(a value of the file)" in str(caught.value)
    path.write_text("permit: P-1\nwindow:\n  start: 2009Q5\n  end: 2024Q4\nregisters:\n  population: '*'\n")
    from safepool.pool.scope import Scope
    with pytest.raises(FileProblem, match="2009Q5"):  # a plain value stays helpful
        load_model(path, Scope)


def test_yaml_errors_quote_no_text_of_the_file(tmp_path):
    path = tmp_path / "request.yaml"
    path.write_text("table: !Hunter2:secret population\n")
    with pytest.raises(FileProblem) as caught:
        AggregateRequest.load(path)
    assert "Hunter2" not in str(caught.value) and "line 1: not valid YAML" in str(caught.value)
