"""The registers, derived from the people and their (observed) quarterly life courses.

Each builder returns a RawTable: the holder's columns without the identity column, the person
index of each row and a day per row (used to place temporary identity codes in time). The
identity codes and their faults are added by _faults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from safepool.synth import _hetu, _names, _time
from safepool.synth._catalogue import holder_columns
from safepool.synth._panel import EMPLOYED, LANGUAGE_LEVELS, PENSIONER, STUDENT, UNEMPLOYED, Panel
from safepool.synth._people import COUNTRIES, FIELDS, GROUNDS, PERMIT_KINDS, People, _categorical
from safepool.synth._sort import stable_order
from safepool.synth._time import (DAYS_PER_YEAR, M_START, MONTH_YYYYMM, NODATE, Q_END, Q_START,
                                  WINDOW_END, YEARS)


@dataclass
class RawTable:
    name: str
    columns: dict[str, pa.Array]
    person: np.ndarray  # int32 person index per row
    day: np.ndarray  # int32 day per row (when the row happened)


def _dates(days: np.ndarray) -> pa.Array:
    days = np.asarray(days)
    mask = days == NODATE
    return pa.array(np.where(mask, 0, days).astype(np.int32), type=pa.date32(), mask=mask)


def _labels(labels: list[str], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    out = _hetu.take_strings(pa.array(labels, type=pa.string()), np.asarray(index, dtype=np.int32))
    if mask is not None and mask.any():
        out = pc.if_else(pa.array(~mask), out, pa.scalar(None, pa.string()))
    return out


def _money(values: np.ndarray) -> pa.Array:
    return pa.array(np.round(np.asarray(values, dtype=np.float64), 2), type=pa.float64())


def _check(name: str, columns: dict[str, pa.Array]) -> None:
    expected = holder_columns(name)[1:]
    if list(columns) != expected:
        raise RuntimeError(f"register {name}: columns {list(columns)} differ from the catalogue {expected}")


# ---------------------------------------------------------------------------------------------
# population (DVV)


def population(people: People, rng: np.random.Generator, links: dict[str, pa.Array]) -> RawTable:
    """`links`: the district and the parents' identity codes (suuralue, aidin_henkilotunnus,
    isan_henkilotunnus), drawn apart from the rest (see _family)."""
    n = people.n
    langs = _names.LANGUAGES
    first_flat: list[str] = []
    first_off = np.zeros((len(langs), 2), dtype=np.int64)
    first_cnt = np.zeros((len(langs), 2), dtype=np.int64)
    for li, lang in enumerate(langs):
        for si, table in enumerate((_names.FIRST_MALE, _names.FIRST_FEMALE)):
            first_off[li, si] = len(first_flat)
            first_cnt[li, si] = len(table[lang])
            first_flat.extend(table[lang])
    fam_flat: list[str] = []
    fam_off = np.zeros(len(langs), dtype=np.int64)
    fam_cnt = np.zeros(len(langs), dtype=np.int64)
    for li, lang in enumerate(langs):
        fam_off[li] = len(fam_flat)
        fam_cnt[li] = len(_names.FAMILY[lang])
        fam_flat.extend(_names.FAMILY[lang])
    lang = people.language.astype(np.int64)
    # a few of the foreign-language born in Finland and of the naturalised carry Finnish names
    name_lang = np.where(rng.random(n) < 0.1, _names.LANG["fi"], lang)
    sex = people.female.astype(np.int64)
    fi = first_off[name_lang, sex] + np.floor(rng.random(n) * first_cnt[name_lang, sex]).astype(np.int64)
    fa = fam_off[name_lang] + np.floor(rng.random(n) * fam_cnt[name_lang]).astype(np.int64)
    first = pa.array(first_flat).take(pa.array(fi))
    family = pa.array(fam_flat).take(pa.array(fa))

    stem = pa.array(_names.STREET_STEMS).take(pa.array(rng.integers(0, len(_names.STREET_STEMS), n)))
    suffix = pa.array(_names.STREET_SUFFIXES).take(
        pa.array(rng.integers(0, len(_names.STREET_SUFFIXES), n)))
    street = pc.binary_join_element_wise(stem, suffix, "")
    number = pa.array(rng.integers(1, 121, n)).cast(pa.string())
    letter = pa.array(list("ABCDEF")).take(pa.array(rng.integers(0, 6, n)))
    flat = pa.array(rng.integers(1, 61, n)).cast(pa.string())
    with_stair = pc.binary_join_element_wise(street, number, letter, flat, " ")
    house = pc.binary_join_element_wise(street, number, " ")
    address = pc.if_else(pa.array(rng.random(n) < 0.75), with_stair, house)

    country_of_birth = np.where(people.immigrant, people.country, COUNTRIES.index("FIN"))
    move_out = people.move_out
    columns = {
        "etunimi": first,
        "sukunimi": family,
        "lahiosoite": address,
        "syntymapaiva": _dates(people.birth),
        "sukupuoli": pa.array(np.where(people.female, 2, 1).astype(np.int32)),
        "aidinkieli": _labels(langs, people.language),
        "syntymamaa": _labels(COUNTRIES, country_of_birth),
        "kansalaisuus": _labels(COUNTRIES, people.citizenship),
        "maahanmuuttopaiva": _dates(people.immigration),
        "kotikuntaan_muuttopaiva": _dates(people.move_in),
        "poismuuttopaiva": _dates(move_out),
        "siviilisaaty": pa.array(people.marital.astype(np.int32)),
        "lasten_lkm": pa.array(people.children.astype(np.int32)),
        "kuolinpaiva": _dates(people.death),
        **links,
    }
    _check("population", columns)
    return RawTable("population", columns, np.arange(n, dtype=np.int32), people.move_in.copy())


# ---------------------------------------------------------------------------------------------
# residence permits (Migri)


def residence_permits(people: People) -> RawTable:
    start = people.permit_start
    present = (start != NODATE) & (start < WINDOW_END)
    person, span = np.nonzero(present)
    columns = {
        "luvan_peruste": _labels(GROUNDS, people.grounds[person, span]),
        "luvan_tyyppi": _labels(PERMIT_KINDS, people.permit_kind[person, span]),
        "alkupaiva": _dates(start[person, span]),
        "loppupaiva": _dates(people.permit_end[person, span]),
    }
    _check("residence_permits", columns)
    return RawTable("residence_permits", columns, person.astype(np.int32), start[person, span])


# ---------------------------------------------------------------------------------------------
# employment statistics (Statistics Finland), quarter-major like quarterly deliveries


def employment(panel: Panel) -> RawTable:
    t, person = _time.cells_by_quarter(panel.in_panel)
    code = _time.cells(panel.code, person, t)
    codes = {EMPLOYED: "11", UNEMPLOYED: "12", STUDENT: "22", PENSIONER: "24", 29: "29"}
    lookup = np.zeros(30, dtype=np.int32)
    labels = list(codes.values())
    for i, c in enumerate(codes):
        lookup[c] = i
    columns = {
        "vuosineljannes": _labels(_time.QUARTER_LABELS, t),
        "ptoim": _labels(labels, lookup[code]),
        "ansiotulot": _money(_time.cells(panel.earnings, person, t)),
    }
    _check("employment", columns)
    return RawTable("employment", columns, person.astype(np.int32), Q_END[t])


# ---------------------------------------------------------------------------------------------
# degrees (Statistics Finland)


def education(people: People) -> RawTable:
    person, slot = np.nonzero(people.degree_level > 0)
    year = people.degree_year[person, slot].astype(np.int32)
    columns = {
        "suoritusvuosi": pa.array(year),
        "koulutusaste": pa.array(people.degree_level[person, slot].astype(np.int32)).cast(pa.string()),
        "koulutusala": _labels(FIELDS, people.degree_field[person, slot]),
    }
    _check("education", columns)
    day = np.array([_time.day(int(y)) for y in range(1900, 2031)], dtype=np.int32)[year - 1900]
    return RawTable("education", columns, person.astype(np.int32), day)


# ---------------------------------------------------------------------------------------------
# Kela benefits and the city's social assistance (shared monthly model)


@dataclass
class Money:
    """Monthly payments: person, study month, kind, amount."""

    person: np.ndarray
    month: np.ndarray
    kind: np.ndarray
    amount: np.ndarray


KELA_TYPES = ["labour_market_subsidy", "basic_unemployment_allowance", "integration_assistance",
              "housing_allowance", "basic_social_assistance"]
ASSISTANCE_TYPES = ["basic", "supplementary", "preventive"]
KELA_FROM_MONTH = 12 * (2017 - _time.START_YEAR)  # Kela pays basic social assistance from 2017


def _months(rng: np.random.Generator, person: np.ndarray, t: np.ndarray, keep: float):
    """Expand person-quarters into their months, keeping each month with probability `keep`."""
    p3 = np.repeat(person, 3)
    m3 = np.repeat(t * 3, 3) + np.tile(np.arange(3), person.size)
    src = np.repeat(np.arange(person.size), 3)
    mask = rng.random(p3.size) < keep
    return p3[mask], m3[mask], src[mask]


def payments(people: People, panel: Panel, rng: np.random.Generator) -> tuple[Money, Money]:
    """(Kela benefits, city social assistance) as monthly payments."""
    n = people.n
    t, person = _time.cells_by_quarter(panel.in_panel)
    code = _time.cells(panel.code, person, t)
    earn = _time.cells(panel.earnings, person, t)
    age = (Q_END[t] - people.birth[person]) / DAYS_PER_YEAR
    imm = people.immigrant[person]
    yrs = np.full(person.size, 99.0)  # years in Finland, worked out for the immigrants' cells only
    end = Q_END[t[imm]]
    yrs[imm] = (end - np.minimum(people.immigration[person[imm]], end)) / DAYS_PER_YEAR
    del end
    employed = (panel.code == EMPLOYED).astype(np.int16)
    cs = np.concatenate([np.zeros((n, 1), np.int16), np.cumsum(employed, axis=1, dtype=np.int16)], axis=1)
    del employed
    cs[:, 8:] -= cs[:, :-8]  # now quarters employed of the last 8 (numpy reads overlapping operands first)
    emp8 = _time.cells(cs, person, t)
    del cs
    year = _time.START_YEAR + t // 4

    unemployed = code == UNEMPLOYED
    u = rng.random(person.size)
    kind = np.full(person.size, -1, dtype=np.int8)
    integ = unemployed & imm & (yrs < 3)
    kind = np.where(integ & (u < 0.85), 2, kind)
    basic = unemployed & ~integ & (emp8 >= 3)
    kind = np.where(basic & (u < 0.35), 1, kind)
    kind = np.where(unemployed & ~integ & ~basic & (u < 0.92), 0, kind)
    sel = np.flatnonzero(kind >= 0)
    del unemployed, u, integ, basic, emp8  # the person-quarter arrays go as soon as they are used
    daily = 25.63 + (37.21 - 25.63) * (year[sel] - _time.START_YEAR) / 15.0  # the paid cells' only
    p1, m1, s1 = _months(rng, person[sel], t[sel], 0.95)
    k1 = kind[sel][s1]
    a1 = daily[s1] * 21.5 * (0.7 + 0.3 * rng.random(p1.size))
    del kind, daily

    # housing allowance: a persistent person-level draw against a state-dependent probability
    h_person = rng.random(n)
    p_h = np.select([code == UNEMPLOYED, code == STUDENT, code == 29, code == PENSIONER,
                     (code == EMPLOYED) & (earn < 6000)], [0.55, 0.35, 0.30, 0.10, 0.12], 0.01)
    p_h = np.where(age < 18, 0.0, p_h + 0.1 * imm)
    sel = np.flatnonzero(h_person[person] < p_h)
    p2, m2, s2 = _months(rng, person[sel], t[sel], 0.97)
    level = 180 + 320 * h_person[p2] / np.maximum(p_h[sel][s2], 1e-9)
    a2 = np.minimum(level, 600) * (1 + 0.02 * (year[sel][s2] - _time.START_YEAR)) \
        * (0.95 + 0.1 * rng.random(p2.size))
    k2 = np.full(p2.size, 3, dtype=np.int8)
    del h_person, p_h, year

    # basic social assistance: Kela from 2017, the city before; supplementary and preventive
    s_person = rng.random(n)
    p_s = np.select([code == UNEMPLOYED, (code == STUDENT) | (code == 29),
                     (code == EMPLOYED) & (earn < 4000)], [0.22, 0.08, 0.02], 0.003)
    p_s = np.where(age < 18, 0.0, p_s * np.where(imm & (yrs < 5), 1.6, 1.0))
    sel = np.flatnonzero(s_person[person] < p_s)
    del p_s, yrs, imm
    p3, m3, s3 = _months(rng, person[sel], t[sel], 0.85)
    a3 = 50 + 550 * rng.random(p3.size)
    kela_basic = m3 >= KELA_FROM_MONTH
    supp = rng.random(p3.size) < 0.25
    a_supp = 30 + 370 * rng.random(p3.size)
    low = (code == UNEMPLOYED) | ((code == EMPLOYED) & (earn < 4000))
    prev = np.flatnonzero(low & (age >= 18) & (rng.random(person.size) < 0.01))
    m_prev = t[prev] * 3 + rng.integers(0, 3, prev.size)
    a_prev = 100 + 900 * rng.random(prev.size)

    kela = Money(
        person=np.concatenate([p1, p2, p3[kela_basic]]),
        month=np.concatenate([m1, m2, m3[kela_basic]]),
        kind=np.concatenate([k1, k2, np.full(int(kela_basic.sum()), 4, np.int8)]),
        amount=np.concatenate([a1, a2, a3[kela_basic]]),
    )
    city = Money(
        person=np.concatenate([p3[~kela_basic], p3[supp], person[prev]]),
        month=np.concatenate([m3[~kela_basic], m3[supp], m_prev]),
        kind=np.concatenate([np.zeros(int((~kela_basic).sum()), np.int8),
                             np.ones(int(supp.sum()), np.int8), np.full(prev.size, 2, np.int8)]),
        amount=np.concatenate([a3[~kela_basic], a_supp[supp], a_prev]),
    )
    return _sorted(kela), _sorted(city)


def _sorted(money: Money) -> Money:
    key = (money.month.astype(np.int64) * (int(money.person.max(initial=0)) + 1)
           + money.person) * 8 + money.kind
    order = stable_order(key)
    return Money(money.person[order].astype(np.int32), money.month[order].astype(np.int32),
                 money.kind[order], np.round(money.amount[order], 2))


def benefits(kela: Money) -> RawTable:
    columns = {
        "maksukuukausi": pa.array(MONTH_YYYYMM[kela.month]),
        "etuus": _labels(KELA_TYPES, kela.kind),
        "maara_eur": _money(kela.amount),
    }
    _check("benefits", columns)
    return RawTable("benefits", columns, kela.person, M_START[kela.month])


def social_assistance(city: Money, rng: np.random.Generator) -> RawTable:
    day = M_START[city.month] + rng.integers(0, 28, city.person.size).astype(np.int32)
    columns = {
        "maksupaiva": _dates(day),
        "tuen_laji": _labels(ASSISTANCE_TYPES, city.kind),
        "maara_eur": _money(city.amount),
    }
    _check("social_assistance", columns)
    return RawTable("social_assistance", columns, city.person, day)


# ---------------------------------------------------------------------------------------------
# income taxation (Tax Administration), yearly


_DAYS_TO_75 = math.ceil(75 * DAYS_PER_YEAR)


def income_taxes(people: People, panel: Panel, kela: Money, rng: np.random.Generator) -> RawTable:
    n = people.n
    wages = panel.earnings.reshape(n, YEARS, 4).sum(axis=2, dtype=np.float64)
    taxable = kela.kind <= 2  # unemployment benefits are taxable earned income
    idx = kela.person[taxable].astype(np.int64) * YEARS + kela.month[taxable] // 12
    benefit = np.bincount(idx, weights=kela.amount[taxable], minlength=n * YEARS).reshape(n, YEARS)
    # aged 75 at a quarter's end: (end - birth) / DAYS_PER_YEAR >= 75 holds from _DAYS_TO_75 whole days on
    old = people.birth[:, None] <= Q_END[None, :] - _DAYS_TO_75
    retired = (panel.code == PENSIONER) | (panel.resident & old)
    del old
    pension = (_time.count_per_year(retired) * 3.0) * people.pension[:, None]
    del retired
    resident_year = _time.any_per_year(panel.resident)
    age_year = (Q_END[3::4][None, :] - people.birth[:, None]) / DAYS_PER_YEAR  # at each year's end
    earned = wages + benefit + pension
    cap_person = rng.random(n)
    p_cap = 1 / (1 + np.exp(-(-1.6 + 0.8 * people.ability[:, None] + 0.03 * (age_year - 40))))
    capital = np.where(cap_person[:, None] < p_cap,
                       np.exp(5.8 + 0.5 * people.ability[:, None] + 1.1 * rng.standard_normal((n, YEARS))),
                       0.0)
    present = resident_year & (age_year >= 15) & ((earned > 0) | (capital > 0))
    person, y = np.nonzero(present)
    e = np.round(earned[person, y], 2)
    c = np.round(capital[person, y], 2)
    tax_e = np.maximum(e - 12000, 0) * (0.20 + 0.25 * np.minimum(e / 120000, 1.0))
    tax_c = np.where(c > 30000, 9000 + 0.34 * (c - 30000), 0.30 * c)
    years = (_time.START_YEAR + y).astype(np.int32)
    columns = {
        "verovuosi": pa.array(years),
        "ansiotulo": _money(e),
        "paaomatulo": _money(c),
        "maksetut_verot": _money(tax_e + tax_c),
    }
    _check("income_taxes", columns)
    day = np.array([_time.day(int(v), 12, 31) for v in range(_time.START_YEAR, _time.END_YEAR + 1)],
                   dtype=np.int32)[y]
    return RawTable("income_taxes", columns, person.astype(np.int32), day)


# ---------------------------------------------------------------------------------------------
# employment services (TE), events


TE_EVENTS = ["clientship_start", "job_seeking", "integration_training", "labour_market_training",
             "work_tryout", "internship", "employment", "clientship_end"]


def employment_services(people: People, panel: Panel, rng: np.random.Generator) -> RawTable:
    code = panel.code
    unemp = code == UNEMPLOYED
    prev_unemp = np.zeros_like(unemp)
    prev_unemp[:, 1:] = unemp[:, :-1]
    starts = unemp & ~prev_unemp
    ends = prev_unemp & ~unemp & panel.in_panel
    parts_p, parts_t, parts_k = [], [], []

    def add(mask: np.ndarray, kind: int) -> None:
        p, t = np.nonzero(mask)
        parts_p.append(p)
        parts_t.append(t)
        parts_k.append(np.full(p.size, kind, dtype=np.int8))

    add(starts, 0)
    up, ut = np.nonzero(unemp)
    u = rng.random((5, up.size))
    yrs = (Q_END[ut] - np.minimum(people.immigration[up], Q_END[ut])) / DAYS_PER_YEAR
    recent = people.immigrant[up] & (yrs < 3)
    for kind, chosen in ((1, u[0] < 0.6), (2, recent & (u[1] < 0.35)), (3, u[2] < 0.06),
                         (4, u[3] < 0.04), (5, u[4] < 0.03)):
        parts_p.append(up[chosen])
        parts_t.append(ut[chosen])
        parts_k.append(np.full(int(chosen.sum()), kind, dtype=np.int8))
    del u
    person = np.concatenate(parts_p).astype(np.int32)
    t = np.concatenate(parts_t)
    kind = np.concatenate(parts_k)
    lo = np.maximum(Q_START[t], people.move_in[person])
    first = _time.random_day_between(rng, lo, np.minimum(lo + 10, Q_END[t]))
    later = _time.random_day_between(rng, np.minimum(lo + 11, Q_END[t]), Q_END[t])
    day = np.where(kind == 0, first, later)  # a clientship starts before the quarter's events
    # an ended clientship: clientship_end, preceded on the same day by employment if found
    ep, et = np.nonzero(ends)
    eday = _time.random_day_between(rng, np.maximum(Q_START[et], people.move_in[ep]), Q_END[et])
    got_job = code[ep, et] == EMPLOYED
    person = np.concatenate([person, ep[got_job], ep]).astype(np.int32)
    day = np.concatenate([day, eday[got_job], eday])
    kind = np.concatenate([kind, np.full(int(got_job.sum()), 6, np.int8), np.full(ep.size, 7, np.int8)])
    key = ((day.astype(np.int64) - int(day.min(initial=0))) * (people.n + 1) + person) * 8 + kind
    order = stable_order(key)
    person, day, kind = person[order], day[order], kind[order]
    columns = {
        "tapahtumapaiva": _dates(day),
        "tapahtuma": _labels(TE_EVENTS, kind),
    }
    _check("employment_services", columns)
    return RawTable("employment_services", columns, person, day)


# ---------------------------------------------------------------------------------------------
# skills centre (Omnia)


PROGRAMMES = ["language_training", "vocational_training", "employment_path", "entrepreneurship"]
FAMILY_RELATIONS = ["lives_alone", "partner", "partner_children", "single_parent", "other"]


def skills_centre(people: People, panel: Panel, rng: np.random.Generator) -> RawTable:
    person = np.flatnonzero(panel.entry >= 0)
    person = person[np.argsort(panel.entry_day[person], kind="stable")]
    k = person.size
    entry = panel.entry_day[person]
    exit_day = entry + rng.integers(90, 541, k)
    exit_day = np.minimum(exit_day, people.res_end[person] - 1)
    exit_day = np.where(exit_day >= WINDOW_END, NODATE, exit_day)
    level = panel.language_level[person]
    low = level <= 1
    probs = np.where(low[:, None], [[0.6, 0.15, 0.22, 0.03]], [[0.15, 0.4, 0.38, 0.07]])
    programme = _categorical(rng, probs)
    motivation = np.clip(np.round(3.2 + 0.6 * people.ability[person] + 0.9 * rng.standard_normal(k)), 1, 5)
    married = people.marital[person] == 2
    kids = people.children[person] > 0
    family = np.select([married & kids, married, kids], [2, 1, 3], 0)
    family = np.where(rng.random(k) < 0.08, 4, family)
    network = np.clip(np.round(2.8 + 0.4 * people.wellbeing[person] + 0.3 * married
                               + 0.9 * rng.standard_normal(k)), 1, 5)
    columns = {
        "aloituspaiva": _dates(entry),
        "lopetuspaiva": _dates(exit_day),
        "koulutusohjelma": _labels(PROGRAMMES, programme),
        "kielitaso": _labels(LANGUAGE_LEVELS, level),
        "motivaatio": pa.array(motivation.astype(np.int32)),
        "perhesuhteet": _labels(FAMILY_RELATIONS, family),
        "sosiaalinen_verkosto": pa.array(network.astype(np.int32)),
    }
    _check("skills_centre", columns)
    return RawTable("skills_centre", columns, person.astype(np.int32), entry)


# ---------------------------------------------------------------------------------------------
# social and health service visits (City of Espoo)


SERVICES = ["primary_care", "mental_health", "substance_abuse", "social_work", "child_protection",
            "rehabilitation"]
CHAPTERS = ["I", "II", "IV", "V", "VI", "IX", "X", "XI", "XII", "XIII", "XIV", "XVIII", "XIX", "XXI"]
_PRIMARY = np.array([.05, .03, .07, .04, .04, .10, .18, .05, .06, .15, .04, .08, .06, .05])
_REHAB = np.zeros(len(CHAPTERS))
_REHAB[[CHAPTERS.index(c) for c in ("XIII", "VI", "IX", "XIX")]] = [.5, .2, .2, .1]


def social_health(people: People, panel: Panel, rng: np.random.Generator) -> RawTable:
    t, person = _time.cells_by_quarter(panel.resident)
    age = (Q_END[t] - people.birth[person]) / DAYS_PER_YEAR
    code = _time.cells(panel.code, person, t)
    # the rate built in place, factor by factor: every person-quarter's temporaries cost memory
    rate = np.interp(age, [0, 2, 7, 18, 30, 50, 65, 75, 90], [.5, .25, .12, .1, .1, .12, .18, .28, .4])
    wellbeing = people.wellbeing[person]
    wellbeing *= -0.35
    rate *= np.exp(wellbeing, out=wellbeing)
    del wellbeing
    rate[code == UNEMPLOYED] *= 1.3  # the others times 1.0: the same numbers, without the factor's array
    rate[people.immigrant[person]] *= 0.85
    del age  # made again for the visits only
    count = rng.poisson(rate)
    del rate
    hit = np.flatnonzero(count)
    rep = count[hit]
    person = np.repeat(person[hit], rep)
    t = np.repeat(t[hit], rep)
    age = (Q_END[t] - people.birth[person]) / DAYS_PER_YEAR
    code = np.repeat(code[hit], rep)
    w = people.wellbeing[person]
    male = ~people.female[person]
    child = age < 18
    weights = np.empty((person.size, 6))
    weights[:, 0] = np.where(child, 0.78, np.where(age < 65, 0.72, 0.80))
    weights[:, 1] = np.where(child, 0.04 * (age >= 12), np.where(age < 65, 0.10, 0.03)) * np.exp(-0.5 * w)
    weights[:, 2] = np.where(child, 0.0, np.where(age < 65, 0.03, 0.01)) * np.exp(-0.4 * w) \
        * np.where(male, 1.8, 1.0) * (age >= 15)
    weights[:, 3] = np.where(child, 0.03, np.where(age < 65, 0.06, 0.04)) \
        * np.where(code == UNEMPLOYED, 2.0, 1.0)
    weights[:, 4] = np.where(child, 0.12, 0.0)
    weights[:, 5] = np.where(child, 0.03, np.where(age < 65, 0.09, 0.12))
    service = _categorical(rng, weights)
    del weights
    chapter = np.full(person.size, -1, dtype=np.int64)
    chapter[(service == 1) | (service == 2)] = CHAPTERS.index("V")
    prim = np.flatnonzero(service == 0)
    old = np.clip((age[prim] - 40) / 40, 0, 1)
    primary = np.tile(_PRIMARY, (prim.size, 1))
    primary[:, CHAPTERS.index("IX")] *= 0.3 + 3 * old
    primary[:, CHAPTERS.index("X")] *= 1.5 - old
    chapter[prim] = _categorical(rng, primary)
    del primary
    rehab = np.flatnonzero(service == 5)
    chapter[rehab] = _categorical(rng, np.tile(_REHAB, (rehab.size, 1)))
    lo = np.maximum(Q_START[t], people.move_in[person])
    day = _time.random_day_between(rng, lo, Q_END[t])
    key = ((((day.astype(np.int64) - int(day.min(initial=0))) * (people.n + 1) + person) * 8 + service)
           * 32 + chapter + 1)
    order = stable_order(key)
    person, day, service, chapter = person[order], day[order], service[order], chapter[order]
    # two visits of one person on one day to the same service with the same chapter are one row:
    # exact duplicate rows are kept for the planted faults only
    same = np.zeros(person.size, dtype=bool)
    same[1:] = ((person[1:] == person[:-1]) & (day[1:] == day[:-1]) & (service[1:] == service[:-1])
                & (chapter[1:] == chapter[:-1]))
    person, day, service, chapter = person[~same], day[~same], service[~same], chapter[~same]
    columns = {
        "kayntipaiva": _dates(day),
        "palvelu": _labels(SERVICES, service),
        "icd10_luku": _labels(CHAPTERS, np.maximum(chapter, 0), mask=chapter < 0),
    }
    _check("social_health", columns)
    return RawTable("social_health", columns, person.astype(np.int32), day)
