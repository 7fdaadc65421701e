"""The data dictionary: measurement levels in the catalogue, the register check against code lists
and date formats (counts only, never values), the pool's snapshot and `pool variables`."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

os.environ.setdefault("COLUMNS", "250")  # rich reads the width when the console is made, at import

from safepool.cli import app
from safepool.errors import SafepoolError
from safepool.governance.permits import Phase
from safepool.pool import access
from safepool.pool.build import build_pool
from safepool.pool.scope import Scope
from safepool.registers.catalogue import Register, Variable
from safepool.registers.check import check_registers
from safepool.synth import _city, _family, _people, _panel, _registers, generate, write_workspace
from safepool.synth._catalogue import register_entries
from safepool.synth._names import LANGUAGES
from safepool.workspace import Workspace, WorkspaceConfig
from safepool.yaml_files import FileProblem, parse_model

from governed import PASSWORD, approved_permit, governance_with_users, sign_in
from tiny_registers import identifying_strings, make_workspace, visits, write_sqlite

runner = CliRunner()
UNKNOWN = "ZQ-unlisted-sex-code"  # a value no code list holds; it must never be shown


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# ---------------------------------------------------------------------------------------------
# the synthetic catalogue


@pytest.fixture(scope="module")
def synthetic():
    return generate(persons=2_000, seed=3)


def test_every_synthetic_variable_has_a_level_with_its_fields():
    for register in register_entries():
        for variable in register.variables:
            where = f"{register.name}.{variable.name}"
            assert variable.level in ("categorical", "numeric", "date", "text"), where
            if variable.level == "categorical":
                assert variable.codes and all(label.strip() for label in variable.codes.values()), where
            if variable.level == "numeric":
                assert variable.unit and variable.bins, where
            if variable.level == "date":
                assert variable.years is not None, where
    levels = {(r.name, v.name): v for r in register_entries() for v in r.variables}
    assert levels[("employment", "quarter")].date_format == "yyyyq"
    assert levels[("benefits", "month")].date_format == "yyyymm"
    assert levels[("education", "year")].date_format == "year"
    assert levels[("income_taxes", "tax_year")].date_format == "year"
    assert levels[("employment", "earnings")].bins[:2] == [0.01, 1000]  # zero earnings: a group of its own
    assert levels[("population", "children")].bins == [1, 2, 3, 4]
    assert levels[("skills_centre", "motivation")].level == "categorical"


def test_code_lists_hold_every_code_the_generator_writes():
    codes = {(r.name, v.name): set(v.codes or {}) for r in register_entries() for v in r.variables}
    written = {
        ("population", "sex"): {"1", "2"},
        ("population", "native_language"): set(LANGUAGES),
        ("population", "country_of_birth"): set(_people.COUNTRIES),
        ("population", "citizenship"): set(_people.COUNTRIES),
        ("population", "marital_status"): {"1", "2", "4", "5"},
        ("residence_permits", "grounds"): set(_people.GROUNDS),
        ("residence_permits", "permit_type"): set(_people.PERMIT_KINDS),
        ("employment", "main_activity"): {str(c) for c in (_panel.EMPLOYED, _panel.UNEMPLOYED, _panel.STUDENT,
                                                           _panel.PENSIONER, _panel.OTHER)},
        ("education", "level"): {"3", "5", "6", "7", "8"},
        ("education", "field"): set(_people.FIELDS),
        ("benefits", "benefit_type"): set(_registers.KELA_TYPES),
        ("employment_services", "event_type"): set(_registers.TE_EVENTS),
        ("skills_centre", "programme"): set(_registers.PROGRAMMES),
        ("skills_centre", "language_level"): set(_panel.LANGUAGE_LEVELS),
        ("skills_centre", "motivation"): {"1", "2", "3", "4", "5"},
        ("skills_centre", "family_relations"): set(_registers.FAMILY_RELATIONS),
        ("skills_centre", "social_network"): {"1", "2", "3", "4", "5"},
        ("social_health", "service"): set(_registers.SERVICES),
        ("social_assistance", "assistance_type"): set(_registers.ASSISTANCE_TYPES),
        ("population", "district"): set(_family.DISTRICTS),
        ("child_protection", "event_type"): set(_city.CP_EVENTS),
        ("child_protection", "notifier"): set(_city.NOTIFIERS),
        ("city_services", "service"): set(_city.SERVICES),
    }
    for key, values in written.items():
        assert codes[key] == values, key
    chapters = codes[("social_health", "icd10_chapter")]
    assert set(_registers.CHAPTERS) <= chapters and len(chapters) == 22  # the whole ICD-10 chapter list
    categorical = {key for key, values in codes.items() if values}
    assert categorical == set(written) | {("social_health", "icd10_chapter")}


def test_synthetic_data_fit_the_dictionary(synthetic):
    """Every categorical value is a listed code; every date falls within the years declared."""
    for register in register_entries():
        table = synthetic.tables[register.name]
        for variable in register.variables:
            column = table.column(variable.column)
            where = f"{register.name}.{variable.name}"
            if variable.level == "categorical":
                seen = {str(v) for v in pc.unique(column).to_pylist() if v is not None}
                assert seen <= set(variable.codes), (where, len(seen - set(variable.codes)))
            if variable.level == "date" and column.null_count < len(column):
                if variable.date_format is None:
                    years = pc.year(column)
                elif variable.date_format == "yyyymm":
                    years = pc.divide(column, 100)
                elif variable.date_format == "yyyyq":
                    years = pc.cast(pc.utf8_slice_codeunits(column, 0, 4), pa.int32())
                else:
                    years = column
                low, high = pc.min_max(years).values()
                assert variable.years[0] <= low.as_py() and high.as_py() <= variable.years[1], where


def test_synthetic_registers_pass_the_check(tmp_path, synthetic):
    workspace = Workspace.init(tmp_path / "ws")
    write_workspace(workspace, synthetic)
    for check in check_registers(workspace):
        assert check.ok, (check.register, check.problems)
        assert not check.unknown_codes and not check.unparsed_dates
    assert {"quarter": "yyyyq"} == {k: v for k, v in next(
        c for c in check_registers(workspace, ["employment"])).date_formats.items()}


# ---------------------------------------------------------------------------------------------
# the catalogue's validator


BASE = {"name": "x", "column": "x_col", "description": "something"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"type": "string", "level": "categorical"}, "variable x: a categorical variable needs its code list"),
    ({"type": "string", "level": "categorical", "codes": {}}, "variable x: a categorical variable needs its code list"),
    ({"type": "float", "level": "numeric", "bins": [1, 2]}, "variable x: a numeric variable needs its unit"),
    ({"type": "float", "level": "numeric", "unit": "EUR", "bins": [10, 5, 20]},
     "variable x: bins must be strictly ascending"),
    ({"type": "float", "level": "numeric", "unit": "EUR", "bins": [5, 5]}, "variable x: bins must be strictly ascending"),
    ({"type": "date", "level": "date"}, "variable x: a date variable needs years"),
    ({"type": "date", "level": "date", "years": [2024, 2009]}, "variable x: a date variable needs years"),
    ({"type": "integer", "level": "date", "years": [2009, 2024]}, "variable x: a date stored as integer needs date_format"),
    ({"type": "integer", "level": "date", "years": [2009, 2024], "date_format": "yyyyq"},
     "variable x: a yyyyq date such as 2019Q3 is stored as string"),
    ({"type": "string", "level": "text", "codes": {"a": "b"}}, "variable x: a text variable takes no codes"),
    ({"type": "integer", "level": "categorical", "codes": {"01": "one"}},
     "variable x: codes of a integer variable are written as the data writes them"),
    ({"type": "string", "level": "categorical", "codes": {"a": " "}}, "variable x: every code needs a label"),
])
def test_validator_rejects_an_incomplete_level(fields, message):
    with pytest.raises(ValidationError, match=message):
        Variable.model_validate(BASE | fields)


def test_level_is_required():
    with pytest.raises(ValidationError, match="level"):
        Variable.model_validate(BASE | {"type": "string"})


def test_yaml_codes_written_as_numbers_are_read_as_text(tmp_path):
    text = """registers:
  - name: people
    holder: DVV
    description: persons
    source: {kind: parquet, location: people.parquet}
    identity_column: hetu
    variables:
      - {name: sex, column: sp, type: integer, description: sex, level: categorical, codes: {1: male, 2: female}}
      - {name: alive, column: el, type: boolean, description: alive, level: categorical, codes: {true: alive, false: dead}}
      - {name: income, column: tulot, type: float, description: income, level: numeric, unit: EUR, bins: [0.01, 1000]}
"""
    config = parse_model(text, WorkspaceConfig, tmp_path / "safepool.yaml")
    register = config.registers[0]
    assert register.variable("sex").codes == {"1": "male", "2": "female"}
    assert register.variable("alive").codes == {"true": "alive", "false": "dead"}
    broken = text.replace("unit: EUR, ", "")
    with pytest.raises(FileProblem, match=r"line 10, field registers\.0\.variables\.2: .*variable income: "
                                          r"a numeric variable needs its unit"):
        parse_model(broken, WorkspaceConfig, tmp_path / "safepool.yaml")


# ---------------------------------------------------------------------------------------------
# registers check: values outside the code list and dates outside their format, counted only


def _plant_misfits(workspace):
    path = workspace.registers_dir / "dvv" / "population.parquet"
    table = pq.read_table(path)
    sex = table.column("sukupuoli").to_pylist()
    sex[0] = sex[2] = UNKNOWN
    table = table.set_column(table.schema.get_field_index("sukupuoli"), "sukupuoli", pa.array(sex))
    pq.write_table(table, path)
    bad = visits().set_column(1, "kuukausi", pa.array([201901, 202513, 202003, 201900]))
    write_sqlite(workspace.registers_dir / "espoo" / "espoo.sqlite", "kaynnit", bad)


def test_check_counts_unknown_codes_and_unparsed_dates(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    assert all(check.ok for check in check_registers(workspace))
    _plant_misfits(workspace)
    checks = {c.register: c for c in check_registers(workspace)}
    population, visits_check = checks["population"], checks["visits"]
    assert not population.ok and not population.drift
    assert population.unknown_codes["sex"].rows == 2 and population.unknown_codes["sex"].codes == 1
    assert population.problems == ["variable sex: 2 rows with 1 code not in its code list"]
    assert visits_check.unparsed_dates == {"month": 2}
    assert visits_check.problems == ["variable month: 2 rows not a date written as yyyymm"]
    assert checks["payments"].ok


def test_cli_check_names_register_variable_and_count_never_the_value(tmp_path, monkeypatch):
    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    _plant_misfits(workspace)
    checked = invoke("registers", "check", "--user", "stella", "-w", workspace.root)
    assert checked.exit_code == 1
    flat = " ".join(checked.output.split())
    assert "population" in flat and "variable sex: 2 rows with 1 code not in its code list" in flat
    assert "variable month: 2 rows not a date written as yyyymm" in flat
    assert UNKNOWN not in checked.output and "ZQ" not in checked.output
    assert not any(text in checked.output for text in identifying_strings())
    record = governance.audit.records(action="registers_check")[-1]
    assert record.outcome == "error"
    assert record.detail["dictionary_misfits"] == {"population": {"sex": {"rows": 2, "codes": 1}},
                                                   "visits": {"month": {"unparsed_date_rows": 2}}}
    assert UNKNOWN not in json.dumps(record.detail)
    # nothing the check wrote anywhere (audit database included) holds the value
    for path in workspace.root.rglob("*"):
        if path.is_file() and workspace.registers_dir not in path.parents:
            assert UNKNOWN.encode() not in path.read_bytes(), path


def test_a_drifted_column_is_not_checked_against_its_codes(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    path = workspace.registers_dir / "dvv" / "population.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("sukupuoli"), "sukupuoli",
                                    pa.array([1, 2, 1, 2])), path)
    population = next(c for c in check_registers(workspace) if c.register == "population")
    assert population.drift == ["column sukupuoli (variable sex) is int64, the dictionary says string"]
    assert population.unknown_codes == {}


# ---------------------------------------------------------------------------------------------
# the pool's snapshot of the dictionary


def _scope(permit="P-1"):
    return Scope(permit=permit, window={"start": "2009Q1", "end": "2024Q4"},
                 registers={"population": "*", "payments": ["amount"], "visits": "*"})


def test_manifest_holds_the_dictionary_in_pool_names(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    built = build_pool(workspace, _scope())
    manifest = json.loads((built.path / "manifest.json").read_text())
    catalogue = workspace.catalogue()
    assert list(manifest["dictionary"]) == ["population", "payments", "visits"]
    assert manifest["dictionary"]["payments"] == [
        {"name": "amount", "type": "float", "description": "euros", "sensitivity": "sensitive", "level": "numeric",
         "codes": None, "unit": "EUR", "bins": [250.0, 500.0], "years": None, "date_format": None}]
    text = json.dumps(manifest["dictionary"])
    for register in catalogue.registers:  # the holder's column names stay with the steward
        assert all(f'"{v.column}"' not in text for v in register.variables)
    variables = access.dictionary(workspace.pool_dir, "P-1")
    assert list(variables) == ["population", "payments", "visits"]
    assert list(variables["payments"]) == ["amount"]
    for table, by_name in variables.items():
        for name, variable in by_name.items():
            original = catalogue.register(table).variable(name)
            assert variable.column == name
            assert variable.model_dump(exclude={"column"}) == original.model_dump(exclude={"column"})
    assert variables["visits"]["month"].date_parts() == ["year", "quarter", "month"]
    assert variables["population"]["birth_year"].date_parts() == ["year"]


def test_a_pool_built_before_the_dictionary_is_named(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    built = build_pool(workspace, _scope())
    path = built.path / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["dictionary"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(access.PoolNotBuilt, match="the pool of permit P-1 was built before the data dictionary; "
                                                  "rebuild it"):
        access.dictionary(workspace.pool_dir, "P-1")
    with pytest.raises(access.PoolNotBuilt, match="no pool has been built for permit P-2"):
        access.dictionary(workspace.pool_dir, "P-2")
    manifest["dictionary"] = {"payments": [{"name": "amount"}]}
    path.write_text(json.dumps(manifest))
    with pytest.raises(SafepoolError, match="damaged"):
        access.dictionary(workspace.pool_dir, "P-1")


# ---------------------------------------------------------------------------------------------
# safepool pool variables


def test_pool_variables_for_an_analyst_of_the_permit(tmp_path, monkeypatch):
    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    approved_permit(governance, "P-CLI")
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    assert invoke("pool", "build", "--permit", "P-CLI", "--user", "stella", "-w", workspace.root).exit_code == 0
    governance.permits.advance(sign_in(governance, "stella"), "P-CLI", Phase.analytic_review)  # the data is ready
    shown = invoke("pool", "variables", "P-CLI", "--user", "anna", "-w", workspace.root)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for expected in ("population (2 variables)", "  birth_year: date, 1900-2024, by year, written as year",
                     "  sex: categorical, 2 codes", "      codes: F = female; M = male",
                     "  amount: numeric, EUR [sensitive]", "      bins: under 250 | 250 to under 500 | 500 and over",
                     "  month: date, 2009-2025, by year, quarter or month, written as yyyymm",
                     "      payment day", "      euros"):
        assert expected in lines, expected
    assert "syntymavuosi" not in shown.output and "euroa" not in shown.output  # pool names only
    assert not any(text in shown.output for text in identifying_strings())
    record = governance.audit.records(action="pool_variables")[-1]
    assert (record.actor, record.permit, record.outcome) == ("anna", "P-CLI", "ok")
    assert record.rows == 5  # birth_year, sex, paid_on, amount, month
    refused = invoke("pool", "variables", "P-CLI", "--user", "aaro", "-w", workspace.root)
    assert refused.exit_code == 5 and "P-CLI" in refused.output  # refused


def test_pool_variables_wrap_long_code_lists_at_80_columns(tmp_path, synthetic):
    from safepool.cli.data import dictionary_lines

    tables = {r.name: {v.name: v for v in r.variables} for r in register_entries()}
    lines = dictionary_lines(tables)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "XXII = special purposes" in " ".join(text.split())
    assert "  earnings: numeric, EUR [sensitive]" in lines
    assert "under 0.01 | 0.01 to under 1,000" in " ".join(text.split())
    assert "      codes: 1 = male; 2 = female" in lines
    long = Variable(name="long_one", column="c", type="string", description="d " * 60, level="categorical",
                    codes={"a": "a very long label " * 8, "b": "short", "c_" * 50: "x"})
    lines = dictionary_lines({"t": {"long_one": long}})
    assert max(len(line) for line in lines) <= 80 and any(line.startswith("      codes: a = a very long label") for line in lines)


def test_pool_variables_before_build(tmp_path, monkeypatch):
    workspace = make_workspace(tmp_path / "ws")
    governance_with_users(workspace.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    result = invoke("pool", "variables", "NOPE", "--user", "stella", "-w", workspace.root)
    assert result.exit_code == 4 and "no pool has been built for permit NOPE"  # not found in result.output


def test_register_model_still_refuses_identifying_variables():
    with pytest.raises(ValidationError, match="may not be variables"):
        Register.model_validate({
            "name": "r", "holder": "h", "description": "d", "source": {"kind": "parquet", "location": "r.parquet"},
            "identity_column": "hetu",
            "variables": [{"name": "code", "column": "hetu", "type": "string", "description": "d", "level": "text"}]})
