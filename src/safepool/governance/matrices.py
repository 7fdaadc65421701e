"""The assessment matrices: benefit, risk and decision, their points, and the cost limits.

The defaults are the handbook's (Appendix 1) as written out in DESIGN.md:

  benefit   probability of use (rows) x significance to users (columns) -> benefit class
  risk      probability of harm (rows) x harm potential (columns) -> risk class; the
            handbook's risk matrix is a picture lost from the text, so its default has the
            same shape as the benefit matrix
  decision  benefit class (rows) x risk class (columns) -> decision
  points    benefit very slight 0, slight 2, moderate 5, great 8, very great 10; risk very
            low 0, low 2, moderate 5, high 8, very high 10

Each organisation may change them: write a YAML file holding any of the sections (a section
given must be complete: every row, five known cells each) and load it with
`load_model(path, Matrices)`. Rows are lists of five
cells, ordered like the columns: from the lowest column to the highest.

    benefit:
      very_high: [slight, moderate, great, very_great, very_great]
      ...
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from safepool.governance.form import CostClass, Level, Significance

__all__ = [
    "BenefitClass",
    "BenefitMatrix",
    "BenefitPoints",
    "CostLimits",
    "Decision",
    "DecisionMatrix",
    "Matrices",
    "RiskClass",
    "RiskMatrix",
    "RiskPoints",
    "DECISION_LABELS",
    "HANDBOOK_BENEFIT",
    "HANDBOOK_DECISION",
    "HANDBOOK_RISK",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenefitClass(StrEnum):
    very_slight = "very_slight"
    slight = "slight"
    moderate = "moderate"
    great = "great"
    very_great = "very_great"


class RiskClass(StrEnum):
    """The handbook's decision table calls the two lowest "very slight" and "slight" risk; its
    points list calls them "very low" and "low". They are the same classes."""

    very_low = "very_low"
    low = "low"
    moderate = "moderate"
    high = "high"
    very_high = "very_high"


class Decision(StrEnum):
    open = "open"
    open_consider_limits = "open_consider_limits"
    consider_in_detail = "consider_in_detail"
    do_not_open = "do_not_open"


DECISION_LABELS = {
    Decision.open: "open",
    Decision.open_consider_limits: "open, consider limits on usage",
    Decision.consider_in_detail: "consider in more detail",
    Decision.do_not_open: "do not open",
}

LEVELS = list(Level)  # very_low .. very_high: probability rows, harm potential columns
SIGNIFICANCES = list(Significance)  # very_slight .. very_great: benefit columns
BENEFIT_CLASSES = list(BenefitClass)
RISK_CLASSES = list(RiskClass)

B = BenefitClass
R = RiskClass
D = Decision
_Brow = tuple[B, B, B, B, B]
_Rrow = tuple[R, R, R, R, R]
_Drow = tuple[D, D, D, D, D]


class BenefitMatrix(_Strict):
    """Rows: probability that the results are used. Columns: significance, very slight first."""

    very_high: _Brow
    high: _Brow
    moderate: _Brow
    low: _Brow
    very_low: _Brow

    def cell(self, probability: Level, significance: Significance) -> BenefitClass:
        return getattr(self, Level(probability).value)[SIGNIFICANCES.index(Significance(significance))]


class RiskMatrix(_Strict):
    """Rows: probability that the harm is realised. Columns: harm potential, very low first.
    Same shape as the benefit matrix (the handbook's own is a lost picture)."""

    very_high: _Rrow
    high: _Rrow
    moderate: _Rrow
    low: _Rrow
    very_low: _Rrow

    def cell(self, probability: Level, potential: Level) -> RiskClass:
        return getattr(self, Level(probability).value)[LEVELS.index(Level(potential))]


class DecisionMatrix(_Strict):
    """Rows: benefit class, very great first. Columns: risk class, very low first."""

    very_great: _Drow
    great: _Drow
    moderate: _Drow
    slight: _Drow
    very_slight: _Drow

    def cell(self, benefit: BenefitClass, risk: RiskClass) -> Decision:
        return getattr(self, BenefitClass(benefit).value)[RISK_CLASSES.index(RiskClass(risk))]


class BenefitPoints(_Strict):
    very_slight: int = Field(ge=0)
    slight: int = Field(ge=0)
    moderate: int = Field(ge=0)
    great: int = Field(ge=0)
    very_great: int = Field(ge=0)

    @model_validator(mode="after")
    def _increasing(self) -> BenefitPoints:
        _check_increasing(self)
        return self

    def of(self, benefit: BenefitClass) -> int:
        return getattr(self, BenefitClass(benefit).value)


class RiskPoints(_Strict):
    very_low: int = Field(ge=0)
    low: int = Field(ge=0)
    moderate: int = Field(ge=0)
    high: int = Field(ge=0)
    very_high: int = Field(ge=0)

    @model_validator(mode="after")
    def _increasing(self) -> RiskPoints:
        _check_increasing(self)
        return self

    def of(self, risk: RiskClass) -> int:
        return getattr(self, RiskClass(risk).value)


def _check_increasing(points: BaseModel) -> None:
    values = list(points.model_dump().values())
    if any(later < earlier for earlier, later in zip(values, values[1:])):
        raise ValueError(f"points must not decrease from the lowest class to the highest: {values}")


class CostLimits(_Strict):
    """Limits between the handbook's cost classes, in daily work units (person-days).

    The handbook leaves them to each city ("X daily work units [cities will define]"); these
    defaults are ours, to be set by the organisation:
      none       0 days
      very low   less than `low_from`
      low        from `low_from` up to (not including) `high_from`
      high       from `high_from` up to and including `very_high_above`
      very high  more than `very_high_above`
    """

    low_from: float = Field(default=5, gt=0)
    high_from: float = Field(default=20, gt=0)
    very_high_above: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> CostLimits:
        if not self.low_from < self.high_from <= self.very_high_above:
            raise ValueError("cost limits must satisfy low_from < high_from <= very_high_above")
        return self

    def classify(self, work_days: float) -> CostClass:
        if work_days <= 0:
            return CostClass.none
        if work_days < self.low_from:
            return CostClass.very_low
        if work_days < self.high_from:
            return CostClass.low
        if work_days <= self.very_high_above:
            return CostClass.high
        return CostClass.very_high


# The handbook's tables (Appendix 1, as written out in DESIGN.md).
HANDBOOK_BENEFIT = BenefitMatrix(
    very_high=(B.slight, B.moderate, B.great, B.very_great, B.very_great),
    high=(B.slight, B.moderate, B.moderate, B.great, B.very_great),
    moderate=(B.slight, B.slight, B.moderate, B.moderate, B.great),
    low=(B.very_slight, B.slight, B.slight, B.moderate, B.moderate),
    very_low=(B.very_slight, B.very_slight, B.slight, B.slight, B.slight),
)
# The handbook's risk matrix did not survive; same shape as the benefit matrix.
HANDBOOK_RISK = RiskMatrix(
    very_high=(R.low, R.moderate, R.high, R.very_high, R.very_high),
    high=(R.low, R.moderate, R.moderate, R.high, R.very_high),
    moderate=(R.low, R.low, R.moderate, R.moderate, R.high),
    low=(R.very_low, R.low, R.low, R.moderate, R.moderate),
    very_low=(R.very_low, R.very_low, R.low, R.low, R.low),
)
_C = D.consider_in_detail
_L = D.open_consider_limits
HANDBOOK_DECISION = DecisionMatrix(
    very_great=(D.open, D.open, _L, _C, _C),
    great=(D.open, _L, _L, _C, _C),
    moderate=(_L, _L, _C, _C, D.do_not_open),
    slight=(_L, _C, _C, D.do_not_open, D.do_not_open),
    very_slight=(_C, _C, D.do_not_open, D.do_not_open, D.do_not_open),
)
HANDBOOK_BENEFIT_POINTS = BenefitPoints(very_slight=0, slight=2, moderate=5, great=8, very_great=10)
HANDBOOK_RISK_POINTS = RiskPoints(very_low=0, low=2, moderate=5, high=8, very_high=10)


class Matrices(_Strict):
    """An organisation's assessment rules; `Matrices()` holds the handbook's. A section given in
    a YAML file replaces the default section whole, so it must have every row and cell."""

    benefit: BenefitMatrix = HANDBOOK_BENEFIT
    risk: RiskMatrix = HANDBOOK_RISK
    decision: DecisionMatrix = HANDBOOK_DECISION
    benefit_points: BenefitPoints = HANDBOOK_BENEFIT_POINTS
    risk_points: RiskPoints = HANDBOOK_RISK_POINTS
    cost_limits: CostLimits = Field(default_factory=CostLimits)
    continuous_reassessment_months: int = Field(
        default=12,
        ge=1,
        le=60,
        description="how often a continuous analysis of moderate or higher risk is assessed again "
        "(the handbook says 'at regular intervals'; 12 months is our default)",
    )
