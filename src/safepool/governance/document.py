"""The permit decision document: the filled form, its assessment and the decision record.

The handbook asks that decisions on moderate and high risk analyses are documented
separately, and that for a low risk analysis the approved form is the decision document. Both
are this document: the form's sections (basic information, data, benefit, risk, cost, overall
estimate) followed by the record of who did what in the permit's phases, and each register
holder's decision on releasing its data into the permit (safepool.governance.holders).

One source, three forms: the Jinja2 template `templates/permit-decision.md` gives Markdown;
that Markdown is turned into HTML (markdown-it-py, raw HTML off) and the HTML into PDF
(WeasyPrint, with every URL fetch refused but of data: URLs, which hold what they name, so it
renders offline and from nothing but the document itself). Free text is escaped for Markdown, so text in a form cannot add links,
images or markup, and anything that looks like an identity code is masked.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt

from safepool.process_settings import collector_paused
from safepool.governance.assessment import ApprovalRole, Assessment
from safepool.governance.form import (
    Beneficiary,
    ContinuityKind,
    CostClass,
    Harm,
    OtherRisk,
    Party,
    PermitRequest,
    PersonalData,
    ReidentificationGround,
    Use,
    mask_identity_codes,
)
from safepool.governance.matrices import BenefitClass, RiskClass

__all__ = ["Transition", "render_markdown", "render_html", "render_pdf", "pdf_from_html", "pdf_layout",
           "TEMPLATE_PACKAGE"]

TEMPLATE_PACKAGE = "safepool.governance"
TEMPLATE_DIR = "templates"
MARKDOWN_TEMPLATE = "permit-decision.md"
HTML_TEMPLATE = "permit-decision.html"
STYLESHEET = "permit-decision.css"


@dataclass(frozen=True)
class Transition:
    """One step of a permit's way through the phases, as the metadata database records it."""

    phase: str  # e.g. "assessment and decision", "analytic review of the data"
    actor: str  # user name
    role: str  # e.g. "approver", "branch_management"
    at: datetime
    note: str = ""


# --- labels (our wording of the handbook's choices) ------------------------------------------

LABELS: dict[str, dict[Any, str]] = {
    "use": {Use.internal: "internal", Use.external: "external"},
    "personal": {
        PersonalData.none: "no personal data",
        PersonalData.anonymised: "anonymised personal data",
        PersonalData.pseudonymised: "pseudonymised personal data (still personal data under the GDPR)",
        PersonalData.identifiable: "identifiable personal data",
        PersonalData.unknown: "cannot be assessed yet",
    },
    "beneficiary": {
        Beneficiary.city_units: "units of the city",
        Beneficiary.public_sector: "other public-sector actors",
        Beneficiary.residents: "residents",
        Beneficiary.businesses: "businesses",
        Beneficiary.non_profits: "non-profit organisations",
        Beneficiary.researchers: "research institutions and researchers",
        Beneficiary.media: "the media",
        Beneficiary.other: "others",
    },
    "harm": {
        Harm.serious: "serious harm such as identity theft, discrimination or abuse",
        Harm.location: "whereabouts revealed (break-in, theft, damage to property)",
        Harm.economic: "economic harm or lost earnings",
        Harm.psychological: "psychological harm such as damage to reputation",
        Harm.other: "other harm",
    },
    "other_risk": {
        OtherRisk.public_image: "damage to the city's public image",
        OtherRisk.operations: "weaker operations of the city's offices or branches",
        OtherRisk.third_party_data: "a third party's data without permission to publish it",
        OtherRisk.general_safety: "detail that may weaken general safety",
        OtherRisk.willingness_to_inform: "residents less willing to give the city information",
        OtherRisk.inappropriate: "likely to be felt inappropriate by residents",
    },
    "cost": {
        CostClass.none: "no costs",
        CostClass.very_low: "very low",
        CostClass.low: "low",
        CostClass.high: "high",
        CostClass.very_high: "very high",
        CostClass.unknown: "cannot be estimated",
    },
    "approval": {
        ApprovalRole.approver: "approver (data security and privacy)",
        ApprovalRole.branch_management: "branch management",
        ApprovalRole.city_management: "city management",
        ApprovalRole.data_protection_officer: "data protection officer",
    },
    "ground": {
        ReidentificationGround.preventive_services: "to focus preventive services on an at-risk group",
        ReidentificationGround.other: "other ground",
    },
}

# The form's summary (its section 2) has three levels: low, moderate, high.
_SUMMARY_BENEFIT = {
    BenefitClass.very_slight: "low", BenefitClass.slight: "low", BenefitClass.moderate: "moderate",
    BenefitClass.great: "high", BenefitClass.very_great: "high",
}
_SUMMARY_RISK = {
    RiskClass.very_low: "low", RiskClass.low: "low", RiskClass.moderate: "moderate",
    RiskClass.high: "high", RiskClass.very_high: "high",
}
_SUMMARY_COST = {
    CostClass.none: "low", CostClass.very_low: "low", CostClass.low: "low",
    CostClass.high: "high", CostClass.very_high: "high", CostClass.unknown: "cannot be estimated",
}


# --- escaping --------------------------------------------------------------------------------

_MARKDOWN_INLINE = re.compile(r"([\\`*\[\]<>|!~&#])")
# An underscore inside a word never starts emphasis; escape only the others.
_LOOSE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LINE_START_BLOCK = re.compile(r"^(\s*)([-+=>]|\d+[.)])", re.MULTILINE)


def _text(value: object) -> str:
    """Inline text: identity codes masked, Markdown escaped, one paragraph."""
    text = mask_identity_codes(str(value)).strip()
    text = _MARKDOWN_INLINE.sub(r"\\\1", text)
    text = _LOOSE_UNDERSCORE.sub(r"\\_", text)
    text = " ".join(text.split())  # one paragraph: no block structure from the form
    return _LINE_START_BLOCK.sub(r"\1\\\2", text)


def _cell(value: object) -> str:
    return _text(value)


def _words(value: object) -> str:
    return str(value).replace("_", " ")


def _party(party: Party) -> str:
    parts = [party.organisation, party.unit, party.person]
    return ", ".join(_text(p) for p in parts if p)


def _when(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.strftime("%z")
    if offset == "+0000":
        return text + " UTC"
    return f"{text} {offset[:3]}:{offset[3:]}" if offset else text


def _label(kind: str):  # type: ignore[no-untyped-def]
    return lambda value: LABELS[kind][value]


# --- rendering -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        text=_text,
        cell=_cell,
        words=_words,
        party=_party,
        when=_when,
        approval=_label("approval"),
        harm=_label("harm"),
        other_risk=_label("other_risk"),
    )
    return env


def _context(
    request: PermitRequest, assessment: Assessment, transitions: Sequence[Transition], permit_id: str | None,
    releases: Sequence[Any] = (), waiting: Sequence[str] = (),
) -> dict[str, Any]:
    continuity = request.analysis.continuity
    if continuity.kind == ContinuityKind.continuous:
        continuity_text = f"continuous, updated every {continuity.interval_months} months"
    else:
        continuity_text = "one-off"
    beneficiaries = [LABELS["beneficiary"][b] for b in request.benefit.beneficiaries if b != Beneficiary.other]
    if request.benefit.other_beneficiaries:
        beneficiaries.append(_text(request.benefit.other_beneficiaries))
    ordered = sorted(transitions, key=lambda step: step.at)
    as_of: date | None = ordered[-1].at.date() if ordered else None
    return {
        "request": request,
        "assessment": assessment,
        "transitions": ordered,
        "permit_id": permit_id,
        "as_of": as_of,
        "labels": LABELS,
        "continuity": continuity_text,
        "beneficiaries": "; ".join(beneficiaries),
        "summary": {
            "benefit": _SUMMARY_BENEFIT[assessment.benefit_class],
            "risk": "not clear" if assessment.risk_unclear else _SUMMARY_RISK[assessment.risk_class],
            "cost": _SUMMARY_COST[assessment.cost_class],
        },
        "all_roles": list(ApprovalRole),
        "releases": list(releases),
        "waiting": list(waiting),
    }


def render_markdown(
    request: PermitRequest,
    assessment: Assessment,
    transitions: Iterable[Transition] = (),
    *,
    permit_id: str | None = None,
    releases: Sequence[Any] = (),
    waiting: Sequence[str] = (),
) -> str:
    """The decision document in Markdown (tables in the GitHub style); `releases` are the register
    holders' decisions on the permit (safepool.governance.holders.Release) and `waiting` the holders
    still to decide."""
    template = _environment().get_template(MARKDOWN_TEMPLATE)
    text = template.render(_context(request, assessment, list(transitions), permit_id, releases, waiting))
    return re.sub(r"\n{3,}", "\n\n", text)


def render_html(
    request: PermitRequest,
    assessment: Assessment,
    transitions: Iterable[Transition] = (),
    *,
    permit_id: str | None = None,
    releases: Sequence[Any] = (),
    waiting: Sequence[str] = (),
) -> str:
    """A standalone HTML page of the same document, its stylesheet inline."""
    markdown = render_markdown(request, assessment, transitions, permit_id=permit_id, releases=releases,
                               waiting=waiting)
    body = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").render(markdown)
    css = resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR, STYLESHEET).read_text(encoding="utf-8")
    title = f"Permit decision: {mask_identity_codes(request.analysis.name)}"
    if permit_id:
        title = f"{mask_identity_codes(permit_id)} · {title}"
    return _environment().get_template(HTML_TEMPLATE).render(title=title, css=css, body=body)


def render_pdf(
    request: PermitRequest,
    assessment: Assessment,
    transitions: Iterable[Transition] = (),
    *,
    permit_id: str | None = None,
    releases: Sequence[Any] = (),
    waiting: Sequence[str] = (),
) -> bytes:
    """The same document as a PDF (A4), rendered offline with WeasyPrint."""
    return pdf_from_html(render_html(request, assessment, transitions, permit_id=permit_id, releases=releases,
                                     waiting=waiting))


def pdf_from_html(html: str) -> bytes:
    """A standalone HTML page as a PDF (page size from its stylesheet), rendered offline (pdf_layout).

    Python's cycle collector is paused while WeasyPrint works: its hundreds of thousands of boxes,
    styles and text layouts set off collection after collection, each full one walking the whole
    process (a tenth of the study report's CPU in the demo); one young collection afterwards frees
    what the rendering left."""
    with _quiet(), collector_paused():
        return pdf_layout(html).write_pdf()


def pdf_layout(html: str) -> Any:
    """The page laid out in pages by WeasyPrint, as pdf_from_html prints it (a weasyprint Document).

    Rendered offline: every fetch but of a data: URL, which holds what it names, is refused and stops
    the rendering. Each inline <svg> chart is handed over as an <img> of the same SVG in a data: URL:
    WeasyPrint draws it the same, but its HTML parser and CSS cascade no longer walk the chart's
    nodes (the study report's PDF took 5-10% less CPU). Each <wbr> becomes a zero-width space, the
    same break opportunity without an element that splits its text in boxes (an insight report full
    of them took 20% less; the PDF's text is the same)."""
    import weasyprint  # imported here: it loads pango, which only PDF output needs
    from weasyprint.urls import URLFetcher

    offline = URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    with _quiet():
        page = _INLINE_SVG.sub(_svg_image, html).replace("<wbr>", "\u200b")
        return weasyprint.HTML(string=page, url_fetcher=offline).render(font_config=_fonts())


_INLINE_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
_SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'
_THREAD = threading.local()


def _svg_image(match: re.Match[str]) -> str:
    svg = match.group(0)
    if _SVG_NAMESPACE not in svg[:svg.index(">")]:
        svg = svg.replace("<svg", f"<svg {_SVG_NAMESPACE}", 1)
    return f'<img alt="" src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}">'


def _fonts() -> Any:
    """One font configuration per thread, kept: making one loads the fonts anew for every document."""
    if not hasattr(_THREAD, "fonts"):
        from weasyprint.text.fonts import FontConfiguration

        _THREAD.fonts = FontConfiguration()
    return _THREAD.fonts


@contextmanager
def _quiet() -> Iterator[None]:
    """Layout and font subsetting log details as warnings; quiet them for this call only."""
    loggers = [logging.getLogger(name) for name in ("weasyprint", "fontTools")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
