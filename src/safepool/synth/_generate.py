"""generate(): the whole synthetic Espoo in memory, deterministic per seed."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from safepool.synth import _city, _registers, _time
from safepool.synth._catalogue import REGISTER_NAMES
from safepool.synth._faults import FAULT_KINDS, FAULTS_SCHEMA, identities, plant
from safepool.synth._family import make_families
from safepool.synth._panel import EMPLOYED, LANGUAGE_LEVELS, simulate
from safepool.synth._people import BORN, COUNTRIES, GROUNDS, IMMIGRANT, NATIVE_MOVER, make_people
from safepool.synth._time import NODATE, WINDOW_START
from safepool.synth.params import SELECTION_COVARIATES, Parameters

FORMAT_VERSION = 1


@dataclass
class SyntheticEspoo:
    """The generated registers (holder column names, identity codes as TEXT, faults planted;
    none when generate() handed them to a sink),
    the planted truth (JSON-serialisable) and the fault records (one row per register, code as
    written and fault kind)."""

    tables: dict[str, pa.Table]
    truth: dict[str, Any]
    faults: pa.Table
    # steward-zone truth beside truth.json: each planted customer group member's code and group
    planted_groups: pa.Table | None = None

    @property
    def persons(self) -> int:
        return int(self.truth["persons"])

    @property
    def seed(self) -> int:
        return int(self.truth["seed"])


class _Streams(dict):
    """One independent random generator per named component, derived from the seed."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def __missing__(self, name: str) -> np.random.Generator:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, zlib.crc32(name.encode())])))
        self[name] = rng
        return rng


def default_clients_per_year(persons: int) -> int:
    return max(20, round(600 * persons / 300_000))


def generate(persons: int = 30_000, seed: int = 1, clients_per_year: int | None = None,
             progress: Callable[[str], None] | None = None,
             sink: Callable[[str, pa.Table], None] | None = None) -> SyntheticEspoo:
    """Generate the synthetic Espoo population and its registers in memory; with `sink`, each
    register is handed over as soon as it is made (sink(name, table), in catalogue order) and
    not kept, so that it can be written while the next ones are made."""
    if persons < 100:
        raise ValueError("persons must be at least 100")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    cpy = default_clients_per_year(persons) if clients_per_year is None else int(clients_per_year)
    if cpy < 1:
        raise ValueError("clients_per_year must be at least 1")
    params = Parameters()
    rngs = _Streams(seed)
    say = progress or (lambda _label: None)

    say("people")
    people = make_people(rngs, persons, params)
    # each part draws from its own streams, so parts with the same inputs can be made side by side:
    # the identity codes, families and customer groups on a second thread (numpy and the random
    # generators release the GIL) while the life courses are simulated here. Registers are not
    # made so: at 300,000 persons the TE events beside the payments raised the peak by 70-100 MB,
    # the social and health visits by 100-200 MB
    with _one_worker() as early:
        made_ids = early.submit(identities, people, rngs["temporary codes"])
        made_families = early.submit(make_families, people, rngs)
        made_groups = early.submit(_city.customer_groups, people, rngs["customer groups"])
        panel = simulate(people, params, rngs, cpy, progress)
        say("identity codes")
        ids = made_ids.result()
        # persons that the population register may miss: those the employment register knows
        known = np.flatnonzero(panel.in_panel.any(axis=1))

        def planted(name: str, build: Callable[[], _registers.RawTable]) -> tuple[pa.Table, pa.Table]:
            return plant(build(), people, ids, params.fault_rates.get(name, {}), rngs[f"faults {name}"],
                         missing_candidates=known if name == "population" else None)

        say("families")
        families = made_families.result()
        say("childhoods")
        kids = _city.childhood(people, panel, families, rngs["childhood"])
        groups, group_sizes = made_groups.result()
        city_truth: dict[str, Any] = _city.city_truth(families, groups, group_sizes)

        def child_protection() -> _registers.RawTable:
            raw, city_truth["child_protection"] = _city.child_protection(people, families, kids,
                                                                         rngs["child protection"])
            return raw

        def city_services() -> _registers.RawTable:
            raw, city_truth["services"] = _city.city_services(people, panel, families, kids, groups,
                                                              rngs["city services"])
            return raw

        say("registers")
        kela, city = _registers.payments(people, panel, rngs["payments"])
        family_columns = {"suuralue": _registers._labels(list("1234567"), families.district.astype(np.int32) - 1),
                          "aidin_henkilotunnus": _codes_or_null(ids.codes, families.mother),
                          "isan_henkilotunnus": _codes_or_null(ids.codes, families.father)}
        raws = {
            "population": lambda: _registers.population(people, rngs["population"], family_columns),
            "residence_permits": lambda: _registers.residence_permits(people),
            "employment": lambda: _registers.employment(panel),
            "education": lambda: _registers.education(people),
            "income_taxes": lambda: _registers.income_taxes(people, panel, kela, rngs["taxes"]),
            "benefits": lambda: _registers.benefits(kela),
            "employment_services": lambda: _registers.employment_services(people, panel, rngs["te"]),
            "skills_centre": lambda: _registers.skills_centre(people, panel, rngs["omnia"]),
            "social_health": lambda: _registers.social_health(people, panel, rngs["visits"]),
            "social_assistance": lambda: _registers.social_assistance(city, rngs["assistance"]),
            "child_protection": child_protection,
            "city_services": city_services,
        }
        tables: dict[str, pa.Table] = {}
        row_counts: dict[str, int] = {}
        fault_tables: list[pa.Table] = []
        for name in REGISTER_NAMES:
            say(f"register {name}")
            table, faults = planted(name, raws[name])
            row_counts[name] = table.num_rows
            if sink is None:
                tables[name] = table
            else:
                sink(name, table)
            fault_tables.append(faults)
            del table
    faults = pa.concat_tables(fault_tables) if fault_tables else FAULTS_SCHEMA.empty_table()

    say("truth")
    truth = _truth(people, panel, params, seed, persons, cpy, row_counts, faults)
    truth["city"] = city_truth
    return SyntheticEspoo(tables=tables, truth=truth, faults=faults,
                          planted_groups=_city.planted_groups_table(groups, ids.codes))


@contextmanager
def _one_worker() -> Iterator[ThreadPoolExecutor]:
    """A one-thread pool that, on the way out, runs nothing not yet started and waits for the rest."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _codes_or_null(codes: pa.Array, index: np.ndarray) -> pa.Array:
    """The identity codes of the persons `index` points at; null where it is -1."""
    taken = codes.take(pa.array(np.maximum(index, 0).astype(np.int64))).cast(pa.string())
    return pc.if_else(pa.array(index >= 0), taken, pa.scalar(None, pa.string()))


def _truth(people, panel, params: Parameters, seed: int, persons: int, cpy: int,
           row_counts: dict[str, int], faults: pa.Table) -> dict[str, Any]:
    planted = panel.truth
    by_register: dict[str, dict[str, dict[str, int]]] = {}
    regs = faults.column("register").to_pylist()
    kinds = faults.column("kind").to_pylist()
    counts = faults.column("rows").to_numpy()
    for reg, kind, rows in zip(regs, kinds, counts):  # one loop over fault records (hundreds)
        slot = by_register.setdefault(reg, {}).setdefault(kind, {"codes": 0, "rows": 0})
        slot["codes"] += 1
        slot["rows"] += int(rows)
    horizons = list(range(0, 13))
    return {
        "generator": "safepool.synth",
        "format": FORMAT_VERSION,
        "seed": seed,
        "persons": persons,
        "clients_per_year": cpy,
        "window": {"first_quarter": _time.QUARTER_LABELS[0], "last_quarter": _time.QUARTER_LABELS[-1],
                   "programme_first_quarter": _time.QUARTER_LABELS[_time.PROGRAMME_START_QUARTER]},
        "design": DESIGN,
        "parameters": params.as_dict(),
        "selection": {
            "eligible": "immigrants (population register immigration date before the first day of "
                        "q) with an employment-register row in quarter q-1 (living in Espoo at its "
                        "end), aged 18-64 on the first day of q, not clients before",
            "score": "sum of coefficient * covariate; each quarter k entries (the yearly target "
                     "spread by season_weights, cumulative rounding) are drawn without "
                     "replacement with probability proportional to exp(score); the intercept "
                     "reported per quarter makes sum(sigmoid(intercept + score)) = k",
            "covariates": SELECTION_COVARIATES,
            "coefficients": dict(params.selection_coefficients),
            "latent_traits_used": False,
        },
        "population": {
            "persons": persons,
            "population_register_rows": row_counts["population"],
            "immigrants": int(people.immigrant.sum()),
            "native_born": int((~people.immigrant).sum()),
            "born_in_espoo_2009_2024": int((people.category == BORN).sum()),
            "native_moved_in_2009_2024": int((people.category == NATIVE_MOVER).sum()),
            "immigrants_moved_in_2009_2024": int(((people.category == IMMIGRANT)
                                                  & (people.move_in >= WINDOW_START)).sum()),
            "deaths_2009_2024": int((people.death != NODATE).sum()),
            "moved_out_2009_2024": int((people.move_out != NODATE).sum()),
            "employment_rate_15_74": round(float((panel.code[panel.in_panel] == EMPLOYED).mean()), 4),
        },
        "row_counts": row_counts,
        "clients": planted["clients"],
        "effect": {
            "description": "structural effect of entry on the employment probability at horizon h "
                           "quarters after the entry quarter: effect_max * min(h / ramp, 1) for "
                           "h >= 0 (0 at entry), times the person's multiplier (sex x language "
                           "level), capped at the probability cap; on top, log earnings of the "
                           "employed rise by earnings_log_effect_max * min(h / ramp, 1); no effect "
                           "before entry. The planted truth below is the exact sample ATT with "
                           "common random numbers, over clients observed (a row in the "
                           "employment register) at entry + h.",
            "structural_curve": {"horizons": horizons,
                                 "employment_probability": params.effect_curve(horizons)},
            "multipliers": {"sex": params.effect_multiplier_sex,
                            "language_level": params.effect_multiplier_language_level},
            "units": {"employment": "difference in the share employed (main activity 11); "
                                    "0.10 = 10 percentage points",
                      "earnings": "EUR per quarter"},
        },
        "att": planted["att"],
        "att_by_subgroup": planted["att_by_subgroup"],
        "naive_difference": planted["naive_difference"],
        "faults": {"kinds": FAULT_KINDS, "by_register": by_register,
                   "total_codes": int(faults.num_rows),
                   "total_rows": int(counts.sum()) if counts.size else 0},
        "codes": {
            "countries": COUNTRIES,
            "permit_grounds": GROUNDS,
            "language_levels": LANGUAGE_LEVELS,
            "main_activity": {"11": "employed", "12": "unemployed", "22": "student",
                              "24": "pensioner (outside labour force)",
                              "29": "other outside labour force"},
        },
    }


DESIGN = (
    "Synthetic Espoo 2009-2024. Immigrants (about a quarter of the ever-resident population) may "
    "enter the skills centre from 2019Q1 with a probability that depends only on observable "
    "register background measured before the entry quarter (see selection). Employment is a "
    "persistent latent-uniform process whose probability depends on latent ability, observables "
    "(age, registered education, years in Finland, language, permit grounds, sex, children), the "
    "business cycle and the previous quarter's status. Clients' outcomes are simulated with and "
    "without entry using common random numbers, so the ATT is known exactly; the naive "
    "comparison with never-client immigrants is biased downward because clients are selected on "
    "unemployment, low earnings and low education, which also reflect low latent ability. "
    "Matching on the selection covariates at the entry quarter (risk-set matching) recovers the "
    "effect."
)
