"""The impact study's report as HTML and PDF, built only from outputs that passed disclosure control.

It reads as a statistics office would publish it: a one-page summary first (the question, the
headline effect per outcome with its unit and interval, who was compared, balance, the main
caveats), then data and methods, cohort flow, balance, effects, the unmatched comparison, event
study and pre-trend test, subgroups, sensitivity, limitations and the disclosure checks, and an
appendix with the event-study estimates. Tables are the public cells of the checked (mitigated)
outputs, written for people (safepool.reports.tables); each chart is drawn from its checked table
and inlined as SVG, one figure per outcome so that every figure fits its page. Labels and units
come from the label book the study wrote from the pool's data dictionary
(safepool.reports.labels); when the pool was made from synthetic registers, every page says so.
The HTML holds no script and no link; the PDF is rendered from it with every fetch refused
(governance.document.pdf_from_html).

The report is published as a document output (layout "study_report",
safepool.disclosure.kinds.document): the output register checks every part under the
workspace's policy and calls `document_files` to write the HTML and PDF from the checked parts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from safepool.disclosure import DisclosureRules, Document, Mitigated
from safepool.disclosure.cells import DIFFERENCING
from safepool.governance.document import pdf_from_html
from safepool.governance.form import mask_identity_codes
from safepool.reports import charts
from safepool.reports import numbers as num
from safepool.reports.labels import Labels, Outcome, words
from safepool.reports.source import ReportError, ShownTable, StudyReportSource, field_of, shown_tables
from safepool.reports.summary import limits_text, summary
from safepool.reports.tables import (
    HumanTable,
    balance_rows,
    balance_tables,
    checks_table,
    cohort_flow_table,
    effect_tables,
    event_tables,
    flow_counts,
    naive_table,
    placebo_table,
    placebo_tests,
    scale_of,
    scales,
    sensitivity_table,
    subgroup_table,
    unbalanced,
)
from safepool.study.estimand import ATT, MATCHED_ONLY, MATCHED_STEP, NOT_MATCHED, TREATED_STEP
from safepool.study.sensitivity import GAMMAS

TEMPLATE_PACKAGE = "safepool.reports"
TEMPLATE = "study_report.html.j2"
STYLESHEET = "study_report.css"
REPORT_NAME = "study-report"
HTML_NAME = f"{REPORT_NAME}.html"
PDF_NAME = f"{REPORT_NAME}.pdf"

SECTION_HEADINGS = {
    "summary": "Summary",
    "data": "Data and methods",
    "cohort_flow": "Cohort flow",
    "balance": "Balance",
    "effects": "Effects",
    "naive": "Unmatched comparison",
    "event_study": "Event study and pre-trend test",
    "subgroups": "Subgroups",
    "sensitivity": "Sensitivity to hidden bias",
    "limitations": "Limitations",
    "disclosure": "Disclosure checks",
    "appendix": "Appendix: event-study estimates",
}
SYNTHETIC = "Synthetic data: made from synthetic registers, not from real persons"
MATCHED_SETS = ("Matched sets counts the matched sets with the outcome observed at that horizon, the independent "
                "units the confidence interval rests on (the fewer of sets and distinct persons). It can be "
                "smaller than the number of clients: with full matching several clients share one set and its "
                "comparison persons, with replacement one comparison person can serve several clients, and one "
                "person can be a comparison person in one quarter and a client later; sets that share persons do "
                "not count as independent.")
_PSEUDONYM_LIKE = re.compile(r"(?<![\d.])\d{16,}")  # not the decimals of chart coordinates
_REFERENCE = re.compile(r"https?://|<script|<link|<iframe|<img|url\(", re.IGNORECASE)
_WINDOW = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")


@dataclass(frozen=True)
class ReportFiles:
    """Where the report was written."""

    html: Path
    pdf: Path


@dataclass(frozen=True)
class ReportFigure:
    drawn: Future[str]  # the chart's SVG, drawn while the rest of the page is written
    caption: str

    @property
    def svg(self) -> str:
        return self.drawn.result()


@dataclass(frozen=True)
class OutcomeSection:
    outcome: Outcome
    table: HumanTable | None
    figure: ReportFigure | None


def render_study_report(result: StudyReportSource, out_dir: Path, *,
                        output_ids: Mapping[str, str] | None = None) -> ReportFiles:
    """Write study-report.html and study-report.pdf into `out_dir` (created if needed).

    Every output is checked again under the policy it was checked with and the report is
    refused if any fails, or if the page would hold a pseudonym-like digit string or a reference
    to anything outside itself. `output_ids` (output name -> recorded output id) lets a checker
    match each table to its record in the register. This writes inside the environment only: a
    report leaves it as a document output published through the output register.
    """
    contents = render_study_files(result, output_ids=output_ids)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(html=out_dir / HTML_NAME, pdf=out_dir / PDF_NAME)
    files.html.write_bytes(contents[HTML_NAME])
    files.pdf.write_bytes(contents[PDF_NAME])
    return files


def render_study_files(result: StudyReportSource, *, output_ids: Mapping[str, str] | None = None,
                       name: str = REPORT_NAME) -> dict[str, bytes]:
    """The report's HTML and PDF by file name ("<name>.html", "<name>.pdf"), in memory."""
    html = render_study_html(result, output_ids or {})
    return {f"{name}.html": html.encode("utf-8"), f"{name}.pdf": pdf_from_html(html)}


@dataclass(frozen=True)
class DocumentSource:
    """A study report document's settings and its parts as checked: what the report reads."""

    title: str
    question: str
    permit: str
    registers: list[str]
    period: tuple[str, str]
    methods: Mapping[str, object]
    checked: Mapping[str, Mitigated] = field(default_factory=dict)
    labels: Mapping[str, Any] = field(default_factory=dict)
    synthetic: Sequence[str] = ()


ABOUT = ("title", "question", "permit", "registers", "period", "methods")
OPTIONAL_ABOUT = ("labels", "synthetic")


def document_files(document: Document, checked: Mapping[str, Mitigated], name: str,
                   policy: DisclosureRules) -> dict[str, bytes]:
    """The "study_report" layout of a document output: its HTML and PDF from its checked parts.

    `document.about` holds the study's settings (ABOUT), and may hold its label book and synthetic
    registers (OPTIONAL_ABOUT, safepool.reports.labels.report_context) and `output_ids`, the recorded
    id of each part."""
    about = document.about
    missing = [key for key in ABOUT if key not in about]
    if missing:
        raise ReportError(f"study report document '{document.title}': settings missing: {', '.join(missing)}")
    extra = {key: about[key] for key in OPTIONAL_ABOUT if about.get(key) is not None}
    source = DocumentSource(checked=checked, **{key: about[key] for key in ABOUT}, **extra)
    return render_study_files(source, output_ids=about.get("output_ids") or {}, name=name)


def render_study_html(result: StudyReportSource, output_ids: Mapping[str, str] | None = None) -> str:
    """The report as one standalone HTML page: inline CSS and SVG, nothing fetched."""
    shown = shown_tables(result)
    labels = Labels(getattr(result, "labels", None))
    synthetic = _synthetic(result)
    permit = mask_identity_codes(str(field_of(result, "permit")))
    title = mask_identity_codes(str(field_of(result, "title")))
    css = resources.files(TEMPLATE_PACKAGE).joinpath("templates", STYLESHEET).read_text(encoding="utf-8")
    ci = f"{labels.ci_level}% confidence interval" if labels.ci_level else "Confidence interval"
    outcome_scales = scales(shown["effects"], labels, shown["event_study"], shown["naive"])
    placebo = placebo_tests(shown["placebo"], labels, outcome_scales)
    estimand = estimand_of_tables(shown)
    the_limitations = limitations(shown, labels, placebo)
    facts = summary(shown, labels, outcome_scales, placebo, estimand, short_caveats(shown, synthetic))
    sensitivity, not_shown = sensitivity_table(shown["sensitivity"], labels, outcome_scales, ci, max(GAMMAS))
    primary = scale_of(outcome_scales, _primary_outcome(shown["subgroups"]), labels)
    # vl-convert draws a chart without holding the GIL: one thread hands it the charts in turn while
    # this one writes the tables, and the page waits for each chart where it shows it
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="study-charts") as drawing:
        html = _environment().get_template(TEMPLATE).render(
            title=title,
            permit=permit,
            written=date.today().isoformat(),
            question=mask_identity_codes(str(field_of(result, "question"))),
            synthetic=synthetic,
            synthetic_text=SYNTHETIC,
            registers=", ".join(mask_identity_codes(str(name)) for name in _sequence(result, "registers")),
            period=_period(result),
            outcomes=[scale.outcome for scale in outcome_scales.values()],
            methods=methods_rows(_mapping(result, "methods"), labels),
            headings=SECTION_HEADINGS,
            summary=facts,
            treatment=labels.treatment,
            ci=ci,
            rounded=_rounded(shown),
            flow=cohort_flow_table(shown["cohort_flow"]),
            matching=matching_statement(shown),
            balance=balance_tables(shown["balance"], labels),
            balance_text=balance_text(labels, shown["balance"]),
            love_plots=_love_plots(shown["love_plot"], labels, drawing),
            matched_only=estimand == MATCHED_ONLY,
            effects=_effect_sections(shown["effects"], labels, outcome_scales, ci, drawing),
            effects_note=shown["effects"].note,
            matched_sets=MATCHED_SETS,
            naive=naive_table(shown["naive"], labels, outcome_scales, ci),
            events=_event_figures(shown["event_study"], outcome_scales, labels, drawing),
            event_note=shown["event_study"].note,
            event_tables=[table for _, table in event_tables(shown["event_study"], labels, outcome_scales, ci)],
            placebo=placebo_table(placebo, shown["placebo"]) if placebo else None,
            placebo_text=placebo_text(placebo),
            subgroups=subgroup_table(shown["subgroups"], labels, outcome_scales, ci),
            subgroup_outcome=primary.outcome,
            forest=_figure(charts.forest_plot(shown["subgroups"], labels, primary), drawing,
                           f"{primary.outcome.heading}: effect by subgroup with its {ci.lower()}"),
            subgroup_horizon=_subgroup_horizon(shown["subgroups"]),
            sensitivity=sensitivity,
            sensitivity_text=sensitivity_text(sensitivity is not None, not_shown),
            limitations=the_limitations,
            checks=checks_table(shown, output_ids or {}),
            css=css,
        )
    _refuse_leaks(html, permit)
    return html


# --- sections ----------------------------------------------------------------------------------

def _effect_sections(shown: ShownTable, labels: Labels, scales_: Mapping, ci: str,
                     drawing: Executor) -> list[OutcomeSection]:
    figures = {name: data for name, data in charts.per_outcome(shown, ["estimate", "ci_low", "ci_high"])}
    sections = []
    for outcome, table in effect_tables(shown, labels, scales_, ci):
        data = figures.get(outcome.name)
        figure = None
        if data is not None and not data.empty:
            figure = _figure(charts.effects_chart(data, scale_of(scales_, outcome.name, labels)), drawing,
                             f"{outcome.heading}: effect after entry with its {ci.lower()}."
                             + _not_drawn(shown, outcome.name))
        sections.append(OutcomeSection(outcome, table, figure))
    return sections


def _event_figures(shown: ShownTable, scales_: Mapping, labels: Labels, drawing: Executor) -> list[OutcomeSection]:
    sections = []
    for name, data in charts.per_outcome(shown, ["estimate", "ci_low", "ci_high"]):
        scale = scale_of(scales_, name, labels)
        sections.append(OutcomeSection(scale.outcome, None, _figure(
            charts.event_study_chart(data, scale, _suppressed_horizons(shown, name)), drawing,
            f"{scale.outcome.heading}: matched difference-in-differences by quarter from entry, against the "
            "quarter before entry." + _not_drawn(shown, name))))
    return sections


def _suppressed_horizons(shown: ShownTable, outcome: str) -> list[int]:
    """The quarters of an outcome whose cells disclosure control suppressed (left out of its figure)."""
    frame = shown.frame
    if "outcome" not in frame.columns or "horizon" not in frame.columns:
        return []
    hidden = shown.suppressed & (frame["outcome"].astype(str) == outcome).to_numpy()
    return sorted({int(h) for h in (num.as_float(v) for v in frame.loc[hidden, "horizon"]) if h is not None})


def _not_drawn(shown: ShownTable, outcome: str) -> str:
    horizons = _suppressed_horizons(shown, outcome)
    if not horizons:
        return ""
    return f" Suppressed, so not drawn: {', '.join(num.fixed(h, 0) for h in horizons)} quarters."


def _love_plots(shown: ShownTable, labels: Labels, drawing: Executor) -> list[ReportFigure]:
    plots = charts.love_plots(balance_rows(shown, labels), labels.smd_limit)
    caption = "Standardised mean difference of each covariate between clients and the comparison group, before " \
              "and after matching" + (f"; dashed lines at ±{num.short(labels.smd_limit)}" if labels.smd_limit else "")
    return [ReportFigure(drawing.submit(charts.to_svg, plot), caption) for plot in plots]


def _figure(chart: Any, drawing: Executor, caption: str) -> ReportFigure | None:
    return None if chart is None else ReportFigure(drawing.submit(charts.to_svg, chart), caption)


def methods_rows(settings: Mapping[str, object], labels: Labels) -> list[tuple[str, str]]:
    """The study's settings as label and text, the covariates and exact columns by their labels."""
    rows = []
    for name, value in settings.items():
        key = str(name)
        text = value_text(value)
        if key == "covariates" and labels.study_covariates():
            text = "; ".join(labels.study_covariates() or [])
        elif key == "exact" and labels.exact():
            text = "; ".join(labels.exact() or [])
        elif key == "event window" and (match := _WINDOW.match(str(value))):
            first, last = int(match.group(1)), int(match.group(2))
            text = f"{-first} quarters before to {last} quarters after entry"
        elif key == "baseline" and re.fullmatch(r"-?\d+", str(value).strip()):
            before = -int(str(value).strip())
            text = "the quarter before entry" if before == 1 else f"{before} quarters before entry"
        elif key == "horizons":
            text = f"{text} quarters after entry"
        elif key == "eligible ages":
            text = text.replace("-", "–")
        rows.append((_label(key), text))
    return rows


def estimand_of_tables(shown: Mapping[str, ShownTable]) -> str | None:
    """The estimand the effect table names ("ATT" or "effect on the matched clients"), if it names one."""
    frame = shown["effects"].frame
    if "estimand" not in frame.columns:
        return None
    named = [str(v) for v in frame["estimand"].dropna().unique()]
    return MATCHED_ONLY if MATCHED_ONLY in named else named[0] if named else None


def matching_statement(shown: Mapping[str, ShownTable]) -> str | None:
    """In words, from the checked cohort flow: how many clients were matched, why the others were not,
    and what the estimates are therefore an effect on. None when the flow does not show the counts."""
    counts = flow_counts(shown["cohort_flow"])
    if MATCHED_STEP not in counts or TREATED_STEP not in counts or counts[TREATED_STEP] <= 0:
        return None
    matched, treated = counts[MATCHED_STEP], counts[TREATED_STEP]
    text = f"{num.count(matched)} of the {num.count(treated)} clients ({num.share(matched, treated)}) were matched"
    reasons = [(step.removeprefix(NOT_MATCHED), n) for step, n in counts.items()
               if step.startswith(NOT_MATCHED) and n > 0]
    if reasons:
        text += "; the others were not because: " + "; ".join(f"{reason} ({num.count(n)})" for reason, n in reasons)
    estimand = estimand_of_tables(shown)
    if estimand == MATCHED_ONLY:
        text += (". That is fewer than the study's threshold, so the estimates below are the effect on the matched "
                 "clients, not the effect on all clients (ATT)")
    elif estimand == ATT:
        text += ". That is at least the study's threshold, so the estimates below are read as the effect on the "\
                "treated clients (ATT)"
    return mask_identity_codes(text + ".")


def balance_text(labels: Labels, shown: ShownTable | None = None) -> str:
    """How to read the balance table; and, when the differencing checks hid rows of it, why: a reader
    who sees rows suppressed in a table of means over hundreds of persons asks. Nothing of a hidden
    row is said (the table shows which rows are hidden, and the released file says why)."""
    limits = limits_text(labels)
    text = ("A covariate is balanced when its standardised mean difference (the difference in means in pooled "
            f"standard deviations) and variance ratio are within the limits{limits}. Means of 0/1 covariates are "
            "shown as the share with the characteristic. When fewer clients than the minimum frequency of the "
            "disclosure checks could not be matched, they are left out before matching too, so that no two "
            "tables tell their means.")
    if shown is not None and shown.suppressed_for(DIFFERENCING):
        text += (" Some rows are suppressed for differencing: their means, set against earlier query answers and "
                 "studies in this workspace, or against this run's other stage (before or after matching), would "
                 "tell the values of fewer persons than the minimum frequency. Such a row is hidden as a cell of "
                 "too few persons is, however many persons its means are over.")
    return text


def placebo_text(tests: Sequence[Any]) -> str:
    return ("The pre-trend test asks whether the event-study estimates before entry are jointly zero (a Wald test "
            "over the quarters before entry, against the quarter before entry). Matching balances the covariates, "
            "not the outcomes' course before entry; a small p-value warns that clients and comparison persons were "
            "already drifting apart." if tests else "")


def sensitivity_text(shown: bool, left_out: int) -> str:
    text = ("The E-value is the smallest association, on the risk-ratio scale, that an unmeasured confounder would "
            "need with both entry and the outcome to explain an effect away; the E-value of the interval does the "
            "same for its limit nearest to no effect. Rosenbaum's Γ is the largest factor by which hidden bias could "
            "change the odds of entry within a matched set with the effect still significant.")
    if not shown:
        return (text + " These measures mean something only for an effect whose interval excludes zero. No matched "
                "effect in this study does, so no hidden bias is needed to explain them away, and none is shown.")
    if left_out:
        text += (f" Effects whose interval includes zero ({left_out}) are not shown: no hidden bias is needed to "
                 "explain them away.")
    return text


def limitations(shown: Mapping[str, ShownTable], labels: Labels, placebo: Sequence[Any]) -> list[str]:
    """What the reader should keep in mind: the design's limits, then what these outputs show."""
    items = [
        "This is an observational comparison. Matching balances the covariates measured in the registers, "
        "not unmeasured differences such as motivation, health or language skills; the sensitivity analysis "
        "shows how strong such hidden bias would have to be to explain the effects away.",
        "Outcomes are what the registers record. Persons who moved away, died or whose follow-up ended are "
        "missing at later horizons, so later estimates rest on fewer persons.",
        "Comparison persons who later became clients are compared only until their own entry.",
    ]
    if estimand_of_tables(shown) == MATCHED_ONLY:
        items.append("Not every client could be matched (see the cohort flow), and fewer than the study's threshold "
                     "were: the estimates are the effect on the matched clients, not the effect on all clients "
                     "(ATT). The clients left out are those hardest to match, and their effect may differ.")
    failing = unbalanced(shown["balance"], labels)
    if failing:
        items.append(f"After matching, {len(failing)} covariate(s) stay outside the balance limits "
                     f"({', '.join(failing)}); the effects may carry part of that difference.")
    rejecting = [test.outcome.label for test in placebo if test.p_value is not None and test.p_value < 0.05]
    if rejecting:
        items.append(f"The pre-trend test finds differences before entry (p < 0.05) in: {', '.join(rejecting)}. "
                     "Clients and their comparison group were already diverging, so those effects may partly "
                     "reflect that.")
    suppressed = sum(table.n_suppressed for table in shown.values())
    if suppressed:
        items.append(f"Disclosure control suppressed {suppressed} cell(s) in the tables, so some groups "
                     "or horizons are not reported.")
    return items


def short_caveats(shown: Mapping[str, ShownTable], synthetic: Sequence[str]) -> list[str]:
    """The summary's caveats besides the estimand and the pre-trend test."""
    items = ["An observational comparison: matching balances what the registers measure, not unmeasured "
             "differences such as motivation or health."]
    suppressed = sum(table.n_suppressed for table in shown.values())
    if suppressed:
        items.append(f"Disclosure control suppressed {suppressed} cell(s); those groups or horizons are not reported.")
    rounded = _rounded(shown)
    if rounded:
        items.append(f"Counts are rounded to the nearest multiple of {rounded}, and shares computed from them.")
    if synthetic:
        items.append("The data pool was made from synthetic registers: the numbers illustrate the method and "
                     "describe no real person.")
    return items


# --- helpers -----------------------------------------------------------------------------------

def _rounded(shown: Mapping[str, ShownTable]) -> int | None:
    bases = {table.rounded_to for table in shown.values() if table.rounded_to}
    return bases.pop() if len(bases) == 1 else None


def _synthetic(result: object) -> list[str]:
    value = getattr(result, "synthetic", None)
    if isinstance(value, bool):
        return ["all"] if value else []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [mask_identity_codes(str(v)) for v in value]
    return []


def _primary_outcome(subgroups: ShownTable) -> str:
    frame = subgroups.frame
    return str(frame["outcome"].iloc[0]) if "outcome" in frame.columns and len(frame) else ""


def _subgroup_horizon(subgroups: ShownTable) -> str | None:
    frame = subgroups.frame
    if "horizon" not in frame.columns or frame.empty:
        return None
    horizons = {num.as_float(h) for h in frame["horizon"]} - {None}
    return num.fixed(horizons.pop(), 0) if len(horizons) == 1 else None


def _label(key: str) -> str:
    text = mask_identity_codes(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def value_text(value: object) -> str:
    """A setting's value: lists joined, flags as yes/no, numbers as numbers, words without underscores."""
    if isinstance(value, Mapping):
        return "; ".join(f"{_label(str(k))}: {value_text(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(value_text(item) for item in value) if value else "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return num.short(value)
    return mask_identity_codes(str(value)).replace("_", " ")


def _refuse_leaks(html: str, permit: str) -> None:
    if _PSEUDONYM_LIKE.search(html):
        raise ReportError(f"study report for permit {permit}: the page holds a digit string as long as a "
                          "pseudonym; it is not written")
    if _REFERENCE.search(html):
        raise ReportError(f"study report for permit {permit}: the page refers to something outside itself "
                          "(a URL, script, link or image); it is not written")


def _sequence(result: object, field: str) -> Sequence[str]:
    value = field_of(result, field)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ReportError(f"study report: field {field} must be a list, got {type(value).__name__}")
    return value


def _mapping(result: object, field: str) -> Mapping[str, object]:
    value = field_of(result, field)
    if not isinstance(value, Mapping):
        raise ReportError(f"study report: field {field} must be a mapping of settings, got {type(value).__name__}")
    return value


def _period(result: object) -> str:
    period = field_of(result, "period")
    if isinstance(period, str) or not isinstance(period, Sequence) or len(period) != 2:
        raise ReportError("study report: field period must be (first, last), e.g. ('2019Q1', '2023Q4')")
    return f"{value_text(period[0])} to {value_text(period[1])}"


def _breakable(text: str) -> Markup:
    """Escaped text that may wrap after a slash or a hyphen, so long labels fit a narrow column."""
    return Markup(str(escape(text)).replace("/", "/<wbr>"))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=PackageLoader(TEMPLATE_PACKAGE, "templates"), undefined=StrictUndefined,
                      autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["breakable"] = _breakable
    env.filters["words"] = words
    return env
