"""The features layer (issue 13, point 2): defined once against the catalogue, computed in SQL,
self-documenting, and the only place the study's cohort learns register names and codes from."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import duckdb
import pytest

from safepool.features import FeatureSet, load_features
from safepool.features.browse import feature_lines
from safepool.synth._catalogue import register_entries
from safepool.yaml_files import FileProblem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import synthetic_pool  # noqa: E402

COHORT = Path(__file__).resolve().parents[1] / "src/safepool/study/cohort.py"


@pytest.fixture(scope="module")
def features() -> FeatureSet:
    return load_features()


def test_every_source_is_a_variable_of_the_catalogue_and_times_are_as_written(features):
    tables = {r.name: {v.name: v for v in r.variables} for r in register_entries()}
    assert features.check_against({t: set(v) for t, v in tables.items()}) == []
    for table, timing in features.spec.tables.items():
        variable = tables[table][timing.time]
        written = variable.date_format.value if variable.date_format else "date"
        assert (variable.level, written) == ("date", timing.format), table
    for name, feature in features.spec.quarterly.items():
        for column, codes in (feature.where or {}).items():
            assert {str(c) for c in codes} <= set(tables[feature.table][column].codes), name


def test_every_feature_documents_itself(features):
    for name in features.names:
        doc = features.describe(name)
        assert doc.name == name and doc.description and doc.definition and doc.unit and doc.sources
        assert all(re.fullmatch(r"\w+\.\w+", source) for source in doc.sources)
    assert features.describe("unemployed_quarters_8").sources == ("employment.quarter", "employment.main_activity")


def test_the_variables_browser_shows_definitions_at_80_columns(features):
    tables = {"population": {v.name: v for v in register_entries()[0].variables}}
    lines = feature_lines(tables, 80, features)
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "age (attributes, years): age on the day" in text and "from: population.birth_date" in text
    assert "family_language_group" in text and "unemployed_quarters_8" not in text  # no employment table


@pytest.fixture(scope="module")
def pool():
    con, truth = synthetic_pool(seed=3, persons=3000, clients_per_year=20)
    yield con, truth
    con.close()


def test_the_familys_language_is_the_planted_one(pool, features):
    con, truth = pool
    con.execute("CREATE OR REPLACE TEMP TABLE young AS SELECT pid, 0 AS t, DATE '2024-12-31' AS day "
                "FROM population WHERE birth_date >= DATE '1991-01-01'")
    table = con.sql(features.at_day_sql("young", ["family_language_group"], day="u.day")).df()
    counted = table["family_language_group"].value_counts().to_dict()
    planted = truth["city"]["families"]["children_by_family_language"]
    for group, size in planted.items():  # the register misses a few persons (a planted fault)
        assert abs(counted.get(group, 0) - size) <= 0.01 * size + 3, (group, counted, planted)


def test_windows_count_the_quarters_before(features):
    con = duckdb.connect()
    con.execute("CREATE TABLE population (pid VARCHAR, birth_date DATE)")
    con.execute("INSERT INTO population VALUES ('a', DATE '1990-05-01')")
    con.execute("CREATE TABLE city_services (pid VARCHAR, service VARCHAR, start_date DATE)")
    con.execute("INSERT INTO city_services VALUES ('a', 'library_and_culture', DATE '2020-02-01'), "
                "('a', 'library_and_culture', DATE '2020-02-03'), ('a', 'sports', DATE '2021-01-01'), "
                "('a', 'library_and_culture', DATE '2022-06-01')")
    con.execute("CREATE TABLE persons AS SELECT pid FROM population")
    t = 2022 * 4  # 2022Q1
    features.build_panel(con, "panel", "persons", ["library_and_culture_visits", "city_service_contacts"],
                         t - 16, t + 2)
    con.execute(f"CREATE TABLE units AS SELECT 'a' AS pid, {t} AS t, DATE '2022-01-01' AS day")
    row = con.sql(features.at_day_sql("units", ["library_and_culture_visits_8", "quarters_since_city_service",
                                                "age", "life_phase"], day="u.day", panel="panel")).df().iloc[0]
    assert row["library_and_culture_visits_8"] == 2  # 2020Q1 is 8 quarters before 2022Q1; 2022Q2 is after
    assert row["quarters_since_city_service"] == 4  # the sports membership of 2021Q1
    assert row["life_phase"] == "adult" and 31 < row["age"] < 32  # adult from 30
    con.close()


def test_a_bad_configuration_names_the_field_and_line(tmp_path):
    path = tmp_path / "features.yaml"
    path.write_text("person_table: population\ntables:\n  benefits: {time: month, format: yyyymm}\n"
                    "quarterly:\n  paid:\n    {table: benefits, aggregate: sum, unit: EUR, description: paid}\n")
    with pytest.raises(FileProblem, match=r"line 5, field quarterly.paid.*of"):
        load_features(path)
    path.write_text("person_table: population\nwindows:\n  w: {of: nothing, quarters: 4, aggregate: sum, "
                    "unit: EUR, description: w}\n")
    with pytest.raises(FileProblem, match="nothing is not a quarterly feature"):
        load_features(path)


def test_the_cohort_names_no_register_table_variable_or_code():
    """Every table, variable and code reaches the cohort through the features layer."""
    tree = ast.parse(COHORT.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
               and isinstance(node.value, str) and id(node) not in docstrings]
    strings += [part.value for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                for part in node.values if isinstance(part, ast.Constant)]
    tables = {r.name for r in register_entries()}
    variables = {v.name for r in register_entries() for v in r.variables} - set(load_features().names)
    for text in strings:
        sql = re.findall(r"(?:FROM|JOIN)\s+\"?(\w+)", text)
        assert not set(sql) & tables, text
        assert not set(re.findall(r"[a-z_]+", text)) & (variables - {"description", "level"}) or \
            not re.search(r"SELECT|WHERE|CAST|coalesce", text), text
        assert not re.search(r"= '[^']+'|= ([2-9]|\d{2,})\b", text), text  # a code, not 0 or 1

