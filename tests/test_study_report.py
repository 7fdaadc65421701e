"""The study report: every section, the checked numbers, inline charts, nothing suppressed or identifying.

The study result is a fake built from small tables that went through the disclosure layer
(check and suppression), so these tests do not depend on the cohort or the estimators.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pytest

from safepool.disclosure import DisclosureRules, EffectTable, Figure, FrequencyTable, check, suppress
from safepool.reports import OUTPUT_NAMES, ReportError, render_study_report
from safepool.reports.study_report import SECTION_HEADINGS
from safepool.reports.tables import cell_text

RULES = DisclosureRules()
HIDDEN_ESTIMATE = 7.654321  # the subgroup cell with 3 clients: must never be shown
HIDDEN_LOW, HIDDEN_HIGH = 6.111222, 9.333444
PID_LIKE = re.compile(r"\d{19}")
RAW_SPEC = {"mark": "point", "data": {"values": [{"covariate": "age", "smd": 0.98765}]}}  # not from the checked table


@dataclass
class FakeStudy:
    title: str = "Skills centre impact study"
    question: str = "Did the skills centre improve its clients' employment compared with similar immigrants?"
    permit: str = "SKILLS-TEST"
    registers: list[str] = field(default_factory=lambda: ["population", "employment", "skills_centre"])
    period: tuple[str, str] = ("2019Q1", "2023Q4")
    methods: dict[str, object] = field(default_factory=lambda: {
        "matching_method": "propensity", "caliper": 0.2, "ratio": 1, "exact": ["sex"],
        "estimators": ["att", "did"], "ci_method": "cluster_robust"})
    checked: dict = field(default_factory=dict)


def effect(title: str, groups: list[str], rows: list[dict]) -> EffectTable:
    return EffectTable(title, pd.DataFrame(rows), groups)


def interval_rows(keys: dict, estimate: float, n_treated: int = 250, n_control: int = 240) -> dict:
    return {**keys, "estimate": estimate, "std_error": 0.037, "ci_low": estimate - 0.0725,
            "ci_high": estimate + 0.0725, "p_value": 0.0004, "n_treated": n_treated, "n_control": n_control,
            "sd_control": 0.4817}


def raw_outputs() -> dict:
    """The study's outputs before the disclosure layer: one subgroup cell has 3 clients."""
    cohort = FrequencyTable("Cohort flow", pd.DataFrame({
        "step": ["eligible person-quarters", "clients entering", "clients matched"],
        "count": [48213, 1322, 1275]}), ["step"])
    balance_rows = []
    for stage, smd in (("before", 0.412), ("after", 0.031)):
        for covariate, shift in (("age", 0.0), ("quarters_unemployed_8", 0.05), ("earnings_4", -0.02)):
            balance_rows.append({"stage": stage, "covariate": covariate, "mean_treated": 34.5 + shift,
                                 "mean_control": 33.1, "smd": smd + shift, "variance_ratio": 1.08,
                                 "ecdf_mean": 0.021, "ecdf_max": 0.064, "n_treated": 1275, "n_control": 1275})
    balance = effect("Covariate balance", ["stage", "covariate"], balance_rows)
    effects = effect("Effects on employment", ["outcome", "horizon", "method"], [
        interval_rows({"outcome": "employment", "horizon": h, "method": m}, est)
        for h, m, est in ((4, "att", 0.0812), (8, "att", 0.1234), (12, "att", 0.1377), (8, "did", 0.1189))])
    event = effect("Event study of employment", ["outcome", "horizon"], [
        interval_rows({"outcome": "employment", "horizon": h}, 0.0 if h < 0 else 0.011 * h) for h in range(-8, 13)])
    subgroups = effect("Effects by subgroup", ["outcome", "horizon", "subgroup", "level"], [
        interval_rows({"outcome": "employment", "horizon": 8, "subgroup": "sex", "level": "women"}, 0.1421),
        interval_rows({"outcome": "employment", "horizon": 8, "subgroup": "sex", "level": "men"}, 0.0987),
        {**interval_rows({"outcome": "employment", "horizon": 8, "subgroup": "permit grounds", "level": "study"},
                         HIDDEN_ESTIMATE, 3, 3), "ci_low": HIDDEN_LOW, "ci_high": HIDDEN_HIGH},
    ])
    placebo = effect("Pre-trend placebo test", ["outcome"], [
        {"outcome": "employment", "wald_chi2": 4.21, "wald_df": 7, "joint_p_value": 0.7551, "n_treated": 1275,
         "n_control": 1275}])
    sensitivity = effect("E-values", ["outcome", "horizon"], [
        {"outcome": "employment", "horizon": 8, "e_value": 1.87, "e_value_ci": 1.52, "n_treated": 1275,
         "n_control": 1275}])
    naive = effect("Naive comparison", ["outcome", "horizon"], [
        interval_rows({"outcome": "employment", "horizon": 8}, -0.0431, 1322, 46891)])
    return {"cohort_flow": cohort, "balance": balance, "love_plot": Figure("Love plot", balance, RAW_SPEC),
            "effects": effects, "event_study": event, "subgroups": subgroups, "placebo": placebo,
            "sensitivity": sensitivity, "naive": naive}


def checked_outputs() -> dict:
    """The same outputs as the disclosure layer leaves them: checked and suppressed where they fail."""
    return {name: suppress(output, RULES, margins=False) for name, output in raw_outputs().items()}


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    ids = {name: f"SKILLS-TEST-{number:04d}" for number, name in enumerate(OUTPUT_NAMES, start=1)}
    files = render_study_report(FakeStudy(checked=checked_outputs()), tmp_path_factory.mktemp("report"), output_ids=ids)
    return files.html.read_text(encoding="utf-8"), files.pdf.read_bytes(), pdf_text(files.pdf)


def test_the_fake_really_holds_a_suppressed_cell():
    mitigated = checked_outputs()["subgroups"]
    assert mitigated.report.verdict == "pass"
    assert mitigated.output.cells["status"].str.startswith("suppressed").sum() == 1


def test_html_has_every_section_the_numbers_and_inline_charts(report):
    html, _, _ = report
    for heading in SECTION_HEADINGS.values():
        assert f"<h2>{heading}</h2>" in html
    for number in ("48,213", "1,275", "0.123", "0.051 to 0.196", "0.412", "1.87", "0.755", "&lt; 0.001", "-0.043", "2019Q1 to 2023Q4",
                   "cluster robust", "SKILLS-TEST-0009"):
        assert number in html, number
    assert html.count("<svg") == 4
    assert "0.482" not in html  # sd_control: how a number was computed, not a result
    assert "0.988" not in html and "0.98765" not in html  # figures are drawn from their checked tables, not their specs
    assert "entry" in html.split("<h2>Event study</h2>")[1].split("</svg>")[0]  # the entry marker


def test_html_refers_to_nothing_outside_itself(report):
    html, _, _ = report
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html


def test_pdf_is_valid_and_has_every_section(report):
    _, pdf, text = report
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    for heading in SECTION_HEADINGS.values():
        assert heading in text
    assert "48,213" in text


def test_suppressed_cell_shows_as_suppressed_and_its_values_nowhere(report):
    html, _, text = report
    subgroup_section = html.split("<h2>Subgroups</h2>")[1].split("<h2>")[0]
    assert "suppressed" in subgroup_section and "Disclosure control:" in subgroup_section
    assert "permit grounds: study" not in subgroup_section  # the forest plot leaves the row out
    words = re.sub(r"<svg.*?</svg>", "", html, flags=re.DOTALL)  # SVG coordinates are numbers of their own
    for value in (HIDDEN_ESTIMATE, HIDDEN_LOW, HIDDEN_HIGH):
        for document in (html, text):
            assert f"{value:.3f}" not in document and str(value) not in document
        for document in (words, text):
            assert not re.search(rf"(?<![\d.]){value:.2f}(?!\d)", document), value


def test_no_pseudonym_like_string_anywhere(report):
    html, pdf, text = report
    assert not PID_LIKE.search(html) and not PID_LIKE.search(text) and not PID_LIKE.search(pdf.decode("latin-1"))


def test_a_pseudonym_in_a_label_is_refused_without_repeating_it(tmp_path):
    pid = "4816251137029458812"
    outputs = checked_outputs()
    naive = outputs["naive"].output
    cells = naive.cells.assign(outcome=pid)
    outputs["naive"] = replace(outputs["naive"], output=replace(naive, cells=cells))
    with pytest.raises(ReportError) as error:
        render_study_report(FakeStudy(checked=outputs), tmp_path)
    assert pid not in str(error.value)
    assert not any(tmp_path.iterdir())


def test_an_output_that_fails_its_checks_is_refused(tmp_path):
    outputs = checked_outputs()
    outputs["subgroups"] = replace(outputs["subgroups"], output=raw_outputs()["subgroups"])  # its report says pass
    with pytest.raises(ReportError, match="subgroups.*min_frequency") as error:
        render_study_report(FakeStudy(checked=outputs), tmp_path)
    assert "7.65" not in str(error.value)
    failed = replace(checked_outputs()["effects"], report=check(raw_outputs()["subgroups"], RULES))
    with pytest.raises(ReportError, match="effects"):
        render_study_report(FakeStudy(checked={**checked_outputs(), "effects": failed}), tmp_path)
    assert not any(tmp_path.iterdir())


def test_missing_outputs_and_fields_are_named(tmp_path):
    outputs = checked_outputs()
    del outputs["placebo"]
    with pytest.raises(ReportError, match="placebo"):
        render_study_report(FakeStudy(checked=outputs), tmp_path)
    with pytest.raises(ReportError, match="period"):
        render_study_report(FakeStudy(checked=checked_outputs(), period="2019"), tmp_path)
    assert set(OUTPUT_NAMES) == set(checked_outputs())


def test_numbers_carried_as_text_and_flags_as_numbers_read_like_numbers():
    assert cell_text("estimate", "0.0123457", False) == "0.012"
    assert cell_text("joint_p_value", "0.000123", False) == "< 0.001"
    assert cell_text("vr_ok", 1.0, False) == "pass" and cell_text("smd_ok", 0.0, False) == "fail"
    assert cell_text("variance_ratio", "binary", False) == "binary"
    assert cell_text("step", "2019Q1", False) == "2019Q1" and cell_text("level", "1", False) == "1"
    assert cell_text("estimate", float("nan"), True) == "suppressed" and cell_text("estimate", None, False) == "–"


def test_chart_coordinates_are_not_taken_for_pseudonyms():
    from safepool.reports.study_report import _refuse_leaks

    _refuse_leaks('<svg><path transform="translate(2.2000321930583975,121)"/></svg>', "P-1")
    with pytest.raises(ReportError, match="digit string"):
        _refuse_leaks("<td>0123456789012345678</td>", "P-1")


def scarce_outputs(estimand: str) -> dict:
    """The fake's outputs with the study's own flow steps and an estimand named in the effect tables."""
    from safepool.study.estimand import MATCHED_STEP, NOT_MATCHED, TREATED_STEP

    outputs = raw_outputs()
    outputs["cohort_flow"] = FrequencyTable("Cohort flow", pd.DataFrame({
        "step": [TREATED_STEP, MATCHED_STEP, NOT_MATCHED + "eligible controls already taken",
                 NOT_MATCHED + "no control within caliper"],
        "count": [1322, 820, 480, 22]}), ["step"])
    for name in ("effects", "event_study", "subgroups"):
        output = outputs[name]
        outputs[name] = EffectTable(output.title, output.cells.assign(estimand=estimand), [*output.groups, "estimand"])
    return {name: suppress(output, RULES, margins=False) for name, output in outputs.items()}


@pytest.mark.parametrize("estimand", ["ATT", "effect on the matched clients"])
def test_the_report_says_how_many_clients_were_matched_and_names_the_estimand(tmp_path, estimand):
    from safepool.reports.study_report import render_study_html

    html = render_study_html(FakeStudy(checked=scarce_outputs(estimand)))
    text = re.sub(r"<[^>]+>", "", html)
    assert "820 of the 1,322 clients (62%) were matched" in text
    assert "eligible controls already taken (480); no control within caliper (22)" in text
    assert "Estimand: " + estimand in text  # said once above the effect tables
    below = "not the effect on all clients (ATT)"
    assert (below in text) == (estimand != "ATT")
