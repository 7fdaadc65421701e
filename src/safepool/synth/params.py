"""The structural parameters of the synthetic Espoo; all of them land in truth.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Coefficients of the skills-centre entry model, on the logit scale. Every covariate is
# observable in the registers and measured before the entry quarter q (see SELECTION_COVARIATES).
SELECTION_COEFFICIENTS: dict[str, float] = {
    "unemployed_quarters_8": 0.30,
    "log1p_earnings_4_per_1000": -0.45,
    "low_education": 0.55,
    "grounds_family": 0.70,
    "grounds_international_protection": 0.90,
    "grounds_studies": -0.40,
    "grounds_work": -0.30,
    "recent_immigration_5y": 0.60,
    "language_arabic_somali_farsi_kurdish": 0.40,
    "language_estonian_swedish_english": -0.50,
    "age_minus_38_squared_per_100": -0.35,
    "female": 0.25,
}

SELECTION_COVARIATES: dict[str, str] = {
    "unemployed_quarters_8": "number of quarters q-8..q-1 with an employment-register row whose "
                             "main activity is 12 (unemployed); quarters without a row count 0",
    "log1p_earnings_4_per_1000": "ln(1 + E/1000), E = sum of employment-register earnings over "
                                 "quarters q-4..q-1 (no row = 0 EUR)",
    "low_education": "1 if the education register holds no degree of level 3 or higher with "
                     "completion year before the calendar year of q",
    "grounds_*": "grounds of the residence permit valid on the last day of quarter q-1 "
                 "(reference: other)",
    "recent_immigration_5y": "1 if fewer than 5 years (365.25-day) from the immigration date "
                             "to the first day of q",
    "language_*": "native language in the population register (reference: ru, zh, other)",
    "age_minus_38_squared_per_100": "((age at the first day of q) - 38)^2 / 100",
    "female": "1 if sex is 2 (female)",
}


@dataclass(frozen=True)
class Parameters:
    # population
    share_native_resident: float = 0.46  # native-born, living in Espoo on 2009-01-01
    share_native_mover: float = 0.16  # native-born, moving in during 2009-2024
    share_born: float = 0.13  # born in Espoo during 2009-2024
    share_immigrant: float = 0.25  # born abroad, immigration date 1990-2024
    new_century_sign_share: float = 0.05  # share of codes using the 2023 signs Y..U / B..F
    # employment model (logit of the probability of being employed in a quarter)
    employment_intercept: float = 0.45
    employment_ability: float = 0.75
    employment_state_dependence: float = 0.6  # added when employed in the previous quarter
    employment_persistence: float = 0.75  # renewal copula: chance to keep last quarter's draw
    activity_persistence: float = 0.80  # same for the non-employed activity draw
    immigrant_gap: float = -1.5  # at immigration, closing with years in Finland
    immigrant_catch_up: float = 1.1
    immigrant_catch_up_years: float = 4.0
    earnings_log_base: float = 8.95
    earnings_noise_sd: float = 0.18
    # the planted effect of a skills-centre entry
    effect_max: float = 0.12  # employment probability points at the plateau (multiplier 1)
    effect_ramp_quarters: int = 8  # zero at entry, linear to the plateau at 8 quarters
    effect_multiplier_sex: dict[str, float] = field(
        default_factory=lambda: {"male": 0.8, "female": 1.25})
    effect_multiplier_language_level: dict[str, float] = field(
        default_factory=lambda: {"A1": 0.6, "A2": 0.85, "B1": 1.0, "B2": 1.2, "C1": 1.4})
    effect_probability_cap: float = 0.98
    earnings_log_effect_max: float = 0.05  # intensive-margin earnings effect at the plateau
    # skills-centre entry
    selection_coefficients: dict[str, float] = field(
        default_factory=lambda: dict(SELECTION_COEFFICIENTS))
    entry_season_weights: tuple[float, float, float, float] = (1.15, 0.95, 0.7, 1.2)
    entry_age_range: tuple[int, int] = (18, 64)
    # identity faults: share of the persons in a register (or of its rows for duplicates)
    fault_rates: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "population": {"missing_from_register": 0.003},
        "residence_permits": {"lowercase": 0.006, "whitespace": 0.004},
        "income_taxes": {"wrong_check_character": 0.001, "duplicate_row": 0.001},
        "benefits": {"wrong_check_character": 0.002, "lowercase": 0.003, "whitespace": 0.003,
                     "temporary_code": 0.05, "duplicate_row": 0.002},
        "employment_services": {"wrong_check_character": 0.003, "lowercase": 0.003,
                                "temporary_code": 0.05, "duplicate_row": 0.002},
        "skills_centre": {"wrong_check_character": 0.005, "lowercase": 0.01, "whitespace": 0.01},
        "social_health": {"wrong_check_character": 0.002, "whitespace": 0.002,
                          "duplicate_row": 0.003},
        "social_assistance": {"lowercase": 0.002, "duplicate_row": 0.002},
        "child_protection": {"wrong_check_character": 0.002},
        "city_services": {"whitespace": 0.002, "duplicate_row": 0.001},
    })

    def effect_curve(self, horizons: range | list[int]) -> list[float]:
        """Structural effect on the employment probability (multiplier 1) at each horizon."""
        return [0.0 if h <= 0 else self.effect_max * min(h / self.effect_ramp_quarters, 1.0)
                for h in horizons]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["entry_season_weights"] = list(self.entry_season_weights)
        data["entry_age_range"] = list(self.entry_age_range)
        return data
