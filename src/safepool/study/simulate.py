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


def simulate_scarce_controls(seed: int, n_strata: int = 8, typical: int = 60, scarce: int = 40,
                             controls: int = 600, scarce_controls: int = 12, effect_typical: float = 1.0,
                             effect_scarce: float = 3.0, horizons: Iterable[int] = (-1, 4)) -> pd.DataFrame:
    """Risk sets in which controls are scarce for part of the clients, with a planted ATT.

    Per stratum: `typical` clients and `controls` controls whose covariates x, z are standard
    normal, and `scarce` clients around x = 2.5 with only `scarce_controls` controls there. The
    effect is `effect_typical` for typical clients and `effect_scarce` for the others, so the
    ATT (the attribute "att" of the frame) is their mix; 1:1 matching without replacement
    runs out of controls for the scarce clients and estimates mostly the typical effect.
    Outcome y@h = x + 0.5 z + person noise + effect after entry (h >= 0).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for stratum in range(n_strata):
        groups = [(typical, 1, 0.0, 1.0, effect_typical), (scarce, 1, 2.5, 0.3, effect_scarce),
                  (controls, 0, 0.0, 1.0, 0.0), (scarce_controls, 0, 2.5, 0.3, 0.0)]
        for size, treated, centre, spread, effect in groups:
            parts.append(pd.DataFrame({"stratum": f"q{stratum}", "treated": treated,
                                       "x": rng.normal(centre, spread, size), "z": rng.normal(0, 1, size),
                                       "effect": effect}))
    frame = pd.concat(parts, ignore_index=True)
    frame["person"] = np.arange(len(frame))
    person = rng.normal(0, 0.5, len(frame))
    for h in horizons:
        after = float(h >= 0)
        frame[f"y@{h}"] = (frame["x"] + 0.5 * frame["z"] + person + rng.normal(0, 1, len(frame))
                           + after * frame["effect"] * frame["treated"])
    frame.attrs["att"] = float(frame.loc[frame["treated"] == 1, "effect"].mean())
    return frame.drop(columns="effect")


PANEL_COVARIATES = ["age", "female", "unemployed_8", "employed_last", "language_level", "permit_refugee"]


def simulate_entry_panel(n_persons: int, seed: int, n_quarters: int = 16, follow_up: int = 4,
                         clients_per_quarter: float = 8.0, effect: float = 0.12,
                         horizons: Iterable[int] = (-1, 4, 8, 12)) -> pd.DataFrame:
    """The risk sets of a small panel, as the cohort builds them from the pool, with a planted effect.

    What makes the study's variance hard is here, at a size a test can match many times: every
    person is a unit (row) of each quarter in which it is eligible (not yet a client, not moved
    away), so the same person is a control in many risk sets and, when it enters later, a control
    before it is a client; a control's outcomes are missing from its own entry on (censored, as
    safepool.study.cohort leaves them), and employment persists from quarter to quarter (a
    persistent uniform draw, renewed with probability 0.25 a quarter, under a probability set by
    a latent ability, language, permit grounds and the business cycle). Entry in quarter q
    (0..n_quarters-1) has a logit hazard in the covariates measured before q (PANEL_COVARIATES:
    unemployed quarters of the last 8, employed in the last quarter, age, sex, language level,
    refugee permit) and nothing else, so matching on them is enough. From entry the employment
    probability rises by effect * min(h / 8, 1) (times 0.8 for men, 1.25 for women), with common
    random numbers, so the frame's attribute "att" holds the exact sample ATT per horizon: the
    mean of the treated units' outcome with minus without entry, over those observed. Outcomes
    are observed up to quarter n_quarters - 1 + follow_up, so later horizons have fewer clients.
    Columns: pid, t, stratum, treated, entry_t (NaN if never), PANEL_COVARIATES, employment@h.
    """
    rng = np.random.default_rng(seed)
    horizons = list(horizons)
    history = 8
    last = n_quarters - 1 + follow_up
    quarters = np.arange(-history, last + 1)
    age = rng.normal(38, 10, n_persons).clip(18, 60)
    female = rng.binomial(1, 0.5, n_persons)
    language = rng.integers(0, 4, n_persons)
    refugee = rng.binomial(1, 0.3, n_persons)
    ability = rng.normal(0, 1, n_persons)
    moves_away = rng.geometric(0.01, n_persons) + rng.integers(-history, n_quarters, n_persons)
    cycle = 0.05 * np.sin(quarters / 3.0)
    base = 0.42 + 0.12 * ability + 0.05 * (language - 1.5) - 0.08 * refugee - 0.004 * (age - 38)
    gain = effect * np.where(female == 1, 1.25, 0.8)

    draw = rng.random(n_persons)
    y0 = np.zeros((n_persons, quarters.size), dtype=bool)
    y1 = np.zeros_like(y0)
    entry = np.full(n_persons, -1)
    units = []
    for k, s in enumerate(quarters):
        renew = rng.random(n_persons) < 0.25
        draw = np.where(renew, rng.random(n_persons), draw)
        p0 = (base + cycle[k]).clip(0.05, 0.9)
        since = np.where(entry >= 0, s - entry, -1)
        y0[:, k] = draw < p0
        y1[:, k] = draw < p0 + np.where(since >= 0, gain * np.minimum(since / 8, 1.0), 0.0)
        if not 0 <= s < n_quarters:
            continue
        eligible = np.flatnonzero((entry < 0) & (moves_away > s))
        past = y0[eligible, k - history:k]  # before entry the outcome is the untreated one
        covariates = np.column_stack([age[eligible] + s / 4, female[eligible], history - past.sum(axis=1),
                                      past[:, -1], language[eligible], refugee[eligible]]).astype(float)
        score = covariates @ np.array([-0.02, 0.1, 0.25, -0.5, -0.2, 0.4])
        level = np.log(clients_per_quarter / np.exp(score).sum())
        enters = rng.random(eligible.size) < 1.0 / (1.0 + np.exp(-(level + score)))
        entry[eligible[enters]] = s
        units.append(pd.DataFrame({"pid": eligible, "t": s, "treated": enters.astype(int),
                                   **dict(zip(PANEL_COVARIATES, covariates.T))}))
    frame = pd.concat(units, ignore_index=True)
    frame.insert(2, "stratum", np.array(quarter_labels(n_quarters))[frame["t"].to_numpy()])
    person, t = frame["pid"].to_numpy(), frame["t"].to_numpy()
    entered = entry[person]
    frame.insert(4, "entry_t", np.where(entered >= 0, entered, np.nan))
    treated = frame["treated"].to_numpy() == 1
    att = {}
    for h in horizons:
        at = t + h
        observed = (at <= last) & (at < moves_away[person]) & (treated | (entered < 0) | (at < entered))
        column = np.clip(at + history, 0, quarters.size - 1)
        with_entry, without = y1[person, column], y0[person, column]
        frame[f"employment@{h}"] = np.where(observed, np.where(treated, with_entry, without), np.nan)
        chosen = observed & treated
        att[h] = float((with_entry[chosen].astype(float) - without[chosen]).mean()) if chosen.any() else 0.0
    frame.attrs["att"] = att
    return frame
