"""Service paths (the handbook's section 3.1.3; the child protection pilot): for a chosen service,
which services come before and after it, compared by a group such as the family's native language.

A person's path is the sequence of services around the first time they reach the anchor service
in the period: every dated event of the chosen sources within the window before and after it,
ordered by day (on the anchor's day the anchor first, then by service), with repeats of one
service in a row collapsed into one step. The paths are computed in SQL in the engine; what the
analysis reads back is one row per person (their group, path, time to the next service, reach)
and per person and transition, labelled from settings and code lists, and counted into
frequency tables checked through the output registry. The same rows name the persons behind
every cell for the differencing ledger (safepool.insight.differencing), so a second run over
nearly the same persons (a period a day shorter) cannot be subtracted from the first:

- transitions: persons with each directly-follows step (A then B) within `steps` of the anchor,
  by group;
- variants: persons by their path from `steps` steps before the anchor to `steps` after it;
- time to the next service after the anchor, in bands;
- reach: persons who used any of the preventive services before the anchor.

Transitions and variants of fewer persons than the policy's minimum frequency (over all groups)
are merged into "other transitions" / "other paths" before anything is checked, so a rare path
is never named; what is left passes the frequency checks per group or is suppressed. Step names
are code labels from the data dictionary or group names written in the insight file, never
values read from the data. The flow chart draws the checked transitions table and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Literal

import pandas as pd
from pydantic import Field, model_validator

from safepool.disclosure import FrequencyTable
from safepool.disclosure.kinds.base import Mitigated
from safepool.disclosure.kinds.figure import Figure
from safepool.disclosure.outputs import STATUS
from safepool.features.compile import PERSON, FeatureSet
from safepool.features.dialect import literal, quote
from safepool.faults import Invalid
from safepool.insight.analysis import Analysis, Findings, InsightContext, Section, Settings, register_analysis
from safepool.insight.differencing import PersonsBehind

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
OTHER_TRANSITIONS = "other transitions"
OTHER_PATHS = "other paths"
NO_NEXT = "none in the window"
ARROW = " → "
NEXT = "time to the next service"
USED = "used a preventive service before"


class Source(Settings):
    """A pool table whose dated rows are services used: `service` names the service (a categorical
    variable); `codes` limits which of its codes count (all of its code list by default)."""

    table: Name
    service: Name
    codes: list[str] | None = None


class PathSettings(Settings):
    """What an insight file says about the paths to follow (see the module docstring)."""

    kind: Literal["paths"]
    anchor: str = Field(min_length=1, max_length=60, description="the step followed: a code or a group name")
    sources: list[Source] = Field(min_length=1)
    groups: dict[Name, list[str]] = Field(default_factory=dict,
                                          description="a step name for several codes, e.g. open_care: [...]")
    period: tuple[date, date] = Field(description="first and last day of a person's first anchor")
    before_days: int = Field(365, ge=1, le=3650)
    after_days: int = Field(365, ge=1, le=3650)
    compare_by: Name = Field("family_language_group", description="a label feature of the features layer")
    steps: int = Field(1, ge=1, le=4, description="steps before and after the anchor in transitions and "
                                                      "path variants")
    variants: int = Field(8, ge=1, le=30, description="most common path variants shown")
    preventive: list[str] = Field(default_factory=list, description="steps counted as reach before the anchor")
    next_bands: list[int] = Field([30, 90, 180, 365], min_length=1, description="upper ends, in days")

    @model_validator(mode="after")
    def _consistent(self) -> PathSettings:
        if self.period[0] > self.period[1]:
            raise ValueError("period: the first day comes after the last")
        if sorted(set(self.next_bands)) != self.next_bands:
            raise ValueError("next_bands: give increasing day counts without repeats")
        return self


@register_analysis
class ServicePaths(Analysis):
    kind = "paths"
    settings_model = PathSettings
    settings: PathSettings

    def tables(self, features: FeatureSet) -> dict[str, list[str]]:
        wanted: dict[str, set[str]] = {}
        for source in self.settings.sources:
            wanted.setdefault(source.table, set()).update({source.service, _timing(features, source.table)})
        for table, columns in features.sources(self.features_used()).items():
            wanted.setdefault(table, set()).update(columns)
        return {table: sorted(columns) for table, columns in sorted(wanted.items())}

    def features_used(self) -> list[str]:
        return [self.settings.compare_by]

    def run(self, context: InsightContext) -> Findings:
        s = self.settings
        labels = self._step_labels(context)
        self.anchor_label = labels[s.anchor]
        context.say("service paths: events")
        con = context.con
        con.execute(f"CREATE OR REPLACE TEMP VIEW path_events AS {self._events_sql(context, labels)}")
        start, end = (literal(day.isoformat()) for day in s.period)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE path_anchors AS
            SELECT {PERSON}, min(day) AS day0 FROM path_events
            WHERE step = {literal(s.anchor)} AND day BETWEEN CAST({start} AS DATE) AND CAST({end} AS DATE)
            GROUP BY {PERSON}""")
        context.say("service paths: groups")
        group = quote(s.compare_by)
        units = f"(SELECT {PERSON}, 0 AS t, day0 FROM path_anchors)"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE path_persons AS
            SELECT {PERSON}, day0, coalesce(CAST({group} AS VARCHAR), 'unknown') AS grp
            FROM ({context.features.at_day_sql(units, [s.compare_by], 'u.day0')})""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE path_steps AS
            WITH w AS (SELECT e.{PERSON}, e.step, e.day, datediff('day', p.day0, e.day) AS offset_days,
                              (e.step = {literal(s.anchor)} AND e.day = p.day0) AS is_anchor
                       FROM path_events e JOIN path_persons p USING ({PERSON})
                       WHERE e.day BETWEEN p.day0 - INTERVAL {s.before_days} DAY AND p.day0 + INTERVAL {s.after_days} DAY),
            ordered AS (SELECT *, row_number() OVER (PARTITION BY {PERSON} ORDER BY day, NOT is_anchor, step) AS i
                        FROM w),
            collapsed AS (SELECT * FROM ordered
                          QUALIFY coalesce(lag(step) OVER (PARTITION BY {PERSON} ORDER BY i) <> step, true)
                                  OR is_anchor)
            SELECT {PERSON}, step, offset_days, is_anchor,
                   row_number() OVER (PARTITION BY {PERSON} ORDER BY i) AS k FROM collapsed""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE path_position AS
            SELECT {PERSON}, min(k) AS a FROM path_steps WHERE is_anchor GROUP BY {PERSON}""")
        context.say("service paths: tables")
        by, minimum = s.compare_by, context.policy.min_frequency
        pairs = self._transitions(context, labels, minimum)
        each = self._each_person(context, labels, minimum)
        order = sorted(set(pairs["transition"]) - {OTHER_TRANSITIONS}) + [OTHER_TRANSITIONS]
        transitions = FrequencyTable(f"Persons by transition between services around {labels[s.anchor]}",
                                     _counted(pairs, [by, "transition"], order), [by, "transition"])
        outputs = {
            "paths_transitions": transitions,
            "paths_variants": FrequencyTable(f"Persons by path around {labels[s.anchor]} ({s.steps} step(s) "
                                             "before and after)", _counted(each, [by, "variant"]), [by, "variant"]),
            "paths_time_to_next": FrequencyTable(f"Persons by time from {s.anchor.replace('_', ' ')} to the next "
                                                 "service", _counted(each, [by, NEXT], [*self._band_names(), NO_NEXT]),
                                                 [by, NEXT]),
            "paths_flow": Figure(f"Flow of services around {labels[s.anchor]}", transitions, _flow_spec(by)),
        }
        if s.preventive:
            outputs["paths_reach"] = FrequencyTable(
                f"Persons who used {', '.join(labels[p] for p in s.preventive)} before {labels[s.anchor]}",
                _counted(each, [by, USED], ["yes", "no"]), [by, USED])
        return Findings(outputs, self._sections(labels), persons=self._persons_behind(pairs, each, outputs, minimum))

    def _persons_behind(self, pairs: pd.DataFrame, each: pd.DataFrame, outputs: Mapping[str, object],
                        minimum: int) -> dict[str, PersonsBehind]:
        """Who is behind each table, for the differencing ledger: a path's persons are decided by
        the anchor, the sources and their groups, the period and the window; a transition's or a
        variant's label also by the steps (and the minimum frequency and variants shown, which
        decide what is merged into "other"), a band by the bands, reach by the preventive steps."""
        s = self.settings
        population = s.model_dump_json(include={"anchor", "sources", "groups", "period", "before_days", "after_days"})
        merged = {"steps": s.steps, "min_frequency": minimum}
        decided_by = {"transition": json.dumps(merged), "variant": json.dumps({**merged, "variants": s.variants}),
                      NEXT: json.dumps(s.next_bands), USED: json.dumps(s.preventive)}
        # a transitions cell counts a person once per transition (its total over transitions too):
        # another question than a cell of persons with the same labels
        per_transition = json.dumps({"paths": population, "counted": "persons and transitions"})
        return {name: PersonsBehind(pairs, tuple(output.groups), per_transition, decided_by)
                if name == "paths_transitions" else PersonsBehind(each, tuple(output.groups), population, decided_by)
                for name, output in outputs.items() if isinstance(output, FrequencyTable)}

    def summary(self, checked: Mapping[str, Mitigated]) -> str:
        table = checked["paths_time_to_next"].output.cells
        groups = table[table[self.settings.compare_by].astype(str) != "Total"]
        shown = groups[groups[STATUS].astype(str).str.startswith(("shown", "rounded"))]
        persons = table.loc[table[self.settings.compare_by].astype(str) == "Total", "count"]
        total = "suppressed" if persons.isna().all() else f"{int(persons.sum()):,}"
        by = self.settings.compare_by.replace("_", " ")
        return (f"service paths around {getattr(self, 'anchor_label', self.settings.anchor)}: {total} persons "
                f"reached it in the period; {len(shown)} of {len(groups)} cells by {by} shown")

    # -- the steps -----------------------------------------------------------------------------

    def _step_labels(self, context: InsightContext) -> dict[str, str]:
        """Every step name and its label: a group keeps its name, a code takes its dictionary label."""
        labels: dict[str, str] = {}
        grouped = {code: name for name, codes in self.settings.groups.items() for code in codes}
        for source in self.settings.sources:
            variable = _variable(context, source.table, source.service)
            if variable.level != "categorical" or not variable.codes:
                raise Invalid(f"paths: sources: {source.table}.{source.service} is not a categorical variable "
                              "with a code list")
            codes = source.codes if source.codes is not None else list(variable.codes)
            unknown = [code for code in codes if code not in variable.codes]
            if unknown:
                raise Invalid(f"paths: sources: {len(unknown)} code(s) of {source.table}.{source.service} are not "
                              "in its code list")
            for code in codes:
                step = grouped.get(code, code)
                labels[step] = step.replace("_", " ") if step in self.settings.groups else variable.codes[code]
        named = [self.settings.anchor, *self.settings.preventive]
        missing = [name for name in named if name not in labels]
        if missing:
            raise Invalid(f"paths: the anchor and preventive steps must be codes or groups of the sources "
                          f"({', '.join(sorted(set(missing))[:3])} is not)")
        return labels

    def _events_sql(self, context: InsightContext, labels: dict[str, str]) -> str:
        grouped = {code: name for name, codes in self.settings.groups.items() for code in codes}
        parts = []
        for source in self.settings.sources:
            variable = _variable(context, source.table, source.service)
            codes = source.codes if source.codes is not None else list(variable.codes)
            cases = " ".join(f"WHEN {literal(code)} THEN {literal(grouped[code])}" for code in codes if code in grouped)
            step = f"CASE {quote(source.service)} {cases} ELSE {quote(source.service)} END" if cases else \
                quote(source.service)
            day = quote(_timing(context.features, source.table))
            parts.append(f"SELECT {PERSON}, CAST({step} AS VARCHAR) AS step, CAST({day} AS DATE) AS day "
                         f"FROM {quote(source.table)} WHERE {quote(source.service)} IN "
                         f"({', '.join(literal(code) for code in codes)}) AND {day} IS NOT NULL")
        return " UNION ALL ".join(parts)

    # -- the tables ----------------------------------------------------------------------------

    def _transitions(self, context: InsightContext, labels: dict[str, str], minimum: int) -> pd.DataFrame:
        """Each person's directly-follows steps (A then B) within `steps` of the anchor, once each,
        with their group; a step pair of fewer persons than `minimum` over all groups is
        OTHER_TRANSITIONS (a person once however many such pairs they have)."""
        by, con = self.settings.compare_by, context.con
        con.execute(f"""CREATE OR REPLACE TEMP TABLE path_pairs AS
            SELECT DISTINCT s.{PERSON}, s.step AS a, n.step AS b FROM path_steps s
            JOIN path_steps n ON n.{PERSON} = s.{PERSON} AND n.k = s.k + 1
            JOIN path_position q ON q.{PERSON} = s.{PERSON}
            WHERE s.k >= q.a - {self.settings.steps} AND n.k <= q.a + {self.settings.steps}""")
        pairs = con.execute(f"""
            WITH common AS (SELECT a, b FROM path_pairs GROUP BY a, b HAVING count(*) >= {int(minimum)})
            SELECT DISTINCT x.{PERSON}, p.grp, c.a, c.b
            FROM path_pairs x LEFT JOIN common c ON c.a = x.a AND c.b = x.b
            JOIN path_persons p USING ({PERSON})""").df()
        pairs["transition"] = [OTHER_TRANSITIONS if pd.isna(a) else labels[a] + ARROW + labels[b]
                               for a, b in zip(pairs["a"], pairs["b"])]
        return pairs.rename(columns={"grp": by})[[PERSON, by, "transition"]].drop_duplicates(ignore_index=True)

    def _each_person(self, context: InsightContext, labels: dict[str, str], minimum: int) -> pd.DataFrame:
        """One row per person: the group, the path from `steps` before the anchor to `steps` after
        it (one of the `variants` most common of at least `minimum` persons, else OTHER_PATHS), the
        band of days to the next service and, with preventive steps, whether one came before."""
        s = self.settings
        cases = " ".join(f"WHEN n.offset_days - a.offset_days <= {high} THEN {literal(name)}"
                         for high, name in zip(s.next_bands, self._band_names()))
        wanted = ", ".join(literal(step) for step in s.preventive) or "NULL"
        each = context.con.execute(f"""
            WITH around AS (
                SELECT s.{PERSON},
                       string_agg(CASE WHEN s.k = q.a THEN '[' || s.step || ']' ELSE s.step END, '|' ORDER BY s.k)
                           FILTER (WHERE s.k BETWEEN q.a - {s.steps} AND q.a + {s.steps}) AS path,
                       bool_or(s.k < q.a AND s.step IN ({wanted})) AS reached
                FROM path_steps s JOIN path_position q USING ({PERSON}) GROUP BY s.{PERSON})
            SELECT p.{PERSON}, p.grp, around.path,
                   CASE WHEN n.{PERSON} IS NULL THEN {literal(NO_NEXT)} {cases} ELSE {literal(NO_NEXT)} END AS band,
                   CASE WHEN coalesce(around.reached, false) THEN 'yes' ELSE 'no' END AS used
            FROM path_persons p JOIN path_position q USING ({PERSON}) JOIN around USING ({PERSON})
            JOIN path_steps a ON a.{PERSON} = p.{PERSON} AND a.k = q.a
            LEFT JOIN path_steps n ON n.{PERSON} = p.{PERSON} AND n.k = q.a + 1""").df()
        variant = pd.Series([ARROW.join(_label_step(step, labels) for step in path.split("|"))
                             for path in each["path"]], index=each.index, dtype=object)
        counts = variant.value_counts()
        common = counts[counts >= minimum]
        kept = set(sorted(common.index, key=lambda v: (-common[v], v))[:s.variants])
        return pd.DataFrame({PERSON: each[PERSON], s.compare_by: each["grp"],
                             "variant": variant.where(variant.isin(kept), OTHER_PATHS),
                             NEXT: each["band"], USED: each["used"]})

    def _band_names(self) -> list[str]:
        edges = [0, *self.settings.next_bands]
        return [f"{low + (1 if low else 0)} to {high} days" for low, high in zip(edges[:-1], edges[1:])]

    def _sections(self, labels: dict[str, str]) -> list[Section]:
        s = self.settings
        window = f"{s.before_days} days before and {s.after_days} days after"
        sources = ", ".join(f"{source.table}.{source.service}" for source in s.sources)
        return [
            Section("Whose paths", f"Persons whose first {labels[s.anchor]} falls between {s.period[0]} and "
                                   f"{s.period[1]}, with every service of {sources} from {window} it, compared by "
                                   f"{s.compare_by.replace('_', ' ')} on that day.", ["paths_time_to_next"]),
            Section("Transitions", f"Persons who went directly from one service to the next, from {s.steps} "
                                   f"step(s) before {labels[s.anchor]} to {s.steps} after it (a repeat of the same "
                                   "service counts once). Transitions of fewer persons than the minimum frequency "
                                   f"are merged into '{OTHER_TRANSITIONS}'.", ["paths_transitions", "paths_flow"]),
            Section("Path variants", f"The {s.variants} most common paths from {s.steps} step(s) before "
                                     f"{labels[s.anchor]} (in brackets) to {s.steps} after it; rarer paths are "
                                     f"'{OTHER_PATHS}'.", ["paths_variants"]),
            *([Section("Reach of preventive services", "Persons who used "
                       + ", ".join(labels[p] for p in s.preventive) + f" in the {s.before_days} days before "
                       f"{labels[s.anchor]}.", ["paths_reach"])] if s.preventive else []),
        ]


def _timing(features: FeatureSet, table: str) -> str:
    """The variable that dates a source's rows; paths need days."""
    timing = features.spec.tables.get(table)
    if timing is None or timing.format != "date":
        raise Invalid(f"paths: sources: {table} has no rows dated by day in the features configuration")
    return timing.time


def _variable(context: InsightContext, table: str, name: str):  # noqa: ANN202 - safepool.dictionary.Variable
    try:
        return context.dictionary[table][name]
    except KeyError:
        raise Invalid(f"paths: sources: {table}.{name} is not a variable of the pool") from None


def _label_step(step: str, labels: dict[str, str]) -> str:
    return f"[{labels[step[1:-1]]}]" if step.startswith("[") else labels[step]


def _counted(rows: pd.DataFrame, groups: list[str], order: list[str] | None = None) -> pd.DataFrame:
    """Rows (one per person and cell) counted in every combination of the groups seen (a cell of
    no persons is a zero, shown as such), in a fixed order: groups alphabetically, `order` for the
    second group when given."""
    table = rows.groupby(groups, sort=False).size().rename("count").reset_index()
    first = sorted(table[groups[0]].astype(str).unique())
    second = order or sorted(table[groups[1]].astype(str).unique())
    full = pd.MultiIndex.from_product([first, second], names=groups).to_frame(index=False)
    merged = full.merge(table.astype({groups[0]: str, groups[1]: str}), on=groups, how="left")
    return merged.assign(count=merged["count"].fillna(0).astype(int))[[*groups, "count"]]


def _flow_spec(by: str) -> dict:
    """A flow chart (Vega-Lite, drawn offline): each transition a line from its first service on
    the left to the next on the right, as thick as its persons, one panel per group."""
    return {
        "transform": [{"filter": f"datum.transition != '{OTHER_TRANSITIONS}' && datum.transition != 'Total' && "
                                 f"datum['{by}'] != 'Total' && isValid(datum.count)"},
                      {"calculate": f"split(datum.transition, '{ARROW}')[0]", "as": "from"},
                      {"calculate": f"split(datum.transition, '{ARROW}')[1]", "as": "to"}],
        "facet": {"column": {"field": by, "type": "nominal", "title": by.replace("_", " ")}},
        "spec": {
            "width": 150, "height": 300,
            "layer": [{"mark": {"type": "rule", "opacity": 0.5},
                       "encoding": {"x": {"datum": 0, "type": "quantitative", "axis": None,
                                          "scale": {"domain": [0, 1]}},
                                    "x2": {"datum": 1},
                                    "y": {"field": "from", "type": "nominal", "title": None,
                                          "axis": {"labelLimit": 220}},
                                    "y2": {"field": "to"},
                                    "strokeWidth": {"field": "count", "type": "quantitative",
                                                    "title": "persons", "scale": {"range": [0.5, 12]}}}}],
        },
    }
