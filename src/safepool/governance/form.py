"""The permit request: the handbook's benefit, risk and cost estimate form (its Appendix 1).

The party asking for an analysis fills in this form together with the analyst, as a YAML file
(see safepool/examples/permit-request.yaml), before any data is looked at. It has the handbook's
sections:

  analysis     basic information on the object of analysis (name, who asks, who analyses, ...)
  data         what data, from which registers, for which quarters, protected how
  benefit      who benefits, how much, how likely the results are used
  risk         personal data at each stage, harms, other risks, harm potential and probability
  cost         the handbook's cost classes, in daily work units

and the parts of a permit that the pool enforces: purpose, people, expiry and whether
re-identification is requested.

Load a file with `safepool.yaml_files.load_model(path, PermitRequest)`: each bad field is
reported with its line. Cross-field rules live on the smallest model that holds all the fields
they compare, so that their message points at the right line too. Nothing here compares with
today's date (the expiry is only checked to be a date), so that a stored request always loads.

This module imports nothing from the steward zone: analyst-facing code (the web pages, the
reports) may read permits.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)

__all__ = [
    "Beneficiary",
    "BenefitEstimate",
    "Continuity",
    "ContinuityKind",
    "CostClass",
    "CostEstimate",
    "DataDescription",
    "Harm",
    "Level",
    "OtherRisk",
    "Party",
    "PermitRequest",
    "PersonalData",
    "ReidentificationGround",
    "ReidentificationRequest",
    "RiskEstimate",
    "RiskLevel",
    "Significance",
    "TimeFrame",
    "Use",
    "AnalysisInfo",
    "parse_quarter",
    "looks_like_identity_code",
    "mask_identity_codes",
]


class _Strict(BaseModel):
    """Same configuration as `safepool.registers.catalogue.Strict`, without importing the
    steward zone: unknown fields are refused and a loaded request cannot be changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- small types ---------------------------------------------------------------------------

# A Finnish identity code (HETU) anywhere in free text: a request must never carry one.
from safepool.identity_pattern import IDENTITY_CODE as _IDENTITY_CODE  # noqa: E402  (any spelling)
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def looks_like_identity_code(text: str) -> bool:
    return _IDENTITY_CODE.search(text) is not None


def mask_identity_codes(text: str) -> str:
    """Replace anything that looks like an identity code, for text from outside the form."""
    return _IDENTITY_CODE.sub("[identity code removed]", text)


def _no_identity_code(text: str) -> str:
    if looks_like_identity_code(text):
        raise ValueError("looks like it holds a personal identity code; a permit request must not")
    return text


def parse_quarter(text: str) -> tuple[int, int]:
    """`'2019Q3'` -> `(2019, 3)`; anything else is a ValueError naming the text."""
    match = _QUARTER.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a quarter like 2019Q3")
    return int(match.group(1)), int(match.group(2))


def _quarter(text: str) -> str:
    parse_quarter(text)
    return text


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_no_identity_code)]
"""Free text: not blank, and never holding an identity code."""

UserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Quarter = Annotated[str, AfterValidator(_quarter)]


# --- enums ---------------------------------------------------------------------------------


class Use(StrEnum):
    """The handbook's "purpose of the analysis: internal/external"."""

    internal = "internal"  # for the organisation's own units
    external = "external"  # asked by or for a party outside it (business, research, association)


class ContinuityKind(StrEnum):
    one_off = "one_off"  # made once, for a particular need
    continuous = "continuous"  # monitoring, updated at intervals (needs interval_months)


class Significance(StrEnum):
    """Significance of the results to their users (the benefit matrix's columns)."""

    very_slight = "very_slight"
    slight = "slight"
    moderate = "moderate"
    great = "great"
    very_great = "very_great"


class Level(StrEnum):
    """A five-step scale: probability of use, harm potential, probability of harm."""

    very_low = "very_low"
    low = "low"
    moderate = "moderate"
    high = "high"
    very_high = "very_high"


class RiskLevel(StrEnum):
    """`Level` plus `unknown`, for the risk estimates only: the handbook lets a risk be one that
    "cannot be assessed clearly"; such a permit is routed as a moderate risk at least."""

    very_low = "very_low"
    low = "low"
    moderate = "moderate"
    high = "high"
    very_high = "very_high"
    unknown = "unknown"


class PersonalData(StrEnum):
    """What personal data a stage of the analysis holds (raw data, analysed data, results).

    The handbook asks yes / no / unable to assess; these values say which "yes":
      none          no information on natural persons at all
      anonymised    about persons, but irreversibly: nobody can link a row back to a person
      pseudonymised identifiers replaced by permit-specific pseudonyms that only the steward
                    can link back; still personal data under the GDPR
      identifiable  direct identifiers (identity code, name, address) or data as recorded
      unknown       cannot be assessed yet (further assessment necessary)
    Ordered none < anonymised < pseudonymised < identifiable.
    """

    none = "none"
    anonymised = "anonymised"
    pseudonymised = "pseudonymised"
    identifiable = "identifiable"
    unknown = "unknown"

    @property
    def not_anonymised(self) -> bool:
        """Personal data that is not anonymised: the handbook's high-risk condition."""
        return self in (PersonalData.pseudonymised, PersonalData.identifiable)


_PERSONAL_ORDER = {
    PersonalData.none: 0,
    PersonalData.anonymised: 1,
    PersonalData.pseudonymised: 2,
    PersonalData.identifiable: 3,
}


class Beneficiary(StrEnum):
    """The handbook's list of parties likely to use the analyses and their results."""

    city_units = "city_units"  # units of the city itself
    public_sector = "public_sector"  # other public-sector actors
    residents = "residents"
    businesses = "businesses"
    non_profits = "non_profits"
    researchers = "researchers"  # research institutions or researchers
    media = "media"
    other = "other"  # name them in other_beneficiaries


class Harm(StrEnum):
    """Harm that identifying persons in the data could cause them (the handbook's list)."""

    serious = "serious"  # significant harm such as identity theft, discrimination, abuse
    location = "location"  # location revealed: break-in, theft, damage to property
    economic = "economic"  # economic harm or lost earnings
    psychological = "psychological"  # e.g. loss of or attacks on reputation
    other = "other"  # describe it in other_harm


class OtherRisk(StrEnum):
    """Other damage that revealing the data may cause (the handbook's second level of risk)."""

    public_image = "public_image"  # significant damage to the city's public image
    operations = "operations"  # weakens the operative activity of offices or branches
    third_party_data = "third_party_data"  # holds a third party's data with no permission to publish
    general_safety = "general_safety"  # detail that may weaken general safety
    willingness_to_inform = "willingness_to_inform"  # residents less willing to give information
    inappropriate = "inappropriate"  # likely to be felt inappropriate by residents


class CostClass(StrEnum):
    """The handbook's cost classes (its section 5), measured in daily work units.

    The handbook leaves the limits to each city ("X daily work units"); the limits in force are
    the organisation's `Matrices.cost_limits` (defaults there are ours, not the handbook's).
    """

    none = "none"
    very_low = "very_low"
    low = "low"
    high = "high"
    very_high = "very_high"
    unknown = "unknown"  # the costs cannot be estimated


class ReidentificationGround(StrEnum):
    """Why results must be linked back to persons."""

    # The handbook's case: focusing preventive services on persons in an at-risk group.
    preventive_services = "preventive_services"
    other = "other"


# --- sections ------------------------------------------------------------------------------


class Party(_Strict):
    """An organisation, optionally its unit, and the person responsible there."""

    organisation: Text
    unit: Text | None = None
    person: Text


class Continuity(_Strict):
    kind: ContinuityKind
    interval_months: int | None = Field(default=None, ge=1, le=120)

    @model_validator(mode="after")
    def _interval(self) -> Continuity:
        if self.kind == ContinuityKind.continuous and self.interval_months is None:
            raise ValueError("a continuous analysis needs interval_months (how often it is updated)")
        if self.kind == ContinuityKind.one_off and self.interval_months is not None:
            raise ValueError("a one-off analysis has no interval_months")
        return self


class AnalysisInfo(_Strict):
    """Basic information on the object of analysis."""

    name: Text
    description: Text
    commissioner: Party = Field(description="who commissions the analysis: field and responsible person")
    analyst: Party = Field(description="who analyses and refines the data")
    retrieved_by: Party | None = Field(
        default=None, description="who fetches the data from the sources and pseudonymises it (the steward)"
    )
    use: Use
    users: list[UserName] = Field(min_length=1, description="user names of those who use the results")
    publication: Text = Field(description="how the end results are presented")
    continuity: Continuity


class TimeFrame(_Strict):
    start: Quarter = Field(description="first quarter, e.g. 2009Q1")
    end: Quarter = Field(description="last quarter, e.g. 2024Q4")

    @model_validator(mode="after")
    def _ordered(self) -> TimeFrame:
        if parse_quarter(self.start) > parse_quarter(self.end):
            raise ValueError(f"the time frame starts ({self.start}) after it ends ({self.end})")
        return self

    def first_day(self) -> date:
        year, quarter = parse_quarter(self.start)
        return date(year, 3 * quarter - 2, 1)

    def last_day(self) -> date:
        year, quarter = parse_quarter(self.end)
        following = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return following - timedelta(days=1)


def _all_or_list(value: Any, handler: Any) -> Any:
    # "*" or a list, validated as one type so that a mistake is one problem, not one per
    # alternative of a union.
    if value == "*":
        return "*"
    if isinstance(value, str):
        raise ValueError("give a list of variables, or '*' for all of them")
    return handler(value)


Variables = Annotated[
    list[Identifier],
    Field(min_length=1),
    WrapValidator(_all_or_list),
    PlainSerializer(lambda value: value if value == "*" else list(value), return_type=Any),
]
"""A register's requested variables: a list of variable names, or the string "*" for all."""


class DataDescription(_Strict):
    content: Text = Field(description="general description of the data")
    customer_data: bool = Field(description="whether the data holds customer data")
    time_frame: TimeFrame
    sources: dict[Identifier, Variables] = Field(
        min_length=1, description="register name -> the variables requested, or '*' for all"
    )
    anonymisation: list[Text] = Field(min_length=1, description="how persons are protected")
    transfer: list[Text] = Field(min_length=1, description="how the data is fetched and moved")
    tools: list[Text] = Field(min_length=1, description="information systems used to process it")
    owners: list[Party] = Field(min_length=1, description="the registers' owners")

    @model_validator(mode="after")
    def _distinct_variables(self) -> DataDescription:
        for register, wanted in self.sources.items():
            if wanted != "*" and len(set(wanted)) != len(wanted):
                repeated = sorted({v for v in wanted if wanted.count(v) > 1})
                raise ValueError(f"register {register} names variable(s) {repeated} more than once")
        return self


class BenefitEstimate(_Strict):
    beneficiaries: list[Beneficiary] = Field(min_length=1)
    other_beneficiaries: Text | None = None
    significance: Significance = Field(description="significance of the results to their users")
    probability: Level = Field(description="probability that the results are used")
    description: Text = Field(description="what the analyses aim at and how they will be used")

    @model_validator(mode="after")
    def _other_named(self) -> BenefitEstimate:
        if Beneficiary.other in self.beneficiaries and self.other_beneficiaries is None:
            raise ValueError("beneficiaries include 'other': name them in other_beneficiaries")
        return self


class RiskEstimate(_Strict):
    raw_data: PersonalData = Field(description="personal data in the raw data as fetched")
    analysed_data: PersonalData = Field(description="personal data in the data analysed in the pool")
    results: PersonalData = Field(description="personal data in the end results (reports)")
    harms: list[Harm] = Field(default_factory=list, description="harm identification could cause")
    other_harm: Text | None = None
    other_risks: list[OtherRisk] = Field(default_factory=list)
    other_risks_note: Text | None = None
    harm_potential: RiskLevel
    harm_probability: RiskLevel
    description: Text | None = Field(default=None, description="the initiator's view of the risks")

    @model_validator(mode="after")
    def _consistent(self) -> RiskEstimate:
        if Harm.other in self.harms and self.other_harm is None:
            raise ValueError("harms include 'other': describe it in other_harm")
        stages = [("raw_data", self.raw_data), ("analysed_data", self.analysed_data), ("results", self.results)]
        known = [(name, level) for name, level in stages if level != PersonalData.unknown]
        for (earlier, before), (later, after) in zip(known, known[1:]):
            if _PERSONAL_ORDER[after] > _PERSONAL_ORDER[before]:
                raise ValueError(
                    f"{later} ({after}) cannot hold more identifying personal data than {earlier} ({before})"
                )
        return self


class CostEstimate(_Strict):
    estimate: CostClass | None = Field(default=None, description="the handbook's cost class")
    work_days: float | None = Field(default=None, ge=0, description="estimated daily work units")
    processing: Text | None = Field(default=None, description="costs of preparing and analysing the data")
    maintenance: Text | None = Field(default=None, description="costs of reporting and keeping it up to date")

    @model_validator(mode="after")
    def _something(self) -> CostEstimate:
        if self.estimate is None and self.work_days is None:
            raise ValueError("give the cost estimate (a class), work_days, or both")
        if self.work_days is not None and self.estimate is CostClass.unknown:
            raise ValueError("work_days are given, so the costs are not 'unknown'")
        if self.work_days == 0 and self.estimate not in (None, CostClass.none):
            raise ValueError(f"work_days is 0 but the estimate is {self.estimate}")
        return self


class ReidentificationRequest(_Strict):
    requested: bool = False
    ground: ReidentificationGround | None = None
    justification: Text | None = None

    @model_validator(mode="after")
    def _justified(self) -> ReidentificationRequest:
        if self.requested and (self.ground is None or self.justification is None):
            raise ValueError(
                "re-identification is requested: give its ground and a justification "
                "(e.g. ground preventive_services, to focus preventive services on an at-risk group)"
            )
        return self


class PermitRequest(_Strict):
    """A filled-in benefit, risk and cost estimate form: the request for a permit."""

    analysis: AnalysisInfo
    purpose: Text = Field(description="what the permit is for; the pool's use must stay within it")
    data: DataDescription
    benefit: BenefitEstimate
    risk: RiskEstimate
    cost: CostEstimate
    people: list[UserName] = Field(min_length=1, description="user names allowed to use the data")
    expiry: date = Field(description="the last day the permit is valid")
    reidentification: ReidentificationRequest = Field(default_factory=ReidentificationRequest)
    output_checkers: int = Field(
        default=1, ge=1, le=2, description="independent output checkers who must approve each output's release"
    )
    summary: Text | None = Field(
        default=None, description="the initiator's brief view of the risks, benefits and costs"
    )

    @field_validator("people")
    @classmethod
    def _distinct_people(cls, people: list[str]) -> list[str]:
        repeated = sorted({name for name in people if people.count(name) > 1})
        if repeated:
            raise ValueError(f"people names {repeated} more than once")
        return people

    @field_validator("reidentification")
    @classmethod
    def _linkable(cls, request: ReidentificationRequest, info: ValidationInfo) -> ReidentificationRequest:
        # Compared with the risk section (validated before, being declared earlier); the error
        # is reported at `reidentification`, where the person asks for it.
        risk = info.data.get("risk")
        if request.requested and risk is not None and not risk.analysed_data.not_anonymised:
            raise ValueError(
                f"re-identification needs pseudonymised analysed data, but risk.analysed_data is "
                f"{risk.analysed_data}: such data cannot be linked back to persons"
            )
        return request

    @property
    def registers(self) -> list[str]:
        return list(self.data.sources)

    def in_force_on(self, day: date) -> bool:
        """Whether the permit is still valid on `day` (its expiry is the last valid day).
        Loading never compares with today; callers ask this with the date they mean."""
        return day <= self.expiry
