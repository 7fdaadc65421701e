"""The city's own registers: child protection events and city services used across a life.

Drawn from their own random streams after everything else, so the other registers are exactly
what they were. Vectorised over person-quarters (resident persons only).

What is planted (all of it lands in truth.json under "city"):

- Customer groups of known sizes: every person aged 18-64 on 2024-12-31 and living in Espoo then
  belongs to one of CUSTOMER_GROUPS (exact sizes: the shares times the number of such persons,
  rounded; the remainder to the last group). The group sets the rates of library and culture
  visits, sports memberships and adult social work visits in every quarter of 2009-2024.
- A service need predicted by prior service use: some children have a family crisis (a quarter
  drawn among their childhood quarters, more often for vulnerable children). In the crisis
  quarter and the three after it, school health care, family counselling (less for foreign-
  language families: preventive services reach them less), youth services and the mother's
  adult social work visits rise; the child protection notification hazard is high in the four
  quarters after the crisis starts. The start of child protection support (the first open-care
  support measure or placement) therefore follows a rise in prior service use.
- Language-dependent paths: the family's native language group (see _family) changes the
  notification hazard (foreign +0.45 on the logit), who notifies (schools, health care and early
  childhood education for Finnish- and Swedish-speaking families; the police and emergency
  social services more for foreign-language ones), and what follows an assessment: open-care
  support 0.55 / 0.55 / 0.33, emergency placement 0.05 / 0.05 / 0.18 (Finnish / Swedish /
  foreign). Early childhood education reaches 85% of Finnish- and Swedish-speaking families'
  children and 58% of foreign-language families' children.
- The proxy trap: the home district (population register) stands in partly for native language
  (foreign-language families live mostly in Suur-Leppavaara and Vanha-Espoo); its own direct
  effect on the notification hazard is small (+0.15 on the logit in Vanha-Espoo, 0 elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from safepool.synth import _time
from safepool.synth._family import DISTRICT_SHARES, DISTRICTS, FOREIGN, LANGUAGE_GROUPS, Families
from safepool.synth._panel import UNEMPLOYED, Panel
from safepool.synth._people import People
from safepool.synth._registers import RawTable, _check, _dates, _labels
from safepool.synth._sort import stable_order
from safepool.synth._time import DAYS_PER_YEAR, NODATE, Q_END, Q_START, WINDOW_END, day

CP_EVENTS = ["notification", "assessment", "family_work", "support_person", "financial_support",
             "peer_group", "emergency_placement", "placement_outside_home", "aftercare"]
OPEN_CARE = ["family_work", "support_person", "financial_support", "peer_group"]
NOTIFIERS = ["school", "health_care", "early_childhood_education", "police", "social_services", "parent",
             "other"]
# who notifies, by the family's language group (finnish, swedish, foreign)
_NOTIFIER_SHARES = np.array([
    [0.30, 0.22, 0.12, 0.12, 0.12, 0.07, 0.05],
    [0.30, 0.22, 0.12, 0.12, 0.12, 0.07, 0.05],
    [0.18, 0.12, 0.05, 0.32, 0.23, 0.04, 0.06],
])
# after an assessment: closed, open-care support, emergency placement (by language group)
ASSESSMENT_OUTCOMES = ["closed", "open_care", "emergency_placement"]
_OUTCOME_SHARES = np.array([[0.40, 0.55, 0.05], [0.40, 0.55, 0.05], [0.49, 0.33, 0.18]])
NOTIFICATION_LANGUAGE_LOGIT = np.array([0.0, -0.1, 0.45])
DISTRICT_LOGIT = np.zeros(8)
DISTRICT_LOGIT[6] = 0.15
ECE_SHARE = np.array([0.85, 0.85, 0.58])
COUNSELLING_IN_CRISIS = np.array([0.8, 0.8, 0.25])

SERVICES = ["early_childhood_education", "school_health_care", "family_counselling", "youth_services",
            "library_and_culture", "sports", "adult_social_work", "elderly_services"]
S = {name: i for i, name in enumerate(SERVICES)}
MEMBERSHIPS = ("early_childhood_education", "sports", "elderly_services")

CUSTOMER_GROUPS = {
    # name: (share, library and culture visits a quarter, sports membership a year, adult social work a quarter)
    "culture_regulars": (0.20, 2.0, 0.02, 0.01),
    "sports_members": (0.20, 0.05, 0.95, 0.01),
    "active_all_round": (0.10, 2.0, 0.95, 0.01),
    "social_work_clients": (0.10, 0.05, 0.02, 1.2),
    "occasional_users": (0.40, 0.05, 0.02, 0.01),
}
ADULT_RATES = (0.1, 0.08, 0.01)  # library a quarter, sports a year, social work a quarter: adults in no group
GROUP_REFERENCE_DAY = day(2024, 12, 31)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _first_per_person(person: np.ndarray, hit: np.ndarray, n: int, value: np.ndarray) -> np.ndarray:
    """Per person, `value` of the first row (rows sorted by person, then time) where hit; -1 if none."""
    out = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(hit)
    if rows.size:
        p = person[rows]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = p[1:] != p[:-1]
        out[p[first]] = value[rows[first]]
    return out


def _in_residence(people: People, person: np.ndarray, when: np.ndarray) -> np.ndarray:
    return (when >= people.move_in[person]) & (when < people.res_end[person]) & (when < WINDOW_END)


@dataclass
class Childhood:
    """The child-quarters and what the crisis and child protection simulation made of them."""

    person: np.ndarray  # child-quarter rows: person index
    t: np.ndarray  # quarter index
    crisis: np.ndarray  # (n,) crisis quarter, -1 none
    vulnerability: np.ndarray  # (n,) float
    notification_day: np.ndarray  # (n,) first notification, NODATE none


def customer_groups(people: People, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, int]]:
    """Each eligible adult's planted group (index into CUSTOMER_GROUPS), -1 for the others; sizes."""
    n = people.n
    age = (GROUP_REFERENCE_DAY - people.birth.astype(np.int64)) / DAYS_PER_YEAR
    eligible = np.flatnonzero((people.res_end == WINDOW_END) & (people.move_in <= GROUP_REFERENCE_DAY)
                              & (age >= 18) & (age < 65))
    shares = np.array([v[0] for v in CUSTOMER_GROUPS.values()])
    counts = np.round(shares * eligible.size).astype(int)
    counts[-1] = eligible.size - counts[:-1].sum()
    labels = np.repeat(np.arange(len(CUSTOMER_GROUPS)), counts)
    rng.shuffle(labels)
    group = np.full(n, -1, dtype=np.int8)
    group[eligible] = labels
    return group, {name: int(c) for name, c in zip(CUSTOMER_GROUPS, counts)}


def childhood(people: People, panel: Panel, fam: Families, rng: np.random.Generator) -> Childhood:
    """Crises and first child protection notifications of the children living in Espoo."""
    n = people.n
    age_end = (Q_END[None, :] - people.birth[:, None].astype(np.float64)) / DAYS_PER_YEAR
    child = panel.resident & (age_end >= 0) & (age_end < 18)
    person, t = np.nonzero(child)  # sorted by person, then quarter
    del age_end, child
    mother = fam.mother
    mwell = np.where(mother >= 0, people.wellbeing[np.maximum(mother, 0)], 0.0)
    vulnerability = (-0.5 * mwell + np.sqrt(0.75) * rng.standard_normal(n)).astype(np.float64)

    # a crisis: one quarter among the child's quarters, for some children
    has_crisis = rng.random(n) < _sigmoid(-2.9 + 0.9 * vulnerability)
    key = rng.random(person.size)
    rows = np.flatnonzero(has_crisis[person])
    order = rows[np.lexsort((key[rows], person[rows]))]  # per child with a crisis, its rows in random order
    crisis = _first_per_person(person[order], np.ones(order.size, dtype=bool), n, t[order])

    age = (Q_END[t] - people.birth[person].astype(np.float64)) / DAYS_PER_YEAR
    m = mother[person]
    mother_unemployed = np.where(m >= 0, panel.code[np.maximum(m, 0), t] == UNEMPLOYED, False)
    since = t - crisis[person]
    after_crisis = (crisis[person] >= 0) & (since >= 1) & (since <= 4)
    lin = (-6.4 + 0.7 * vulnerability[person] + 0.5 * mother_unemployed
           + NOTIFICATION_LANGUAGE_LOGIT[fam.group[person]] + DISTRICT_LOGIT[fam.district[person]]
           + np.interp(age, [0, 3, 7, 12, 15, 17.99], [-0.3, 0.0, 0.1, 0.3, 0.5, 0.2]) + 5.2 * after_crisis)
    hit = rng.random(person.size) < _sigmoid(lin)
    first_t = _first_per_person(person, hit, n, t)
    notified = np.flatnonzero(first_t >= 0)
    tq = first_t[notified]
    lo = np.maximum(Q_START[tq], people.move_in[notified])
    hi = np.minimum(Q_END[tq], people.res_end[notified] - 1)
    notification_day = np.full(n, NODATE, dtype=np.int32)
    notification_day[notified] = _time.random_day_between(rng, lo, hi)
    return Childhood(person=person, t=t, crisis=crisis, vulnerability=vulnerability,
                     notification_day=notification_day)


def child_protection(people: People, fam: Families, kids: Childhood, rng: np.random.Generator
                     ) -> tuple[RawTable, dict[str, Any]]:
    """Events of each notified child's first episode: notification, assessment, support, placements."""
    notified = np.flatnonzero(kids.notification_day != NODATE)
    k = notified.size
    d0 = kids.notification_day[notified].astype(np.int64)
    g = fam.group[notified].astype(np.int64)
    birth = people.birth[notified].astype(np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # person, day, event, notifier

    def add(who: np.ndarray, when: np.ndarray, event: int, notifier: np.ndarray | None = None) -> None:
        keep = _in_residence(people, who, when)
        note = np.full(who.size, -1, dtype=np.int64) if notifier is None else notifier
        parts.append((who[keep], when[keep], np.full(int(keep.sum()), event), note[keep]))

    u_notifier = rng.random(k)[:, None]
    cum = np.cumsum(_NOTIFIER_SHARES[g], axis=1)
    notifier = np.minimum((cum < u_notifier).sum(axis=1), len(NOTIFIERS) - 1)
    add(notified, d0, CP_EVENTS.index("notification"), notifier)
    # a repeat notification within a year for some
    again = rng.random(k) < 0.3
    add(notified[again], d0[again] + rng.integers(30, 365, int(again.sum())), CP_EVENTS.index("notification"),
        np.minimum((cum[again] < rng.random(int(again.sum()))[:, None]).sum(axis=1), len(NOTIFIERS) - 1))

    assessed = rng.random(k) < 0.92
    d1 = d0 + rng.integers(7, 91, k)
    add(notified[assessed], d1[assessed], CP_EVENTS.index("assessment"))
    cum_o = np.cumsum(_OUTCOME_SHARES[g], axis=1)
    outcome = np.minimum((cum_o < rng.random(k)[:, None]).sum(axis=1), 2)
    outcome = np.where(assessed, outcome, 0)
    # an emergency placement comes right after the notification (before the assessment ends)
    emergency = outcome == 2
    d_em = d0 + rng.integers(0, 8, k)
    add(notified[emergency], d_em[emergency], CP_EVENTS.index("emergency_placement"))
    placed_after_emergency = emergency & (rng.random(k) < 0.5)
    back_home = emergency & ~placed_after_emergency & (rng.random(k) < 0.6)
    open_care = (outcome == 1) | back_home
    support_start = np.where(back_home, d_em + rng.integers(30, 120, k), d1 + rng.integers(14, 120, k))
    measures = rng.random((k, len(OPEN_CARE))) < np.array([0.75, 0.35, 0.30, 0.15])
    measures[:, 0] |= ~measures.any(axis=1)  # at least family work
    for j, name in enumerate(OPEN_CARE):
        chosen = open_care & measures[:, j]
        add(notified[chosen], support_start[chosen] + j * rng.integers(0, 60, k)[chosen], CP_EVENTS.index(name))
    placed_later = open_care & (rng.random(k) < np.where(g == FOREIGN, 0.12, 0.09))
    d_place = np.where(placed_after_emergency, d_em + rng.integers(30, 121, k),
                       support_start + rng.integers(180, 721, k))
    placed = placed_after_emergency | placed_later
    add(notified[placed], d_place[placed], CP_EVENTS.index("placement_outside_home"))
    # aftercare from the 18th birthday of a placed child
    turns_18 = birth + np.round(18 * DAYS_PER_YEAR).astype(np.int64)
    aftercare = placed & (turns_18 > d_place)
    add(notified[aftercare], turns_18[aftercare], CP_EVENTS.index("aftercare"))

    person = np.concatenate([p[0] for p in parts]).astype(np.int32)
    when = np.concatenate([p[1] for p in parts]).astype(np.int32)
    event = np.concatenate([p[2] for p in parts]).astype(np.int64)
    note = np.concatenate([p[3] for p in parts]).astype(np.int64)
    order = np.lexsort((event, person, when))
    person, when, event, note = person[order], when[order], event[order], note[order]
    columns = {
        "tapahtumapaiva": _dates(when),
        "tapahtuma": _labels(CP_EVENTS, event),
        "ilmoittaja": _labels(NOTIFIERS, np.maximum(note, 0), mask=note < 0),
    }
    _check("child_protection", columns)
    truth = _child_protection_truth(people, fam, kids, person, when, event, note)
    return RawTable("child_protection", columns, person, when), truth


def _child_protection_truth(people: People, fam: Families, kids: Childhood, person: np.ndarray,
                            when: np.ndarray, event: np.ndarray, note: np.ndarray) -> dict[str, Any]:
    n = people.n
    children = np.zeros(n, dtype=bool)
    children[np.unique(kids.person)] = True

    def first_day(mask: np.ndarray) -> np.ndarray:
        out = np.full(n, NODATE, dtype=np.int64)
        np.minimum.at(out, person[mask], when[mask].astype(np.int64))
        return out

    notified = first_day(event == CP_EVENTS.index("notification"))
    open_care = first_day(np.isin(event, [CP_EVENTS.index(e) for e in OPEN_CARE]))
    emergency = first_day(event == CP_EVENTS.index("emergency_placement"))
    placement = first_day(event == CP_EVENTS.index("placement_outside_home"))
    any_placement = np.minimum(emergency, placement)
    support = np.minimum(open_care, any_placement)
    by_group: dict[str, Any] = {}
    for gi, name in enumerate(LANGUAGE_GROUPS):
        mine = children & (fam.group == gi)
        cp = mine & (notified != NODATE)
        placed = mine & (any_placement != NODATE)
        first_notes = (event == CP_EVENTS.index("notification")) & (when == notified[person]) & mine[person]
        notifier_counts = np.bincount(note[first_notes], minlength=len(NOTIFIERS))
        by_group[name] = {
            "children": int(mine.sum()),
            "notified": int(cp.sum()),
            "open_care_support": int((mine & (open_care != NODATE)).sum()),
            "emergency_placement": int((mine & (emergency != NODATE)).sum()),
            "placement_outside_home": int((mine & (placement != NODATE)).sum()),
            "share_notified": round(float(cp.sum() / max(mine.sum(), 1)), 6),
            "share_of_notified_with_open_care": round(float((cp & (open_care != NODATE)).sum() / max(cp.sum(), 1)), 6),
            "share_of_notified_with_emergency_placement": round(
                float((cp & (emergency != NODATE)).sum() / max(cp.sum(), 1)), 6),
            "share_of_placed_with_open_care_before": round(
                float((placed & (open_care < any_placement)).sum() / max(placed.sum(), 1)), 6),
            "first_notifier": {NOTIFIERS[i]: int(c) for i, c in enumerate(notifier_counts)},
        }
    return {
        "children_living_in_espoo_2009_2024": int(children.sum()),
        "children_with_crisis": int((kids.crisis >= 0).sum()),
        "support_starts": int((support != NODATE).sum()),
        "by_family_language": by_group,
        "parameters": {
            "notification_logit_by_language": dict(zip(LANGUAGE_GROUPS, NOTIFICATION_LANGUAGE_LOGIT.tolist())),
            "notifier_shares": {g: dict(zip(NOTIFIERS, row.tolist())) for g, row in
                                zip(LANGUAGE_GROUPS, _NOTIFIER_SHARES)},
            "assessment_outcome_shares": {g: dict(zip(ASSESSMENT_OUTCOMES, row.tolist())) for g, row in
                                          zip(LANGUAGE_GROUPS, _OUTCOME_SHARES)},
            "crisis_logit": "-2.9 + 0.9 * vulnerability (vulnerability = -0.5 * mother's latent well-being "
                            "+ sqrt(0.75) * N(0, 1))",
            "notification_logit": "-6.4 + 0.7 * vulnerability + 0.5 * mother unemployed in the quarter "
                                  "+ language group + district + age profile + 5.2 in the 4 quarters after "
                                  "a crisis starts",
        },
    }


def city_services(people: People, panel: Panel, fam: Families, kids: Childhood, group: np.ndarray,
                  rng: np.random.Generator) -> tuple[RawTable, dict[str, Any]]:
    """Visits (a day) and memberships (a span) of the city's services."""
    n = people.n
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # person, start, end, service

    def visits(person: np.ndarray, t: np.ndarray, rate: np.ndarray, service: str) -> None:
        count = rng.poisson(rate)
        hit = np.flatnonzero(count)
        p = np.repeat(person[hit], count[hit])
        q = np.repeat(t[hit], count[hit])
        lo = np.maximum(Q_START[q], people.move_in[p])
        hi = np.minimum(Q_END[q], people.res_end[p] - 1)
        d = _time.random_day_between(rng, lo, hi)
        parts.append((p, d, d, np.full(p.size, S[service])))

    def spans(person: np.ndarray, start: np.ndarray, end: np.ndarray, service: str) -> None:
        # still a member at extraction: the span runs past 2024 and the person still lives in Espoo
        ongoing = (end.astype(np.int64) >= WINDOW_END) & (people.res_end[person] == WINDOW_END)
        start = np.maximum(start.astype(np.int64), people.move_in[person])
        end = np.minimum(end.astype(np.int64), people.res_end[person].astype(np.int64) - 1)
        keep = (start <= end) & (start < WINDOW_END) & (end >= _time.WINDOW_START)
        stop = np.where(ongoing, NODATE, end)
        parts.append((person[keep], start[keep], stop[keep], np.full(int(keep.sum()), S[service])))

    # every resident person-quarter
    person, t = (index.astype(np.int32) for index in np.nonzero(panel.resident))  # half the memory of int64
    age = (Q_END[t] - people.birth[person].astype(np.float64)) / DAYS_PER_YEAR
    g = group[person]
    adult = age >= 18
    fg = fam.group[person]
    crisis = kids.crisis.astype(np.int32)[person]  # a quarter index, or -1
    since = t - crisis
    in_crisis = (crisis >= 0) & (since >= 0) & (since <= 3)
    del crisis, since
    vul = kids.vulnerability

    # school health care (7-17): the yearly check, more for vulnerable children and in a crisis
    school = (age >= 7) & (age < 18)
    visits(person[school], t[school],
           0.3 * np.exp(0.25 * vul[person[school]]) + 1.5 * in_crisis[school], "school_health_care")
    # family counselling (0-17): rare, and a crisis brings families (less so the foreign-language ones)
    kid = age < 18
    visits(person[kid], t[kid], 0.01 + COUNSELLING_IN_CRISIS[fg[kid]] * in_crisis[kid], "family_counselling")
    # youth services (12-28)
    youth = (age >= 12) & (age < 29)
    visits(person[youth], t[youth],
           0.12 * np.exp(0.2 * vul[person[youth]]) + 0.8 * (in_crisis[youth] & (age[youth] < 18)),
           "youth_services")
    # library and culture: a customer group's members by their group (the trait of a lifetime),
    # other adults and children from 3 a little
    # (the rates are made in place over every person-quarter: each temporary costs 100 MB at 300,000)
    rates = np.array([v[1] for v in CUSTOMER_GROUPS.values()] + [ADULT_RATES[0]])  # -1 -> last
    library = rates[g]
    children_in_no_group = ~adult & (g < 0)
    library[children_in_no_group] = np.where(age[children_in_no_group] >= 3, 0.15, 0.0)
    visits(person, t, library, "library_and_culture")
    del library
    # adult social work: the group, unemployment, and mothers of children in a crisis
    rates = np.array([v[3] for v in CUSTOMER_GROUPS.values()] + [ADULT_RATES[2]])
    social = rates[g]
    social += 0.08 * (panel.code[panel.resident] == UNEMPLOYED)  # the cells of (person, t), in their order
    social[children_in_no_group] = 0.0
    visits(person, t, social, "adult_social_work")
    del person, t, age, g, adult, fg, in_crisis, social, children_in_no_group
    # mothers' adult social work in their children's crisis quarters
    kid_person, kid_t = kids.person, kids.t
    since = kid_t - kids.crisis[kid_person]
    mum = fam.mother[kid_person]
    sel = (kids.crisis[kid_person] >= 0) & (since >= 0) & (since <= 3) & (mum >= 0)
    mp, mt = mum[sel], kid_t[sel]
    lives = (people.move_in[mp] <= Q_END[mt]) & (people.res_end[mp] > Q_END[mt])
    visits(mp[lives], mt[lives], np.full(int(lives.sum()), 0.5), "adult_social_work")

    # early childhood education: one span from age 1-3 to 6.6 for the children who take part
    birth = people.birth.astype(np.int64)
    takes = rng.random(n) < ECE_SHARE[fam.group]
    start = birth + np.round((0.9 + 2.1 * rng.random(n)) * DAYS_PER_YEAR).astype(np.int64)
    end = birth + round(6.6 * DAYS_PER_YEAR)
    chosen = np.flatnonzero(takes & (end >= _time.WINDOW_START) & (start < WINDOW_END))
    spans(chosen, start[chosen], end[chosen], "early_childhood_education")
    # sports: a yearly membership (season card), by group for adults, a quarter of children 7-17
    person, year_ix = np.nonzero(_time.any_per_year(panel.resident))
    year = _time.START_YEAR + year_ix
    jan1 = np.array([day(int(y)) for y in range(_time.START_YEAR, _time.END_YEAR + 1)], dtype=np.int64)[year_ix]
    age = (jan1 + 182 - birth[person]) / DAYS_PER_YEAR
    rates = np.array([v[2] for v in CUSTOMER_GROUPS.values()] + [ADULT_RATES[1]])
    member_of = group[person]
    p_sport = np.where((age >= 18) | (member_of >= 0), rates[member_of], np.where(age >= 7, 0.25, 0.0))
    member = rng.random(person.size) < p_sport
    dec31 = np.array([day(int(y), 12, 31) for y in range(_time.START_YEAR, _time.END_YEAR + 1)],
                     dtype=np.int64)[year_ix]
    spans(person[member], jan1[member], dec31[member], "sports")
    del person, year_ix, year, jan1, dec31, age, member
    # elderly services: home care from some years after 75, until death or moving out
    at75 = birth + np.round(75 * DAYS_PER_YEAR).astype(np.int64)
    wait = rng.exponential(size=n) * 6.0 * np.exp(0.4 * people.wellbeing) * DAYS_PER_YEAR
    start = at75 + np.round(wait).astype(np.int64)
    chosen = np.flatnonzero((start < people.res_end) & (start < WINDOW_END))
    spans(chosen, start[chosen], np.full(chosen.size, NODATE, dtype=np.int64), "elderly_services")

    # days fit in int32 (NODATE is its largest): millions of rows, each column reordered in turn
    person = np.concatenate([p[0] for p in parts]).astype(np.int32)
    start = np.concatenate([p[1] for p in parts]).astype(np.int32)
    end = np.concatenate([p[2] for p in parts]).astype(np.int32)
    service = np.concatenate([p[3] for p in parts]).astype(np.int8)
    del parts
    # by day, person and service (one stable sort of a combined key: a lexsort's order, faster)
    key = ((start.astype(np.int64) - int(start.min(initial=0))) * (n + 1) + person) * len(SERVICES) + service
    order = stable_order(key)
    del key
    person = person[order]
    start = start[order]
    end = end[order]
    service = service[order]
    # one row per person, day and service visited
    keep = np.ones(person.size, dtype=bool)
    keep[1:] = ~((person[1:] == person[:-1]) & (start[1:] == start[:-1]) & (service[1:] == service[:-1])
                 & (end[1:] == end[:-1]))
    person = person[keep]
    start = start[keep]
    end = end[keep]
    service = service[keep]
    columns = {
        "palvelu": _labels(SERVICES, service),
        "alkupaiva": _dates(start),
        "loppupaiva": _dates(end),
    }
    _check("city_services", columns)
    counts = np.bincount(service, minlength=len(SERVICES))
    truth = {"rows_by_service": {name: int(c) for name, c in zip(SERVICES, counts)},
             "memberships": list(MEMBERSHIPS)}
    return RawTable("city_services", columns, person, start), truth


def city_truth(fam: Families, group: np.ndarray, sizes: dict[str, int]) -> dict[str, Any]:
    linked = fam.linked
    return {
        "families": {
            "persons_born_1991_or_later": int(linked.sum()),
            "with_mother": int((fam.mother >= 0).sum()),
            "with_father": int((fam.father >= 0).sum()),
            "family_language_rule": "finnish if a known parent's native language is fi; else swedish if one "
                                    "is sv; else foreign if a parent is known; else the person's own language",
            "children_by_family_language": {name: int((linked & (fam.group == i)).sum())
                                            for i, name in enumerate(LANGUAGE_GROUPS)},
        },
        "customer_groups": {
            "who": "persons aged 18-64 on 2024-12-31 and living in Espoo then (moved in by that day)",
            "sizes": sizes,
            "rates": {name: {"library_and_culture_visits_per_quarter": v[1], "sports_membership_per_year": v[2],
                             "adult_social_work_visits_per_quarter": v[3]}
                      for name, v in CUSTOMER_GROUPS.items()},
        },
        "proxy": {
            "variable": "population.district",
            "district_shares_by_language_group": DISTRICT_SHARES,
            "direct_notification_logit_by_district": {code: float(DISTRICT_LOGIT[int(code)]) for code in DISTRICTS},
            "description": "the district predicts child protection mostly because foreign-language families "
                           "live in districts 1 and 6; its own effect is +0.15 on the logit in district 6 only",
        },
        "early_childhood_education_share": dict(zip(LANGUAGE_GROUPS, ECE_SHARE.tolist())),
        "family_counselling_in_crisis_rate": dict(zip(LANGUAGE_GROUPS, COUNSELLING_IN_CRISIS.tolist())),
    }


def planted_groups_table(group: np.ndarray, codes: pa.Array) -> pa.Table:
    """Steward-zone truth: each planted customer group member's identity code and group."""
    members = np.flatnonzero(group >= 0)
    return pa.table({"identity_code": codes.take(pa.array(members)),
                     "customer_group": _labels(list(CUSTOMER_GROUPS), group[members])})
