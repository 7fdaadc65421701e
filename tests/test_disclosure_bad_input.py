"""Bad input to the disclosure checks: a clear verdict or a clear error, never a crash and never
a pass by default; large tables stay fast."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.disclosure import frequency_table, magnitude_table
from safepool.disclosure import (
    DisclosureInputError,
    DisclosureRules,
    EffectTable,
    ExtremeTable,
    Figure,
    FrequencyTable,
    MagnitudeTable,
    ModelResult,
    QuantileTable,
    check,
    load_table,
    suppress,
)

RULES = DisclosureRules()


def frequency(counts: list) -> FrequencyTable:
    return FrequencyTable("t", pd.DataFrame({"area": [f"a{k}" for k in range(len(counts))], "count": counts}), ["area"])


def magnitude(**changes) -> MagnitudeTable:
    cells = {"area": ["a", "b"], "value": [500.0, 700.0], "n": [20, 30], "top": [[50.0, 40.0], [60.0, 50.0]],
             "abs_total": [500.0, 700.0]}
    cells.update(changes)
    return MagnitudeTable("m", pd.DataFrame(cells), ["area"], "sum")


def coefficients(**changes) -> pd.DataFrame:
    return pd.DataFrame({"term": ["a", "b"], "estimate": [1.0, 2.0], "std_error": [0.1, 0.2], **changes})


BAD_OUTPUTS = {
    "empty frequency table": FrequencyTable("t", pd.DataFrame({"area": [], "count": []}), ["area"]),
    "frame without columns": FrequencyTable("t", pd.DataFrame(), []),
    "cells not a table": FrequencyTable("t", [{"area": "a", "count": 9}], ["area"]),
    "missing count column": FrequencyTable("t", pd.DataFrame({"area": ["a"], "n": [9]}), ["area"]),
    "missing group column": FrequencyTable("t", pd.DataFrame({"count": [9]}), ["area"]),
    "groups not a list": FrequencyTable("t", pd.DataFrame({"area": ["a"], "count": [9]}), "area"),
    "text count": frequency([12, "many"]),
    "NaN count": frequency([12, np.nan]),
    "+inf count": frequency([12, np.inf]),
    "-inf count": frequency([12, -np.inf]),
    "negative count": frequency([12, -3]),
    "fractional count": frequency([12, 7.5]),
    "true/false counts": frequency([True, False]),
    "repeated cell": FrequencyTable("t", pd.DataFrame({"area": ["a", "a"], "count": [9, 9]}), ["area"]),
    "NaN value": magnitude(value=[np.nan, 700.0]),
    "inf value": magnitude(value=[np.inf, 700.0]),
    "text n": magnitude(n=["twenty", 30]),
    "missing top": MagnitudeTable("m", pd.DataFrame({"area": ["a"], "value": [1.0], "n": [9], "abs_total": [1.0]}),
                                  ["area"], "sum"),
    "top not a list": magnitude(top=[50.0, 60.0]),
    "top too short": magnitude(top=[[50.0], [60.0, 50.0]]),
    "top with text": magnitude(top=[["x", 1.0], [60.0, 50.0]]),
    "top above total": magnitude(top=[[400.0, 300.0], [60.0, 50.0]]),
    "NaN abs_total": magnitude(abs_total=[np.nan, 700.0]),
    "unknown statistic": MagnitudeTable("m", magnitude().cells, ["area"], "median"),
    "empty quantile table": QuantileTable("q", pd.DataFrame(columns=["g", "quantile", "value", "n"]), ["g"]),
    "inf quantile": QuantileTable("q", pd.DataFrame({"g": ["a"], "quantile": [0.5], "value": [np.inf], "n": [40]}), ["g"]),
    "extreme of another kind": ExtremeTable("x", pd.DataFrame({"g": ["a"], "statistic": ["mode"], "value": [1.0],
                                                                 "n": [40]}), ["g"]),
    "model without coefficients": ModelResult("m", pd.DataFrame(columns=["term", "estimate"]), 100, 90.0),
    "model with NaN estimate": ModelResult("m", coefficients(estimate=[np.nan, 1.0]), 100, 90.0),
    "model with NaN df": ModelResult("m", coefficients(), 100, float("nan")),
    "model with text df": ModelResult("m", coefficients(), 100, "many"),
    "model with text level count": ModelResult("m", coefficients(), 100, 90.0,
                                               pd.DataFrame({"level": ["f", "m"], "count": ["x", 50]})),
    "effect without estimates": EffectTable("e", pd.DataFrame({"h": [1], "n_treated": [50], "n_control": [50]}), ["h"]),
    "effect with inf estimate": EffectTable("e", pd.DataFrame({"h": [1], "att": [np.inf], "n_treated": [50],
                                                              "n_control": [50]}), ["h"]),
    "effect with NaN arm": EffectTable("e", pd.DataFrame({"h": [1], "att": [0.1], "n_treated": [np.nan],
                                                         "n_control": [50]}), ["h"]),
    "figure over nothing": Figure("f", "a table, honestly", {}),
    "figure over empty table": Figure("f", FrequencyTable("t", pd.DataFrame(), []), {}),
}


@pytest.mark.parametrize("name", list(BAD_OUTPUTS))
def test_bad_input_fails_with_an_invalid_finding(name):
    report = check(BAD_OUTPUTS[name], RULES)
    assert report.verdict == "fail"
    invalid = [f for f in report.findings if f.rule == "invalid"]
    assert invalid and all(f.verdict == "fail" for f in invalid)
    json.dumps(report.to_record())


def test_the_invalid_finding_names_column_and_cells_but_not_the_value():
    report = check(frequency([12, "Virtanen Matti"]), RULES)
    (finding,) = report.findings
    assert "column count" in finding.message and finding.cells == [{"area": "a1"}]
    assert "Virtanen" not in json.dumps(report.to_record())


@pytest.mark.parametrize("thing", [None, 42, "table.csv", pd.DataFrame({"count": [1]}), {"title": "t"}])
def test_something_that_is_not_an_output_is_an_error(thing):
    with pytest.raises(DisclosureInputError, match="not a statistical output"):
        check(thing, RULES)


def test_suppressed_blanks_are_not_bad_input():
    cells = pd.DataFrame({"area": ["a", "b"], "count": [np.nan, 40], "status": ["suppressed (primary: min_frequency)", "shown"]})
    assert check(FrequencyTable("t", cells, ["area"]), RULES).verdict == "pass"
    cells["status"] = ["shown", "shown"]
    assert check(FrequencyTable("t", cells, ["area"]), RULES).verdict == "fail"


def test_five_thousand_cells_are_checked_cell_by_cell():
    """Every small cell of a large table is found (the time it takes: bench/disclosure.py)."""
    table = frequency_table(100, 50)
    report = check(table, RULES)
    assert report.verdict == "fail" and len(report.failed_cells()) == int(((table.cells["count"] > 0)
                                                                          & (table.cells["count"] < 5)).sum())

    report = check(magnitude_table(5000), RULES)
    assert report.verdict == "fail" and {f.rule for f in report.findings} == {"min_frequency", "dominance", "p_ratio"}


def test_five_thousand_cells_are_suppressed_with_their_totals():
    mitigated = suppress(frequency_table(100, 50), RULES)
    assert mitigated.report.verdict == "pass"


def test_load_table_reads_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"area": ["a", "b"], "count": [12, 30]})
    frame.to_csv(tmp_path / "counts.csv", index=False)
    frame.to_parquet(tmp_path / "counts.parquet")
    for name in ("counts.csv", "counts.parquet"):
        loaded = load_table(tmp_path / name)
        assert loaded["count"].tolist() == [12, 30]
        assert check(FrequencyTable(name, loaded, ["area"]), RULES).verdict == "pass"


NOT_TABLES = {
    "chart.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01",
    "empty.csv": b"",
    "note.csv": b"the analysis found nothing to report\n",
    "one_column.csv": b"count\n3\n4\n",
    "ragged.csv": b"area,count\na,1,2,3,4\nb,5\n\"unterminated,7\n",
    "header_only.csv": b"area,count\n",
    "garbage.parquet": b"PAR1 this is not parquet at all",
    "chart.png": b"\x89PNG\r\n\x1a\n",
    "missing.csv": None,
}


@pytest.mark.parametrize("name", list(NOT_TABLES))
def test_an_output_file_that_is_not_a_table_is_a_clear_error(tmp_path, name):
    path = tmp_path / name
    if NOT_TABLES[name] is not None:
        path.write_bytes(NOT_TABLES[name])
    with pytest.raises(DisclosureInputError) as error:
        load_table(path)
    assert str(path) in str(error.value)
    assert "nothing to report" not in str(error.value)
