"""Permit forms are checked when submitted (issue 11, point 9): registers and variables against the
workspace catalogue, the people against the users, the expiry against today and the time frame
against the years the registers' data covers, each problem reported at its field and line, the
refusal audited and nothing stored."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from sqlalchemy import update

from governed import governance_with_users, sign_in, tiny_request
from safepool.faults import Invalid, NotFound
from safepool.governance.form import PermitRequest
from safepool.governance.permits import FormProblem
from safepool.governance.users import users_table
from safepool.yaml_files import load_model
from tiny_registers import make_workspace


@pytest.fixture
def setup(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    return workspace, governance_with_users(workspace.root)


def form_text(**changes) -> str:
    """The tiny request as a YAML file, changed in the fields given (dotted paths as `a__b`)."""
    data = tiny_request().model_dump(mode="json")
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = data
        for part in parents:
            target = target[part]
        target[last] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def line_of(text: str, fragment: str, after: str | None = None) -> int:
    """1-based number of the first line holding `fragment` (after the first line holding `after`)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines[start:], start=start + 1) if fragment in line)


def submit(governance, tmp_path, text: str, permit_id: str = "P-1"):
    path = tmp_path / "request.yaml"
    path.write_text(text)
    request = load_model(path, PermitRequest)
    with pytest.raises(FormProblem) as caught:
        governance.permits.request(sign_in(governance, "anna"), request, permit_id)
    error = caught.value
    assert isinstance(error, Invalid) and error.path == path
    with pytest.raises(NotFound):
        governance.permits.get(permit_id)  # nothing stored
    refusal = governance.audit.records(action="permit_request", outcome="refused")[-1]
    assert refusal.permit == permit_id and refusal.detail["reason"] == "the form does not match the workspace"
    return error.problems, refusal


def test_an_unknown_register_is_refused_at_its_line(setup, tmp_path):
    _, governance = setup
    sources = {"population": "*", "payments": ["paid_on", "amount"], "taxes": ["income"]}
    text = form_text(data__sources=sources)
    problems, refusal = submit(governance, tmp_path, text)
    assert problems == [f"line {line_of(text, 'taxes:')}, field data.sources.taxes: unknown register taxes; "
                        "the catalogue holds payments, population, visits"]
    assert refusal.detail["fields"] == ["data.sources.taxes"]


def test_an_unknown_variable_is_refused_at_its_line(setup, tmp_path):
    _, governance = setup
    text = form_text(data__sources={"population": "*", "payments": ["paid_on", "amount", "colour"]})
    problems, _ = submit(governance, tmp_path, text)
    assert problems == [f"line {line_of(text, '- colour')}, field data.sources.payments.2: "
                        "register payments has no variable colour"]


def test_unknown_inactive_and_roleless_people_are_refused_one_by_one(setup, tmp_path):
    _, governance = setup
    with governance.users.engine.begin() as con:
        con.execute(update(users_table).where(users_table.c.name == "aaro").values(active=False))
    text = form_text(people=["anna", "eve", "aaro", "apu", "cecilia"])
    problems, refusal = submit(governance, tmp_path, text)
    assert problems == [
        f"line {line_of(text, '- eve')}, field people.1: no user eve in this workspace",
        f"line {line_of(text, '- aaro', after='people:')}, field people.2: user aaro is not active",
        f"line {line_of(text, '- apu', after='people:')}, field people.3: user apu is neither an analyst nor a "
        "checker: a permit's people analyse its data or check its outputs",
    ]  # cecilia, a checker, may be named
    assert refusal.detail["fields"] == ["people.1", "people.2", "people.3"]


def test_an_expiry_in_the_past_is_refused(setup, tmp_path):
    _, governance = setup
    yesterday = dt.date.today() - dt.timedelta(days=1)
    text = form_text(expiry=yesterday.isoformat())
    problems, _ = submit(governance, tmp_path, text)
    assert problems == [f"line {line_of(text, 'expiry:')}, field expiry: the expiry {yesterday.isoformat()} is in "
                        f"the past (today is {dt.date.today().isoformat()})"]


@pytest.mark.parametrize("start, end, field, message", [
    ("2005Q1", "2024Q4", "start", "the time frame starts in 2005Q1, before the data of the registers asked for "
                                  "(from 2009)"),
    ("2009Q1", "2027Q4", "end", "the time frame ends in 2027Q4, after the data of the registers asked for "
                                "(up to 2025)"),
])
def test_a_time_frame_outside_the_catalogues_data_is_refused(setup, tmp_path, start, end, field, message):
    _, governance = setup
    text = form_text(data__time_frame={"start": start, "end": end},
                     data__sources={"payments": ["paid_on"], "visits": ["month"]})
    problems, _ = submit(governance, tmp_path, text)
    assert problems == [f"line {line_of(text, f'{field}:', after='time_frame:')}, field data.time_frame.{field}: "
                        f"{message}"]


def test_a_register_with_no_data_in_the_time_frame_is_refused(setup, tmp_path):
    _, governance = setup
    text = form_text(data__time_frame={"start": "2025Q1", "end": "2025Q4"},
                     data__sources={"payments": ["paid_on"], "visits": ["month"]})
    problems, _ = submit(governance, tmp_path, text)
    assert problems == [f"line {line_of(text, 'payments:')}, field data.sources.payments: register payments holds "
                        "data for 2009-2024, none of it in the time frame 2025Q1-2025Q4"]


def test_every_problem_is_reported_at_once(setup, tmp_path):
    _, governance = setup
    text = form_text(data__sources={"population": "*", "payments": ["paid_on", "colour"], "taxes": "*"},
                     data__time_frame={"start": "2001Q1", "end": "2024Q4"}, people=["anna", "eve"],
                     expiry="2020-01-01")
    problems, refusal = submit(governance, tmp_path, text)
    assert [p.split(": ")[0].split("field ")[1] for p in problems] == [
        "data.sources.payments.1", "data.sources.taxes", "data.time_frame.start", "people.1", "expiry"]
    assert all(p.startswith("line ") for p in problems)
    assert str(FormProblem(tmp_path / "request.yaml", problems)).startswith(
        f"{tmp_path / 'request.yaml'}: 5 problems:\n  line ")


def test_a_form_not_from_a_file_names_the_fields_without_lines(setup):
    _, governance = setup
    request = tiny_request(people=["anna", "eve"])
    with pytest.raises(FormProblem) as caught:
        governance.permits.request(sign_in(governance, "anna"), request, "P-1")
    assert str(caught.value) == "permit request: field people.1: no user eve in this workspace"


def test_a_matching_form_goes_through(setup, tmp_path):
    _, governance = setup
    path = tmp_path / "request.yaml"
    path.write_text(form_text(people=["anna", "cecilia"]))
    permit = governance.permits.request(sign_in(governance, "anna"), load_model(path, PermitRequest), "P-1")
    assert permit.status == "pending" and governance.audit.records(action="permit_request") == []


def test_a_workspace_without_catalogued_registers_checks_people_and_expiry_only(tmp_path):
    """Nothing to check registers against yet (its pool cannot be built until they are catalogued)."""
    governance = governance_with_users(tmp_path)
    request = tiny_request(data=tiny_request().data.model_copy(update={"sources": {"taxes": "*"}}).model_dump())
    assert governance.permits.request(sign_in(governance, "anna"), request, "P-1").status == "pending"
    with pytest.raises(FormProblem, match="people.0: no user eve"):
        governance.permits.request(sign_in(governance, "anna"), tiny_request(people=["eve"]), "P-2")


def test_the_shipped_demo_form_matches_the_synthetic_catalogue(tmp_path):
    """The demo's request names only what synthetic Espoo holds."""
    from safepool.demo import DEMO_USERS, demo_request
    from safepool.governance.catalogue_view import read_catalogue
    from safepool.governance.permits import _catalogue_problems
    from safepool.synth import generate, write_workspace
    from safepool.workspace import Workspace

    workspace = Workspace.init(tmp_path / "ws")
    write_workspace(workspace, generate(persons=200, seed=1))
    request = demo_request()
    assert _catalogue_problems(request, read_catalogue(workspace.root)) == []
    assert set(request.people) <= set(DEMO_USERS)


def test_permit_request_on_the_command_line_names_each_field_and_line(setup, tmp_path):
    from typer.testing import CliRunner

    from governed import PASSWORD
    from safepool.cli import app
    from safepool.cli.common import EXIT_CODES

    workspace, governance = setup
    path = tmp_path / "request.yaml"
    text = form_text(data__sources={"population": "*", "taxes": "*"}, people=["anna", "eve"])
    path.write_text(text)
    result = CliRunner().invoke(app, ["permit", "request", str(path), "--id", "P-1", "--user", "anna",
                                      "-w", str(workspace.root)], env={"SAFEPOOL_PASSWORD": PASSWORD, "COLUMNS": "80"})
    assert result.exit_code == {kind: code for kind, code, _ in EXIT_CODES}[Invalid], result.output
    said = " ".join(result.output.split())
    assert f"line {line_of(text, 'taxes:')}, field data.sources.taxes: unknown register taxes" in said
    assert f"line {line_of(text, '- eve')}, field people.1: no user eve in this workspace" in said
    lines = result.output.splitlines()  # the error (wrapped), then each problem on lines of its own, 80 wide
    problems = next(i for i, line in enumerate(lines) if line.startswith("  line "))
    first = " ".join(line.strip() for line in lines[:problems])
    assert first.startswith("error: ") and first.endswith("2 problems:") and "Traceback" not in result.output
    assert [line.split(",")[0] for line in lines[1:] if line.startswith("  line ")] == [
        f"  line {line_of(text, 'taxes:')}", f"  line {line_of(text, '- eve')}"]
    assert all(len(line) <= 80 for line in lines[problems:])  # (a path above is kept whole)
