"""The permit request form: the example loads, and each mistake is named with its field and line."""

from datetime import date
from pathlib import Path

import pytest
import yaml

from safepool.governance.form import (
    ContinuityKind,
    CostClass,
    PermitRequest,
    PersonalData,
    TimeFrame,
    looks_like_identity_code,
)
from safepool.yaml_files import FileProblem, load_model, parse_model

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "safepool" / "examples" / "permit-request.yaml"

# A small low-risk request: anonymised statistics on library use, for the city's own units.
LOW_RISK = """\
analysis:
  name: Library visits by district
  description: Quarterly counts of library visits by district and age group
  commissioner:
    organisation: City of Espoo
    unit: Culture services
    person: Head of library services
  analyst:
    organisation: City of Espoo
    person: Statistician
  use: internal
  users: [espoo.libraries]
  publication: Tables on the city's intranet
  continuity:
    kind: continuous
    interval_months: 3
purpose: Plan library opening hours by district
data:
  content: Visit counts by district, quarter and age group; no person-level rows
  customer_data: false
  time_frame:
    start: 2022Q1
    end: 2024Q4
  sources:
    library_visits: [district, quarter, age_group, visits]
  anonymisation: [Counted by the source system; no person-level data leaves it]
  transfer: [Exported file moved inside the city's network]
  tools: [safepool]
  owners:
    - organisation: City of Espoo
      person: Library system owner
benefit:
  beneficiaries: [city_units, residents]
  significance: moderate
  probability: high
  description: Opening hours follow use
risk:
  raw_data: anonymised
  analysed_data: anonymised
  results: anonymised
  harm_potential: very_low
  harm_probability: low
cost:
  estimate: very_low
  work_days: 2
people: [espoo.statistician]
expiry: 2026-06-30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "permit.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(FileProblem) as caught:
        load_model(write(tmp_path, text), PermitRequest)
    return caught.value.problems


def line_of(text: str, fragment: str) -> int:
    """1-based number of the first line holding `fragment`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in the text")


def test_the_example_request_loads():
    request = load_model(EXAMPLE, PermitRequest)
    assert request.analysis.analyst.organisation.startswith("VTT")
    assert request.registers == [
        "population", "residence_permits", "employment", "income_taxes", "benefits",
        "employment_services", "skills_centre", "social_health", "social_assistance", "education",
    ]
    assert request.data.sources["population"] == "*"
    assert request.data.time_frame.start == "2009Q1" and request.data.time_frame.end == "2024Q4"
    assert request.risk.raw_data == PersonalData.identifiable
    assert request.risk.analysed_data == PersonalData.pseudonymised
    assert request.expiry.isoformat() == "2027-12-31"
    assert request.in_force_on(date(2027, 12, 31)) and not request.in_force_on(date(2028, 1, 1))
    assert request.analysis.continuity.kind == ContinuityKind.one_off


def test_the_low_risk_request_loads(tmp_path):
    request = load_model(write(tmp_path, LOW_RISK), PermitRequest)
    assert request.analysis.continuity.interval_months == 3
    assert request.cost.estimate == CostClass.very_low
    assert not request.reidentification.requested


def test_a_request_is_frozen():
    request = load_model(EXAMPLE, PermitRequest)
    with pytest.raises(Exception):
        request.purpose = "something else"  # type: ignore[misc]


def test_three_mistakes_give_three_problems_with_their_lines(tmp_path):
    text = (
        LOW_RISK.replace("significance: moderate", "significance: huge")
        .replace("end: 2024Q4", "end: 2024Q5")
        .replace("people: [espoo.statistician]", "people: [espoo.statistician]\ncolour: blue")
    )
    problems = problems_of(tmp_path, text)
    assert len(problems) == 3, problems
    by_field = {p.split("field ")[1].split(":")[0]: p for p in problems}
    assert set(by_field) == {"benefit.significance", "data.time_frame.end", "colour"}
    assert by_field["benefit.significance"].startswith(f"line {line_of(text, 'significance: huge')}, ")
    assert by_field["data.time_frame.end"].startswith(f"line {line_of(text, 'end: 2024Q5')}, ")
    assert "2024Q5" in by_field["data.time_frame.end"]
    assert by_field["colour"].startswith(f"line {line_of(text, 'colour: blue')}, ")
    assert "Extra inputs are not permitted" in by_field["colour"]


def test_cross_field_rules_point_at_their_section(tmp_path):
    text = (
        LOW_RISK.replace("start: 2022Q1", "start: 2025Q1")
        .replace("    interval_months: 3\n", "")
        + "reidentification:\n  requested: true\n"
    )
    problems = problems_of(tmp_path, text)
    assert len(problems) == 3, problems
    joined = "\n".join(problems)
    assert f"line {line_of(text, 'time_frame:')}, field data.time_frame: Value error, the time frame " \
           "starts (2025Q1) after it ends (2024Q4)" in joined
    assert f"line {line_of(text, 'continuity:')}, field analysis.continuity: Value error, a continuous " \
           "analysis needs interval_months" in joined
    assert f"line {line_of(text, 'reidentification:')}, field reidentification: Value error, " \
           "re-identification is requested: give its ground and a justification" in joined


def test_reidentification_needs_pseudonymised_analysed_data(tmp_path):
    text = LOW_RISK + (
        "reidentification:\n"
        "  requested: true\n"
        "  ground: preventive_services\n"
        "  justification: Offer preventive services to the families at risk\n"
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(f"line {line_of(text, 'reidentification:')}, field reidentification:")
    assert "needs pseudonymised analysed data" in problem

    pseudonymised = text.replace("  analysed_data: anonymised\n  results: anonymised",
                                 "  analysed_data: pseudonymised\n  results: pseudonymised").replace(
        "  raw_data: anonymised", "  raw_data: identifiable")
    request = load_model(write(tmp_path, pseudonymised), PermitRequest)
    assert request.reidentification.requested
    assert request.reidentification.ground == "preventive_services"


def test_results_cannot_be_more_identifying_than_the_analysed_data(tmp_path):
    text = LOW_RISK.replace("  results: anonymised", "  results: identifiable")
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(f"line {line_of(text, 'risk:')}, field risk:")
    assert "results (identifiable) cannot hold more identifying personal data than analysed_data" in problem


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("expiry: 2026-06-30", "expiry: next summer", "expiry", "date"),
        ("expiry: 2026-06-30", "expiry: 2026-06-30T12:00:00", "expiry", "date"),
        ("  work_days: 2", "  work_days: -1", "cost.work_days", "greater than or equal to 0"),
        ("    library_visits: [district, quarter, age_group, visits]", "    library_visits: []",
         "data.sources.library_visits", ""),
        ("    library_visits: [district", "    library-visits: [district", "data.sources.library-visits.[key]", "pattern"),
        ("    library_visits: [district, quarter", "    library_visits: [district-name, quarter",
         "data.sources.library_visits.0", "pattern"),
        ("    library_visits: [district, quarter, age_group, visits]", "    library_visits: all",
         "data.sources.library_visits", "or '*' for all of them"),
        ("people: [espoo.statistician]", "people: [espoo.statistician, espoo.statistician]", "people",
         "more than once"),
        ("  harm_probability: low", "  harm_probability: likely", "risk.harm_probability", "unknown"),
        ("  description: Opening hours follow use", "  description: '   '", "benefit.description", "at least 1"),
        ("purpose: Plan library opening hours by district", "purpose: Check 131052-308T", "purpose",
         "identity code"),
    ],
)
def test_single_mistakes_are_named(tmp_path, old, new, field, message):
    assert old in LOW_RISK
    text = LOW_RISK.replace(old, new)
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    assert any(f"field {field}:" in p and message in p for p in problems), problems
    changed_line = line_of(text, new.strip().splitlines()[0])
    assert any(p.startswith(f"line {changed_line}, ") for p in problems), problems


def test_section_rules_are_reported_at_the_section(tmp_path):
    text = LOW_RISK.replace("  beneficiaries: [city_units, residents]", "  beneficiaries: [city_units, other]")
    (problem,) = problems_of(tmp_path, text)
    assert problem == (f"line {line_of(text, 'benefit:')}, field benefit: Value error, beneficiaries include "
                       "'other': name them in other_beneficiaries")


def test_an_impossible_date_is_a_file_problem(tmp_path):
    problems = problems_of(tmp_path, LOW_RISK.replace("expiry: 2026-06-30", "expiry: 2026-02-30"))
    assert problems and "line" in problems[0]


def test_a_wrong_type_at_the_top_is_reported(tmp_path):
    with pytest.raises(FileProblem, match="expected a mapping"):
        load_model(write(tmp_path, "- just a list\n"), PermitRequest)


def test_time_frame_days():
    frame = TimeFrame(start="2009Q1", end="2024Q4")
    assert frame.first_day().isoformat() == "2009-01-01"
    assert frame.last_day().isoformat() == "2024-12-31"
    assert TimeFrame(start="2019Q3", end="2019Q3").last_day().isoformat() == "2019-09-30"


def test_identity_code_detection():
    assert looks_like_identity_code("the person 131052-308T asked")
    assert looks_like_identity_code("010101A123N")
    assert not looks_like_identity_code("2009Q1-2024Q4, 45 work days")


def test_the_example_round_trips_through_yaml(tmp_path):
    request = load_model(EXAMPLE, PermitRequest)
    dumped = yaml.safe_dump(request.model_dump(mode="json", exclude_none=True), sort_keys=False)
    again = parse_model(dumped, PermitRequest, tmp_path / "again.yaml")
    assert again == request
