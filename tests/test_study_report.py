"""The study report: a one-page summary first, labels and units instead of column names, numbers for
people, every figure and table whole on its page, synthetic data said on every page, and nothing
suppressed or identifying.

The study result is a fake built from small tables with the study's own names (outcomes,
matcher columns, subgroups) that went through the disclosure layer (check and suppression); its
label book is made by the study's own `study_labels` from the synthetic registers' data
dictionary, so these tests do not depend on a pool, the cohort or the estimators. The PDF is laid
out with WeasyPrint once per module and its boxes are read page by page.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from dataclasses import dataclass, field, replace
from html import unescape

import pandas as pd
import pytest

from safepool.disclosure import DisclosureRules, EffectTable, Figure, FrequencyTable, check, suppress
from safepool.governance.document import pdf_layout
from safepool.reports import OUTPUT_NAMES, ReportError, charts, render_study_report
from safepool.reports import numbers as num
from safepool.reports.labels import Labels, report_context, study_labels
from safepool.reports.source import shown_tables
from safepool.reports.study_report import (
    SECTION_HEADINGS,
    SYNTHETIC,
    estimand_of_tables,
    matching_statement,
    render_study_html,
)
from safepool.reports.summary import summary
from safepool.study.estimand import MATCHED_STEP, NOT_MATCHED, TREATED_STEP
from safepool.study.run import effect_output
from safepool.study.studyfile import load_study
from safepool.synth._catalogue import register_entries
from test_studyfile import EXAMPLE

RULES = DisclosureRules()
HIDDEN_ESTIMATE = 0.7654321  # the subgroup cell with 3 clients: must never be shown
HIDDEN_LOW, HIDDEN_HIGH = 0.6111222, 0.9333444
PID_LIKE = re.compile(r"\d{19}")
SCIENTIFIC = re.compile(r"(?<![\w#.])\d+(\.\d+)?[eE][-+]?\d")
RAW_SPEC = {"mark": "point", "data": {"values": [{"covariate": "age", "smd": 0.98765}]}}  # not from the checked table
OUTCOMES = {"employment": (0.339, 0.474, True), "earnings": (3255.0, 4100.0, False),
            "social_health_visits": (0.151, 0.42, False)}
COVARIATES = ["unemployed_quarters_8", "log_earnings_4", "benefits_4", "social_health_visits_4",
              "permit_grounds_international_protection", "permit_grounds_family", "native_language_ar",
              "education_secondary", "age", "age_squared", "female", "married", "children", "years_since_immigration"]
RAW_NAMES = [*(name for name in COVARIATES if "_" in name), "social_health_visits", "treatment.language_level",
             "language_level", "permit_grounds", "n_clusters", "mean_treated", "joint_p_value", "e_value_ci",
             "rosenbaum_gamma", "cluster_robust", "outcome_type", "att", "did"]
EXPECTED_PAGES = 9  # the summary alone, data and methods, then the sections and the appendix of this small fake


def dictionary() -> dict:
    return {register.name: {v.name: v for v in register.variables} for register in register_entries()}


def labels() -> dict:
    return study_labels(load_study(EXAMPLE), dictionary())


@dataclass
class FakeStudy:
    title: str = "Skills centre impact study"
    question: str = "Did the skills centre improve its clients' employment compared with similar immigrants?"
    permit: str = "SKILLS-TEST"
    registers: list[str] = field(default_factory=lambda: ["population", "employment", "skills_centre"])
    period: tuple[str, str] = ("2019Q1", "2023Q4")
    methods: dict[str, object] = field(default_factory=lambda: {
        "covariates": "unemployed_quarters_8, log_earnings_4", "matching method": "nearest neighbour",
        "caliper (SD of the logit)": 0.2, "exact": "female", "event window": "-8..12", "baseline": -1,
        "horizons": "4, 8, 12", "confidence intervals": "cluster robust, 95%"})
    checked: dict = field(default_factory=dict)
    labels: dict = field(default_factory=labels)
    synthetic: list[str] = field(default_factory=lambda: ["population", "employment"])


def effect(title: str, rows: list[dict]) -> EffectTable:
    """As the study publishes an effect-like table: text columns are labels, a number that is not
    defined is written "not defined" (safepool.study.run.effect_output)."""
    return effect_output(title, pd.DataFrame(rows))


def row(outcome: str, estimate: float, half: float, p: float = 0.4, n_treated: int = 250, n_control: int = 240,
        n_clusters: int | None = None, **keys) -> dict:
    level, sd, binary = OUTCOMES[outcome]
    return {"outcome": outcome, **keys, "estimate": estimate, "std_error": half / 1.96, "ci_low": estimate - half,
            "ci_high": estimate + half, "p_value": p, "n_treated": n_treated, "n_control": n_control,
            "n_clusters": n_clusters if n_clusters is not None else n_treated - 10, "mean_treated": level + estimate,
            "mean_control": level, "sd_control": sd, "outcome_type": "binary" if binary else "continuous",
            "ci_method": "cluster_robust"}


def raw_outputs() -> dict:
    return dict(_raw_outputs())


@functools.cache
def _raw_outputs() -> dict:
    """The study's outputs before the disclosure layer: one subgroup cell has 3 clients."""
    cohort = FrequencyTable("Cohort flow", pd.DataFrame({
        "step": ["persons in the population register", "immigrants", TREATED_STEP, MATCHED_STEP,
                 NOT_MATCHED + "eligible controls already taken", "matched controls",
                 "removed: not an immigrant (no immigration date)"],
        "count": [48213, 9120, 1322, 1275, 47, 1190, 39093]}), ["step"])
    balance_rows = []
    for stage, scale in (("before", 1.0), ("after", 0.05)):
        for i, covariate in enumerate(COVARIATES):
            binary = covariate.startswith(("permit_", "native_", "education_", "female", "married"))
            balance_rows.append({"stage": stage, "covariate": covariate, "mean_treated": 0.4 if binary else 34.5 + i,
                                 "mean_control": 0.3 if binary else 33.1 + i, "smd": scale * (0.4 - 0.05 * i),
                                 "variance_ratio": "binary" if binary else f"{1.08:.3f}", "ecdf_mean": 0.021,
                                 "ecdf_max": 0.064, "binary": float(binary), "smd_ok": float(stage == "after"),
                                 "vr_ok": 1.0, "n_treated": 1322 if stage == "before" else 1275,
                                 "n_control": 47891 if stage == "before" else 1190})
    balance = effect("Covariate balance", balance_rows)
    halves = {"employment": 0.0725, "earnings": 812.0, "social_health_visits": 0.081}
    effects_rows = []
    for outcome, half in halves.items():
        for method in ("att", "did"):
            for h in (4, 8, 12):
                significant = outcome == "employment" and h == 8 and method == "att"
                estimate = 0.1234 if significant else 0.2 * half
                effects_rows.append(row(outcome, estimate, half, 0.0004 if significant else 0.41, horizon=h,
                                        method=method, estimand="ATT"))
    effects = effect("Effects on the treated", effects_rows)
    event = effect("Event study", [
        row(outcome, 2.4e-17 if h == 0 else 0.01 * h * half, half, horizon=h, method="did", estimand="ATT")
        for outcome, half in halves.items() for h in range(-4, 9) if h != -1])
    subgroups = effect("Effects by subgroup at 8 quarters after entry", [
        row("employment", 0.1421, 0.08, subgroup="sex", level="female", horizon=8, method="att", estimand="ATT"),
        row("employment", 0.0987, 0.09, subgroup="sex", level="male", horizon=8, method="att", estimand="ATT"),
        row("employment", 0.05, 0.11, subgroup="treatment.language_level", level="A1", horizon=8, method="att",
            estimand="ATT"),
        {**row("employment", HIDDEN_ESTIMATE, 0.1, 0.03, 3, 3, 3, subgroup="treatment.language_level", level="C1",
               horizon=8, method="att", estimand="ATT"), "ci_low": HIDDEN_LOW, "ci_high": HIDDEN_HIGH},
    ])
    placebo = effect("Pre-trend placebo test before entry", [
        {**row(outcome, 0.001, half, horizon=h, method="placebo"), "wald_chi2": 4.21, "wald_df": 3,
         "joint_p_value": 0.7551 if outcome != "earnings" else 0.0123}
        for outcome, half in halves.items() for h in range(-4, -1)])
    sensitivity_rows = []
    for r in effects_rows:
        if r["method"] != "att":
            continue
        significant = r["p_value"] < 0.05
        sensitivity_rows.append({"outcome": r["outcome"], "horizon": r["horizon"], "method": "att",
                                 "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                                 "risk_ratio": 1.41, "e_value": 2.17 if significant else 1.31,
                                 "e_value_ci": 1.52 if significant else 1.0,
                                 "conversion": "risk ratio from risk difference",
                                 "rosenbaum_gamma": 1.75 if significant else float("nan"),
                                 "n_treated": r["n_treated"], "n_control": r["n_control"]})
    sensitivity = effect("Sensitivity to hidden bias: E-values and Rosenbaum bounds", sensitivity_rows)
    naive = effect("Naive comparison: clients against all eligible non-clients, unmatched", [
        row(outcome, -0.6 * half, half, 0.00001, 1322, 46891, 4195, horizon=h, method="naive")
        for outcome, half in halves.items() for h in (4, 8, 12)])
    return {"cohort_flow": cohort, "balance": balance, "love_plot": Figure("Love plot", balance, RAW_SPEC),
            "effects": effects, "event_study": event, "subgroups": subgroups, "placebo": placebo,
            "sensitivity": sensitivity, "naive": naive}


def checked_outputs() -> dict:
    """The same outputs as the disclosure layer leaves them: checked and suppressed where they fail."""
    return dict(_checked_outputs())


@functools.cache
def _checked_outputs() -> dict:
    return {name: suppress(output, RULES, margins=False) for name, output in raw_outputs().items()}


@pytest.fixture
def no_charts(monkeypatch):
    """For tests of the words around the charts: every chart drawn as an empty picture."""
    monkeypatch.setattr(charts, "to_svg", lambda chart: "<svg></svg>")


def pdf_pages(path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout
    return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The report's HTML laid out once, as render_study_files lays it out for its PDF (charts as images
    of their SVG, nothing fetched), and that PDF."""
    ids = {name: f"SKILLS-TEST-{number:04d}" for number, name in enumerate(OUTPUT_NAMES, start=1)}
    html = render_study_html(FakeStudy(checked=checked_outputs()), ids)
    document = pdf_layout(html)
    pdf = tmp_path_factory.mktemp("report") / "study-report.pdf"
    pdf.write_bytes(document.write_pdf())
    return html, document, pdf


@pytest.fixture(scope="module")
def report(rendered):
    html, _, pdf = rendered
    return html, pdf.read_bytes(), pdf_pages(pdf)


@pytest.fixture(scope="module")
def layout(rendered):
    """The report's pages and their boxes, as WeasyPrint laid them out for the PDF."""
    return rendered[1]


def boxes(box, depth=0):
    yield box
    for child in getattr(box, "children", []):
        yield from boxes(child, depth + 1)


def test_the_fake_really_holds_a_suppressed_cell():
    mitigated = checked_outputs()["subgroups"]
    assert mitigated.report.verdict == "pass"
    assert mitigated.output.cells["status"].str.startswith("suppressed").sum() == 1


def test_the_page_count_and_the_summary_alone_on_the_first_page(report, layout):
    _, _, pages = report
    assert len(layout.pages) == len(pages) == EXPECTED_PAGES
    first = pages[0]
    for words in ("Summary", "Question.", "Main results", "Who was compared", "Balance", "Keep in mind"):
        assert words in first, words
    assert "Data and methods" not in first and "Data and methods" in pages[1]
    # the headline: each outcome with its unit and its interval at every horizon
    for label, unit in (("Employment rate", "percentage points"), ("Earnings", "EUR per quarter"),
                        ("Social and health service visits", "visits per quarter")):
        assert label in first and unit in first
    assert "+12.3" in first and "+5.1 to +19.6" in first  # a share's effect in percentage points
    assert "1,322 clients were eligible" in first and "1,275 of them (96%) were matched to 1,190" in first
    assert "every covariate is within the limits" in first


def test_no_figure_or_table_crosses_a_page_and_no_heading_ends_one(layout):
    where: dict[int, set[int]] = {}
    elements = {}
    for number, page in enumerate(layout.pages):
        page_box = page._page_box
        bottom = page_box.content_box_y() + page_box.height
        right = page_box.content_box_x() + page_box.width
        found = [b for b in boxes(page_box) if getattr(b, "element_tag", None) in ("figure", "table")]
        for box in found:
            where.setdefault(id(box.element), set()).add(number)
            elements[id(box.element)] = box.element_tag
            assert box.border_box_y() + box.border_height() <= bottom + 1, f"a {box.element_tag} runs off page {number + 1}"
            assert box.border_box_x() + box.border_width() <= right + 1, f"a {box.element_tag} is wider than page {number + 1}"
        headings = [b for b in boxes(page_box) if getattr(b, "element_tag", None) in ("h1", "h2", "h3")
                    and type(b).__name__ == "BlockBox"]
        content = [b for b in boxes(page_box) if getattr(b, "element_tag", None) in ("p", "table", "figure", "ul")
                   and type(b).__name__ in ("BlockBox", "TableBox")]
        for heading in headings:
            below = heading.border_box_y() + heading.border_height()
            assert any(b.border_box_y() >= below for b in content), f"a heading ends page {number + 1}"
    split = [elements[key] for key, pages in where.items() if len(pages) > 1]
    assert not split, f"split across pages: {split}"
    assert list(elements.values()).count("figure") == 3 + 3 + 1 + 1  # effects and event study per outcome


def test_synthetic_data_is_said_on_every_page(report):
    _, _, pages = report
    assert all(SYNTHETIC in page for page in pages)
    assert all("SYNTHETIC DATA" in page for page in pages)


def visible(html: str) -> str:
    """The words of the page: no style sheet, no chart, no tags."""
    html = re.sub(r"<style>.*?</style>|<svg.*?</svg>", "", html, flags=re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_not_synthetic_says_nothing_of_it(no_charts):
    html = render_study_html(FakeStudy(checked=checked_outputs(), synthetic=[]))
    assert "ynthetic" not in visible(html) and "SYNTHETIC" not in html


def test_labels_and_units_never_column_names(report):
    html, _, pages = report
    text = "\n".join(pages)
    for name in RAW_NAMES:
        assert not re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text), name
        assert not re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", visible(html)), name
    assert "social_health_visits" not in html and "treatment.language_level" not in html  # nor in the charts
    for label in ("Social and health service visits in the 4 quarters before entry",
                  "Kela benefits in the 4 quarters before entry (EUR)",
                  "Residence permit grounds: international protection", "Native language: Arabic", "Sex: female",
                  "Finnish language level at entry (CEFR)", "A1 beginner", "Highest degree completed: secondary",
                  "Marital status at extraction: married"):
        assert label in text.replace("\n", " ") or label in html, label


def test_numbers_are_written_for_people(report):
    html, _, pages = report
    text = "\n".join(pages)
    assert not SCIENTIFIC.search(text) and not SCIENTIFIC.search(visible(html))
    assert "< 0.001" in text and "0.0004" not in text
    assert "−" in text  # a minus sign, not a hyphen
    assert num.p_value(2.4e-17) == "< 0.001" and num.number(2.4e-17, 1, signed=True) == "0.0"
    assert num.number(-0.00004, 3, signed=True) == "0.000"  # no negative zero
    assert num.interval(-0.073, 0.073, 1, factor=100) == "−7.3 to +7.3"
    assert num.number("0.0123457", 3) == "0.012" and num.p_value("0.000123") == "< 0.001"
    assert num.share(1275, 1322) == "96%" and num.share(1321, 1322) == "> 99%"


def test_rows_only_where_they_mean_something(report):
    html, _, pages = report
    text = "\n".join(pages)
    naive = html.split("<h2>5 Unmatched comparison</h2>")[1].split("<h2")[0]
    assert "Matched sets" not in naive and "4,195" not in naive  # the naive comparison has no matched sets
    assert "Matched sets" in html.split("<h2>4 Effects</h2>")[1].split("<h2")[0]
    assert "smaller than the number of clients" in re.sub(r"\s+", " ", text)
    # the placebo test: stated once per outcome, not on every pre-entry row
    test = html.split("<h3>Pre-trend test</h3>")[1].split("</table>")[0]
    assert test.count("<tr>") == 1 + len(OUTCOMES) and html.count("4.21") == len(OUTCOMES)
    assert test.count("0.755") == 2 and test.count("0.012") == 1
    assert "differences before entry" in text and "Earnings" in html.split("Pre-trend test")[1]
    # sensitivity: only the effect whose interval excludes zero; the rest explained
    sensitivity = html.split("<h2>8 Sensitivity to hidden bias</h2>")[1].split("<h2")[0]
    assert sensitivity.count("<tr>") == 2 and "1.75" in sensitivity and "2.17" in sensitivity
    assert "not defined" not in html and "are not shown: no hidden bias is needed" in sensitivity


def test_suppressed_cell_shows_as_suppressed_and_its_values_nowhere(report):
    html, _, pages = report
    text = "\n".join(pages)
    subgroup_section = html.split("<h2>7 Subgroups</h2>")[1].split("<h2>")[0]
    assert "suppressed" in subgroup_section and "Disclosure control:" in subgroup_section
    assert "C1 advanced" in subgroup_section  # the row keeps its label
    assert "C1 advanced" not in subgroup_section.split("</svg>")[0]  # the forest plot leaves the row out
    words = re.sub(r"<svg.*?</svg>", "", html, flags=re.DOTALL)  # SVG coordinates are numbers of their own
    for value in (HIDDEN_ESTIMATE, HIDDEN_LOW, HIDDEN_HIGH):
        for shown in (f"{value:.3f}", f"{100 * value:.1f}", str(value)):
            assert shown not in words and shown not in text, shown


def hidden_for_differencing(covariates: set[str]) -> dict:
    """The checked outputs with the balance rows of `covariates` after matching hidden as the study
    hides rows the differencing ledger finds (in the table and in the love plot drawn from it)."""
    from safepool.disclosure import kind_of
    from safepool.study.run import hidden_labels

    raw = raw_outputs()
    cells = raw["balance"].cells
    hide = hidden_labels(raw, {"balance": ((cells["stage"] == "after") & cells["covariate"].isin(covariates)).to_numpy()})
    outputs = checked_outputs()
    for name in ("balance", "love_plot"):
        outputs[name] = kind_of(raw[name]).mitigate(raw[name], RULES, margins=False, rounding=False, hide=hide[name])
    return outputs


def test_the_subgroups_of_an_effect_hidden_for_differencing_are_hidden_with_it():
    """A subgroup's levels add up to the effect (the sexes' rows at entry rebuilt an effect row the
    ledger had found), so they hide what the effects table hides, as the sensitivity does."""
    from safepool.study.run import hidden_labels

    raw = raw_outputs()
    effects, subgroups = raw["effects"].cells, raw["subgroups"].cells
    row = effects.iloc[1]  # employment 8 quarters after entry, att: the subgroups' horizon
    hide = hidden_labels(raw, {"effects": (effects.index == effects.index[1])})
    same = ((subgroups["outcome"] == row["outcome"]) & (subgroups["horizon"] == row["horizon"])
            & (subgroups["method"] == row["method"]))
    assert same.all() and len(same) == 4
    assert "subgroups" not in hidden_labels(raw, {"effects": (effects.index == effects.index[0])})
    groups = list(raw["subgroups"].groups)
    assert hide["subgroups"] == {tuple(r) for r in subgroups.loc[same, groups].itertuples(index=False, name=None)}


def test_balance_rows_hidden_for_differencing_are_explained_and_nothing_of_them_is_shown(no_charts):
    """A row hidden for differencing is suppressed like a small cell, and the balance page says why
    (a table of means over a thousand persons with rows suppressed puzzles a reader), once, in words,
    without any count or value of the rows."""
    explanation = "Some rows are suppressed for differencing"
    assert explanation not in visible(render_study_html(FakeStudy(checked=checked_outputs())))
    outputs = hidden_for_differencing({"age", "children"})
    assert outputs["balance"].output.cells["status"].str.contains("differencing").sum() == 2
    text = unescape(visible(render_study_html(FakeStudy(checked=outputs))))
    balance = text.split(" 3 Balance ")[1].split("Standardised mean differences")[0]
    assert balance.count(explanation) == 1
    assert "would tell the values of fewer persons than the minimum frequency" in balance
    assert "this run's other stage (before or after matching)" in balance
    # each hidden covariate's row says suppressed in every column, and none of its means is anywhere
    for label, i in (("Age (years)", COVARIATES.index("age")), ("Own children (state at extraction)",
                                                                 COVARIATES.index("children"))):
        assert f"{label}{' suppressed' * 8} " in balance
        for value in (34.5 + i, 33.1 + i):
            assert f"{value:.2f}" not in text, value


def test_html_refers_to_nothing_outside_itself_and_holds_every_section(report):
    html, pdf, pages = report
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    text = "\n".join(pages)
    for heading in SECTION_HEADINGS.values():
        assert heading in text, heading
    assert "SKILLS-TEST-0009" in text and "48,213" in text.replace("\n", " ")
    assert "0.988" not in html and "0.98765" not in html  # figures are drawn from their checked tables, not specs


def test_no_pseudonym_like_string_anywhere(report):
    html, pdf, pages = report
    assert not PID_LIKE.search(html) and not PID_LIKE.search("\n".join(pages))
    assert not PID_LIKE.search(pdf.decode("latin-1"))


def test_a_pseudonym_in_a_label_is_refused_without_repeating_it(tmp_path, no_charts):
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
    assert "0.765" not in str(error.value)
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


def test_chart_coordinates_are_not_taken_for_pseudonyms():
    from safepool.reports.study_report import _refuse_leaks

    _refuse_leaks('<svg><path transform="translate(2.2000321930583975,121)"/></svg>', "P-1")
    with pytest.raises(ReportError, match="digit string"):
        _refuse_leaks("<td>0123456789012345678</td>", "P-1")


def scarce_outputs(estimand: str) -> dict:
    """The fake's outputs with the study's own flow steps and an estimand named in the effect tables."""
    outputs = raw_outputs()
    outputs["cohort_flow"] = FrequencyTable("Cohort flow", pd.DataFrame({
        "step": [TREATED_STEP, MATCHED_STEP, NOT_MATCHED + "eligible controls already taken",
                 NOT_MATCHED + "no control within caliper"],
        "count": [1322, 820, 480, 22]}), ["step"])
    for name in ("effects", "event_study", "subgroups"):
        output = outputs[name]
        outputs[name] = effect(output.title, output.cells.assign(estimand=estimand).to_dict("records"))
    return {name: suppress(output, RULES, margins=False) for name, output in outputs.items()}


@pytest.mark.parametrize("estimand", ["ATT", "effect on the matched clients"])
def test_the_report_says_how_many_clients_were_matched_and_names_the_estimand(estimand):
    study = FakeStudy(checked=scarce_outputs(estimand))
    shown = shown_tables(study)
    statement = matching_statement(shown)
    assert "820 of the 1,322 clients (62%) were matched" in statement
    assert "eligible controls already taken (480); no control within caliper (22)" in statement
    below = "not the effect on all clients (ATT)"
    assert (below in statement) == (estimand != "ATT")
    first_page = summary(shown, Labels(study.labels), {}, [], estimand_of_tables(shown), [])
    assert ("effect on the matched clients, not on all clients (ATT)" in " ".join(first_page.caveats)) \
        == (estimand != "ATT")
    assert "Not matched: eligible controls already taken (480); no control within caliper (22)." in first_page.compared


def test_the_label_book_comes_from_the_pools_dictionary_and_manifest(tmp_path):
    pool = tmp_path / "pool"
    (pool / "P-1").mkdir(parents=True)
    (pool / "P-1" / "pool.duckdb").write_bytes(b"")
    snapshot = {table: [v.model_dump(mode="json", exclude={"column"}) for v in variables.values()]
                for table, variables in dictionary().items()}
    manifest = {"permit": "P-1", "dictionary": snapshot, "synthetic": ["population", "employment"]}
    (pool / "P-1" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    context = report_context(pool, load_study(EXAMPLE).model_copy(update={"permit": "P-1"}))
    assert context["synthetic"] == ["employment", "population"]
    book = Labels(context["labels"])
    assert book.outcome("earnings").heading == "Earnings (EUR per quarter)"  # the unit is the dictionary's
    assert book.outcome("employment").unit == "percentage points"
    assert book.covariate("native_language_ar") == "Native language: Arabic"
    assert book.level("treatment.language_level", "B2") == "B2 upper intermediate"
    assert book.covariate("no_such_column") == "No such column"  # never the name itself
    manifest["synthetic"] = []
    (pool / "P-1" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert report_context(pool, load_study(EXAMPLE).model_copy(update={"permit": "P-1"}))["synthetic"] == []
