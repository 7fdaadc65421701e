"""Confounded risk-set tables with a planted effect, for tests and the matching benchmark.

Units (person at an entry quarter) get background covariates; the units most likely to enter
(logit linear in the covariates plus Gumbel noise, top n_treated) become treated, so the
treated differ from controls on the same covariates that drive the outcomes. Outcomes are
wide columns f"{name}@{h}": earnings (continuous, euros per quarter) and employment (0/1),
with the planted effect added from entry (h >= 0) for treated units only. The naive
difference is therefore biased and a matched comparison on the covariates is not.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

COVARIATES = ["age", "female", "quarters_unemployed_8", "earnings_4", "years_in_finland",
              "language_level", "permit_family", "permit_refugee"]


def quarter_labels(count: int, first_year: int = 2019) -> list[str]:
    return [f"{first_year + i // 4}Q{i % 4 + 1}" for i in range(count)]


def simulate_risk_sets(n_treated: int, n_control: int, n_strata: int, seed: int,
                       earnings_effect: float = 300.0, employment_effect: float = 0.10,
                       horizons: Iterable[int] = range(-8, 13), confounding: float = 1.0,
                       missing_share: float = 0.03) -> pd.DataFrame:
    """One row per unit: stratum, treated, person, the COVARIATES and outcome@horizon columns."""
    rng = np.random.default_rng(seed)
    n = n_treated + n_control
    permit = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame({
        "stratum": np.array(quarter_labels(n_strata))[rng.integers(0, n_strata, size=n)],
        "person": rng.permutation(n),
        "age": rng.normal(38, 10, size=n).clip(18, 64).round(),
        "female": rng.binomial(1, 0.5, size=n),
        "quarters_unemployed_8": rng.binomial(8, 0.35, size=n),
        "earnings_4": rng.gamma(1.5, 2500, size=n).round(-1),
        "years_in_finland": rng.gamma(2.0, 3.0, size=n).round(1),
        "language_level": rng.integers(0, 4, size=n),
        "permit_family": (permit == 1).astype(int),
        "permit_refugee": (permit == 2).astype(int),
    })
    z = standardised(frame[COVARIATES].to_numpy(float))
    selection = confounding * (z @ np.array([-0.3, 0.2, 0.6, -0.5, -0.3, -0.2, 0.2, 0.4]))
    entry_score = selection + rng.gumbel(size=n)
    treated = np.zeros(n, dtype=int)
    treated[np.argsort(-entry_score)[:n_treated]] = 1
    frame.insert(1, "treated", treated)

    # Outcomes depend on the same covariates that drive selection (confounding) plus a person effect.
    prognosis = z @ np.array([-0.2, -0.1, -0.7, 0.6, 0.3, 0.3, -0.1, -0.3])
    person_effect = rng.normal(0, 0.5, size=n)
    for h in horizons:
        after = float(h >= 0)
        earnings = (2500 + 900 * (prognosis + person_effect) + 15 * h
                    + rng.normal(0, 600, size=n) + earnings_effect * after * treated)
        p_employed = (0.4 + 0.12 * prognosis + 0.01 * h / 4).clip(0.05, 0.85) + employment_effect * after * treated
        employed = rng.binomial(1, p_employed).astype(float)
        censored = rng.random(n) < missing_share * max(h, 0) / 4
        frame[f"earnings@{h}"] = np.where(censored, np.nan, earnings.round(2))
        frame[f"employment@{h}"] = np.where(censored, np.nan, employed)
    return frame


def standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)
