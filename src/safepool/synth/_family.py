"""Family links and home districts: who is whose parent, and where families live.

Drawn from their own random streams after the people, so adding them changed nothing else the
generator makes. Vectorised: parents are found by sorting the candidates once by (language,
birth day) and picking in each child's window with searchsorted.

- Persons born in 1991 or later (under 18 at some time in 2009-2024) get a mother among the
  women of the population born 17-45 years before them, speaking the child's native language
  (one child in ten: Finnish), with probability 0.92 for the native-born, 0.75 for those who
  immigrated as children and 0.10 for those who came as adults (their parents stayed abroad).
- Each candidate mother has one partner, a man born 8 years before to 3 after her, of her
  language (15%: Finnish); he is the child's father with probability 0.85.
- The family's native language group (planted, and what the features layer derives from the
  links): Finnish if a known parent speaks Finnish, else Swedish if one speaks Swedish, else
  foreign if a parent is known, else the child's own language group.
- District (the planted proxy): each person's major district of Espoo at extraction, drawn by
  the family's (a child's) or own (an adult's) language group; a child lives in the mother's
  district. Foreign-language families concentrate in Leppavaara and Espoon keskus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safepool.synth._names import LANG
from safepool.synth._people import IMMIGRANT, People
from safepool.synth._sort import stable_order
from safepool.synth._time import DAYS_PER_YEAR, day

LANGUAGE_GROUPS = ["finnish", "swedish", "foreign"]
FI, SV, FOREIGN = 0, 1, 2
DISTRICTS = {"1": "Suur-Leppavaara", "2": "Suur-Tapiola", "3": "Suur-Matinkyla", "4": "Suur-Espoonlahti",
             "5": "Suur-Kauklahti", "6": "Vanha-Espoo (Espoon keskus)", "7": "Pohjois-Espoo"}
# share of each language group living in each district (codes 1..7)
DISTRICT_SHARES = {
    "finnish": [0.24, 0.14, 0.14, 0.20, 0.05, 0.18, 0.05],
    "swedish": [0.15, 0.30, 0.15, 0.20, 0.05, 0.10, 0.05],
    "foreign": [0.35, 0.05, 0.10, 0.12, 0.03, 0.33, 0.02],
}
LINKED_FROM_BIRTH_YEAR = 1991
_SHIFT = 40_000  # birth days (1910..2024 = -21915..20088) shifted to positive keys


@dataclass
class Families:
    mother: np.ndarray  # (n,) int32 person index, -1 = none known
    father: np.ndarray  # (n,) int32 person index, -1 = none known
    group: np.ndarray  # (n,) int8 family language group (LANGUAGE_GROUPS), own group for adults
    district: np.ndarray  # (n,) int8 district code 1..7
    linked: np.ndarray  # (n,) bool: born 1991 or later (a child some time in the window)


def own_group(language: np.ndarray) -> np.ndarray:
    return np.where(language == LANG["fi"], FI, np.where(language == LANG["sv"], SV, FOREIGN)).astype(np.int8)


def _pick(rng: np.random.Generator, candidates: np.ndarray, cand_lang: np.ndarray, cand_birth: np.ndarray,
          lang: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """For each row, a uniformly random candidate of language `lang` born in [low, high]; -1 if none."""
    key = cand_lang.astype(np.int64) * 1_000_000 + (cand_birth.astype(np.int64) + _SHIFT)
    order = stable_order(key)
    sorted_key = key[order]
    base = lang.astype(np.int64) * 1_000_000 + _SHIFT
    lo = np.searchsorted(sorted_key, base + low.astype(np.int64), side="left")
    hi = np.searchsorted(sorted_key, base + high.astype(np.int64), side="right")
    span = hi - lo
    at = lo + np.floor(rng.random(lang.size) * np.maximum(span, 1)).astype(np.int64)
    found = candidates[order][np.minimum(at, max(candidates.size - 1, 0))] if candidates.size else at
    return np.where(span > 0, found, -1).astype(np.int32)


def make_families(people: People, rngs: dict[str, np.random.Generator]) -> Families:
    rng = rngs["families"]
    n = people.n
    birth = people.birth.astype(np.int64)
    language = people.language.astype(np.int64)
    fi = LANG["fi"]

    # each possible mother's partner
    women = np.flatnonzero(people.female)
    men = np.flatnonzero(~people.female)
    partner_lang = np.where(rng.random(women.size) < 0.85, language[women], fi)
    partner = _pick(rng, men, language[men], birth[men], partner_lang,
                    birth[women] - round(8 * DAYS_PER_YEAR), birth[women] + round(3 * DAYS_PER_YEAR))
    partner_of = np.full(n, -1, dtype=np.int32)
    partner_of[women] = partner

    # mothers of the persons born 1991 or later
    linked = birth >= day(LINKED_FROM_BIRTH_YEAR)
    imm_age = np.where(people.category == IMMIGRANT, (people.immigration - birth) / DAYS_PER_YEAR, 0.0)
    p_mother = np.where(people.category == IMMIGRANT, np.where(imm_age < 18, 0.75, 0.10), 0.92)
    wants = linked & (rng.random(n) < p_mother)
    children = np.flatnonzero(wants)
    search_lang = np.where(rng.random(children.size) < 0.9, language[children], fi)
    mother = np.full(n, -1, dtype=np.int32)
    mother[children] = _pick(rng, women, language[women], birth[women], search_lang,
                             birth[children] - round(45 * DAYS_PER_YEAR),
                             birth[children] - round(17 * DAYS_PER_YEAR))
    has_mother = mother >= 0
    father = np.where(has_mother & (rng.random(n) < 0.85), partner_of[np.maximum(mother, 0)], -1).astype(np.int32)
    father = np.where(father == np.arange(n), -1, father).astype(np.int32)

    # the family's language group
    group = own_group(people.language)
    parent_groups = np.stack([np.where(mother >= 0, group[np.maximum(mother, 0)], -1),
                              np.where(father >= 0, group[np.maximum(father, 0)], -1)])
    any_parent = (parent_groups >= 0).any(axis=0)
    family = np.where((parent_groups == FI).any(axis=0), FI,
                      np.where((parent_groups == SV).any(axis=0), SV, FOREIGN))
    group = np.where(any_parent, family, group).astype(np.int8)

    # districts: adults by their own group, then children in their mother's district
    shares = np.array([DISTRICT_SHARES[g] for g in LANGUAGE_GROUPS])
    cum = np.cumsum(shares, axis=1)[group]
    u = rng.random(n)[:, None] * cum[:, -1:]
    district = (1 + np.minimum((cum < u).sum(axis=1), 6)).astype(np.int8)
    district = np.where(has_mother, district[np.maximum(mother, 0)], district).astype(np.int8)
    return Families(mother=mother, father=father, group=group, district=district, linked=linked)
