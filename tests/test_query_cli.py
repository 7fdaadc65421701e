"""`safepool query`: structured options, request files and SQL; refusals are plain errors."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from governed import PASSWORD
from safepool.cli import app
from safepool.cli.common import EXIT_CODES, exit_code
from safepool.faults import Invalid
from test_query_engine import PERMIT, copy_of, template  # noqa: F401  (the governed workspace, built once per module)

runner = CliRunner()
ERRORS = {code for _, code, _ in EXIT_CODES}  # one line, and the code of the error's kind


@pytest.fixture
def workspace(template, tmp_path, monkeypatch):  # noqa: F811  (pytest injects the imported fixture)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    return copy_of(template, tmp_path / "ws")[0].root


class Said:
    """A command's exit code and its output with line wrapping undone."""

    def __init__(self, result):
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())


def query(workspace, *args):
    return Said(runner.invoke(app, ["query", "--permit", PERMIT, "--user", "anna", "--workspace", str(workspace),
                                    *args]))


def test_structured_options_print_the_table_and_the_note(workspace):
    result = query(workspace, "--table", "population", "--measure", "persons", "--by", "year(birth_year)",
                   "--filter", "birth_year >= 1940", "--filter", "birth_year < 1942")
    assert result.exit_code == 0, result.output
    assert "persons by year(birth_year)" in result.output and "Total" in result.output
    assert "1940 - suppressed 1941 - suppressed Total - suppressed" in result.output
    assert "3 of 3 cell(s) suppressed" in result.output and "Recorded" not in result.output


def test_sql_with_filters_and_a_join(workspace):
    result = query(workspace, "--sql", "SELECT p.sex, avg(amount) AS mean_amount FROM payments "
                                       "JOIN population p USING (pid) WHERE amount < 10000 GROUP BY p.sex")
    assert result.exit_code == 0, result.output
    assert "mean_amount" in result.output and "shown" in result.output


def test_request_file(workspace, tmp_path):
    path = tmp_path / "request.yaml"
    path.write_text("table: payments\njoin: [population]\nmeasure: sum\nvalue: amount\nby: [sex]\n"
                    "filters:\n  - {variable: amount, operator: '<', value: 10000}\n  - sex in F,M\n")
    result = query(workspace, "--request", str(path))
    assert result.exit_code == 0, result.output
    assert "sum of amount by sex" in result.output and "female" in result.output


def test_bad_request_file_names_the_field_and_line(workspace, tmp_path):
    path = tmp_path / "request.yaml"
    path.write_text("table: payments\nmeasure: maximum\n")
    result = query(workspace, "--request", str(path))
    assert result.exit_code in ERRORS and "measure" in result.output and "line 2" in result.output


def test_refused_sql_is_a_plain_error(workspace):
    result = query(workspace, "--sql", "SELECT pid, amount FROM payments")
    assert result.exit_code in ERRORS
    assert "query refused" in result.output and "Traceback" not in result.output


def test_exactly_one_way_to_ask(workspace):
    result = query(workspace, "--sql", "SELECT count(*) AS n FROM payments", "--table", "payments")
    assert result.exit_code == exit_code(Invalid("")) and "exactly one of" in result.output
    result = query(workspace, "--table", "payments", "--measure", "count", "--filter", "amount ~ 3")
    assert result.exit_code in ERRORS and "operator must be one of" in result.output


def test_a_value_never_becomes_a_label_on_the_command_line(workspace):
    result = query(workspace, "--table", "payments", "--measure", "persons", "--by", "amount")
    assert result.exit_code in ERRORS and "bin(amount)" in result.output
    result = query(workspace, "--table", "payments", "--measure", "persons", "--by", "bin(amount)")
    assert result.exit_code == 0 and "250 to under 400 EUR" in result.output


def printed_row(output: str, label: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(label + " "))


def test_a_number_prints_as_the_shortest_text_that_reads_back_as_it():
    """A sum of cents is the float nearest to it, 20901.049999999999 at twelve decimals: printed so,
    a replay of an attack read it as noise in the answer. It prints as 20,901.05."""
    from safepool.cli.query import _places

    assert _places(pd.Series([20901.05, 15829.62, 3.0])) == 2
    assert _places(pd.Series([1858.984, 0.1 + 0.2])) == 12  # 0.30000000000000004: the policy's most
    assert _places(pd.Series([5.0, float("nan")])) == 0


@pytest.mark.parametrize("decimals", [3, 5])
def test_means_print_at_the_policys_precision_as_the_recorded_file_holds_them(workspace, decimals):
    """The answer is rounded to the policy's decimals, the recorded CSV holds it so, and the command
    prints every digit of it (it used to cut means to two decimals)."""
    import csv

    from governed import sign_in
    from safepool.disclosure.policy import set_policy
    from safepool.governance.context import Governance

    governance = Governance.open(workspace)
    if decimals != 3:  # the default
        set_policy(governance, sign_in(governance, "admin"), "decimals", str(decimals))
    result = runner.invoke(app, ["query", "--permit", PERMIT, "--user", "anna", "--workspace", str(workspace),
                                 "--sql", "SELECT sex, avg(amount) AS mean_amount FROM payments "
                                          "JOIN population USING (pid) WHERE amount < 10000 GROUP BY sex"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    [record] = governance.outputs.list(sign_in(governance, "cecilia"), permit=PERMIT)
    folder = governance.outputs.folder(record)
    [file] = [name for name in record.files if name.endswith(".csv")]
    with (folder / file).open(encoding="utf-8") as handle:
        recorded = {row["sex"]: float(row["value"]) for row in csv.DictReader(handle)}
    for label in ("female", "male", "Total"):
        mean, status = printed_row(result.output, label)[1:3]
        assert status == "shown" and len(mean.partition(".")[2]) == decimals, result.output
        assert float(mean.replace(",", "")) == recorded[label]
