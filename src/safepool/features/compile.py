"""FeatureSet: the features of a configuration, as SQL of one engine and as documentation.

Analyses ask for features by name; the set answers with SQL written by its dialect and with
each feature's definition, sources (table.variable) and unit. No analysis names a register's
table, variable or code: they are in the configuration only.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from safepool.faults import Invalid
from safepool.features.dialect import DIALECTS, DuckDBDialect, literal, quote
from safepool.features.spec import Attribute, FeatureSpec, Quarterly, Related
from safepool.yaml_files import load_model

PERSON = "pid"
DECIMALS = 6  # sums are rounded so that they do not depend on the order rows are added in
UNIT_KEY = "f_unit"  # the number at_day_sql gives each unit while it works (not in its result)
DEFAULT_FILE = "features.yaml"


class FeatureError(Invalid):
    """A feature that the configuration does not define, or asked for where it cannot be."""


@dataclass(frozen=True)
class FeatureDoc:
    """What the variables browser and the reports show of a feature."""

    name: str
    kind: str
    description: str
    definition: str
    sources: tuple[str, ...]  # table.variable
    unit: str


class FeatureSet:
    def __init__(self, spec: FeatureSpec, dialect: str = "duckdb") -> None:
        self.spec = spec
        self.sql: DuckDBDialect = DIALECTS[dialect]()
        self.sections = {name: section for section in ("quarterly", "attributes", "related", "family", "derived",
                                                       "windows")
                         for name in getattr(spec, section)}

    @property
    def person_table(self) -> str:
        return self.spec.person_table

    @property
    def names(self) -> list[str]:
        return list(self.sections)

    def kind(self, name: str) -> str:
        try:
            return self.sections[name]
        except KeyError:
            raise FeatureError(f"no feature {name} in the features configuration") from None

    def _definition(self, name: str):  # noqa: ANN202 - one of the spec's models
        return getattr(self.spec, self.kind(name))[name]

    # --- quarterly measures ------------------------------------------------------------------

    def quarterly_by_table(self, names: list[str]) -> dict[str, list[str]]:
        """The quarterly features asked for, grouped by the table they read (tables sorted)."""
        by_table: dict[str, list[str]] = {}
        for name in names:
            if self.kind(name) != "quarterly":
                raise FeatureError(f"{name} is not a quarterly feature")
            by_table.setdefault(self.spec.quarterly[name].table, []).append(name)
        return dict(sorted(by_table.items()))

    def quarter_of_rows(self, table: str) -> str:
        timing = self.spec.tables[table]
        return self.sql.quarter_of(quote(timing.time), timing.format)

    def quarterly_sql(self, table: str, names: list[str], persons: str, t_from: int, t_to: int) -> str:
        """One row per person (of the relation `persons`) and quarter t_from..t_to with rows in
        `table`: the quarter index t and each feature (sums rounded)."""
        quarter = self.quarter_of_rows(table)
        values = ", ".join(f"{self.sql.rounded(self._aggregate(self.spec.quarterly[n]), DECIMALS)} AS {quote(n)}"
                           for n in names)
        return (f"SELECT {PERSON}, {quarter} AS t, {values} FROM {quote(table)} SEMI JOIN {persons} USING ({PERSON}) "
                f"WHERE {quarter} BETWEEN {t_from} AND {t_to} GROUP BY ALL")

    def quarterly_value(self, name: str) -> str:
        """The SQL aggregate of a quarterly feature over a person's rows in a quarter."""
        if self.kind(name) != "quarterly":
            raise FeatureError(f"{name} is not a quarterly feature")
        return self._aggregate(self.spec.quarterly[name])

    def _aggregate(self, feature: Quarterly) -> str:
        condition = None
        if feature.where:
            (variable, codes), = feature.where.items()
            condition = self.sql.in_codes(quote(variable), codes)
        return self.sql.aggregate(feature.aggregate, quote(feature.of) if feature.of else None, condition)

    # --- the person's row on a day -------------------------------------------------------------

    def attribute(self, name: str, row: str | None, day: str) -> str:
        """SQL of an attribute over the person table's row aliased `row` (None: bare column
        names), on the day `day`."""
        if self.kind(name) != "attributes":
            raise FeatureError(f"{name} is not an attribute of the person table")
        a: Attribute = self.spec.attributes[name]
        col = lambda variable: quote(variable) if row is None else f"{row}.{quote(variable)}"  # noqa: E731
        if a.value:
            return self.sql.coalesce(col(a.value), a.missing)
        if a.years_since:
            return self.sql.years_between(col(a.years_since), day)
        if a.equals:
            (variable, code), = a.equals.items()
            return self.sql.indicator(f"{self.sql.coalesce(col(variable), a.missing)} = {literal(code)}")
        if a.known:
            return f"{col(a.known)} IS NOT NULL"
        if a.before:
            return f"{col(a.before)} < {day}"
        assert a.living is not None
        return self.sql.living_on(col(a.living.since), [col(u) for u in a.living.until], day)

    # --- other tables on a day -----------------------------------------------------------------

    def related_sql(self, name: str, units: str, day: str, key: str = UNIT_KEY) -> str:
        """One row per unit of the relation `units` (aliased u; one row per value of its column
        `key`) that the table has a value for: the key and the feature (not yet with its missing
        value; see `missing`)."""
        if self.kind(name) != "related":
            raise FeatureError(f"{name} is not a feature of a related table")
        r: Related = self.spec.related[name]
        if r.valid_on is not None:
            v = r.valid_on
            start, end = f"r.{quote(v.start)}", f"r.{quote(v.end)}"
            return (f"SELECT u.{key}, {self.sql.first_valid(f'r.{quote(v.value)}', start)} AS {quote(name)} "
                    f"FROM {units} JOIN {quote(v.table)} r ON r.{PERSON} = u.{PERSON} AND {start} <= {day} "
                    f"AND ({end} IS NULL OR {end} >= {day}) GROUP BY u.{key}")
        h = r.highest_before_year
        assert h is not None
        return (f"SELECT u.{key}, {self.sql.highest_level(f'r.{quote(h.value)}')} AS {quote(name)} "
                f"FROM {units} JOIN {quote(h.table)} r ON r.{PERSON} = u.{PERSON} "
                f"AND r.{quote(h.year)} < {self.sql.year_of(day)} GROUP BY u.{key}")

    def missing(self, name: str, column: str) -> str:
        """The column of a related feature with its missing value where the table had none."""
        return self.sql.coalesce(column, self._definition(name).missing)

    # --- the parents -----------------------------------------------------------------------------

    def family(self, name: str, row: str, own: str) -> tuple[str, str]:
        """(joins, SQL) of a family feature for the rows aliased `row` (with a pid and the column
        `own`, the feature named by `own`): the joins bring the person's and parents' rows."""
        if self.kind(name) != "family":
            raise FeatureError(f"{name} is not a family feature")
        f = self.spec.family[name]
        table = quote(self.person_table)
        me = f"{name}_person"
        parents = [f"{name}_parent{i}" for i in range(len(f.parents))]
        joins = f"LEFT JOIN {table} {me} ON {me}.{PERSON} = {row}.{PERSON} " + " ".join(
            f"LEFT JOIN {table} {alias} ON {alias}.{PERSON} = {me}.{quote(link)}"
            for alias, link in zip(parents, f.parents))
        held = ", ".join(f"{alias}.{quote(f.of)}" for alias in parents)
        found = " OR ".join(f"{alias}.{PERSON} IS NOT NULL" for alias in parents)
        whens = " ".join(f"WHEN {literal(code)} IN ({held}) THEN {literal(label)}" for code, label in f.first.items())
        return joins, f"CASE {whens} WHEN {found} THEN {literal(f.any_parent)} ELSE {row}.{quote(own)} END"

    # --- bands and labels ------------------------------------------------------------------------

    def derived(self, name: str, source: str) -> str:
        """SQL of a derived feature over `source`, the SQL of the feature it is derived from."""
        if self.kind(name) != "derived":
            raise FeatureError(f"{name} is not a derived feature")
        d = self.spec.derived[name]
        if d.bins is not None:
            return self.sql.bands(source, d.bins.edges, d.bins.labels)
        assert d.codes is not None
        return self.sql.labels(source, d.codes.map, d.codes.other)

    def derived_from(self, name: str) -> str:
        d = self.spec.derived[name]
        return (d.bins or d.codes).of  # type: ignore[union-attr]

    # --- windows over quarterly features ---------------------------------------------------------

    def window(self, name: str, panel: str, unit_t: str) -> str:
        """SQL aggregate of a window feature over panel rows aliased `panel` (columns t and the
        quarterly feature) that lie in the quarters before `unit_t`."""
        if self.kind(name) != "windows":
            raise FeatureError(f"{name} is not a window feature")
        w = self.spec.windows[name]
        value, t = f"{panel}.{quote(w.of)}", f"{panel}.t"
        if w.aggregate == "sum":
            return self.sql.window_sum(value, t, unit_t, w.quarters, DECIMALS)
        return self.sql.quarters_since_last(value, t, unit_t, w.quarters)

    def window_missing(self, name: str, column: str) -> str:
        """A window's column where the panel had no row in its quarters: a sum is 0, a time since
        the last use stays empty (none in the window)."""
        return f"coalesce({column}, 0)" if self.spec.windows[name].aggregate == "sum" else column

    def window_of(self, name: str) -> tuple[str, int]:
        """The quarterly feature a window reads, and how many quarters back it looks."""
        if self.kind(name) != "windows":
            raise FeatureError(f"{name} is not a window feature")
        w = self.spec.windows[name]
        return w.of, w.quarters

    # --- whole tables of features ---------------------------------------------------------------

    def requires(self, name: str) -> list[str]:
        """The features a feature is built on (its source feature, the person's own value)."""
        kind = self.kind(name)
        if kind == "derived":
            return [self.derived_from(name)]
        if kind == "family":
            return [self.spec.family[name].own]
        if kind == "windows":
            return [self.spec.windows[name].of]
        return []

    def closure(self, names: list[str]) -> list[str]:
        """The features and everything they are built on, each after what it needs."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            if name in ordered:
                return
            for needed in self.requires(name):
                visit(needed)
            ordered.append(name)

        for name in names:
            visit(name)
        return ordered

    def build_panel(self, con, panel: str, persons: str, names: list[str], t_from: int, t_to: int) -> None:  # noqa: ANN001
        """Create the temporary table `panel`: one row per person of the relation `persons` and
        quarter t_from..t_to in which some table has rows, with each quarterly feature (0 where
        that feature's table has none). Quarters without any row are left out: a window over them
        reads nothing, which at_day_sql makes a sum of 0 (the panel stays as small as the data)."""
        by_table = self.quarterly_by_table(names)
        for i, (table, wanted) in enumerate(by_table.items()):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {panel}_part{i} AS "
                        f"{self.quarterly_sql(table, wanted, persons, t_from, t_to)}")
        joined = f"{panel}_part0" + "".join(f" FULL JOIN {panel}_part{i} USING ({PERSON}, t)"
                                            for i in range(1, len(by_table)))  # USING merges the keys
        selects = "".join(f", coalesce({quote(n)}, 0) AS {quote(n)}" for wanted in by_table.values() for n in wanted)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {panel} AS SELECT {PERSON}, t{selects} FROM {joined}")
        for i in range(len(by_table)):
            con.execute(f"DROP TABLE {panel}_part{i}")

    def at_day_sql(self, units: str, names: list[str], day: str, panel: str | None = None,
                   days: dict[str, str] | None = None) -> str:
        """SQL of the rows of `units` (one per pid and quarter index t; aliased u in `day`) with
        each feature of `names` as a column, on the day `day` (an SQL expression over u; `days`
        gives another day for some features). Window features read `panel` (see build_panel),
        over the quarters before t."""
        days = days or {}
        needed = [n for n in self.closure(names) if self.kind(n) != "quarterly"]
        on = {n: days.get(n, day) for n in needed}
        attributes = [n for n in needed if self.kind(n) == "attributes"]
        columns = "".join(f", {self.attribute(n, 'p', on[n])} AS {quote(n)}" for n in attributes)
        # each unit numbered (in no particular order): the per-unit aggregates group and join on
        # that one integer instead of the pseudonym and the quarter (the same rows, found faster)
        steps = [("f_attributes", f"SELECT u.*, row_number() OVER () AS {UNIT_KEY}{columns} FROM {units} u "
                                  f"JOIN {quote(self.person_table)} p ON p.{PERSON} = u.{PERSON}")]
        related = [n for n in needed if self.kind(n) == "related"]
        for i, n in enumerate(related):
            steps.append((f"f_related{i}", self.related_sql(n, f"{steps[0][0]} u", on[n])))
        windows = [n for n in needed if self.kind(n) == "windows"]
        if windows:
            if panel is None:
                raise FeatureError(f"window features ({', '.join(windows)}) need a panel of quarterly features")
            longest = max(self.spec.windows[n].quarters for n in windows)
            sums = ", ".join(f"{self.window(n, 'h', 'u.t')} AS {quote(n)}" for n in windows)
            steps.append(("f_windows", f"SELECT u.{UNIT_KEY}, {sums} FROM {steps[0][0]} u JOIN {panel} h "
                                       f"ON h.{PERSON} = u.{PERSON} AND h.t BETWEEN u.t - {longest} AND u.t - 1 "
                                       f"GROUP BY u.{UNIT_KEY}, u.t"))  # t: the unit's quarter, for the sums
        picked = "".join(f", {self.missing(n, f'r{i}.{quote(n)}')} AS {quote(n)}" for i, n in enumerate(related))
        picked += "".join(f", {self.window_missing(n, f'w.{quote(n)}')} AS {quote(n)}" for n in windows)
        joins = "".join(f" LEFT JOIN f_related{i} r{i} USING ({UNIT_KEY})" for i in range(len(related)))
        joins += f" LEFT JOIN f_windows w USING ({UNIT_KEY})" if windows else ""
        steps.append(("f_step0", f"SELECT a.* EXCLUDE ({UNIT_KEY}){picked} FROM f_attributes a{joins}"))
        for i, n in enumerate(n for n in needed if self.kind(n) in ("derived", "family")):
            previous = steps[-1][0]
            if self.kind(n) == "derived":
                steps.append((f"f_step{i + 1}", f"SELECT s.*, {self.derived(n, f's.{quote(self.derived_from(n))}')} "
                                                 f"AS {quote(n)} FROM {previous} s"))
            else:
                joins, value = self.family(n, "s", self.spec.family[n].own)
                steps.append((f"f_step{i + 1}", f"SELECT s.*, {value} AS {quote(n)} FROM {previous} s {joins}"))
        ctes = ",\n".join(f"{name} AS ({sql})" for name, sql in steps)
        return f"WITH {ctes}\nSELECT * FROM {steps[-1][0]}"

    # --- documentation and sources -----------------------------------------------------------------

    def sources(self, names: list[str]) -> dict[str, set[str]]:
        """The tables and variables the features read (through the features they are built on)."""
        out: dict[str, set[str]] = {}
        for name in names:
            for source in self.describe(name).sources:
                table, variable = source.split(".", 1)
                out.setdefault(table, set()).add(variable)
        return out

    def describe(self, name: str) -> FeatureDoc:
        kind = self.kind(name)
        d = self._definition(name)
        p = self.person_table
        if kind == "quarterly":
            timing = self.spec.tables[d.table]
            sources = [f"{d.table}.{timing.time}"] + ([f"{d.table}.{d.of}"] if d.of else []) \
                + [f"{d.table}.{v}" for v in (d.where or {})]
            where = "".join(f" with {v} {'one of ' if len(c) > 1 else ''}{', '.join(map(str, c))}"
                            for v, c in (d.where or {}).items())
            rows = f"{d.table} rows dated in the quarter (by {timing.time}){where}"
            definition = {"exists": f"1 if the person has {rows}, else 0", "any": f"1 if the person has {rows}, else 0",
                          "count": f"number of {rows}, 0 if none",
                          "sum": f"sum of {d.of} over the {rows}, 0 if none"}[d.aggregate]
        elif kind == "attributes":
            variables = [d.value or d.years_since or d.known or d.before] if not (d.equals or d.living) else \
                list(d.equals or {}) or [d.living.since, *d.living.until]
            sources = [f"{p}.{v}" for v in variables]
            definition = self._attribute_words(d)
        elif kind == "related":
            r = d.valid_on or d.highest_before_year
            if d.valid_on is not None:
                sources = [f"{r.table}.{v}" for v in (r.value, r.start, r.end)]
                definition = f"{r.value} of the {r.table} row valid on the day (earliest start wins)"
            else:
                sources = [f"{r.table}.{v}" for v in (r.value, r.year)]
                definition = f"highest {r.value} in {r.table} with {r.year} before the day's year"
            if d.missing is not None:
                definition += f"; {d.missing} if none"
        elif kind == "family":
            sources = [f"{p}.{v}" for v in (*d.parents, d.of)] + list(self.describe(d.own).sources)
            firsts = ", ".join(f"{label} if a parent's {d.of} is {code}" for code, label in d.first.items())
            definition = f"{firsts}; else {d.any_parent} if a parent is known; else the person's own {d.own}"
        elif kind == "derived":
            source = self.derived_from(name)
            sources = list(self.describe(source).sources)
            if d.bins is not None:
                bands = ", ".join(f"{label} from {edge:g}" for edge, label in zip(d.bins.edges, d.bins.labels[1:]))
                definition = f"{source}: {d.bins.labels[0]} below {d.bins.edges[0]:g}, {bands}"
            else:
                codes = ", ".join(f"{code} = {label}" for code, label in d.codes.map.items())
                definition = f"{source}: {codes}, other = {d.codes.other}"
        else:
            sources = list(self.describe(d.of).sources)
            definition = (f"{d.of} summed over the {d.quarters} quarters before the quarter" if d.aggregate == "sum"
                          else f"quarters since the last quarter with {d.of} above 0, among the {d.quarters} "
                               "before the quarter; empty if none")
        return FeatureDoc(name=name, kind=kind, description=d.description, definition=definition,
                          sources=tuple(dict.fromkeys(sources)), unit=d.unit)

    @staticmethod
    def _attribute_words(a: Attribute) -> str:
        if a.value:
            return f"{a.value}" + (f" ({a.missing} if empty)" if a.missing is not None else "")
        if a.years_since:
            return f"years from {a.years_since} to the day (days / 365.25)"
        if a.equals:
            (variable, code), = a.equals.items()
            return f"1 if {variable} is {code}, else 0"
        if a.known:
            return f"true if {a.known} is recorded"
        if a.before:
            return f"true if {a.before} is before the day"
        assert a.living is not None
        return f"true if {a.living.since} is on or before the day and none of {', '.join(a.living.until)} is"

    def check_against(self, tables: dict[str, set[str]]) -> list[str]:
        """Problems of the features whose sources are missing from `tables` ({table: variables})."""
        problems = []
        for name in self.names:
            for source in self.describe(name).sources:
                table, variable = source.split(".", 1)
                if table not in tables:
                    problems.append(f"{name}: no table {table}")
                elif variable not in tables[table]:
                    problems.append(f"{name}: table {table} has no variable {variable}")
        return sorted(set(problems))

    def available(self, tables: dict[str, set[str]]) -> list[str]:
        """The features every source of which is in `tables`."""
        return [name for name in self.names
                if all(s.split(".", 1)[0] in tables and s.split(".", 1)[1] in tables[s.split(".", 1)[0]]
                       for s in self.describe(name).sources)]


def load_features(path: Path | None = None, dialect: str = "duckdb") -> FeatureSet:
    """The features of a configuration file (the shipped one by default); errors name field and line."""
    path = path or Path(str(files("safepool.features").joinpath(DEFAULT_FILE)))
    return FeatureSet(load_model(path, FeatureSpec), dialect)
