"""`safepool outputs`: list, show, request-release, review and release from the command line."""

import hashlib
import os

import pytest
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"  # rich reads the width when the console is made, at import

from safepool.cli import app
from safepool.cli.common import exit_code
from safepool.faults import Invalid, Refused

from governed import PASSWORD
from recorded_outputs import CONTEXT, by_area, governed_outputs, record
from tiny_registers import make_workspace

runner = CliRunner()
REFUSED, INVALID = exit_code(Refused("")), exit_code(Invalid(""))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    governance = governed_outputs(ws.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    return ws.root, governance


def test_request_review_and_release_from_the_command_line(workspace):
    root, governance = workspace
    output = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    record(governance, "anna", "P-1", by_area({"north": 40, "south": 3}, "Too small"))

    listed = invoke("outputs", "list", "--user", "cecilia", "-w", root)
    assert listed.exit_code == 0, listed.output
    assert "P-1-0001" in listed.output and "P-1-0002" in listed.output and "failed" in listed.output
    only_failed = invoke("outputs", "list", "--status", "failed", "--user", "anna", "-w", root)
    assert "P-1-0002" in only_failed.output and "P-1-0001" not in only_failed.output

    asked = invoke("outputs", "request-release", output.id, "--context", CONTEXT, "--user", "anna", "-w", root)
    assert asked.exit_code == 0 and "Release of P-1-0001 requested" in asked.output
    reviewed = invoke("outputs", "review", output.id, "--decision", "approve", "--user", "cecilia", "-w", root)
    assert reviewed.exit_code == 0 and "now approved" in reviewed.output

    released = invoke("outputs", "release", output.id, "--user", "cecilia", "-w", root)
    assert released.exit_code == 0, released.output
    folder = root / "release" / "P-1" / "P-1-R001"
    assert str(folder) in released.output
    digest, path = (folder / "SHA256SUMS").read_text().splitlines()[0].split("  ")
    assert hashlib.sha256((folder / path).read_bytes()).hexdigest() == digest

    shown = invoke("outputs", "show", output.id, "--user", "anna", "-w", root)
    assert shown.exit_code == 0
    for text in ("Persons by area", "min_frequency", "cecilia", "approve", "released", "P-1-R001", CONTEXT, "as checked"):
        assert text in shown.output


def test_refusals_are_one_line_errors(workspace):
    root, governance = workspace
    failed = record(governance, "anna", "P-1", by_area({"north": 40, "south": 3}))
    asked = invoke("outputs", "request-release", failed.id, "--context", CONTEXT, "--user", "anna", "-w", root)
    assert asked.exit_code == REFUSED and "failed its disclosure checks" in asked.output
    own = record(governance, "anton", "P-1", by_area({"north": 40, "south": 33}))
    invoke("outputs", "request-release", own.id, "--context", CONTEXT, "--user", "anton", "-w", root)
    self_review = invoke("outputs", "review", own.id, "--decision", "approve", "--user", "anton", "-w", root)
    assert self_review.exit_code == REFUSED and "anton is the author of P-1-0002 and may not review it" in self_review.output
    bad_status = invoke("outputs", "list", "--status", "lost", "--user", "cecilia", "-w", root)
    assert bad_status.exit_code == INVALID and "unknown status 'lost'" in bad_status.output
    not_approved = invoke("outputs", "release", own.id, "--user", "cecilia", "-w", root)
    assert not_approved.exit_code == REFUSED and "only approved outputs are released" in not_approved.output
    assert "Traceback" not in not_approved.output


def test_a_checker_sees_differencing_flags(workspace):
    root, governance = workspace
    everyone = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    for args in (("request-release", everyone.id, "--context", CONTEXT, "--user", "anna"),
                 ("review", everyone.id, "--decision", "approve", "--user", "cecilia"),
                 ("release", everyone.id, "--user", "cecilia")):
        assert invoke("outputs", *args, "-w", root).exit_code == 0
    adults = record(governance, "anna", "P-1", by_area({"north": 40, "south": 31}, "Adults by area"))
    asked = invoke("outputs", "request-release", adults.id, "--context", CONTEXT, "--user", "anna", "-w", root)
    assert "differencing:" in asked.output and everyone.id in asked.output
    refused = invoke("outputs", "review", adults.id, "--decision", "approve", "--user", "cecilia", "-w", root)
    assert refused.exit_code == REFUSED and "needs a comment" in refused.output
    shown = invoke("outputs", "show", adults.id, "--user", "cecilia", "-w", root)
    assert "Differencing flags" in shown.output and f"set beside output {everyone.id}" in shown.output


BALANCE_HEADER = ["stage", "covariate", "mean_treated", "mean_control", "smd", "variance_ratio", "ecdf_mean",
                  "ecdf_max", "binary", "smd_ok", "vr_ok", "n_treated", "n_control", "status"]


def balance_rows() -> list[list[str]]:
    rows = [BALANCE_HEADER]
    for stage in ("before", "after"):
        for i, covariate in enumerate(["unemployed_quarters_8", "benefits_4", "permit_grounds_family"]):
            binary = covariate.startswith("permit")
            rows.append([stage, covariate, f"{7477.181 + i:.3f}", f"{2688.447 - i:.3f}", f"0.{i}12",
                         "binary" if binary else "1.604", "0.378", "0.516", f"{float(binary)}", "1.0", "1.0",
                         "350", "5295", "shown"])
    rows.append(["after", "age", "", "", "", "", "", "", "", "", "", "", "", "suppressed (primary: differencing)"])
    return rows


def test_a_wide_public_table_is_shown_as_one_record_per_row(monkeypatch):
    """Too wide for 80 columns, each row is a short record led by its labels and status, its values
    together (as a checker reads a row), never column groups a row is split across."""
    from safepool.cli.outputs import public_table
    from test_cli import readable

    monkeypatch.setenv("COLUMNS", "80")
    rows = balance_rows()
    lines = public_table("balance.csv", rows)
    text = "\n".join(lines)
    readable(text)
    assert "(columns" not in text and "Too wide for 80 columns: each row is shown as a record" in text
    starts = [i for i, line in enumerate(lines) if line[:1].isdigit()]
    assert len(starts) == len(rows) - 1
    for n, (row, start, end) in enumerate(zip(rows[1:], starts, [*starts[1:], len(lines)]), 1):
        record = " ".join(" ".join(lines[start:end]).split())
        assert record.startswith(f"{n}. stage {row[0]}, covariate {row[1]}: {row[-1]}")
        for name, value in zip(BALANCE_HEADER[2:-1], row[2:-1]):
            assert (f"{name} {value}" in record) == bool(value), (name, record)  # a blank is left out
    # one layout for every record: a column is in the same place in each
    assert len({line.index("mean_control") for line in lines if "mean_control" in line}) == 1


def test_a_narrow_public_table_stays_a_table(monkeypatch):
    from safepool.cli.outputs import public_table

    monkeypatch.setenv("COLUMNS", "80")
    lines = public_table("persons.csv", [["area", "count", "status"], ["north", "40", "shown"], ["south", "35", "shown"]])
    assert lines[1:] == ["area   count  status", "-----  -----  ------", "north     40  shown", "south     35  shown"]


def test_long_words_wrap_in_their_column_before_a_table_becomes_records(monkeypatch):
    """A cohort flow's steps are sentences: they wrap in their column, which keeps the table."""
    from safepool.cli.outputs import public_table

    monkeypatch.setenv("COLUMNS", "80")
    step = "removed: never eligible in the period: not living in the area, outside the age range, or immigrated later"
    lines = public_table("cohort_flow.csv", [["step", "count", "status"], [step, "2155", "rounded to base 5"],
                                             ["clients matched", "350", "rounded to base 5"]])
    assert lines[1].split() == ["step", "count", "status"] and max(len(line) for line in lines) <= 80
    assert "Too wide" not in "\n".join(lines)
    assert any(line.startswith("clients matched") and line.endswith("350  rounded to base 5") for line in lines)
