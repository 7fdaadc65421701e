"""Person-level generation: who lives in Espoo in 2009-2024, with origin, dates, latent traits.

Everything here is vectorised over persons. Dates are int32 day numbers (see _time); NODATE
marks a missing date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safepool.synth import _hetu, _time
from safepool.synth._names import LANG
from safepool.synth._time import DAYS_PER_YEAR, NODATE, WINDOW_END, WINDOW_START
from safepool.synth.params import Parameters

COUNTRIES = ["FIN", "EST", "RUS", "IRQ", "SOM", "CHN", "IND", "AFG", "SYR", "IRN", "UKR", "VNM",
             "PHL", "TUR", "GBR", "USA", "SWE", "THA", "NPL"]
C = {code: i for i, code in enumerate(COUNTRIES)}
EU = np.array([C["EST"], C["SWE"]])
GROUNDS = ["work", "studies", "family", "international_protection", "other"]
G = {g: i for i, g in enumerate(GROUNDS)}

# immigration-country weights by period of immigration: before 2015, 2015-2021, 2022-
_W_EARLY = {"EST": .18, "RUS": .17, "IRQ": .06, "SOM": .07, "CHN": .07, "IND": .07, "AFG": .03,
            "SYR": .01, "IRN": .04, "UKR": .03, "VNM": .05, "PHL": .03, "TUR": .04, "GBR": .04,
            "USA": .03, "SWE": .04, "THA": .03, "NPL": .03}
_W_MID = {"EST": .12, "RUS": .10, "IRQ": .12, "SOM": .04, "CHN": .07, "IND": .11, "AFG": .06,
          "SYR": .07, "IRN": .05, "UKR": .04, "VNM": .05, "PHL": .04, "TUR": .03, "GBR": .03,
          "USA": .02, "SWE": .02, "THA": .02, "NPL": .05}
_W_LATE = {k: v * 0.75 for k, v in _W_MID.items()} | {"UKR": 0.25}

_LANGUAGE_OF = {
    "EST": {"et": .85, "ru": .15}, "RUS": {"ru": 1.0}, "IRQ": {"ar": .65, "ku": .35},
    "SOM": {"so": 1.0}, "CHN": {"zh": 1.0}, "IND": {"en": .35, "other": .65},
    "AFG": {"fa": .9, "other": .1}, "SYR": {"ar": .85, "ku": .15}, "IRN": {"fa": .8, "ku": .2},
    "UKR": {"other": .6, "ru": .4}, "VNM": {"other": 1.0}, "PHL": {"en": .4, "other": .6},
    "TUR": {"other": .7, "ku": .3}, "GBR": {"en": 1.0}, "USA": {"en": 1.0}, "SWE": {"sv": 1.0},
    "THA": {"other": 1.0}, "NPL": {"other": 1.0},
}
# grounds probabilities (work, studies, family, international_protection, other)
_GROUNDS_OF = {
    "EST": (.60, .05, .25, 0, .10), "RUS": (.35, .15, .40, 0, .10), "IRQ": (.05, .02, .33, .57, .03),
    "SOM": (.02, .01, .40, .55, .02), "CHN": (.40, .35, .20, 0, .05), "IND": (.60, .20, .17, 0, .03),
    "AFG": (.03, .02, .30, .62, .03), "SYR": (.03, .02, .30, .63, .02), "IRN": (.25, .25, .30, .15, .05),
    "UKR": (.50, .10, .30, 0, .10), "VNM": (.35, .30, .30, 0, .05), "PHL": (.55, .10, .30, 0, .05),
    "TUR": (.30, .15, .40, .10, .05), "GBR": (.45, .10, .40, 0, .05), "USA": (.45, .10, .40, 0, .05),
    "SWE": (.50, .10, .30, 0, .10), "THA": (.20, .10, .65, 0, .05), "NPL": (.55, .25, .17, 0, .03),
}
_UKR_2022 = (.10, .02, .08, .78, .02)
# latent foreign education level by country (shift of a standard normal score)
_FOREIGN_EDUCATION_SHIFT = {
    "EST": .2, "RUS": .5, "IRQ": -.3, "SOM": -.8, "CHN": .6, "IND": .7, "AFG": -.8, "SYR": -.2,
    "IRN": .5, "UKR": .5, "VNM": -.1, "PHL": .1, "TUR": -.1, "GBR": .6, "USA": .6, "SWE": .5,
    "THA": -.4, "NPL": .0,
}
# native languages counted as language groups in the models
LANG_EMPLOYMENT = {"fi": 0.0, "sv": 0.6, "ru": 0.0, "et": 0.5, "ar": -0.5, "so": -0.7, "en": 0.4,
                   "fa": -0.3, "ku": -0.4, "zh": 0.1, "other": 0.0}

NATIVE_RESIDENT, NATIVE_MOVER, BORN, IMMIGRANT = 0, 1, 2, 3


@dataclass
class People:
    n: int
    category: np.ndarray  # int8
    immigrant: np.ndarray  # bool
    female: np.ndarray  # bool
    birth: np.ndarray  # int32 day
    move_in: np.ndarray  # int32 day the person moved into Espoo (birth for the Espoo-born)
    move_out: np.ndarray  # int32 or NODATE
    death: np.ndarray  # int32 or NODATE (deaths up to 2024-12-31 only)
    res_end: np.ndarray  # first day not living in Espoo (WINDOW_END if still there)
    immigration: np.ndarray  # int32 or NODATE
    country: np.ndarray  # int16 index into COUNTRIES
    citizenship: np.ndarray  # int16 index into COUNTRIES
    language: np.ndarray  # int8 index into LANGUAGES
    marital: np.ndarray  # int8 code 1 unmarried, 2 married, 4 divorced, 5 widowed
    children: np.ndarray  # int8
    ability: np.ndarray  # float32 latent
    wellbeing: np.ndarray  # float32 latent
    foreign_education: np.ndarray  # int8 latent 0 low 1 medium 2 high (immigrants only)
    wage_effect: np.ndarray  # float32 person effect on log earnings
    pension: np.ndarray  # float32 monthly pension when retired
    degree_level: np.ndarray  # (n, 4) int8, 0 = no degree in the slot
    degree_year: np.ndarray  # (n, 4) int16, 9999 = none
    degree_field: np.ndarray  # (n, 4) int8 index into FIELDS
    grounds: np.ndarray  # (n, 3) int8 per permit span (immigrants), -1 none
    permit_start: np.ndarray  # (n, 3) int32, NODATE = no such span
    permit_end: np.ndarray  # (n, 3) int32 last valid day, NODATE = open ended
    permit_kind: np.ndarray  # (n, 3) int8 index into PERMIT_KINDS
    hetu_sign: np.ndarray  # uint8 ASCII
    hetu_number: np.ndarray  # int32 individual number
    hetu_check: np.ndarray  # int32 index into the check characters

    def level_by_year(self, year: int) -> np.ndarray:
        """Highest registered degree level with completion year <= year (0 = none)."""
        done = np.where(self.degree_year <= year, self.degree_level, 0)
        return np.maximum.reduce([done[:, slot] for slot in range(done.shape[1])])  # max(axis=1), faster

    def grounds_on(self, day: int, persons: np.ndarray | None = None) -> np.ndarray:
        """Grounds (index into GROUNDS) of the permit valid on `day` of everybody (or of `persons`:
        found for everybody and then picked, cheaper than picking three matrices); -1 if none."""
        valid = (self.permit_start <= day) & (self.permit_end >= day)  # NODATE = open ended
        out = np.full(self.n, -1, dtype=np.int8)
        for k in range(self.grounds.shape[1] - 1, -1, -1):  # three spans, earliest wins ties
            out = np.where(valid[:, k], self.grounds[:, k], out)
        return out if persons is None else out[persons]


PERMIT_KINDS = ["A", "B", "P", "EU"]
FIELDS = ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix (rows need not be normalised): the number
    of cumulative probabilities below a uniform draw on the row's total. Column by column: numpy's
    cumsum and sum along an axis of a few elements are several times slower (same sums, same order)."""
    k = probs.shape[1]
    cum = np.empty(probs.shape, dtype=probs.dtype, order="F")
    cum[:, 0] = probs[:, 0]
    for j in range(1, k):
        np.add(cum[:, j - 1], probs[:, j], out=cum[:, j])
    u = rng.random(probs.shape[0]) * cum[:, -1]
    below = np.zeros(probs.shape[0], dtype=np.int64)
    for j in range(k):
        below += cum[:, j] < u
    return np.minimum(below, k - 1)


def _choice(rng: np.random.Generator, n: int, weights: dict[str, float], index: dict[str, int]) -> np.ndarray:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    draw = rng.choice(len(keys), size=n, p=p / p.sum())
    return np.array([index[k] for k in keys])[draw]


def _years(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return lo + (hi - lo) * rng.random(n)


def make_people(rngs: dict[str, np.random.Generator], n: int, params: Parameters) -> People:
    rng = rngs["people"]
    shares = np.array([params.share_native_resident, params.share_native_mover,
                       params.share_born, params.share_immigrant])
    counts = np.floor(shares / shares.sum() * n).astype(int)
    counts[0] += n - counts.sum()
    category = np.repeat(np.arange(4, dtype=np.int8), counts)
    rng.shuffle(category)
    female = rng.random(n) < 0.505
    immigrant = category == IMMIGRANT

    birth = np.zeros(n, dtype=np.int64)
    move_in = np.zeros(n, dtype=np.int64)
    immigration = np.full(n, NODATE, dtype=np.int64)

    # native residents on 2009-01-01: an age pyramid of a young city
    idx = np.flatnonzero(category == NATIVE_RESIDENT)
    age_bins = np.array([0, 20, 45, 65, 80, 98])
    dens = np.array([1.2, 1.3, 1.05, 0.55, 0.2]) * np.diff(age_bins)
    b = rng.choice(5, size=idx.size, p=dens / dens.sum())
    age = age_bins[b] + rng.random(idx.size) * (age_bins[b + 1] - age_bins[b])
    birth[idx] = WINDOW_START - np.round(age * DAYS_PER_YEAR).astype(np.int64) - 1
    born_here = rng.random(idx.size) < 0.45
    move_in[idx] = np.where(
        born_here, birth[idx],
        birth[idx] + np.floor(rng.random(idx.size) * (WINDOW_START - birth[idx])).astype(np.int64))

    # native movers: arrive during the window, mostly young adults and families
    idx = np.flatnonzero(category == NATIVE_MOVER)
    move_in[idx] = WINDOW_START + np.floor(rng.random(idx.size) * (WINDOW_END - WINDOW_START))
    group = rng.choice(3, size=idx.size, p=[0.2, 0.6, 0.2])
    age = np.select([group == 0, group == 1], [_years(rng, idx.size, 0, 16), _years(rng, idx.size, 18, 36)],
                    _years(rng, idx.size, 36, 80))
    birth[idx] = move_in[idx] - np.round(age * DAYS_PER_YEAR).astype(np.int64)

    # born in Espoo during the window
    idx = np.flatnonzero(category == BORN)
    birth[idx] = WINDOW_START + np.floor(rng.random(idx.size) * (WINDOW_END - WINDOW_START))
    move_in[idx] = birth[idx]

    # immigrants: immigration 1990-2024, more in recent years
    idx = np.flatnonzero(immigrant)
    years = np.arange(1990, 2025)
    w = np.exp(0.07 * (years - 1990)) * np.where((years >= 2015) & (years <= 2016), 1.4, 1.0) \
        * np.where(years >= 2022, 1.2, 1.0)
    imm_year = rng.choice(years, size=idx.size, p=w / w.sum())
    imm = np.array([_time.day(int(y)) for y in years])[imm_year - 1990] \
        + np.floor(rng.random(idx.size) * 365).astype(np.int64)
    immigration[idx] = imm
    group = rng.choice(3, size=idx.size, p=[0.15, 0.75, 0.10])
    age_imm = np.select([group == 0, group == 1], [_years(rng, idx.size, 0, 16), _years(rng, idx.size, 18, 45)],
                        _years(rng, idx.size, 45, 65))
    birth[idx] = imm - np.round(age_imm * DAYS_PER_YEAR).astype(np.int64)
    before = imm < WINDOW_START
    resident_at_start = before & (rng.random(idx.size) < 0.55)
    delay = np.where(rng.random(idx.size) < 0.5, 0, rng.random(idx.size))
    mi = np.where(
        resident_at_start, imm + np.floor(delay * (WINDOW_START - imm)),
        np.where(before, WINDOW_START + np.floor(rng.random(idx.size) * (WINDOW_END - WINDOW_START)),
                 imm + np.where(rng.random(idx.size) < 0.7, 0,
                                np.floor(rng.random(idx.size) * 3 * DAYS_PER_YEAR))))
    mi = np.where(mi >= WINDOW_END, imm, mi)
    move_in[idx] = mi

    birth = birth.astype(np.int32)
    move_in = np.maximum(move_in, birth).astype(np.int32)
    birth_year = _time.year_of(birth)

    # country, language, citizenship
    country = np.full(n, C["FIN"], dtype=np.int16)
    imm_year_all = np.where(immigrant, _time.year_of(np.minimum(immigration, WINDOW_END)), 0)
    for lo, hi, weights in ((0, 2015, _W_EARLY), (2015, 2022, _W_MID), (2022, 9999, _W_LATE)):
        sel = np.flatnonzero(immigrant & (imm_year_all >= lo) & (imm_year_all < hi))
        country[sel] = _choice(rng, sel.size, weights, C)
    language = np.full(n, LANG["fi"], dtype=np.int8)
    natives = np.flatnonzero(~immigrant & (category != BORN))
    language[natives] = _choice(rng, natives.size, {"fi": .905, "sv": .08, "ru": .005, "en": .005,
                                                    "other": .005}, LANG)
    born = np.flatnonzero(category == BORN)
    language[born] = _choice(rng, born.size, {"fi": .78, "sv": .07, "ru": .03, "et": .03, "ar": .03,
                                              "so": .02, "en": .01, "fa": .01, "ku": .005, "zh": .005,
                                              "other": .02}, LANG)
    for code, langs in _LANGUAGE_OF.items():
        sel = np.flatnonzero(country == C[code])
        if sel.size:
            language[sel] = _choice(rng, sel.size, langs, LANG)

    # residence in Espoo: death (Gompertz) and moving out (exponential) from the start
    start = np.maximum(move_in, WINDOW_START).astype(np.int64)
    age0 = (start - birth) / DAYS_PER_YEAR
    a_g, b_g = np.exp(-10.6), 0.095
    e = rng.exponential(size=n)
    death_age = np.log(np.exp(b_g * age0) + e * b_g / a_g) / b_g
    death = birth + np.round(death_age * DAYS_PER_YEAR).astype(np.int64)
    death = np.where(death < WINDOW_END, np.maximum(death, start + 1), NODATE)
    rate = np.select([age0 < 18, age0 < 35, age0 < 65], [0.03, 0.07, 0.035], 0.015)
    rate = rate * np.where(immigrant, 1.3, 1.0)
    move_out = start + 30 + np.round(rng.exponential(size=n) / rate * DAYS_PER_YEAR).astype(np.int64)
    move_out = np.where((move_out < WINDOW_END) & (move_out < death), move_out, NODATE)
    res_end = np.minimum(np.minimum(move_out, death), WINDOW_END)

    # latent traits
    ability = rng.standard_normal(n).astype(np.float32)
    wellbeing = (0.3 * ability + np.sqrt(0.91) * rng.standard_normal(n)).astype(np.float32)
    shift = np.array([_FOREIGN_EDUCATION_SHIFT.get(c, 0.0) for c in COUNTRIES])[country]
    score = 0.8 * ability + shift + rng.standard_normal(n)
    foreign_education = np.where(immigrant, np.digitize(score, [-0.6, 0.7]), 0).astype(np.int8)
    wage_effect = (0.25 * rng.standard_normal(n)).astype(np.float32)
    pension = (np.exp(7.35 + 0.2 * ability + 0.25 * rng.standard_normal(n))
               * np.where(immigrant, 0.6, 1.0)).astype(np.float32)

    # snapshot at extraction: citizenship, marital status, children
    snap = np.minimum(res_end, WINDOW_END - 1).astype(np.int64)
    snap_age = (snap - birth) / DAYS_PER_YEAR
    years_in_fi = np.where(immigrant, (snap - np.minimum(immigration, snap)) / DAYS_PER_YEAR, 0)
    naturalised = immigrant & (rng.random(n) < np.clip(0.5 * (1 - np.exp(-(years_in_fi - 5) / 8)), 0, 1)
                               * np.where(np.isin(country, EU), 0.3, 1.0))
    citizenship = np.where(immigrant & ~naturalised, country, C["FIN"]).astype(np.int16)
    u = rng.random(n)
    p_married = np.clip((snap_age - 20) / 15, 0, 1) * 0.55
    p_divorced = np.clip((snap_age - 30) / 20, 0, 1) * 0.13
    p_widowed = np.clip((snap_age - 65) / 25, 0, 1) * np.where(female, 0.45, 0.2)
    marital = np.select([u < p_married, u < p_married + p_divorced, u < p_married + p_divorced + p_widowed],
                        [2, 4, 5], 1).astype(np.int8)
    high_fertility = np.isin(country, [C["SOM"], C["AFG"], C["IRQ"], C["SYR"]])
    mean_children = np.clip((snap_age - 20) / 18, 0, 1) * (1.7 + 1.0 * high_fertility) \
        * np.where(marital == 2, 1.2, 0.7)
    children = np.minimum(rng.poisson(mean_children), 9).astype(np.int8)
    children = np.where(snap_age < 17, 0, children).astype(np.int8)

    # registered (Finnish) degrees: slots for level 3, level 5/6, level 7, level 8
    degree_level = np.zeros((n, 4), dtype=np.int8)
    degree_year = np.full((n, 4), 9999, dtype=np.int16)
    degree_field = np.zeros((n, 4), dtype=np.int8)
    imm_age = np.where(immigrant, (np.minimum(immigration, WINDOW_END) - birth) / DAYS_PER_YEAR, 0)
    school_here = ~immigrant | (imm_age < 16)
    lin3 = np.where(birth_year < 1950, 0.6, 2.2) + 0.8 * ability - np.where(immigrant, 1.0, 0.0)
    y3 = birth_year + 19 + rng.integers(0, 3, n)
    has3 = school_here & (rng.random(n) < 1 / (1 + np.exp(-lin3)))
    has_t = has3 & (rng.random(n) < 1 / (1 + np.exp(-(-0.3 + 1.0 * ability + 0.01 * (birth_year - 1960)))))
    short_cycle = has_t & (birth_year < 1975) & (rng.random(n) < 0.3)
    yt = y3 + rng.integers(3, 7, n)
    has7 = has_t & ~short_cycle & (rng.random(n) < 1 / (1 + np.exp(-(-0.2 + 0.8 * ability))))
    y7 = yt + rng.integers(2, 4, n)
    has8 = has7 & (rng.random(n) < 0.07)
    y8 = y7 + rng.integers(4, 9, n)
    # adult immigrants: some take a Finnish degree a few years after arriving
    adult_degree = immigrant & ~school_here & (imm_age < 40) & (rng.random(n) < 0.22)
    ad_level = rng.choice(np.array([3, 6, 7]), size=n, p=[0.6, 0.3, 0.1])
    ad_year = _time.year_of(np.minimum(immigration, WINDOW_END)) + rng.integers(2, 7, n)
    has3 |= adult_degree & (ad_level == 3)
    y3 = np.where(adult_degree & (ad_level == 3), ad_year, y3)
    has_t |= adult_degree & (ad_level == 6)
    yt = np.where(adult_degree & (ad_level == 6), ad_year, yt)
    has7 |= adult_degree & (ad_level == 7)
    y7 = np.where(adult_degree & (ad_level == 7), ad_year, y7)
    alive_until = _time.year_of(np.minimum(death, WINDOW_END - 1))
    for k, (has, year, level) in enumerate((
            (has3, y3, np.full(n, 3)), (has_t, yt, np.where(short_cycle, 5, 6)),
            (has7, y7, np.full(n, 7)), (has8, y8, np.full(n, 8)))):
        keep = has & (year <= min(2024, 9998)) & (year <= alive_until)
        degree_level[:, k] = np.where(keep, level, 0)
        degree_year[:, k] = np.where(keep, year, 9999)
    general = rng.random(n) < 0.5
    degree_field[:, 0] = np.where(general, 0, rng.choice(np.array([2, 4, 6, 7, 8, 9, 10]), size=n,
                                                          p=[.08, .2, .1, .3, .05, .17, .1]))
    for k in (1, 2, 3):
        degree_field[:, k] = rng.choice(np.arange(1, 11), size=n,
                                        p=[.07, .1, .12, .2, .07, .1, .17, .02, .12, .03])
    degree_field[:, 2] = np.where(rng.random(n) < 0.7, degree_field[:, 1], degree_field[:, 2])

    # residence permits: up to three spans per immigrant
    grounds = np.full((n, 3), -1, dtype=np.int8)
    permit_start = np.full((n, 3), NODATE, dtype=np.int32)
    permit_end = np.full((n, 3), NODATE, dtype=np.int32)
    permit_kind = np.zeros((n, 3), dtype=np.int8)
    g1 = np.full(n, -1, dtype=np.int64)
    for code, probs in _GROUNDS_OF.items():
        sel = np.flatnonzero(immigrant & (country == C[code]))
        if sel.size:
            p = np.tile(np.array(probs, dtype=float), (sel.size, 1))
            if code == "UKR":
                p[imm_year_all[sel] >= 2022] = _UKR_2022
            g1[sel] = _categorical(rng, p)
    child = immigrant & (imm_age < 18)
    protection_country = np.isin(country, [C[c] for c, p in _GROUNDS_OF.items() if p[3] > 0.2])
    g1 = np.where(child, np.where(rng.random(n) < 0.85, G["family"],
                                  np.where(protection_country, G["international_protection"],
                                           G["family"])), g1)
    g2 = np.where((g1 == G["studies"]) & (rng.random(n) < 0.5), G["work"], g1)
    eu = immigrant & np.isin(country, EU)
    imm32 = np.where(immigrant, immigration, NODATE)
    end1 = imm32 + np.round(_years(rng, n, 1, 4) * DAYS_PER_YEAR).astype(np.int64)
    end2 = end1 + np.round(_years(rng, n, 1, 4) * DAYS_PER_YEAR).astype(np.int64)
    limit = np.minimum(death, WINDOW_END)
    has1 = immigrant
    has2 = immigrant & ~eu & (end1 < limit)
    has3p = has2 & (end2 < limit)
    grounds[:, 0] = np.where(has1, g1, -1)
    grounds[:, 1] = np.where(has2, g2, -1)
    grounds[:, 2] = np.where(has3p, g2, -1)
    permit_start[:, 0] = np.where(has1, imm32, NODATE)
    permit_start[:, 1] = np.where(has2, end1, NODATE)
    permit_start[:, 2] = np.where(has3p, end2, NODATE)
    # end = the last day the permit is valid (the next permit starts the day after); a
    # temporary permit's end may lie after the extraction
    permit_end[:, 0] = np.where(has1 & ~eu, end1 - 1, NODATE)
    permit_end[:, 1] = np.where(has2, end2 - 1, NODATE)
    permit_kind[:, 0] = np.where(eu, 3, np.where(g1 == G["studies"], 1, 0))
    permit_kind[:, 1] = 0
    permit_kind[:, 2] = 2

    # identity codes
    sign = _hetu.century_signs(rng, birth_year, params.new_century_sign_share)
    number = _hetu.unique_individual_numbers(rng, birth, female)
    check = _hetu.check_index(birth, number)

    return People(
        n=n, category=category, immigrant=immigrant, female=female, birth=birth,
        move_in=move_in, move_out=move_out.astype(np.int32), death=death.astype(np.int32),
        res_end=res_end.astype(np.int32), immigration=immigration.astype(np.int32),
        country=country, citizenship=citizenship, language=language, marital=marital,
        children=children, ability=ability, wellbeing=wellbeing,
        foreign_education=foreign_education, wage_effect=wage_effect, pension=pension,
        degree_level=degree_level, degree_year=degree_year, degree_field=degree_field,
        grounds=grounds, permit_start=permit_start, permit_end=permit_end,
        permit_kind=permit_kind, hetu_sign=sign, hetu_number=number, hetu_check=check,
    )
