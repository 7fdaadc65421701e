"""The impact study's report as HTML and PDF, built only from outputs that passed disclosure control.

Sections: question, data and permit, methods, cohort flow, balance table, love plot, effect
table, event study, subgroups, sensitivity, limitations, and a summary of the checks. Tables
are the public cells of the checked (mitigated) outputs; each chart is drawn from its checked
table and inlined as SVG. The HTML holds no script and no link; the PDF is rendered from it
with every fetch refused (governance.document.pdf_from_html).

The report is published as a document output (layout "study_report",
safepool.disclosure.kinds.document): the output register checks every part under the
workspace's policy and calls `document_files` to write the HTML and PDF from the checked parts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from safepool.disclosure import DisclosureRules, Document, Mitigated
from safepool.governance.document import pdf_from_html
from safepool.governance.form import mask_identity_codes
from safepool.reports import charts
from safepool.reports.source import ReportError, ShownTable, StudyReportSource, field_of, shown_tables
from safepool.reports.tables import HumanTable, human_table, settings_rows, value_text
from safepool.study.estimand import ATT, MATCHED_ONLY, MATCHED_STEP, NOT_MATCHED, TREATED_STEP

TEMPLATE_PACKAGE = "safepool.reports"
TEMPLATE = "study_report.html.j2"
STYLESHEET = "study_report.css"
REPORT_NAME = "study-report"
HTML_NAME = f"{REPORT_NAME}.html"
PDF_NAME = f"{REPORT_NAME}.pdf"

SECTION_HEADINGS = {
    "question": "Question",
    "data": "Data and permit",
    "methods": "Methods",
    "cohort_flow": "Cohort flow",
    "balance": "Balance table",
    "love_plot": "Love plot",
    "effects": "Effect table",
    "event_study": "Event study",
    "subgroups": "Subgroups",
    "sensitivity": "Sensitivity",
    "limitations": "Limitations",
    "disclosure": "Disclosure checks",
}
TABLES = ("cohort_flow", "balance", "effects", "naive", "event_study", "placebo", "subgroups", "sensitivity")
FIGURES = {  # figure name -> (output it is drawn from, how it is drawn, what it shows)
    "love_plot": ("love_plot", charts.love_plot, "Standardised mean differences before and after matching"),
    "effects": ("effects", charts.effect_by_horizon_plot, "Effect at each horizon with its confidence interval"),
    "event_study": ("event_study", charts.event_study_plot,
                    "Event study: effect by quarter from entry, confidence band, entry marked"),
    "subgroups": ("subgroups", charts.forest_plot, "Subgroup effects with confidence intervals"),
}
_PSEUDONYM_LIKE = re.compile(r"(?<![\d.])\d{16,}")  # not the decimals of chart coordinates
_REFERENCE = re.compile(r"https?://|<script|<link|<iframe|<img|url\(", re.IGNORECASE)


@dataclass(frozen=True)
class ReportFiles:
    """Where the report was written."""

    html: Path
    pdf: Path


@dataclass(frozen=True)
class ReportFigure:
    svg: str
    caption: str


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


ABOUT = ("title", "question", "permit", "registers", "period", "methods")


def document_files(document: Document, checked: Mapping[str, Mitigated], name: str,
                   policy: DisclosureRules) -> dict[str, bytes]:
    """The "study_report" layout of a document output: its HTML and PDF from its checked parts.

    `document.about` holds the study's settings (ABOUT) and `output_ids`, the recorded id of each part."""
    about = document.about
    missing = [key for key in ABOUT if key not in about]
    if missing:
        raise ReportError(f"study report document '{document.title}': settings missing: {', '.join(missing)}")
    source = DocumentSource(checked=checked, **{key: about[key] for key in ABOUT})
    return render_study_files(source, output_ids=about.get("output_ids") or {}, name=name)


def render_study_html(result: StudyReportSource, output_ids: Mapping[str, str] | None = None) -> str:
    """The report as one standalone HTML page: inline CSS and SVG, nothing fetched."""
    shown = shown_tables(result)
    permit = mask_identity_codes(str(field_of(result, "permit")))
    title = mask_identity_codes(str(field_of(result, "title")))
    css = resources.files(TEMPLATE_PACKAGE).joinpath("templates", STYLESHEET).read_text(encoding="utf-8")
    html = _environment().get_template(TEMPLATE).render(
        title=title,
        permit=permit,
        written=date.today().isoformat(),
        question=mask_identity_codes(str(field_of(result, "question"))),
        registers=", ".join(mask_identity_codes(str(name)) for name in _sequence(result, "registers")),
        period=_period(result),
        methods=settings_rows(_mapping(result, "methods")),
        smd_limit=charts.SMD_LIMIT,
        headings=SECTION_HEADINGS,
        tables={name: human_table(shown[name]) for name in TABLES},
        figures={name: _figure(shown[source], draw, what) for name, (source, draw, what) in FIGURES.items()},
        matching=matching_statement(shown),
        limitations=limitations(shown),
        checks=[_check_summary(table, (output_ids or {}).get(name)) for name, table in shown.items()],
        css=css,
    )
    _refuse_leaks(html, permit)
    return html


def limitations(shown: Mapping[str, ShownTable]) -> list[str]:
    """What the reader should keep in mind: the design's limits, then what these outputs show."""
    items = [
        "This is an observational comparison. Matching balances the covariates measured in the registers, "
        "not unmeasured differences such as motivation, health or language skills; the sensitivity analysis "
        "shows how strong such hidden bias would have to be to explain the effects away.",
        "Outcomes are what the registers record. Persons who moved away, died or whose follow-up ended are "
        "missing at later horizons, so later estimates rest on fewer persons.",
        "Controls who later became clients are compared only until their own entry.",
    ]
    if estimand_of_tables(shown) == MATCHED_ONLY:
        items.append("Not every client could be matched (see the cohort flow), and fewer than the study's threshold "
                     "were: the estimates are the effect on the matched clients, not the effect on all clients "
                     "(ATT). The clients left out are those hardest to match, and their effect may differ.")
    unbalanced = _unbalanced_covariates(shown["balance"])
    if unbalanced:
        items.append(f"After matching, {len(unbalanced)} covariate(s) stay outside the balance limits "
                     f"({', '.join(unbalanced)}); the effects may carry part of that difference.")
    if _placebo_rejects(shown["placebo"]):
        items.append("The pre-trend placebo test finds differences before entry (p < 0.05): clients and their "
                     "comparison group were already diverging, so the effects may partly reflect that.")
    suppressed = sum(table.n_suppressed for table in shown.values())
    if suppressed:
        items.append(f"Disclosure control suppressed {suppressed} cell(s) in the tables above, so some groups "
                     "or horizons are not reported.")
    return items


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
    flow = shown["cohort_flow"]
    frame = flow.frame.loc[~flow.suppressed]
    if not {"step", "count"} <= set(frame.columns):
        return None
    counts = pd.to_numeric(frame.set_index(frame["step"].astype(str))["count"], errors="coerce")
    if not {MATCHED_STEP, TREATED_STEP} <= set(counts.index) or counts[[MATCHED_STEP, TREATED_STEP]].isna().any():
        return None
    matched, treated = float(counts[MATCHED_STEP]), float(counts[TREATED_STEP])
    if treated <= 0:
        return None
    text = f"{matched:,.0f} of the {treated:,.0f} clients ({matched / treated:.0%}) were matched"
    reasons = [(step.removeprefix(NOT_MATCHED), n) for step, n in counts.items()
               if step.startswith(NOT_MATCHED) and pd.notna(n) and n > 0]
    if reasons:
        text += "; the others were not because: " + "; ".join(f"{reason} ({n:,.0f})" for reason, n in reasons)
    estimand = estimand_of_tables(shown)
    if estimand == MATCHED_ONLY:
        text += (". That is fewer than the study's threshold, so the estimates below are the effect on the matched "
                 "clients, not the effect on all clients (ATT)")
    elif estimand == ATT:
        text += ". That is at least the study's threshold, so the estimates below are read as the effect on the "\
                "treated clients (ATT)"
    return mask_identity_codes(text + ".")


def _figure(shown: ShownTable, draw, what: str) -> ReportFigure:  # type: ignore[no-untyped-def]
    caption = f"{what}. Drawn from the checked table “{mask_identity_codes(shown.title)}”."
    if shown.n_suppressed:
        caption += f" {shown.n_suppressed} suppressed cell(s) are not drawn."
    return ReportFigure(svg=charts.to_svg(draw(shown)), caption=caption)


def _check_summary(shown: ShownTable, output_id: str | None) -> dict[str, str]:
    rules = sorted({finding.rule for finding in shown.report.findings})
    return {"id": mask_identity_codes(output_id) if output_id else "–",
            "title": mask_identity_codes(shown.title), "kind": shown.kind, "verdict": shown.report.verdict,
            "rules": ", ".join(rule.replace("_", " ") for rule in rules), "suppressed": str(shown.n_suppressed)}


def _unbalanced_covariates(balance: ShownTable) -> list[str]:
    frame = balance.frame.loc[~balance.suppressed]
    if "stage" not in frame.columns or "covariate" not in frame.columns:
        return []
    after = frame.loc[frame["stage"].astype(str) == "after"]
    failing = pd.Series(False, index=after.index)
    for flag in ("smd_ok", "vr_ok"):
        if flag in after.columns:
            failing |= after[flag].astype("boolean").eq(False).fillna(False).astype(bool)
    return [mask_identity_codes(str(name)) for name in after.loc[failing, "covariate"]]


def _placebo_rejects(placebo: ShownTable) -> bool:
    columns = [column for column in placebo.frame.columns if "p_value" in column]
    values = pd.to_numeric(placebo.frame.loc[~placebo.suppressed, columns].stack(), errors="coerce") \
        if columns else pd.Series(dtype=float)
    return bool((values < 0.05).any())


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
    """Escaped text that may wrap after an underscore, so long variable names fit a narrow column."""
    return Markup(str(escape(text)).replace("_", "_<wbr>"))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=PackageLoader(TEMPLATE_PACKAGE, "templates"), undefined=StrictUndefined,
                      autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["breakable"] = _breakable
    return env
