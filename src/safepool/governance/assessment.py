"""Assessing a permit request: benefit, risk, cost, decision and who must approve.

`assess(request)` follows the handbook's phases 2 and 3:

1. Benefit class: the benefit matrix at (probability of use, significance).
2. Risk class: the risk matrix at (probability of harm, harm potential).
3. Unclear risk. The handbook routes a risk that "cannot be assessed clearly" like a moderate
   one. A request is unclear when any of its risk answers is `unknown`: harm potential,
   probability of harm, or the personal data in the raw data, the analysed data or the
   results. An unknown level is read as moderate in the risk matrix, and the class is raised
   to at least moderate; `risk_unclear` and `unclear_reasons` record why.
4. The high-risk rule: analysed data (or results) holding personal data that is not
   anonymised (pseudonymised or identifiable) is always high or very high risk; the class is
   raised to at least high and `high_risk_rule` is set.
5. Points and the decision matrix at (benefit class, risk class).
6. Approvals: very low or low risk -> the approver; moderate or unclear -> the approver and
   branch management; high or very high -> the approver, city management and the data
   protection officer.
7. Reassessment: moderate, unclear, high and very high risk permits are assessed again after
   the analytic review of the data; a continuous analysis of such risk also every
   `Matrices.continuous_reassessment_months`.
8. Cost class: from the work days through the organisation's limits if given, else the class
   the form states.
"""

from __future__ import annotations

import calendar
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from safepool.governance.form import ContinuityKind, CostClass, Level, PermitRequest, PersonalData, RiskLevel
from safepool.governance.matrices import (
    DECISION_LABELS,
    RISK_CLASSES,
    BenefitClass,
    Decision,
    Matrices,
    RiskClass,
)

__all__ = ["ApprovalRole", "Assessment", "assess", "approvals_for"]


class ApprovalRole(StrEnum):
    approver = "approver"  # the data security / privacy officer
    branch_management = "branch_management"
    city_management = "city_management"
    data_protection_officer = "data_protection_officer"


class Assessment(BaseModel):
    """The outcome of `assess`; stored beside the request in the permit's record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benefit_class: BenefitClass
    benefit_points: int
    matrix_risk_class: RiskClass  # what the risk matrix alone gives
    risk_class: RiskClass  # after the unclear and high-risk rules
    risk_points: int
    risk_unclear: bool
    unclear_reasons: list[str]
    high_risk_rule: bool  # analysed data holds personal data that is not anonymised
    decision: Decision
    approvals: list[ApprovalRole]
    reassessment_after_review: bool
    reassessment_interval_months: int | None  # continuous analyses of moderate or higher risk
    next_reassessment: date | None  # decided_on + interval, when a decision date was given
    cost_class: CostClass
    cost_work_days: float | None
    notes: list[str]

    @property
    def decision_label(self) -> str:
        return DECISION_LABELS[self.decision]

    @property
    def needs_separate_decision_document(self) -> bool:
        """The handbook: decisions on moderate or high risk analyses are documented separately;
        for low risk the approved form itself is the decision document."""
        return self.risk_class not in (RiskClass.very_low, RiskClass.low) or self.risk_unclear


def approvals_for(risk: RiskClass, unclear: bool = False) -> list[ApprovalRole]:
    """Who must approve a permit of this risk, in the order they are asked."""
    if risk in (RiskClass.high, RiskClass.very_high):
        return [ApprovalRole.approver, ApprovalRole.city_management, ApprovalRole.data_protection_officer]
    if risk == RiskClass.moderate or unclear:
        return [ApprovalRole.approver, ApprovalRole.branch_management]
    return [ApprovalRole.approver]


def assess(request: PermitRequest, matrices: Matrices = Matrices(), *, decided_on: date | None = None) -> Assessment:
    """Assess a permit request under an organisation's matrices (the handbook's by default).

    `decided_on`, when given, dates the first periodic reassessment of a continuous analysis.
    """
    notes: list[str] = []

    benefit = matrices.benefit.cell(request.benefit.probability, request.benefit.significance)

    risk_in = request.risk
    unclear: list[str] = []
    for name, value in (("harm_potential", risk_in.harm_potential), ("harm_probability", risk_in.harm_probability)):
        if value == RiskLevel.unknown:
            unclear.append(f"{name} is unknown (read as moderate)")
    for name, value in (("raw_data", risk_in.raw_data), ("analysed_data", risk_in.analysed_data),
                        ("results", risk_in.results)):
        if value == PersonalData.unknown:
            unclear.append(f"personal data in {name} cannot be assessed yet")
    matrix_risk = matrices.risk.cell(_level(risk_in.harm_probability), _level(risk_in.harm_potential))

    risk = matrix_risk
    if unclear:
        raised = _at_least(risk, RiskClass.moderate)
        if raised != risk:
            notes.append(f"risk cannot be assessed clearly: raised from {_words(risk)} to {_words(raised)}")
        risk = raised

    rule = risk_in.analysed_data.not_anonymised or risk_in.results.not_anonymised
    if rule:
        raised = _at_least(risk, RiskClass.high)
        where, held = (
            ("analysed data", risk_in.analysed_data)
            if risk_in.analysed_data.not_anonymised
            else ("results", risk_in.results)
        )
        if raised != risk:
            notes.append(
                f"the {where} hold {held} personal data: risk raised from "
                f"{_words(risk)} to {_words(raised)} (always high or very high)"
            )
        else:
            notes.append(f"the {where} hold {held} personal data: risk is high or very high")
        risk = raised

    decision = matrices.decision.cell(benefit, risk)
    if decision == Decision.consider_in_detail:
        notes.append("borderline case: weigh the costs of processing and maintaining the data too")

    approvals = approvals_for(risk, bool(unclear))
    at_least_moderate = bool(unclear) or risk not in (RiskClass.very_low, RiskClass.low)

    interval = None
    next_date = None
    if at_least_moderate and request.analysis.continuity.kind == ContinuityKind.continuous:
        interval = matrices.continuous_reassessment_months
        if decided_on is not None:
            candidate = _add_months(decided_on, interval)
            if candidate < request.expiry:
                next_date = candidate
            else:
                notes.append(f"the permit expires ({request.expiry}) before a periodic reassessment falls due")

    cost = request.cost
    if cost.work_days is not None:
        cost_class = matrices.cost_limits.classify(cost.work_days)
        if cost.estimate is not None and cost.estimate != cost_class:
            notes.append(
                f"cost: the form says {cost.estimate.replace('_', ' ')}, but {cost.work_days:g} work days "
                f"is {cost_class.replace('_', ' ')} under this organisation's limits; the latter is used"
            )
    else:
        cost_class = cost.estimate if cost.estimate is not None else CostClass.unknown

    return Assessment(
        benefit_class=benefit,
        benefit_points=matrices.benefit_points.of(benefit),
        matrix_risk_class=matrix_risk,
        risk_class=risk,
        risk_points=matrices.risk_points.of(risk),
        risk_unclear=bool(unclear),
        unclear_reasons=unclear,
        high_risk_rule=rule,
        decision=decision,
        approvals=approvals,
        reassessment_after_review=at_least_moderate,
        reassessment_interval_months=interval,
        next_reassessment=next_date,
        cost_class=cost_class,
        cost_work_days=cost.work_days,
        notes=notes,
    )


def _level(value: RiskLevel) -> Level:
    return Level.moderate if value == RiskLevel.unknown else Level(value.value)


def _at_least(risk: RiskClass, floor: RiskClass) -> RiskClass:
    return max(risk, floor, key=RISK_CLASSES.index)


def _words(value: str) -> str:
    return value.replace("_", " ")


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
