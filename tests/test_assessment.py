"""Assessment of permit requests: every cell of DESIGN.md's matrices, points, rules, routing."""

from datetime import date
from pathlib import Path

import pytest

from safepool.governance.assessment import ApprovalRole, approvals_for, assess
from safepool.governance.form import PermitRequest
from safepool.governance.matrices import Decision, Matrices
from safepool.yaml_files import FileProblem, load_model, parse_model

from test_permit_form import EXAMPLE, LOW_RISK

# DESIGN.md, "The permit process": benefit class from probability of use (rows) and
# significance to users (columns: very slight, slight, moderate, great, very great).
BENEFIT_TABLE = """
very high | slight      | moderate    | great    | very great | very great
high      | slight      | moderate    | moderate | great      | very great
moderate  | slight      | slight      | moderate | moderate   | great
low       | very slight | slight      | slight   | moderate   | moderate
very low  | very slight | very slight | slight   | slight     | slight
"""
SIGNIFICANCE_COLUMNS = ["very slight", "slight", "moderate", "great", "very great"]

# DESIGN.md: decision, rows benefit, columns risk very slight, slight, moderate, high, very high.
DECISION_TABLE = """
very great  | open                  | open                  | open, consider limits on usage | consider in more detail | consider in more detail
great       | open                  | open, consider limits | open, consider limits          | consider in more detail | consider in more detail
moderate    | open, consider limits | open, consider limits | consider in more detail        | consider in more detail | do not open
slight      | open, consider limits | consider in more detail | consider in more detail      | do not open             | do not open
very slight | consider in more detail | consider in more detail | do not open                | do not open             | do not open
"""
RISK_COLUMNS = ["very_low", "low", "moderate", "high", "very_high"]  # "very slight" = very low, ...

DECISION_WORDS = {
    "open": Decision.open,
    "open, consider limits": Decision.open_consider_limits,
    "open, consider limits on usage": Decision.open_consider_limits,
    "consider in more detail": Decision.consider_in_detail,
    "do not open": Decision.do_not_open,
}


def snake(words: str) -> str:
    return words.strip().replace(" ", "_")


def table_cells(table: str, columns: list[str]) -> list[tuple[str, str, str]]:
    cells = []
    for line in table.strip().splitlines():
        row, *values = [part.strip() for part in line.split("|")]
        assert len(values) == 5
        cells.extend((snake(row), snake(column), value) for column, value in zip(columns, values))
    return cells


BENEFIT_CELLS = table_cells(BENEFIT_TABLE, SIGNIFICANCE_COLUMNS)
DECISION_CELLS = table_cells(DECISION_TABLE, RISK_COLUMNS)


def low_risk() -> PermitRequest:
    return parse_model(LOW_RISK, PermitRequest, Path("low-risk.yaml"))


def example() -> PermitRequest:
    return load_model(EXAMPLE, PermitRequest)


def changed(request: PermitRequest, **sections: dict) -> PermitRequest:
    """A copy of `request` with fields of its sections replaced, validated again."""
    data = request.model_dump(mode="json")
    for section, fields in sections.items():
        if isinstance(fields, dict):
            data[section].update(fields)
        else:
            data[section] = fields
    return PermitRequest.model_validate(data)


def test_the_tables_cover_every_cell():
    assert len(BENEFIT_CELLS) == 25 and len(DECISION_CELLS) == 25


@pytest.mark.parametrize(("probability", "significance", "expected"), BENEFIT_CELLS)
def test_benefit_matrix_cell(probability, significance, expected):
    assert Matrices().benefit.cell(probability, significance) == snake(expected)
    request = changed(low_risk(), benefit={"probability": probability, "significance": significance})
    assert assess(request).benefit_class == snake(expected)


@pytest.mark.parametrize(("benefit", "risk", "expected"), DECISION_CELLS)
def test_decision_matrix_cell(benefit, risk, expected):
    assert Matrices().decision.cell(benefit, risk) == DECISION_WORDS[expected]


@pytest.mark.parametrize(("probability", "potential"), [(p, q) for p in RISK_COLUMNS for q in RISK_COLUMNS])
def test_risk_matrix_has_the_benefit_matrix_shape(probability, potential):
    significance = ["very_slight", "slight", "moderate", "great", "very_great"][RISK_COLUMNS.index(potential)]
    benefit = Matrices().benefit.cell(probability, significance)
    expected = {"very_slight": "very_low", "slight": "low", "moderate": "moderate", "great": "high",
                "very_great": "very_high"}[benefit]
    assert Matrices().risk.cell(probability, potential) == expected


@pytest.mark.parametrize(
    ("benefit", "points"), [("very_slight", 0), ("slight", 2), ("moderate", 5), ("great", 8), ("very_great", 10)]
)
def test_benefit_points(benefit, points):
    assert Matrices().benefit_points.of(benefit) == points


@pytest.mark.parametrize(
    ("risk", "points"), [("very_low", 0), ("low", 2), ("moderate", 5), ("high", 8), ("very_high", 10)]
)
def test_risk_points(risk, points):
    assert Matrices().risk_points.of(risk) == points


def test_the_decision_follows_the_assessed_classes():
    # benefit: probability high x significance moderate = moderate (5 points);
    # risk: harm probability low x potential very low = very low (0 points) -> open, consider limits.
    assessment = assess(low_risk())
    assert (assessment.benefit_class, assessment.benefit_points) == ("moderate", 5)
    assert (assessment.risk_class, assessment.risk_points) == ("very_low", 0)
    assert assessment.decision == Decision.open_consider_limits
    assert assessment.decision_label == "open, consider limits on usage"
    assert not assessment.high_risk_rule and not assessment.risk_unclear
    assert assessment.approvals == ["approver"]
    assert not assessment.reassessment_after_review
    assert assessment.reassessment_interval_months is None
    assert assessment.cost_class == "very_low"


def test_the_example_is_high_risk_by_the_rule():
    assessment = assess(example())
    assert assessment.matrix_risk_class == "moderate"  # high potential x low probability
    assert assessment.high_risk_rule
    assert (assessment.risk_class, assessment.risk_points) == ("high", 8)
    assert (assessment.benefit_class, assessment.benefit_points) == ("great", 8)
    assert assessment.decision == Decision.consider_in_detail
    assert assessment.approvals == ["approver", "city_management", "data_protection_officer"]
    assert assessment.reassessment_after_review
    assert assessment.reassessment_interval_months is None  # one-off
    assert any("pseudonymised personal data: risk raised from moderate to high" in n for n in assessment.notes)
    assert assessment.needs_separate_decision_document


@pytest.mark.parametrize("analysed", ["pseudonymised", "identifiable"])
@pytest.mark.parametrize(("potential", "probability", "matrix", "final"), [
    ("very_low", "very_low", "very_low", "high"),
    ("moderate", "moderate", "moderate", "high"),
    ("very_high", "high", "very_high", "very_high"),  # already above: stays very high
])
def test_not_anonymised_analysed_data_is_always_high_or_very_high(analysed, potential, probability, matrix, final):
    request = changed(low_risk(), risk={"raw_data": "identifiable", "analysed_data": analysed, "results": "none",
                                        "harm_potential": potential, "harm_probability": probability})
    assessment = assess(request)
    assert assessment.matrix_risk_class == matrix
    assert assessment.risk_class == final
    assert assessment.high_risk_rule


@pytest.mark.parametrize("analysed", ["none", "anonymised"])
def test_anonymised_analysed_data_does_not_trigger_the_rule(analysed):
    request = changed(low_risk(), risk={"raw_data": "identifiable", "analysed_data": analysed, "results": "none"})
    assessment = assess(request)
    assert not assessment.high_risk_rule
    assert assessment.risk_class == "very_low"


@pytest.mark.parametrize(("potential", "probability", "risk", "approvals", "again"), [
    ("very_low", "low", "very_low", ["approver"], False),
    ("low", "moderate", "low", ["approver"], False),
    ("moderate", "moderate", "moderate", ["approver", "branch_management"], True),
])
def test_routing_by_risk_class(potential, probability, risk, approvals, again):
    request = changed(low_risk(), risk={"harm_potential": potential, "harm_probability": probability})
    assessment = assess(request)
    assert assessment.risk_class == risk
    assert assessment.approvals == approvals
    assert assessment.reassessment_after_review is again


@pytest.mark.parametrize(("risk", "unclear", "approvals"), [
    ("very_low", False, ["approver"]),
    ("low", False, ["approver"]),
    ("moderate", False, ["approver", "branch_management"]),
    ("high", False, ["approver", "city_management", "data_protection_officer"]),
    ("very_high", False, ["approver", "city_management", "data_protection_officer"]),
    ("very_low", True, ["approver", "branch_management"]),
    ("low", True, ["approver", "branch_management"]),
    ("moderate", True, ["approver", "branch_management"]),
    ("high", True, ["approver", "city_management", "data_protection_officer"]),
])
def test_approvals_for_each_class(risk, unclear, approvals):
    assert approvals_for(risk, unclear) == approvals
    assert all(isinstance(role, ApprovalRole) for role in approvals_for(risk, unclear))


@pytest.mark.parametrize(("potential", "probability", "risk"), [
    ("high", "very_high", "very_high"),
    ("very_high", "moderate", "high"),
])
def test_high_and_very_high_risk_need_city_management_and_the_dpo(potential, probability, risk):
    request = changed(low_risk(), risk={"harm_potential": potential, "harm_probability": probability})
    assessment = assess(request)
    assert assessment.risk_class == risk and not assessment.high_risk_rule
    assert assessment.approvals == ["approver", "city_management", "data_protection_officer"]
    assert assessment.reassessment_after_review


@pytest.mark.parametrize("unknown", [
    {"harm_potential": "unknown"},
    {"harm_probability": "unknown"},
    {"results": "unknown"},
    {"analysed_data": "unknown", "results": "unknown"},
])
def test_an_unknown_risk_answer_is_unclear_and_routed_as_moderate(unknown):
    request = changed(low_risk(), risk=unknown)
    assessment = assess(request)
    assert assessment.risk_unclear
    assert len(assessment.unclear_reasons) == len(unknown)
    assert assessment.risk_class == "moderate"  # very low or low raised to moderate
    assert assessment.approvals == ["approver", "branch_management"]
    assert assessment.reassessment_after_review


def test_unclear_and_high_rule_together_route_as_high():
    request = changed(example(), risk={"harm_potential": "unknown"})
    assessment = assess(request)
    assert assessment.risk_unclear and assessment.high_risk_rule
    assert assessment.risk_class == "high"
    assert assessment.approvals == ["approver", "city_management", "data_protection_officer"]


def test_continuous_moderate_or_high_risk_is_reassessed_at_intervals():
    continuous = {"continuity": {"kind": "continuous", "interval_months": 3}}
    high = changed(example(), analysis=continuous)
    assessment = assess(high, decided_on=date(2025, 1, 31))
    assert assessment.reassessment_interval_months == 12
    assert assessment.next_reassessment == date(2026, 1, 31)

    moderate = changed(low_risk(), risk={"harm_potential": "moderate", "harm_probability": "moderate"})
    assert moderate.analysis.continuity.kind == "continuous"
    six = Matrices(continuous_reassessment_months=6)
    assessment = assess(moderate, six, decided_on=date(2026, 1, 15))
    assert assessment.reassessment_interval_months == 6
    assert assessment.next_reassessment is None  # the permit expires 2026-06-30, before 2026-07-15
    assert any("expires" in note for note in assessment.notes)
    assert assessment.reassessment_after_review

    later = changed(moderate, expiry="2027-01-01")
    assert assess(later, six, decided_on=date(2025, 8, 31)).next_reassessment == date(2026, 2, 28)
    assert assess(later, six).next_reassessment is None  # no decision date, interval only
    assert assess(later, six).reassessment_interval_months == 6


def test_continuous_low_risk_is_not_reassessed():
    assessment = assess(low_risk(), decided_on=date(2025, 1, 1))
    assert assessment.reassessment_interval_months is None and assessment.next_reassessment is None


def test_cost_class_from_work_days_and_the_organisations_limits():
    request = example()  # states "high", 45 work days
    assert assess(request).cost_class == "high" and not any("cost:" in n for n in assess(request).notes)
    strict = Matrices.model_validate({"cost_limits": {"low_from": 2, "high_from": 10, "very_high_above": 40}})
    assessment = assess(request, strict)
    assert assessment.cost_class == "very_high"
    assert any("cost: the form says high, but 45 work days is very high" in n for n in assessment.notes)
    unknown = changed(request, cost={"estimate": "unknown", "work_days": None})
    assert assess(unknown).cost_class == "unknown"


def test_an_organisation_can_load_its_own_matrices(tmp_path):
    path = tmp_path / "matrices.yaml"
    path.write_text(
        "risk:\n"
        "  very_high: [moderate, high, very_high, very_high, very_high]\n"
        "  high: [moderate, moderate, high, very_high, very_high]\n"
        "  moderate: [low, moderate, moderate, high, very_high]\n"
        "  low: [low, low, moderate, moderate, high]\n"
        "  very_low: [very_low, low, low, moderate, moderate]\n"
        "continuous_reassessment_months: 6\n"
    )
    matrices = load_model(path, Matrices)
    assert matrices.risk.cell("high", "very_low") == "moderate"
    assert matrices.benefit == Matrices().benefit  # sections not given keep the handbook's
    assessment = assess(low_risk(), matrices)  # very low potential, low probability -> low
    assert assessment.risk_class == "low" and assessment.risk_points == 2


def test_a_bad_matrices_file_names_each_bad_cell(tmp_path):
    path = tmp_path / "matrices.yaml"
    path.write_text(
        "decision:\n"  # line 1
        "  very_great: [open, open, open, open]\n"  # line 2: a cell short
        "  great: [open, open, open, maybe, open]\n"  # line 3: unknown value
        "  moderate: [open, open, open, open, open]\n"
        "  slight: [open, open, open, open, open]\n"
        "benefit_points: {very_slight: 0, slight: 2, moderate: 5, great: 8, very_great: 7}\n"  # line 6
        "risk_points: {very_low: 0, low: 2}\n"  # line 7: missing classes
    )
    with pytest.raises(FileProblem) as caught:
        load_model(path, Matrices)
    problems = caught.value.problems
    assert "line 2, field decision.very_great.4: Field required" in problems
    assert any(p.startswith("line 3, field decision.great.3: Input should be 'open'") for p in problems)
    assert "line 1, field decision.very_slight: Field required" in problems
    assert any(p.startswith("line 6, field benefit_points: Value error, points must not decrease") for p in problems)
    assert "line 7, field risk_points.moderate: Field required" in problems
    assert len(problems) == 7, problems
