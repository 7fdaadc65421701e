"""The permit decision document: Markdown sections and decision, safe HTML, a valid offline PDF."""

import re
import zlib
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from safepool.governance.assessment import assess
from safepool.governance.document import Transition, render_html, render_markdown, render_pdf
from safepool.governance.form import PermitRequest
from safepool.yaml_files import load_model, parse_model

from test_permit_form import EXAMPLE, LOW_RISK

IDENTITY_CODE = "131052-308T"
SECTIONS = [
    "# Permit decision: Impact of the skills centre for immigrants",
    "## Summary of the estimates",
    "## 1. Basic information",
    "### Data",
    "### Terms of the permit",
    "## 2. Benefit",
    "## 3. Risk",
    "## 4. Cost",
    "## 5. Overall estimate",
    "## 6. Decision record",
]
UTC = timezone.utc
TRANSITIONS = [
    Transition("identify the need and data", "espoo.employment", "requester",
               datetime(2025, 1, 10, 9, 30, tzinfo=UTC), "Request filed with the estimate form"),
    Transition("assessment and decision", "city.manager", "city_management",
               datetime(2025, 1, 27, 10, 0, tzinfo=UTC), "Approved: no breakdown by country of origin"),
    Transition("assessment and decision", "sec.officer", "approver", datetime(2025, 1, 20, 13, 0, tzinfo=UTC),
               f"High risk by the rule. Asked about {IDENTITY_CODE} | see ![x](http://127.0.0.1:9/x.png) "
               "and <script>alert(1)</script> [link](http://127.0.0.1:9/)"),
]


@pytest.fixture(scope="module")
def example():
    request = load_model(EXAMPLE, PermitRequest)
    return request, assess(request, decided_on=date(2025, 1, 27))


@pytest.fixture(scope="module")
def markdown(example):
    request, assessment = example
    return render_markdown(request, assessment, TRANSITIONS, permit_id="P-2025-001")


@pytest.fixture(scope="module")
def pdf(example):
    request, assessment = example
    return render_pdf(request, assessment, TRANSITIONS, permit_id="P-2025-001")


def test_markdown_holds_each_section_in_order(markdown):
    positions = [markdown.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions)


def test_markdown_holds_the_assessment_and_decision(markdown):
    assert "**Outcome of the decision matrix: consider in more detail.**" in markdown
    assert "Great benefit against high risk: **consider in more detail**." in markdown
    assert "| Benefit | high | great | 8 |" in markdown
    assert "| Risk | high | high | 8 |" in markdown
    assert "| Cost | high | high | 45 work days |" in markdown
    assert "Approvals required: approver (data security and privacy), city management, " \
           "data protection officer." in markdown
    assert "Reassessment after the analytic review of the data: required." in markdown
    assert "Personal data that is not anonymised is analysed, so the risk is always high or very high." in markdown
    assert "| data protection officer | yes |" in markdown and "| branch management | no |" in markdown


def test_markdown_holds_the_form(markdown):
    assert "| Analyst | VTT Technical Research Centre of Finland, " in markdown
    assert "| Time frame | 2009Q1 to 2024Q4 |" in markdown
    assert "| population | all variables |" in markdown
    assert "| income_taxes | tax_year, earned_income, capital_income, taxes_paid |" in markdown
    assert "| Data analysed in the pool | pseudonymised personal data" in markdown
    assert "| Valid until | 2027-12-31 |" in markdown
    assert "| Re-identification | not requested |" in markdown
    assert "Permit **P-2025-001**." in markdown


def test_the_decision_record_is_in_time_order(markdown):
    record = markdown[markdown.index("## 6. Decision record"):]
    rows = [line for line in record.splitlines() if line.startswith("| 2025-")]
    assert [row.split(" | ")[0] for row in rows] == ["| 2025-01-10 09:30 UTC", "| 2025-01-20 13:00 UTC",
                                                      "| 2025-01-27 10:00 UTC"]
    assert "| city.manager | city management | Approved: no breakdown by country of origin |" in record
    assert "recorded on 2025-01-27" in markdown


def test_free_text_cannot_carry_identity_codes_or_markup(example, markdown):
    request, assessment = example
    assert IDENTITY_CODE not in markdown and "identity code removed" in markdown
    html = render_html(request, assessment, TRANSITIONS)
    assert IDENTITY_CODE not in html
    for tag in ("<a ", "<img", "<script", "<iframe", "<link"):
        assert tag not in html
    assert "&lt;script&gt;" in html  # shown as text, never run


def test_a_low_risk_request_without_steps(tmp_path):
    request = parse_model(LOW_RISK, PermitRequest, tmp_path / "low.yaml")
    markdown = render_markdown(request, assess(request))
    assert "**Outcome of the decision matrix: open, consider limits on usage.**" in markdown
    assert "Approvals required: approver (data security and privacy)." in markdown
    assert "not required (low risk)" in markdown
    assert "| Continuity | continuous, updated every 3 months |" in markdown
    assert "No steps have been recorded yet." in markdown
    assert "Permit **" not in markdown


def test_reidentification_and_unclear_risk_are_shown(tmp_path):
    text = (LOW_RISK.replace("  raw_data: anonymised", "  raw_data: identifiable")
            .replace("  analysed_data: anonymised", "  analysed_data: pseudonymised")
            .replace("  results: anonymised", "  results: unknown")
            + "reidentification:\n  requested: true\n  ground: preventive_services\n"
              "  justification: Offer family support to the households found at risk\n")
    request = parse_model(text, PermitRequest, tmp_path / "reid.yaml")
    markdown = render_markdown(request, assess(request))
    assert "| Re-identification | requested (to focus preventive services on an at-risk group): " \
           "Offer family support to the households found at risk |" in markdown
    assert "The risk cannot be assessed clearly (personal data in results cannot be assessed yet)" in markdown
    assert "| Risk | not clear | high (not clear) | 8 |" in markdown


def pdf_objects(data: bytes) -> bytes:
    """The PDF's bytes with every Flate stream inflated (object streams hold the page tree)."""
    parts = [data]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(parts)


def test_the_pdf_is_a_pdf_with_pages(pdf):
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    objects = pdf_objects(pdf)
    pages = re.findall(rb"/Type\s*/Page(?!s)", objects)
    counts = [int(n) for n in re.findall(rb"/Type\s*/Pages\b.*?/Count\s+(\d+)", objects, re.DOTALL)]
    assert len(pages) >= 1
    assert counts and counts[0] == len(pages)


def test_the_pdf_holds_no_secrets(pdf):
    objects = pdf_objects(pdf)
    for secret in (IDENTITY_CODE.encode(), IDENTITY_CODE.replace("-", "").encode(), b"password",
                   str(Path.home()).encode(), str(EXAMPLE.parent).encode(), b"http://127.0.0.1"):
        assert secret not in objects, secret
    assert b"/Title" in objects  # the document's own title, nothing more


def test_the_pdf_renders_without_the_network(example, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the PDF tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    request, assessment = example
    assert render_pdf(request, assessment, TRANSITIONS[2:]).startswith(b"%PDF-")
