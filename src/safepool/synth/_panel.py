"""The quarterly life course: employment, earnings, skills-centre entry and the planted effect.

One loop over the 64 quarters (2009Q1-2024Q4), vectorised over persons. Each quarter:

1. From 2019Q1 on, the quarter's k skills-centre entries (the yearly target spread by season
   weights) are drawn without replacement among eligible immigrants with probability
   proportional to exp(score), a linear score of observable register background measured up to
   the end of the previous quarter (params.SELECTION_COEFFICIENTS). The intercept a that makes
   sum(sigmoid(a + score)) = k is reported per quarter.
2. Two potential employment paths are advanced with common random numbers: path 0 without the
   programme and path 1 with it (identical for everybody who has not entered). A person is
   employed when a persistent uniform draw U (renewed with probability 1 - persistence each
   quarter) falls below the employment probability; the probability of path 1 adds the
   structural effect tau(h) * multiplier from the entry quarter on.
3. The non-employed get a main activity (student, pensioner, other outside the labour force,
   unemployed) from a second persistent draw, and earnings come from one shared noise draw.

The observed registers follow path 1; path 0 is kept only to compute the planted truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from safepool.synth import _time
from safepool.synth._names import LANG
from safepool.synth._people import COUNTRIES, GROUNDS, LANG_EMPLOYMENT, People
from safepool.synth._time import DAYS_PER_YEAR, NODATE, Q_END, Q_START, QUARTERS
from safepool.synth.params import Parameters

EMPLOYED, UNEMPLOYED, STUDENT, PENSIONER, OTHER = 11, 12, 22, 24, 29
LANGUAGE_LEVELS = ["A1", "A2", "B1", "B2", "C1"]
HORIZONS = list(range(-8, 13))

_AGE_KNOTS = [15, 18, 20, 23, 25, 30, 50, 55, 60, 63, 65, 70, 75]
_AGE_LOGIT = [-3.0, -2.2, -1.2, -0.4, 0.2, 0.6, 0.6, 0.35, -0.2, -1.3, -2.8, -3.5, -4.0]
_CYCLE = {2009: -.3, 2010: -.2, 2011: 0, 2012: -.05, 2013: -.15, 2014: -.2, 2015: -.25,
          2016: -.15, 2017: 0, 2018: .1, 2019: .15, 2020: -.25, 2021: 0, 2022: .15, 2023: .05,
          2024: -.1}
_EDU_LOGIT = np.array([0, 0, 0, 0.5, 0.5, 0.8, 0.9, 1.1, 1.2])  # by level 0..8
_EDU_LOG_WAGE = np.array([0, 0, 0, 0.08, 0.08, 0.2, 0.3, 0.5, 0.6])
_GROUNDS_LOGIT = np.array([0.6, -0.1, -0.3, -0.4, 0.0, 0.0])  # work..other, none (-1 -> last)
_LANG_LOGIT = np.array([LANG_EMPLOYMENT[code] for code in LANG])
_WAGE_AGE_KNOTS = [15, 20, 25, 35, 45, 55, 65, 75]
_WAGE_AGE = [-0.9, -0.5, -0.2, 0.1, 0.2, 0.2, 0.1, 0.0]
_HIGH_SELECTION_LANG = np.array([LANG[c] for c in ("ar", "so", "fa", "ku")])
_LOW_SELECTION_LANG = np.array([LANG[c] for c in ("et", "sv", "en")])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Panel:
    resident: np.ndarray  # (n, T) bool: living in Espoo on the last day of the quarter
    in_panel: np.ndarray  # (n, T) bool: resident and aged 15-74 -> an employment-register row
    code: np.ndarray  # (n, T) int8 main activity (0 = no row)
    earnings: np.ndarray  # (n, T) float32 EUR in the quarter
    entry: np.ndarray  # (n,) int16 entry quarter, -1 = never a client
    entry_day: np.ndarray  # (n,) int32
    language_level: np.ndarray  # (n,) int8 index into LANGUAGE_LEVELS at entry, -1
    grounds_at_entry: np.ndarray  # (n,) int8 index into GROUNDS, -1
    truth: dict[str, Any] = field(default_factory=dict)


def simulate(people: People, params: Parameters, rngs: dict[str, np.random.Generator],
             clients_per_year: int, progress: Callable[[str], None] | None = None) -> Panel:
    n, T = people.n, QUARTERS
    rng = rngs["panel"]
    rng_sel = rngs["selection"]
    imm = people.immigrant
    female = people.female
    birth = people.birth.astype(np.float64)
    imm_day = np.where(imm, people.immigration, 0).astype(np.float64)

    resident = (people.move_in[:, None] <= Q_END[None, :]) & (people.res_end[:, None] > Q_END[None, :])
    # quarter by person while simulating (a quarter's column is then contiguous: written at once),
    # person by quarter in the Panel
    in_panel = np.zeros((T, n), dtype=bool)
    code = np.zeros((T, n), dtype=np.int8)
    code0 = np.zeros((T, n), dtype=np.int8)
    earnings = np.zeros((T, n), dtype=np.float32)
    earnings0 = np.zeros((T, n), dtype=np.float32)

    g1 = people.grounds[:, 0].astype(np.int64)  # -1 -> _GROUNDS_LOGIT[-1] = 0
    foreign = np.array([-0.3, 0.0, 0.4])[people.foreign_education]
    static_logit = (params.employment_intercept + params.employment_ability * people.ability
                    - 0.1 * female
                    + np.where(imm, foreign + _LANG_LOGIT[people.language] + _GROUNDS_LOGIT[g1]
                               - 0.4 * (female & (people.children > 0)), 0.0))
    static_wage = (params.earnings_log_base + people.wage_effect + 0.25 * people.ability - 0.15 * female
                   + np.where(imm, -0.3 + 0.15 * (people.foreign_education == 2), 0.0))
    young_children = female & (people.children > 0)

    entry = np.full(n, -1, dtype=np.int16)
    entry_day = np.full(n, NODATE, dtype=np.int32)
    language_level = np.full(n, -1, dtype=np.int8)
    grounds_at_entry = np.full(n, -1, dtype=np.int8)
    multiplier = np.zeros(n, dtype=np.float64)
    season = np.array(params.entry_season_weights, dtype=float)
    season = season / season.mean()
    quarter_targets = [clients_per_year / 4.0 * season[q % 4]
                       for q in range(QUARTERS - _time.PROGRAMME_START_QUARTER)]
    cum_target = np.concatenate([[0.0], np.cumsum(quarter_targets)])
    beta = params.selection_coefficients
    effect = np.array(params.effect_curve(range(0, params.effect_ramp_quarters + 1)))
    earn_effect = params.earnings_log_effect_max * np.minimum(
        np.arange(params.effect_ramp_quarters + 1) / params.effect_ramp_quarters, 1.0)
    sex_mult = np.array([params.effect_multiplier_sex["male"], params.effect_multiplier_sex["female"]])
    lang_mult = np.array([params.effect_multiplier_language_level[lv] for lv in LANGUAGE_LEVELS])
    selection_log: list[dict[str, Any]] = []

    U = rng.random(n)
    V = rng.random(n)
    E0_prev = np.zeros(n, dtype=bool)
    E1_prev = np.zeros(n, dtype=bool)
    lo_age, hi_age = params.entry_age_range
    levels: dict[int, np.ndarray] = {}
    for t in range(T):
        year = _time.START_YEAR + t // 4
        if progress is not None and t % 16 == 0:
            progress(f"life courses {year}")
        age = (Q_END[t] - birth) / DAYS_PER_YEAR
        panel_t = resident[:, t] & (age >= 15) & (age < 75)
        in_panel[t] = panel_t
        if year not in levels:
            levels[year] = people.level_by_year(year)
        level = levels[year]

        # 1. skills-centre entries at the start of quarter t
        if t >= _time.PROGRAMME_START_QUARTER:
            qstart = int(Q_START[t])
            age_start = (qstart - birth) / DAYS_PER_YEAR
            elig = np.flatnonzero(imm & in_panel[t - 1] & (imm_day < qstart) & (entry < 0)
                                  & (age_start >= lo_age) & (age_start < hi_age + 1))
            x = {}
            x["unemployed_quarters_8"] = (code[t - 8:t, elig] == UNEMPLOYED).sum(axis=0)
            x["log1p_earnings_4_per_1000"] = np.log1p(earnings[t - 4:t, elig].sum(axis=0) / 1000.0)
            if year - 1 not in levels:
                levels[year - 1] = people.level_by_year(year - 1)
            x["low_education"] = levels[year - 1][elig] < 3
            grounds_now = people.grounds_on(qstart - 1, elig)
            for g in ("family", "international_protection", "studies", "work"):
                x[f"grounds_{g}"] = grounds_now == GROUNDS.index(g)
            x["recent_immigration_5y"] = (qstart - imm_day[elig]) / DAYS_PER_YEAR < 5
            lang = people.language[elig]
            x["language_arabic_somali_farsi_kurdish"] = np.isin(lang, _HIGH_SELECTION_LANG)
            x["language_estonian_swedish_english"] = np.isin(lang, _LOW_SELECTION_LANG)
            x["age_minus_38_squared_per_100"] = (age_start[elig] - 38.0) ** 2 / 100.0
            x["female"] = female[elig]
            score = np.zeros(elig.size)
            for name, coef in beta.items():
                score += coef * x[name].astype(np.float64)
            # exactly k entries this quarter (cumulative rounding keeps each year at its
            # target), drawn without replacement with probability proportional to the odds
            # sigmoid(a + score) / (1 - sigmoid(a + score)) = exp(a + score): successive
            # sampling, so the inclusion probability depends on the observables only
            q = t - _time.PROGRAMME_START_QUARTER
            k = int(round(cum_target[q + 1]) - round(cum_target[q]))
            k = min(k, elig.size)
            alpha = _solve_intercept(score, k)
            p = _sigmoid(alpha + score)
            keys = rng_sel.exponential(size=elig.size) / np.exp(score - score.max(initial=0.0))
            picked = np.zeros(elig.size, dtype=bool)
            picked[np.argsort(keys, kind="stable")[:k]] = True
            chosen = elig[picked]
            entry[chosen] = t
            last = np.minimum(Q_END[t], people.res_end[chosen] - 1)
            entry_day[chosen] = _time.random_day_between(rng_sel, np.full(chosen.size, qstart), last)
            grounds_at_entry[chosen] = grounds_now[picked]
            yrs = (qstart - imm_day[chosen]) / DAYS_PER_YEAR
            lang_c = people.language[chosen]
            ll_score = (0.6 * people.ability[chosen] + 0.12 * np.minimum(yrs, 10)
                        + np.where(np.isin(lang_c, [LANG[c] for c in ("et", "sv", "en", "ru")]), 0.6, 0.0)
                        - np.where(np.isin(lang_c, _HIGH_SELECTION_LANG), 0.4, 0.0)
                        + 0.3 * (level[chosen] >= 3) + 0.3 * (people.foreign_education[chosen] - 1)
                        + 0.8 * rng_sel.standard_normal(chosen.size))
            language_level[chosen] = np.digitize(ll_score, [-0.3, 0.5, 1.2, 1.9])
            multiplier[chosen] = sex_mult[female[chosen].astype(int)] * lang_mult[language_level[chosen]]
            selection_log.append({
                "quarter": _time.QUARTER_LABELS[t], "eligible": int(elig.size),
                "target": k, "expected": round(float(p.sum()), 3),
                "entries": int(chosen.size), "intercept": round(float(alpha), 6)})

        # 2. employment under both paths with common random numbers, for the persons with a
        #    row this quarter (a); everybody else has no main activity and no earnings
        a = np.flatnonzero(panel_t)
        m = a.size
        keep = rng.random(m) < params.employment_persistence
        U[a] = np.where(keep, U[a], rng.random(m))
        keep_v = rng.random(m) < params.activity_persistence
        V[a] = np.where(keep_v, V[a], rng.random(m))
        eps = rng.standard_normal(m)
        frac = rng.random(m)
        odd = rng.random(m)

        age_a = age[a]
        imm_a = imm[a]
        level_a = level[a]
        yrs_fi = np.where(imm_a, np.maximum(Q_END[t] - imm_day[a], 0) / DAYS_PER_YEAR, 0.0)
        cycle = _CYCLE[year] + (0.3 if (year == 2020 and t % 4 == 0) else 0.0) + (0.05 if t % 4 == 2 else 0.0)
        catch_up = np.where(imm_a, params.immigrant_gap + params.immigrant_catch_up
                            * (1 - np.exp(-yrs_fi / params.immigrant_catch_up_years)), 0.0)
        lin = (static_logit[a] + np.interp(age_a, _AGE_KNOTS, _AGE_LOGIT) + _EDU_LOGIT[level_a]
               + catch_up + cycle)
        prev0 = E0_prev[a]  # employed last quarter (False when there was no row)
        prev1 = E1_prev[a]
        p0 = _sigmoid(lin + params.employment_state_dependence * prev0)
        p1 = _sigmoid(lin + params.employment_state_dependence * prev1)
        entry_a = entry[a].astype(np.int64)
        h = t - entry_a
        treated_now = (entry_a >= 0) & (h >= 0)
        hc = np.clip(h, 0, params.effect_ramp_quarters)
        tau = np.where(treated_now, effect[hc] * multiplier[a], 0.0)
        p1 = np.where(treated_now, np.maximum(p1, np.minimum(p1 + tau, params.effect_probability_cap)), p1)
        u_a = U[a]
        E0 = u_a < p0
        E1 = u_a < p1

        # 3. main activity of the non-employed (shared draw V) and earnings (shared noise)
        grounds_t = people.grounds_on(int(Q_END[t]), a)
        student = np.interp(age_a, [15, 19, 20, 25, 30, 35, 75], [.9, .85, .55, .25, .1, .03, .01])
        student = np.where(imm_a & (grounds_t == GROUNDS.index("studies")) & (yrs_fi < 4), 0.85, student)
        pension = np.interp(age_a, [15, 45, 50, 60, 62, 63, 75], [.02, .04, .1, .2, .4, .95, .99]) \
            + 0.08 * (people.wellbeing[a] < -1.3)
        other = (0.20 + 0.3 * (young_children[a] & (age_a >= 20) & (age_a <= 45))
                 + 0.2 * (imm_a & (yrs_fi < 2) & (grounds_t == GROUNDS.index("family"))))
        c1 = student
        c2 = c1 + (1 - student) * pension
        c3 = c2 + (1 - student) * (1 - pension) * np.minimum(other, 1.0)
        v_a = V[a]
        inactive = np.select([v_a < c1, v_a < c2, v_a < c3], [STUDENT, PENSIONER, OTHER],
                             UNEMPLOYED).astype(np.int8)
        code0[t, a] = np.where(E0, EMPLOYED, inactive)
        code[t, a] = np.where(E1, EMPLOYED, inactive)

        lw = (static_wage[a] + np.interp(age_a, _WAGE_AGE_KNOTS, _WAGE_AGE) + _EDU_LOG_WAGE[level_a]
              + 0.015 * (year - _time.START_YEAR) + params.earnings_noise_sd * eps
              + np.where(imm_a, 0.03 * np.minimum(yrs_fi, 10), 0.0))
        lw1 = lw + np.where(treated_now, earn_effect[hc], 0.0)
        scale = np.where(inactive == STUDENT, 0.4, 1.0) * np.where(age_a >= 63, 0.7, 1.0)
        odd_job = np.where((odd < 0.07) & ((inactive == UNEMPLOYED) | (inactive == STUDENT)),
                           200.0 + 1300.0 * frac, 0.0)
        new0 = np.where(prev0, 1.0, 0.3 + 0.7 * frac)
        new1 = np.where(prev1, 1.0, 0.3 + 0.7 * frac)
        earnings0[t, a] = np.round(np.where(E0, np.exp(lw) * new0 * scale, odd_job), 2)
        earnings[t, a] = np.round(np.where(E1, np.exp(lw1) * new1 * scale, odd_job), 2)
        E0_prev = np.zeros(n, dtype=bool)
        E1_prev = np.zeros(n, dtype=bool)
        E0_prev[a] = E0
        E1_prev[a] = E1

    if progress is not None:
        progress("planted truth")
    panel = Panel(resident=resident, in_panel=np.ascontiguousarray(in_panel.T), code=np.ascontiguousarray(code.T),
                  earnings=np.ascontiguousarray(earnings.T), entry=entry,
                  entry_day=entry_day, language_level=language_level,
                  grounds_at_entry=grounds_at_entry)
    panel.truth = _truth(people, panel, code0, earnings0, params, clients_per_year, selection_log)
    return panel


def _solve_intercept(score: np.ndarray, target: float) -> float:
    """The intercept a with sum(sigmoid(a + score)) = target (bisection on a monotone sum). Once
    the midpoint is an end of the interval, no later step can move either end: the steps left of
    the 80 are skipped (about a third of them), and the result is the same number."""
    if score.size == 0:
        return 0.0
    if target >= score.size:
        return 50.0
    lo, hi = -60.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        settled = mid == lo or mid == hi
        if _sigmoid(mid + score).sum() < target:
            lo = mid
        else:
            hi = mid
        if settled:
            break
    return 0.5 * (lo + hi)


def _truth(people: People, panel: Panel, code0: np.ndarray, earnings0: np.ndarray,
           params: Parameters, clients_per_year: int, selection_log: list[dict[str, Any]]) -> dict[str, Any]:
    """The planted truth; `code0` and `earnings0` (the clients' outcomes without entry) are
    quarter by person."""
    T = QUARTERS
    clients = np.flatnonzero(panel.entry >= 0)
    entry = panel.entry[clients].astype(np.int64)
    hs = np.array(HORIZONS)
    tt = entry[:, None] + hs[None, :]  # (clients, horizons)
    inside = (tt >= 0) & (tt < T)
    tc = np.clip(tt, 0, T - 1)
    rows = clients[:, None]
    observed = inside & panel.in_panel[rows, tc]
    e1 = (panel.code[rows, tc] == EMPLOYED).astype(np.float64)
    e0 = (code0[tc, rows] == EMPLOYED).astype(np.float64)
    y1 = panel.earnings[rows, tc].astype(np.float64)
    y0 = earnings0[tc, rows].astype(np.float64)

    def curves(mask: np.ndarray) -> dict[str, list]:
        obs = observed & mask[:, None]
        count = obs.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            emp = np.where(count > 0, ((e1 - e0) * obs).sum(axis=0) / np.maximum(count, 1), np.nan)
            earn = np.where(count > 0, ((y1 - y0) * obs).sum(axis=0) / np.maximum(count, 1), np.nan)
            emp1 = np.where(count > 0, (e1 * obs).sum(axis=0) / np.maximum(count, 1), np.nan)
            emp0 = np.where(count > 0, (e0 * obs).sum(axis=0) / np.maximum(count, 1), np.nan)
        return {"n": count.astype(int).tolist(), "employment": _round(emp), "earnings": _round(earn, 2),
                "employment_treated": _round(emp1), "employment_untreated": _round(emp0)}

    overall = curves(np.ones(clients.size, dtype=bool))
    sex = people.female[clients]
    by_sex = {"male": curves(~sex), "female": curves(sex)}
    ge = panel.grounds_at_entry[clients]
    by_grounds = {g: curves(ge == i) for i, g in enumerate(GROUNDS) if (ge == i).any()}
    ll = panel.language_level[clients]
    by_level = {lv: curves(ll == i) for i, lv in enumerate(LANGUAGE_LEVELS) if (ll == i).any()}

    # naive comparison: clients' observed outcome at entry + h against the mean of never-client
    # immigrants aged 18-64 living in Espoo in the same calendar quarter
    never = people.immigrant & (panel.entry < 0)
    age_end = (Q_END[None, :] - people.birth[:, None].astype(np.float64)) / DAYS_PER_YEAR
    comp = panel.in_panel & never[:, None] & (age_end >= 18) & (age_end < 65)
    del age_end
    comp_n = comp.sum(axis=0)
    comp_emp = ((panel.code == EMPLOYED) & comp).sum(axis=0) / np.maximum(comp_n, 1)
    comp_earn = (panel.earnings * comp).sum(axis=0) / np.maximum(comp_n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cnt = observed.sum(axis=0)
        naive_emp = ((e1 - comp_emp[tc]) * observed).sum(axis=0) / np.maximum(cnt, 1)
        naive_earn = ((y1 - comp_earn[tc]) * observed).sum(axis=0) / np.maximum(cnt, 1)
    naive_emp = np.where(cnt > 0, naive_emp, np.nan)
    naive_earn = np.where(cnt > 0, naive_earn, np.nan)

    years = _time.START_YEAR + entry // 4
    per_year = {str(y): int((years == y).sum()) for y in range(2019, _time.END_YEAR + 1)}
    plateau = [i for i, h in enumerate(HORIZONS) if 8 <= h <= 12]
    return {
        "clients": {
            "total": int(clients.size), "target_per_year": clients_per_year, "per_year": per_year,
            "per_quarter": {e["quarter"]: e["entries"] for e in selection_log},
            "selection_by_quarter": selection_log,
        },
        "att": {"horizons": HORIZONS, **overall,
                "plateau_h8_h12": {
                    "employment": _round(np.nanmean(np.array(overall["employment"], dtype=float)[plateau])),
                    "earnings": _round(np.nanmean(np.array(overall["earnings"], dtype=float)[plateau]), 2)}},
        "att_by_subgroup": {"sex": by_sex, "permit_grounds": by_grounds, "language_level": by_level},
        "naive_difference": {
            "definition": "mean over clients observed at entry quarter + h of (observed outcome "
                          "minus the mean outcome of never-client immigrants aged 18-64 living "
                          "in Espoo in the same calendar quarter)",
            "horizons": HORIZONS, "employment": _round(naive_emp), "earnings": _round(naive_earn, 2),
        },
        "countries": COUNTRIES,
    }


def _round(values: np.ndarray | list | float, digits: int = 6):
    if np.ndim(values) == 0:
        v = float(values)
        return None if v != v else round(v, digits)
    out = []
    for v in np.asarray(values, dtype=float).tolist():
        out.append(None if v != v else round(v, digits))
    return out
