"""The study cohort from the pool: risk sets of clients and still-eligible persons per entry quarter.

Everything is DuckDB SQL over the pool's pseudonymised tables, run on the analyst's read-only
connection (temporary tables only):

1. a dense person-quarter panel (quarter index = year * 4 + quarter - 1) of the measures the
   study needs, for the persons who may ever be eligible, over the period widened by the
   longest look-back and the event window;
2. the units: for each entry quarter q of the period, the persons entering the treatment at q
   and the persons still eligible and not yet treated at q (immigrated before q, living in the
   area on the last day of q-1, aged within the range on the first day of q), with covariates
   measured strictly before q (window sums over q-k..q-1 of the panel, the permit valid on the
   last day of q-1, degrees completed before the calendar year of q);
3. after matching, the outcomes of the matched units only, wide (f"{outcome}@{h}"): missing
   when not observed (no employment-register row: moved away, died, outside ages 15-74) and, for
   a control who later enters the treatment, from its own entry quarter on (censored).

The vocabularies below (COVARIATES, OUTCOMES, SUBGROUPS) are the closed lists a study file may
name. Family (marital status, children) is the population register's state at extraction, not
at q: a known limitation of that register.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from safepool.errors import SafepoolError
from safepool.governance.form import parse_quarter

if TYPE_CHECKING:
    from safepool.study.studyfile import StudyFile

PERSON = "pid"
DECIMALS = 6  # sums of money are rounded to this many decimals so that they do not depend on row order
PANEL = "study_panel"
UNITS = "study_units"
ENTRIES = "study_entries"


class CohortError(SafepoolError):
    """The pool cannot give the cohort the study file asks for; names the field or table."""


def quarter_index(label: str) -> int:
    year, quarter = parse_quarter(label)
    return year * 4 + quarter - 1


def _of_date(column: str) -> str:
    return f"(year({column}) * 4 + quarter({column}) - 1)"


def _of_quarter_text(column: str) -> str:
    return f"(CAST(substr({column}, 1, 4) AS INTEGER) * 4 + CAST(substr({column}, 6, 1) AS INTEGER) - 1)"


def _of_yyyymm(column: str) -> str:
    return f"(({column} // 100) * 4 + (({column} % 100) - 1) // 3)"


FIRST_DAY = "make_date(CAST(t // 4 AS INTEGER), CAST((t % 4) * 3 + 1 AS INTEGER), 1)"
"""SQL: the first day of quarter index t."""


@dataclass(frozen=True)
class Measure:
    """One number per person and quarter, aggregated from one pool table (0 when no row)."""

    table: str
    quarter: str  # SQL quarter index of a row
    value: str  # SQL aggregate over the person's rows in the quarter
    columns: tuple[str, ...]  # the table's columns it reads


_EMPLOYMENT_QUARTER = _of_quarter_text("quarter")
MEASURES: dict[str, Measure] = {
    "observed": Measure("employment", _EMPLOYMENT_QUARTER, "1", ("quarter",)),
    "employed": Measure("employment", _EMPLOYMENT_QUARTER, "max(CAST(main_activity = '11' AS INTEGER))",
                        ("quarter", "main_activity")),
    "unemployed": Measure("employment", _EMPLOYMENT_QUARTER, "max(CAST(main_activity = '12' AS INTEGER))",
                          ("quarter", "main_activity")),
    "earnings": Measure("employment", _EMPLOYMENT_QUARTER, "sum(earnings)", ("quarter", "earnings")),
    "benefits": Measure("benefits", _of_yyyymm("month"), "sum(amount)", ("month", "amount")),
    "social_assistance": Measure("social_assistance", _of_date("payment_date"), "sum(amount)",
                                 ("payment_date", "amount")),
    "employment_services": Measure("employment_services", _of_date("event_date"), "count(*)", ("event_date",)),
    "social_health_visits": Measure("social_health", _of_date("visit_date"), "count(*)", ("visit_date",)),
}


@dataclass(frozen=True)
class Covariate:
    """A background variable measured before the entry quarter.

    `columns` maps each produced column to SQL over the unit row; `past` names the panel window
    sums it reads (measure, quarters), available as past_<measure>_<quarters>. A categorical
    covariate produces one text column, one-hot encoded after the query.
    """

    description: str
    columns: dict[str, str]
    past: tuple[tuple[str, int], ...] = ()
    categorical: bool = False


def _window(measure: str, quarters: int, description: str, column: str, sql: str | None = None) -> Covariate:
    return Covariate(description, {column: sql or f"past_{measure}_{quarters}"}, ((measure, quarters),))


COVARIATES: dict[str, Covariate] = {
    "unemployed_quarters_8": _window("unemployed", 8, "quarters unemployed (main activity 12) in q-8..q-1",
                                     "unemployed_quarters_8"),
    "unemployed_quarters_12": _window("unemployed", 12, "quarters unemployed (main activity 12) in q-12..q-1",
                                      "unemployed_quarters_12"),
    "employed_quarters_8": _window("employed", 8, "quarters employed (main activity 11) in q-8..q-1",
                                   "employed_quarters_8"),
    "earnings_4": _window("earnings", 4, "earnings in q-4..q-1, EUR", "earnings_4"),
    "log_earnings_4": _window("earnings", 4, "ln(1 + earnings in q-4..q-1 / 1000 EUR)", "log_earnings_4",
                              "ln(1 + past_earnings_4 / 1000)"),
    "benefits_4": _window("benefits", 4, "Kela benefits received in q-4..q-1, EUR", "benefits_4"),
    "social_assistance_4": _window("social_assistance", 4, "social assistance received in q-4..q-1, EUR",
                                   "social_assistance_4"),
    "employment_services_4": _window("employment_services", 4, "employment-service events in q-4..q-1",
                                     "employment_services_4"),
    "social_health_visits_4": _window("social_health_visits", 4, "social and health service visits in q-4..q-1",
                                      "social_health_visits_4"),
    "age": Covariate("age on the first day of q, and (age - 40)^2 / 100",
                     {"age": "age", "age_squared": "(age - 40) ^ 2 / 100"}),
    "sex": Covariate("1 if female", {"female": "CAST(sex = 2 AS INTEGER)"}),
    "family": Covariate("married or in a registered partnership; number of children (state at extraction)",
                        {"married": "CAST(coalesce(marital_status, 0) = 2 AS INTEGER)",
                         "children": "coalesce(children, 0)"}),
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

SUBGROUPS: dict[str, str] = {
    "sex": "CASE WHEN sex = 2 THEN 'female' ELSE 'male' END",
    "permit_grounds": "permit_grounds",
    "education": "education",
    "native_language": "native_language",
    "age_group": "CASE WHEN age < 30 THEN '18-29' WHEN age < 45 THEN '30-44' ELSE '45-64' END",
}
"""Subgroups by unit attributes; a study may also name treatment.<column> (the treated unit's
value in the treatment table at its first entry)."""

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
    _units(con, study, first, last)
    units = in_data_order(con.sql(f"SELECT * FROM {UNITS}").df())
    say("covariates")
    units, covariates = _encode(units, study)
    flow = _flow(con, study, units, first, last)
    return Cohort(units=units, covariates=covariates, flow=flow)


def in_data_order(units: pd.DataFrame) -> pd.DataFrame:
    """Units sorted by quarter, then by every column but the pseudonym, numbered 0.. in that order.

    A pseudonym is a keyed hash: another permit's key permutes them, so no order, tie-break or
    number of the study may come from it. Only units identical in every column are left in an
    arbitrary order among themselves, and those are exchangeable for every step after this.
    """
    by = ["t"] + [column for column in units.columns if column not in ("t", PERSON)]
    return units.sort_values(by, kind="stable", na_position="last").reset_index(drop=True)


def needed_columns(study: StudyFile) -> dict[str, list[str]]:
    """The pool tables and columns the study reads (what the permit must cover)."""
    needed: dict[str, set[str]] = {
        "population": {"birth_date", "sex", "native_language", "immigration_date", "move_in_date", "move_out_date",
                       "death_date", "marital_status", "children"},
        "residence_permits": {"grounds", "start_date", "end_date"},
        "education": {"year", "level"},
    }
    needed.setdefault(study.treatment.table, set()).update({study.treatment.date, *_treatment_subgroups(study)})
    for name in _measures(study):
        needed.setdefault(MEASURES[name].table, set()).update(MEASURES[name].columns)
    return {table: sorted(columns) for table, columns in sorted(needed.items())}


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
        SELECT pid, min("{date}") AS entry_date, {_of_date(f'min("{date}")')} AS entry_t{extra}
        FROM "{study.treatment.table}" WHERE "{date}" IS NOT NULL GROUP BY pid""")


def _candidates(study: StudyFile) -> str:
    """SQL: the persons who may ever be eligible (immigrants, when the study asks for them)."""
    immigrants = "WHERE immigration_date IS NOT NULL" if study.eligible.immigrants else ""
    return f"SELECT DISTINCT pid FROM population {immigrants}"


def _panel(con: duckdb.DuckDBPyConnection, study: StudyFile, t_from: int, t_to: int) -> None:
    """Dense person-quarter panel of the measures (0 when a table has no row for the quarter)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE study_candidates AS {_candidates(study)}")
    by_table: dict[str, list[str]] = {}
    for name in _measures(study):
        by_table.setdefault(MEASURES[name].table, []).append(name)
    joins, selects = [], []
    for i, (table, names) in enumerate(sorted(by_table.items())):
        quarter = MEASURES[names[0]].quarter
        # sums rounded to 1e-6: a floating-point sum depends on the order rows are added in, and
        # the rows' order in a pool is not the data's (another key, another order)
        values = ", ".join(f"round({MEASURES[n].value}, {DECIMALS}) AS {n}" for n in names)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE study_measures_{i} AS
            SELECT pid, {quarter} AS t, {values} FROM "{table}" SEMI JOIN study_candidates USING (pid)
            WHERE {quarter} BETWEEN {t_from} AND {t_to} GROUP BY ALL""")
        joins.append(f"LEFT JOIN study_measures_{i} m{i} USING (pid, t)")
        selects += [f"coalesce(m{i}.{n}, 0) AS {n}" for n in names]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {PANEL} AS
        WITH grid AS (SELECT pid, range AS t FROM study_candidates CROSS JOIN range({t_from}, {t_to + 1}))
        SELECT grid.pid, grid.t, {", ".join(selects)} FROM grid {" ".join(joins)}""")
    for i in range(len(by_table)):
        con.execute(f"DROP TABLE study_measures_{i}")


def _units(con: duckdb.DuckDBPyConnection, study: StudyFile, first: int, last: int) -> None:
    """The risk sets: per entry quarter, the entrants and the persons still eligible, with covariates."""
    low, high = study.eligible.age
    immigrated = "AND p.immigration_date < b.qstart" if study.eligible.immigrants else ""
    day_before = "b.qstart - 1"
    resident = (f"AND p.move_in_date <= {day_before} AND coalesce(p.move_out_date, DATE '9999-12-31') > {day_before} "
                f"AND coalesce(p.death_date, DATE '9999-12-31') > {day_before}") if study.eligible.resident else ""
    treatment_columns = "".join(f', e."{TREATMENT_SUBGROUP}{c}"' for c in _treatment_subgroups(study))
    windows = past_windows(study)
    longest = max([quarters for _, quarters in windows], default=1)
    past = ", ".join([f"round(coalesce(sum(h.{measure}) FILTER (WHERE h.t >= u.t - {quarters}), 0), {DECIMALS}) "
                      f"AS past_{measure}_{quarters}"
                      for measure, quarters in windows] or ["0 AS no_past"])
    measured = [f"{sql} AS {column}" for name in study.covariates for column, sql in COVARIATES[name].columns.items()]
    measured += [f'{SUBGROUPS[s]} AS "subgroup:{s}"' for s in study.subgroups if s in SUBGROUPS]
    measured += [f'"{s}" AS "subgroup:{s}"' for s in study.subgroups if s.startswith(TREATMENT_SUBGROUP)]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {UNITS} AS
        WITH base AS (
            SELECT h.*, {FIRST_DAY} AS qstart FROM {PANEL} h WHERE h.t BETWEEN {first} AND {last}),
        eligible AS (
            SELECT b.*, p.sex, coalesce(p.native_language, 'unknown') AS native_language, p.marital_status,
                   p.children, e.entry_t{treatment_columns}, CAST(e.entry_t = b.t AS INTEGER) AS treated,
                   date_diff('day', p.birth_date, b.qstart) / 365.25 AS age,
                   date_diff('day', p.immigration_date, b.qstart) / 365.25 AS years_since_immigration
            FROM base b JOIN population p USING (pid) LEFT JOIN {ENTRIES} e USING (pid)
            WHERE (e.entry_t IS NULL OR e.entry_t >= b.t) {immigrated} {resident}
              AND date_diff('day', p.birth_date, b.qstart) / 365.25 >= {low}
              AND date_diff('day', p.birth_date, b.qstart) / 365.25 < {high + 1}),
        grounds AS (
            SELECT u.pid, u.t, arg_min(r.grounds, (r.start_date, r.grounds)) AS grounds
            FROM eligible u JOIN residence_permits r
              ON r.pid = u.pid AND r.start_date <= u.qstart - 1 AND (r.end_date IS NULL OR r.end_date >= u.qstart - 1)
            GROUP BY u.pid, u.t),
        past AS (
            SELECT u.pid, u.t, {past}
            FROM eligible u JOIN {PANEL} h ON h.pid = u.pid AND h.t BETWEEN u.t - {longest} AND u.t - 1
            GROUP BY u.pid, u.t),
        degrees AS (
            SELECT u.pid, u.t, max(TRY_CAST(d.level AS INTEGER)) AS level
            FROM eligible u JOIN education d ON d.pid = u.pid AND d.year < year(u.qstart)
            GROUP BY u.pid, u.t),
        described AS (
            SELECT u.*, past.* EXCLUDE (pid, t), coalesce(g.grounds, 'none') AS permit_grounds,
                   CASE WHEN coalesce(d.level, 0) >= 6 THEN 'tertiary'
                        WHEN coalesce(d.level, 0) >= 3 THEN 'secondary' ELSE 'basic or none' END AS education
            FROM eligible u LEFT JOIN grounds g USING (pid, t) LEFT JOIN degrees d USING (pid, t)
            LEFT JOIN past USING (pid, t))
        SELECT pid, t, CAST(t // 4 AS VARCHAR) || 'Q' || CAST(t % 4 + 1 AS VARCHAR) AS stratum,
               coalesce(treated, 0) AS treated, entry_t, {", ".join(dict.fromkeys(measured))}
        FROM described""")


def _encode(frame: pd.DataFrame, study: StudyFile) -> tuple[pd.DataFrame, list[str]]:
    """The matcher's numeric covariates; a categorical is one-hot without its most common level."""
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
                frame[dummy] = (frame[column] == level).astype("float64")
                covariates.append(dummy)
    return frame, covariates


def _flow(con: duckdb.DuckDBPyConnection, study: StudyFile, units: pd.DataFrame, first: int, last: int
          ) -> pd.DataFrame:
    """How many persons each step kept and why the others left (counts of persons, and of units)."""
    population = con.sql("SELECT count(DISTINCT pid) FROM population").fetchall()[0][0]
    candidates = con.sql(f"SELECT count(*) FROM ({_candidates(study)})").fetchall()[0][0]
    entrants = con.sql(f"""SELECT count(*), count(*) FILTER (WHERE pid IN (SELECT pid FROM population))
                           FROM {ENTRIES} WHERE entry_t BETWEEN {first} AND {last}""").fetchall()[0]
    earlier = con.sql(f"SELECT count(*) FROM {ENTRIES} WHERE entry_t < {first}").fetchall()[0][0]
    treated = units[units["treated"] == 1]
    controls = units[units["treated"] == 0]
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
        ("entrants eligible at their entry quarter (treated units)", len(treated), len(treated),
         entrants[1] - len(treated), "entrant not eligible at entry (not an immigrant, not living in the area, "
                                     "or outside the age range)"),
        ("persons eligible as controls at one or more entry quarters", controls["pid"].nunique(), len(controls),
         0, ""),
        ("persons who entered the treatment before the period", earlier, None, 0, "excluded from every risk set"),
    ]
    return pd.DataFrame(rows, columns=["step", "persons", "units", "removed", "reason"])


def attach_outcomes(con: duckdb.DuckDBPyConnection, units: pd.DataFrame, outcomes: list[str],
                    horizons: list[int]) -> pd.DataFrame:
    """units (with pid, t, treated, entry_t) plus wide f"{outcome}@{h}" columns, same index and order.

    Missing when not observed at t+h, and for controls from their own entry quarter on.
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
            WITH offsets AS (SELECT unnest({list(horizons)}) AS horizon),
            wanted AS (
                SELECT k.unit, k.pid, o.horizon, k.t + o.horizon AS at,
                       (k.treated = 0 AND k.entry_t IS NOT NULL AND k.t + o.horizon >= k.entry_t) AS censored
                FROM study_keys k CROSS JOIN offsets o)
            SELECT w.unit, w.horizon, {values}
            FROM wanted w LEFT JOIN {PANEL} h ON h.pid = w.pid AND h.t = w.at""").df()
    finally:
        con.unregister("study_keys")
    wide = long.pivot(index="unit", columns="horizon", values=outcomes)
    wide.columns = [f"{outcome}@{h}" for outcome, h in wide.columns]
    ordered = [f"{o}@{h}" for o in outcomes for h in horizons]
    wide = wide.reindex(index=np.arange(len(units)), columns=ordered)
    wide.index = units.index
    return pd.concat([units, wide.astype("float64")], axis=1)
