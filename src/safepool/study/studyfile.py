"""The study file: what an impact study compares, written by the analyst and run under a permit.

Loaded with safepool.yaml_files.load_model, so every mistake is reported with its field and
line. Covariates, outcomes and subgroups come from the closed vocabularies of
safepool.study.cohort: each name is a builder whose SQL is known and reviewed, never free SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from safepool.governance.form import Identifier, TimeFrame
from safepool.study.cohort import COVARIATES, OUTCOMES, SUBGROUPS, TREATMENT_SUBGROUP
from safepool.yaml_files import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Treatment(_Strict):
    """Entry into the treatment: the first row of a person in a pool table, dated by a column."""

    table: Identifier = Field(description="pool table of the treatment register, e.g. skills_centre")
    date: Identifier = Field(description="date column of entry, e.g. entry_date")
    label: str = Field("entry", min_length=1, max_length=80, description="what entry means, for the report")


class Eligible(_Strict):
    """Who is in a risk set at quarter q (besides not having entered the treatment yet)."""

    immigrants: bool = Field(True, description="immigration date before the first day of q")
    resident: bool = Field(True, description="living in the pool's area on the last day of q-1")
    age: tuple[int, int] = Field((18, 64), description="age range on the first day of q, inclusive")

    @field_validator("age")
    @classmethod
    def _age_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 0 <= low <= high <= 120:
            raise ValueError("give [lowest, highest] ages with 0 <= lowest <= highest <= 120")
        return value


class Matching(_Strict):
    """How clients are matched to controls of their risk set (README "The impact study" says when
    to use which method)."""

    method: Literal["nearest", "full"] = Field(
        "nearest", description="nearest: greedy nearest neighbour, k:1; full: optimal full matching (every "
                               "client with a control in its caliper stays, controls weighted)")
    distance: Literal["propensity", "mahalanobis"] = Field(
        "propensity", description="distance within the caliper: the propensity logit, or Mahalanobis on the covariates")
    exact: list[str] = Field(default_factory=list, description="covariate columns matched exactly, e.g. female")
    caliper: float | None = Field(0.2, gt=0, description="in standard deviations of the logit; null for none")
    ratio: int = Field(1, ge=1, le=10, description="controls per client (nearest)")
    replace: bool = Field(False, description="a control may serve several clients (nearest); its weight adds up")
    refine: bool = Field(True, description="swap controls within the caliper to bring covariate means closer (nearest)")
    min_share_matched: float = Field(
        0.9, ge=0, le=1, description="below this share of clients matched, the run warns that the estimate is the "
                                     "effect on the matched clients, not the ATT, and names that estimand")
    random_state: int = 0

    @model_validator(mode="before")
    @classmethod
    def _distance_named_as_method(cls, value: object) -> object:
        """Study files written before full matching named the distance `method`; read them as they meant."""
        if isinstance(value, dict) and value.get("method") in ("propensity", "mahalanobis") \
                and "distance" not in value:
            value = {**value, "distance": value["method"], "method": "nearest"}
        return value


class EventWindow(_Strict):
    first: int = Field(-8, le=-2, ge=-40, description="first quarter relative to entry")
    last: int = Field(12, ge=0, le=40, description="last quarter relative to entry")


class Balance(_Strict):
    smd_limit: float = Field(0.1, gt=0)
    variance_ratio: tuple[float, float] = (0.5, 2.0)

    @field_validator("variance_ratio")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < 1 < value[1]:
            raise ValueError("give [low, high] with 0 < low < 1 < high")
        return value


class Inference(_Strict):
    ci: Literal["cluster_jackknife", "cluster_robust", "cluster_bootstrap"] = "cluster_jackknife"
    replications: int = Field(500, ge=50, le=20000, description="bootstrap replications")
    alpha: float = Field(0.05, gt=0, lt=0.5)
    random_state: int = 0


class StudyFile(_Strict):
    """An impact study by risk-set matching, as the analyst writes it (see examples/study.yaml)."""

    permit: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    question: str = Field("", max_length=2000)
    treatment: Treatment
    eligible: Eligible = Eligible()
    period: TimeFrame = Field(description="first and last entry quarter")
    covariates: list[str] = Field(min_length=1)
    matching: Matching = Matching()
    outcomes: list[str] = Field(min_length=1)
    event_window: EventWindow = EventWindow()
    horizons: list[int] = Field(min_length=1, description="quarters after entry for the ATT table")
    baseline: int = Field(-1, description="reference quarter of the event study and the difference-in-differences")
    subgroups: list[str] = Field(default_factory=list)
    subgroup_horizon: int | None = Field(None, description="horizon of the subgroup effects (default: the last)")
    balance: Balance = Balance()
    inference: Inference = Inference()

    @field_validator("covariates")
    @classmethod
    def _known_covariates(cls, value: list[str]) -> list[str]:
        return _known(value, COVARIATES, "covariate")

    @field_validator("outcomes")
    @classmethod
    def _known_outcomes(cls, value: list[str]) -> list[str]:
        return _known(value, OUTCOMES, "outcome")

    @field_validator("subgroups")
    @classmethod
    def _known_subgroups(cls, value: list[str]) -> list[str]:
        for name in value:
            column = name.removeprefix(TREATMENT_SUBGROUP)
            if name.startswith(TREATMENT_SUBGROUP) and column.isidentifier():
                continue
            if name not in SUBGROUPS:
                raise ValueError(f"unknown subgroup {name}; use one of {', '.join(SUBGROUPS)} "
                                 f"or {TREATMENT_SUBGROUP}<column of the treatment table>")
        return _unique(value, "subgroup")

    @field_validator("matching")
    @classmethod
    def _exact_columns(cls, value: Matching, info: ValidationInfo) -> Matching:
        if "covariates" not in info.data:  # already reported as a covariates problem
            return value
        chosen = info.data["covariates"]
        columns = {column for name in chosen for column in COVARIATES[name].columns}
        unknown = [column for column in value.exact if column not in columns]
        if unknown:
            raise ValueError(f"exact: {', '.join(unknown)} is not a column of the chosen covariates "
                             f"({', '.join(sorted(columns))})")
        return value

    @field_validator("horizons")
    @classmethod
    def _horizons_in_window(cls, value: list[int], info: ValidationInfo) -> list[int]:
        window = info.data.get("event_window")
        if window is not None:
            outside = [h for h in value if not 0 <= h <= window.last]
            if outside:
                raise ValueError(f"horizons {outside} are outside 0..{window.last} (event_window.last)")
        return sorted(_unique(value, "horizon"))

    @field_validator("baseline")
    @classmethod
    def _baseline_before_entry(cls, value: int, info: ValidationInfo) -> int:
        window = info.data.get("event_window")
        if window is not None and not window.first <= value < 0:
            raise ValueError(f"the baseline must be a quarter before entry within the event window "
                             f"({window.first}..-1)")
        return value

    @field_validator("subgroup_horizon")
    @classmethod
    def _subgroup_horizon(cls, value: int | None, info: ValidationInfo) -> int | None:
        horizons = info.data.get("horizons")
        if value is not None and horizons is not None and value not in horizons:
            raise ValueError(f"{value} is not one of the horizons {horizons}")
        return value

    @property
    def effect_horizon(self) -> int:
        """The horizon of the subgroup effects."""
        return self.subgroup_horizon if self.subgroup_horizon is not None else self.horizons[-1]

    @property
    def event_horizons(self) -> list[int]:
        return list(range(self.event_window.first, self.event_window.last + 1))


def _known(value: list[str], vocabulary: dict[str, object], kind: str) -> list[str]:
    unknown = [name for name in value if name not in vocabulary]
    if unknown:
        raise ValueError(f"unknown {kind} {', '.join(unknown)}; use one of {', '.join(vocabulary)}")
    return _unique(value, kind)


def _unique(value: list, kind: str) -> list:
    repeated = sorted({str(v) for v in value if value.count(v) > 1})
    if repeated:
        raise ValueError(f"{kind} {', '.join(repeated)} given more than once")
    return value


def load_study(path: Path) -> StudyFile:
    """Read and validate a study file; a FileProblem names each bad field and its line."""
    return load_model(path, StudyFile)
