"""The study cohort from the pool: risk sets of clients and still-eligible persons per entry quarter.

Everything is DuckDB SQL over the pool's pseudonymised tables, run on the analyst's read-only
connection (temporary tables only):

1. a person-quarter panel (quarter index = year * 4 + quarter - 1) of the measures the study
   needs, for the persons who may ever be eligible, over the period widened by the longest
   look-back and the event window (only the quarters in which some table has a row: a window
   over the others sums to 0, an outcome there is not observed);
2. the units: for each entry quarter q of the period, every person who may ever be eligible is
   checked (whether or not the panel has a row at q): the persons entering the treatment at q
   and the persons still eligible and not yet treated at q (immigrated before q, living in the
   area on the last day of q-1, aged within the range on the first day of q), with covariates
   measured strictly before q (window sums over q-k..q-1 of the panel, the permit valid on the
   last day of q-1, degrees completed before the calendar year of q);
3. after matching, the outcomes of the matched units only, wide (f"{outcome}@{h}"): missing
   when not observed (no employment-register row: moved away, died, outside ages 15-74) and, for
   a control who later enters the treatment, from its own entry quarter on (censored).

The vocabularies below (COVARIATES, OUTCOMES, SUBGROUPS) are the closed lists a study file may
name. Each is built from features of the features layer (safepool.features, its features.yaml):
this module names features only, never a register's table, variable or code. Family (marital
status, children) is the population register's state at extraction, not at q: a known
limitation of that register.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from safepool.faults import Invalid
from safepool.features import FeatureSet, load_features
from safepool.governance.form import parse_quarter
from safepool.study.ordering import frame_order

if TYPE_CHECKING:
    from safepool.study.studyfile import StudyFile

PERSON = "pid"
FEATURES: FeatureSet = load_features()
PANEL = "study_panel"
ENTRIES = "study_entries"
CHUNK_QUARTERS = 6  # entry quarters whose units are fetched at once (memory against per-query overhead)


class CohortError(Invalid):
    """The pool cannot give the cohort the study file asks for; names the field or table."""


def quarter_index(label: str) -> int:
    year, quarter = parse_quarter(label)
    return year * 4 + quarter - 1


FIRST_DAY = FEATURES.sql.first_day("t")
"""SQL: the first day of quarter index t."""


@dataclass(frozen=True)
class Measure:
    """One number per person and quarter, aggregated from one pool table (0 when no row): the
    features layer's quarterly feature of the same name, as its SQL reads."""

    table: str
    quarter: str  # SQL quarter index of a row
    value: str  # SQL aggregate over the person's rows in the quarter
    columns: tuple[str, ...]  # the table's columns it reads


def _measure(name: str) -> Measure:
    feature = FEATURES.spec.quarterly[name]
    return Measure(feature.table, FEATURES.quarter_of_rows(feature.table), FEATURES.quarterly_value(name),
                   tuple(source.split(".", 1)[1] for source in FEATURES.describe(name).sources))


MEASURES: dict[str, Measure] = {name: _measure(name) for name in FEATURES.spec.quarterly}


@dataclass(frozen=True)
class Covariate:
    """A background variable measured before the entry quarter, from features.

    `select` maps each produced column to SQL over feature columns (a window feature counts the
    quarters before q). `columns` shows the same with each feature written out as the features
    layer defines it (a window as past_<measure>_<quarters>), which is what the reports label.
    A categorical covariate produces one text column, one-hot encoded after the query.
    """

    description: str
    select: dict[str, str]
    categorical: bool = False

    @property
    def features(self) -> list[str]:
        words = {word for sql in self.select.values() for word in re.findall(r"[a-z_][a-z0-9_]*", sql)}
        return [name for name in FEATURES.names if name in words]

    @property
    def past(self) -> tuple[tuple[str, int], ...]:
        """The quarterly features and look-backs of its window features."""
        return tuple(FEATURES.window_of(name) for name in self.features if FEATURES.kind(name) == "windows")

    @property
    def columns(self) -> dict[str, str]:
        if self.categorical:  # one text column, named as the feature
            return dict(self.select)
        return {column: re.sub(r"[a-z_][a-z0-9_]*", lambda m: _written_out(m.group(0)), sql)
                for column, sql in self.select.items()}


def _written_out(name: str) -> str:
    """A feature as the reports read it: a window as past_<measure>_<quarters>, a comparison or a
    value of the person's row as its SQL over the row's columns, any other feature by its name."""
    kind = FEATURES.sections.get(name)
    if kind == "windows":
        measure, quarters = FEATURES.window_of(name)
        return f"past_{measure}_{quarters}"
    if kind == "attributes" and (FEATURES.spec.attributes[name].equals or FEATURES.spec.attributes[name].value):
        return FEATURES.attribute(name, None, "qstart")
    return name


def _window(name: str) -> Covariate:
    return Covariate(FEATURES.describe(name).description, {name: name})


COVARIATES: dict[str, Covariate] = {
    "unemployed_quarters_8": _window("unemployed_quarters_8"),
    "unemployed_quarters_12": _window("unemployed_quarters_12"),
    "employed_quarters_8": _window("employed_quarters_8"),
    "earnings_4": _window("earnings_4"),
    "log_earnings_4": Covariate("ln(1 + earnings in q-4..q-1 / 1000 EUR)", {"log_earnings_4": "ln(1 + earnings_4 / 1000)"}),
    "benefits_4": _window("benefits_4"),
    "social_assistance_4": _window("social_assistance_4"),
    "employment_services_4": _window("employment_services_4"),
    "social_health_visits_4": _window("social_health_visits_4"),
    "age": Covariate("age on the first day of q, and (age - 40)^2 / 100",
                     {"age": "age", "age_squared": "(age - 40) ^ 2 / 100"}),
    "sex": Covariate("1 if female", {"female": "female"}),
    "family": Covariate("married or in a registered partnership; number of children (state at extraction)",
                        {"married": "married", "children": "children"}),
    "years_since_immigration": Covariate("years from immigration to the first day of q, and whether under 5",
                                         {"years_since_immigration": "years_since_immigration",
                                          "immigrated_within_5y": "CAST(years_since_immigration < 5 AS INTEGER)"}),
    "native_language": Covariate("native language (one-hot)", {"native_language": "native_language"},
                                 categorical=True),
    "permit_grounds": Covariate("grounds of the residence permit valid on the last day of q-1 (one-hot)",
                                {"permit_grounds": "permit_grounds"}, categorical=True),
    "education": Covariate("highest degree completed before the calendar year of q: basic or none, "
                           "secondary (levels 3-5), tertiary (6-8) (one-hot)",
                           {"education": "education"}, categorical=True),
}


@dataclass(frozen=True)
class Outcome:
    description: str
    measure: str


OUTCOMES: dict[str, Outcome] = {
    "employment": Outcome("employed (main activity 11) in the quarter: share", "employed"),
    "unemployment": Outcome("unemployed (main activity 12) in the quarter: share", "unemployed"),
    "earnings": Outcome("earnings in the quarter, EUR", "earnings"),
    "benefits": Outcome("Kela benefits received in the quarter, EUR", "benefits"),
    "social_assistance": Outcome("social assistance received in the quarter, EUR", "social_assistance"),
    "employment_services": Outcome("employment-service events in the quarter", "employment_services"),
    "social_health_visits": Outcome("social and health service visits in the quarter", "social_health_visits"),
}

def outcome_rows(outcome: str) -> str | None:
    """The register whose rows an outcome adds up in a quarter (a sum of its values, or its rows
    counted, with no codes chosen), as a query of that register over one quarter adds them up; None
    for a share and for a part of the rows."""
    feature = FEATURES.spec.quarterly.get(OUTCOMES[outcome].measure)
    if feature is None or feature.aggregate not in ("sum", "count") or feature.where:
        return None
    return feature.table


SUBGROUPS: dict[str, str] = {
    "sex": "sex_group",
    "permit_grounds": "permit_grounds",
    "education": "education",
    "native_language": "native_language",
    "age_group": "age_group",
}
"""Subgroups by unit features (each the name of a feature); a study may also name
treatment.<column> (the treated unit's value in the treatment table at its first entry)."""
ELIGIBILITY = {"immigrants": "immigrated", "resident": "living_in_area", "age": "age", "candidates": "immigrant"}
"""The features that decide who is in a risk set: immigrated before q, living in the area on the
last day of q-1, age on the first day of q; who may ever be (immigrants, when the study asks)."""

TREATMENT_SUBGROUP = "treatment."


@dataclass
class Cohort:
    """The units of all risk sets, ready for the matcher, and how the cohort was formed.

    units: one row per unit (pid, t, stratum, treated, entry_t (own first entry, NaN if
    never), covariate columns, subgroup columns); the row index is the unit's number.
    covariates: the numeric columns for the matcher (categoricals one-hot, reference level =
    the most common level dropped). flow: step, persons, units, removed, reason.
    """

    units: pd.DataFrame
    covariates: list[str]
    flow: pd.DataFrame


def past_windows(study: StudyFile) -> list[tuple[str, int]]:
    return sorted({window for name in study.covariates for window in COVARIATES[name].past})


def build_cohort(con: duckdb.DuckDBPyConnection, study: StudyFile,
                 progress: Callable[[str], None] | None = None) -> Cohort:
    """Panel, units and cohort flow for the study on an open pool connection."""
    say = progress or (lambda _stage: None)
    _require_tables(con, study)
    first, last = quarter_index(study.period.start), quarter_index(study.period.end)
    lookback = max([quarters for _, quarters in past_windows(study)] + [-study.event_window.first, 1])
    say("entries")
    _entries(con, study)
    say("panel")
    _panel(con, study, first - lookback, last + study.event_window.last)
    say("risk sets")
    units = _risk_sets(con, study, first, last)
    say("covariates")
    units, covariates = _encode(units, study)
    flow = _flow(con, study, units, first, last)
    return Cohort(units=units, covariates=covariates, flow=flow)


def _risk_sets(con: duckdb.DuckDBPyConnection, study: StudyFile, first: int, last: int) -> pd.DataFrame:
    """The units of entry quarters first..last in data order, fetched CHUNK_QUARTERS quarters at a
    time: DuckDB's working memory is then one chunk's, and a chunk sorted on its own is already in
    its place, the quarter being the first sort key."""
    parts = [in_data_order(con.sql(_units(con, study, start, min(start + CHUNK_QUARTERS - 1, last))).df())
             for start in range(first, last + 1, CHUNK_QUARTERS)]
    con.execute("DROP TABLE study_eligible; DROP TABLE study_candidates")  # the panel and entries stay
    kept = [part for part in parts if len(part)] or parts[:1]
    return pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]


def in_data_order(units: pd.DataFrame) -> pd.DataFrame:
    """Units sorted by quarter, then by every column but the pseudonym, numbered 0.. in that order.

    A pseudonym is a keyed hash: another permit's key permutes them, so no order, tie-break or
    number of the study may come from it. Only units identical in every column are left in an
    arbitrary order among themselves, and those are exchangeable for every step after this.
    """
    by = ["t"] + [column for column in units.columns if column not in ("t", PERSON)]
    return units.take(frame_order(units, by)).reset_index(drop=True)


def needed_columns(study: StudyFile) -> dict[str, list[str]]:
    """The pool tables and columns the study reads (what the permit must cover): the sources of
    its features, and the treatment table's."""
    needed = FEATURES.sources(_unit_features(study) + _measures(study))
    needed.setdefault(study.treatment.table, set()).update({study.treatment.date, *_treatment_subgroups(study)})
    return {table: sorted(columns) for table, columns in sorted(needed.items())}


def _unit_features(study: StudyFile) -> list[str]:
    """The features of a unit: who is eligible, the covariates, the subgroups."""
    names = list(ELIGIBILITY.values())
    names += [feature for name in study.covariates for feature in COVARIATES[name].features]
    names += [SUBGROUPS[s] for s in study.subgroups if s in SUBGROUPS]
    return list(dict.fromkeys(names))


def _require_tables(con: duckdb.DuckDBPyConnection, study: StudyFile) -> None:
    present: dict[str, set[str]] = {}
    for table, column in con.sql("SELECT table_name, column_name FROM duckdb_columns()").fetchall():
        present.setdefault(table, set()).add(column)
    problems = []
    for table, columns in needed_columns(study).items():
        if table not in present:
            problems.append(f"the pool has no table {table} (is it in the permit?)")
        elif missing := sorted(set(columns) - present[table] | ({"pid"} - present[table])):
            problems.append(f"table {table} has no column(s) {', '.join(missing)}")
    if problems:
        raise CohortError("the pool cannot give this study's cohort: " + "; ".join(problems))


def _measures(study: StudyFile) -> list[str]:
    """The quarterly features of the panel: observed (for the outcomes), the windows' and the outcomes'."""
    names = {"observed"} | {measure for measure, _ in past_windows(study)}
    names |= {OUTCOMES[outcome].measure for outcome in study.outcomes}
    return sorted(names)


def _treatment_subgroups(study: StudyFile) -> list[str]:
    return [s.removeprefix(TREATMENT_SUBGROUP) for s in study.subgroups if s.startswith(TREATMENT_SUBGROUP)]


def _entries(con: duckdb.DuckDBPyConnection, study: StudyFile) -> None:
    """Each person's first treatment entry: its quarter and the treatment table's subgroup columns."""
    date = study.treatment.date
    # a tie on the date goes to the smallest value, never to whichever row comes first
    extra = "".join(f', arg_min("{c}", ("{date}", "{c}")) AS "{TREATMENT_SUBGROUP}{c}"'
                    for c in _treatment_subgroups(study))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {ENTRIES} AS
        SELECT pid, min("{date}") AS entry_date, {FEATURES.sql.quarter_of(f'min("{date}")', "date")} AS entry_t{extra}
        FROM "{study.treatment.table}" WHERE "{date}" IS NOT NULL GROUP BY pid""")


def _candidates(study: StudyFile) -> str:
    """SQL: the persons who may ever be eligible (immigrants, when the study asks for them)."""
    immigrants = f"WHERE {FEATURES.attribute(ELIGIBILITY['candidates'], 'p', 'NULL')}" if study.eligible.immigrants \
        else ""
    return f"SELECT DISTINCT pid FROM {FEATURES.person_table} p {immigrants}"


def _panel(con: duckdb.DuckDBPyConnection, study: StudyFile, t_from: int, t_to: int) -> None:
    """Dense person-quarter panel of the measures (0 when a table has no row for the quarter)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE study_candidates AS {_candidates(study)}")
    FEATURES.build_panel(con, PANEL, "study_candidates", _measures(study), t_from, t_to)


def _units(con: duckdb.DuckDBPyConnection, study: StudyFile, first: int, last: int) -> str:
    """SQL of the risk sets: per entry quarter, the entrants and the persons still eligible, with
    covariates (features on the first day of q; living in the area and the permit on the last day
    of q-1). Creates the temporary table study_eligible it reads; the rows go straight to the
    caller, never into a table of their own."""
    low, high = study.eligible.age
    day, day_before = "b.qstart", "b.qstart - 1"
    conditions = ["(e.entry_t IS NULL OR e.entry_t >= b.t)"]
    if study.eligible.immigrants:
        conditions.append(FEATURES.attribute(ELIGIBILITY["immigrants"], "p", day))
    if study.eligible.resident:
        conditions.append(FEATURES.attribute(ELIGIBILITY["resident"], "p", day_before))
    age = FEATURES.attribute(ELIGIBILITY["age"], "p", day)
    conditions += [f"{age} >= {low}", f"{age} < {high + 1}"]
    treatment_columns = "".join(f', e."{TREATMENT_SUBGROUP}{c}"' for c in _treatment_subgroups(study))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE study_eligible AS
        SELECT b.pid, b.t, b.qstart, e.entry_t{treatment_columns}, CAST(e.entry_t = b.t AS INTEGER) AS treated
        FROM (SELECT pid, t, {FIRST_DAY} AS qstart
              FROM (SELECT pid, range AS t FROM study_candidates CROSS JOIN range({first}, {last + 1}))) b
        JOIN {FEATURES.person_table} p USING (pid) LEFT JOIN {ENTRIES} e USING (pid)
        WHERE {" AND ".join(conditions)}""")
    features = FEATURES.at_day_sql("study_eligible", _unit_features(study), day="u.qstart", panel=PANEL,
                                   days={ELIGIBILITY["resident"]: "u.qstart - 1", "permit_grounds": "u.qstart - 1"})
    measured = [f"{sql} AS {column}" for name in study.covariates for column, sql in COVARIATES[name].select.items()]
    measured += [f'{SUBGROUPS[s]} AS "subgroup:{s}"' for s in study.subgroups if s in SUBGROUPS]
    measured += [f'"{s}" AS "subgroup:{s}"' for s in study.subgroups if s.startswith(TREATMENT_SUBGROUP)]
    return f"""
        SELECT pid, t, {FEATURES.sql.quarter_label("t")} AS stratum, coalesce(treated, 0) AS treated, entry_t,
               {", ".join(dict.fromkeys(measured))}
        FROM ({features}) described"""


def _encode(frame: pd.DataFrame, study: StudyFile) -> tuple[pd.DataFrame, list[str]]:
    """The matcher's numeric covariates; a categorical is one-hot without its most common level
    (0/1 bytes: the matcher and the balance read every covariate as float64, the same numbers)."""
    covariates: list[str] = []
    for name in study.covariates:
        builder = COVARIATES[name]
        for column in builder.columns:
            if not builder.categorical:
                frame[column] = frame[column].astype("float64")
                covariates.append(column)
                continue
            counts = frame[column].value_counts()
            levels = sorted(counts.index, key=lambda level: (-counts[level], str(level)))  # ties by name
            for level in sorted(levels[1:]):
                dummy = f"{column}_{level}".replace(" ", "_")
                frame[dummy] = (frame[column] == level).astype("uint8")  # 0/1: exact as float64 where read
                covariates.append(dummy)
    return frame, covariates


def _flow(con: duckdb.DuckDBPyConnection, study: StudyFile, units: pd.DataFrame, first: int, last: int
          ) -> pd.DataFrame:
    """How many persons each step kept and why the others left (counts of persons, and of units)."""
    persons = FEATURES.person_table
    population = con.sql(f"SELECT count(DISTINCT pid) FROM {persons}").fetchall()[0][0]
    candidates = con.sql(f"SELECT count(*) FROM ({_candidates(study)})").fetchall()[0][0]
    entrants = con.sql(f"""SELECT count(*), count(*) FILTER (WHERE pid IN (SELECT pid FROM {persons}))
                           FROM {ENTRIES} WHERE entry_t BETWEEN {first} AND {last}""").fetchall()[0]
    earlier = con.sql(f"SELECT count(*) FROM {ENTRIES} WHERE entry_t < {first}").fetchall()[0][0]
    treated = int((units["treated"] == 1).sum())  # counts only: no copy of the units' rows
    is_control = (units["treated"] == 0).to_numpy()
    controls, control_persons = int(is_control.sum()), units["pid"][is_control].nunique()
    in_units = units["pid"].nunique()
    rows = [
        ("persons in the population register", population, None, 0, ""),
        ("immigrants" if study.eligible.immigrants else "candidates", candidates, None, population - candidates,
         "not an immigrant (no immigration date)" if study.eligible.immigrants else ""),
        ("eligible at one or more entry quarters", in_units, len(units), candidates - in_units,
         "never eligible in the period: not living in the area, outside the age range, immigrated later, "
         "or entered the treatment before the period"),
        (f"entered the treatment {study.period.start}-{study.period.end}", entrants[0], None, 0, ""),
        ("entrants found in the population register", entrants[1], None, entrants[0] - entrants[1],
         "entrant not in the population register"),
        ("entrants eligible at their entry quarter (treated units)", treated, treated, entrants[1] - treated,
         "entrant not eligible at entry (not an immigrant, not living in the area, or outside the age range)"),
        ("persons eligible as controls at one or more entry quarters", control_persons, controls, 0, ""),
        ("persons who entered the treatment before the period", earlier, None, 0, "excluded from every risk set"),
    ]
    return pd.DataFrame(rows, columns=["step", "persons", "units", "removed", "reason"])


def attach_outcomes(con: duckdb.DuckDBPyConnection, units: pd.DataFrame, outcomes: list[str],
                    horizons: list[int]) -> pd.DataFrame:
    """units (with pid, t, treated, entry_t) plus wide f"{outcome}@{h}" columns, same index and order.

    Missing when not observed at t+h, and for controls from their own entry quarter on. DuckDB
    gives one row per unit and horizon; each value is put straight into its place in the wide
    table (no pivot, no arithmetic on it).
    """
    keys = pd.DataFrame({"unit": np.arange(len(units)), "pid": units["pid"].to_numpy(),
                         "t": units["t"].to_numpy(), "treated": units["treated"].to_numpy(),
                         "entry_t": units["entry_t"].to_numpy()})
    con.register("study_keys", keys)
    try:
        values = ", ".join(
            f"CASE WHEN censored OR h.observed = 0 THEN NULL ELSE CAST(h.{OUTCOMES[o].measure} AS DOUBLE) END AS {o}"
            for o in outcomes)
        long = con.sql(f"""
            WITH offsets AS (SELECT unnest({list(range(len(horizons)))}) AS slot, unnest({list(horizons)}) AS horizon),
            wanted AS (
                SELECT k.unit, k.pid, o.slot, k.t + o.horizon AS at,
                       (k.treated = 0 AND k.entry_t IS NOT NULL AND k.t + o.horizon >= k.entry_t) AS censored
                FROM study_keys k CROSS JOIN offsets o)
            SELECT w.unit * {len(horizons)} + w.slot AS place, {values}
            FROM wanted w LEFT JOIN {PANEL} h ON h.pid = w.pid AND h.t = w.at""").df()
    finally:
        con.unregister("study_keys")
    wide = np.full((len(outcomes), len(units) * len(horizons)), np.nan)
    place = long["place"].to_numpy(np.int64)
    for i, outcome in enumerate(outcomes):
        wide[i, place] = long[outcome].to_numpy("float64", na_value=np.nan)
    block = wide.reshape(len(outcomes), len(units), len(horizons)).transpose(1, 0, 2).reshape(len(units), -1)
    columns = [f"{o}@{h}" for o in outcomes for h in horizons]
    return pd.concat([units, pd.DataFrame(block, index=units.index, columns=columns)], axis=1)
