"""Running a study file: cohort, matching, balance, effects, and every table recorded as an output.

`analyse` is the analysis on an open pool connection (also what the validity benchmark runs on
synthetic pools); `run_study` is the governed path: the analyst opens the pool under the permit
named in the study file (scope-checked and audited), analyses, and records each table and
figure through the output register after the disclosure checks (suppressing failing cells).
No person identifier leaves this module: the pseudonym column is used for joins and for
clustering only, and never reaches an output.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import duckdb
import pandas as pd

from safepool.disclosure import (DisclosureRules, Document, EffectTable, Figure, FrequencyTable, Mitigated, StatOutput, check,
                                 round_counts, suppress)
from safepool.disclosure.register import OutputRecord
from safepool.governance.context import Governance
from safepool.governance.users import Actor
from safepool.pool.access import open_for_analysis
from safepool.reports import render_study_files
from safepool.study.balance import Balance
from safepool.study.censoring import censoring_weighted_effects, censoring_weights
from safepool.study.cohort import Cohort, attach_outcomes, build_cohort, needed_columns
from safepool.study.effects import naive_difference
from safepool.study.event_study import pretrend_placebo
from safepool.study.matching import RiskSetMatcher
from safepool.study.sensitivity import sensitivity
from safepool.study.studyfile import StudyFile
from safepool.study.table_checks import StudyTableError

PERSON = "pid"
Progress = Callable[[str], None]
TABLES = ("cohort_flow", "balance", "effects", "event_study", "subgroups", "placebo", "sensitivity", "naive",
          "unmatched")


@dataclass
class StudyAnalysis:
    """Every result of a study as data frames (no identifiers), with the charts."""

    study: StudyFile
    cohort_flow: pd.DataFrame
    balance: pd.DataFrame
    balance_passed: bool
    effects: pd.DataFrame
    event_study: pd.DataFrame
    subgroups: pd.DataFrame
    placebo: pd.DataFrame
    sensitivity: pd.DataFrame
    naive: pd.DataFrame
    unmatched: pd.DataFrame
    love_plot: alt.TopLevelMixin
    n_treated: int
    n_matched: int
    seconds: float


@dataclass
class StudyResult(StudyAnalysis):
    """A governed run: the analysis, its outputs as the disclosure layer left them, and their records."""

    registers: list[str] = field(default_factory=list)
    checked: dict[str, Mitigated] = field(default_factory=dict)
    records: dict[str, OutputRecord] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.study.title

    @property
    def question(self) -> str:
        return self.study.question

    @property
    def permit(self) -> str:
        return self.study.permit

    @property
    def period(self) -> tuple[str, str]:
        return self.study.period.start, self.study.period.end

    @property
    def methods(self) -> dict[str, object]:
        return study_methods(self.study)


def study_methods(study: StudyFile) -> dict[str, object]:
    """The settings a reader needs to know how the numbers were made."""
    m = study.matching
    return {"treatment": study.treatment.label, "eligible ages": f"{study.eligible.age[0]}-{study.eligible.age[1]}",
            "covariates": ", ".join(study.covariates), "matching method": m.method, "exact": ", ".join(m.exact) or "none",
            "caliper (SD of the logit)": m.caliper if m.caliper is not None else "none", "ratio": m.ratio,
            "with replacement": m.replace, "balance refinement": m.refine,
            "horizons": ", ".join(map(str, study.horizons)),
            "event window": f"{study.event_window.first}..{study.event_window.last}", "baseline": study.baseline,
            "estimators": "ATT and matched difference-in-differences",
            "controls entering later": "censored from their own entry, inverse probability of censoring weights",
            "confidence intervals": f"{study.inference.ci}, {100 * (1 - study.inference.alpha):.0f}%"}


def analyse(con: duckdb.DuckDBPyConnection, study: StudyFile, progress: Progress | None = None) -> StudyAnalysis:
    """The whole study on an open pool connection."""
    started = time.perf_counter()
    say = progress or (lambda _stage: None)
    cohort = build_cohort(con, study, progress=say)
    say("matching")
    m = study.matching
    matcher = RiskSetMatcher(cohort.covariates, exact=m.exact, method=m.method, caliper=m.caliper, ratio=m.ratio,
                             replace=m.replace, refine=m.refine, random_state=m.random_state).fit(cohort.units)
    say("balance")
    balance = Balance(cohort.covariates, smd_limit=study.balance.smd_limit,
                      vr_range=study.balance.variance_ratio).fit(cohort.units, matcher.matched_)
    say("outcomes")
    horizons = sorted(set(study.event_horizons) | set(study.horizons))
    matched = attach_outcomes(con, matcher.matched_, list(study.outcomes), horizons)
    matched = censoring_weights(cohort.units, matcher.propensity_, matched, horizons, person=PERSON)
    say("effects")
    estimates = Estimates(study, matched)
    effects = estimates.effects()
    say("event study")
    event = estimates.event_study()
    placebo = estimates.placebo()
    say("subgroups")
    subgroups = estimates.subgroups()
    say("sensitivity")
    sensitive = sensitivity(effects.loc[effects["method"] == "att"], matched, alpha=study.inference.alpha,
                            unit_col=PERSON)
    say("naive comparison")
    naive = naive_comparison(con, study, cohort)
    flow = matched_flow(cohort.flow, matcher)
    return StudyAnalysis(
        study=study, cohort_flow=flow, balance=balance.table_, balance_passed=bool(balance.passed_), effects=effects,
        event_study=event, subgroups=subgroups, placebo=placebo, sensitivity=sensitive, naive=naive,
        unmatched=matcher.unmatched_, love_plot=balance.love_plot(), n_treated=matcher.n_treated_,
        n_matched=matcher.n_matched_, seconds=time.perf_counter() - started)


class Estimates:
    """The effect estimators of one study on its matched table (censoring-weighted where it matters)."""

    def __init__(self, study: StudyFile, matched: pd.DataFrame) -> None:
        self.study = study
        self.matched = matched
        inference = study.inference
        self.options = dict(baseline=study.baseline, ci=inference.ci, alpha=inference.alpha,
                            n_boot=inference.replications, random_state=inference.random_state, unit_col=PERSON)

    def _effects(self, matched: pd.DataFrame, outcome: str, horizons: list[int], method: str) -> pd.DataFrame:
        return censoring_weighted_effects(matched, outcome, horizons, method, **self.options)[0]

    def effects(self) -> pd.DataFrame:
        """ATT and matched difference-in-differences per outcome at the study's horizons."""
        return pd.concat([self._effects(self.matched, outcome, self.study.horizons, method)
                          for outcome in self.study.outcomes for method in ("att", "did")], ignore_index=True)

    def event_study(self) -> pd.DataFrame:
        """Matched difference-in-differences at every quarter of the window but the baseline (0 there)."""
        horizons = [h for h in self.study.event_horizons if h != self.study.baseline]
        return pd.concat([self._effects(self.matched, outcome, horizons, "did")
                          for outcome in self.study.outcomes], ignore_index=True)

    def placebo(self) -> pd.DataFrame:
        """Joint test of the pre-entry points (no control is censored before entry, so no weights)."""
        pre = [h for h in self.study.event_horizons if h < 0]
        options = {k: v for k, v in self.options.items() if k not in ("baseline", "n_boot")}
        return pd.concat([pretrend_placebo(self.matched, outcome, pre, baseline=self.study.baseline,
                                           n_boot=self.study.inference.replications, **options)
                          for outcome in self.study.outcomes], ignore_index=True)

    def subgroups(self) -> pd.DataFrame:
        """Effects on the primary outcome (the first listed) at the subgroup horizon, within the sets of
        each level of the treated unit's subgroup; a level with too few sets for an interval is left out."""
        treated = self.matched["treated"].to_numpy() == 1
        tables = []
        for name in self.study.subgroups:
            column = f"subgroup:{name}"
            level_of_set = self.matched.loc[treated].groupby("set_id")[column].first().fillna("(missing)").astype(str)
            levels = self.matched["set_id"].map(level_of_set)
            for level in sorted(level_of_set.unique()):
                part = self.matched.loc[(levels == level).to_numpy()]
                try:
                    rows = self._effects(part, self.study.outcomes[0], [self.study.effect_horizon], "att")
                except StudyTableError:
                    continue
                tables.append(rows.assign(subgroup=name, level=level))
        if not tables:
            return pd.DataFrame(columns=["subgroup", "level", "outcome", "horizon", "estimate"])
        table = pd.concat(tables, ignore_index=True)
        return table[["subgroup", "level", *[c for c in table.columns if c not in ("subgroup", "level")]]]


def naive_comparison(con: duckdb.DuckDBPyConnection, study: StudyFile, cohort: Cohort) -> pd.DataFrame:
    """Clients at entry against every eligible unit of the persons who never entered, unmatched."""
    units = cohort.units
    never = units["entry_t"].isna().to_numpy()
    chosen = units.loc[(units["treated"] == 1).to_numpy() | never, [PERSON, "t", "treated", "entry_t"]]
    frame = attach_outcomes(con, chosen, list(study.outcomes), study.horizons)
    return pd.concat([naive_difference(frame, outcome, study.horizons, unit_col=PERSON, alpha=study.inference.alpha)
                      for outcome in study.outcomes], ignore_index=True)


def matched_flow(flow: pd.DataFrame, matcher: RiskSetMatcher) -> pd.DataFrame:
    """The cohort flow with the matching step: clients matched, and why the others were not."""
    treated = matcher.n_treated_
    reasons = matcher.unmatched_.groupby("reason")["n_treated"].sum() if len(matcher.unmatched_) else pd.Series()
    rows = [{"step": "clients matched", "persons": matcher.n_matched_, "units": matcher.n_matched_,
             "removed": treated - matcher.n_matched_, "reason": "; ".join(reasons.index) or ""}]
    matched = matcher.matched_
    controls = matched.loc[matched["treated"] == 0]
    rows.append({"step": "matched controls", "persons": controls[PERSON].nunique(), "units": len(controls),
                 "removed": 0, "reason": ""})
    return pd.concat([flow, pd.DataFrame(rows)], ignore_index=True)


# --- outputs ---------------------------------------------------------------------------------


def outputs_of(analysis: StudyAnalysis) -> dict[str, StatOutput]:
    """Each table and figure as the disclosure checks understand it (no identifiers in any)."""
    study = analysis.study
    flow = analysis.cohort_flow
    cells = pd.concat([
        pd.DataFrame({"step": flow["step"], "count": flow["persons"]}),
        pd.DataFrame({"step": "removed: " + flow["reason"], "count": flow["removed"]}).loc[flow["removed"] > 0],
    ], ignore_index=True)
    balance = effect_output("Covariate balance before and after matching", balance_cells(analysis.balance),
                            with_counts=balance_counts(analysis))
    outputs: dict[str, StatOutput] = {
        "cohort_flow": FrequencyTable("Cohort flow: persons kept at each step, and why the others left", cells,
                                      ["step"]),
        "balance": balance,
        "effects": effect_output("Effects on the treated (ATT and matched difference-in-differences)",
                                 analysis.effects),
        "event_study": effect_output("Event study: matched difference-in-differences by quarter from entry",
                                     analysis.event_study),
        "subgroups": effect_output(f"Effects by subgroup at {study.effect_horizon} quarters after entry",
                                   analysis.subgroups),
        "placebo": effect_output("Pre-trend placebo test before entry", analysis.placebo),
        "sensitivity": effect_output("Sensitivity to hidden bias: E-values and Rosenbaum bounds",
                                     with_arm_counts(analysis.sensitivity, analysis.effects)),
        "naive": effect_output("Naive comparison: clients against all eligible non-clients, unmatched",
                               analysis.naive),
    }
    outputs["love_plot"] = Figure("Love plot: standardised mean differences before and after matching", balance,
                                  analysis.love_plot.to_dict())
    return outputs


def balance_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The balance table with the variance ratio, undefined for 0/1 covariates, as text ("binary" there)."""
    cells = table.copy()
    binary = cells["variance_ratio"].isna()
    cells["variance_ratio"] = cells["variance_ratio"].map(lambda v: f"{v:.3f}").where(~binary, "binary")
    cells["vr_ok"] = cells["vr_ok"].astype(float).where(~binary, 1.0)
    return cells


def balance_counts(analysis: StudyAnalysis) -> dict[str, dict[str, int]]:
    """Persons behind each stage of the balance table: all clients and eligible units, then the matched."""
    flow = analysis.cohort_flow.set_index("step")
    before_control = int(flow.loc[flow.index.str.startswith("persons eligible as controls"), "persons"].iloc[0])
    after_control = int(flow.loc["matched controls", "persons"])
    return {"before": {"n_treated": analysis.n_treated, "n_control": before_control},
            "after": {"n_treated": analysis.n_matched, "n_control": after_control}}


def with_arm_counts(table: pd.DataFrame, effects: pd.DataFrame) -> pd.DataFrame:
    """Sensitivity rows with the persons behind the effect they belong to."""
    if {"n_treated", "n_control"} <= set(table.columns):
        return table
    keys = ["outcome", "horizon", "method"]
    return table.merge(effects[keys + ["n_treated", "n_control"]], on=keys, how="left")


def effect_output(title: str, frame: pd.DataFrame, with_counts: dict[str, dict[str, int]] | None = None
                  ) -> EffectTable:
    """An effect-like table: text columns become labels, the rest are numbers; n_treated and n_control kept."""
    cells = frame.copy()
    if with_counts is not None:
        for column in ("n_treated", "n_control"):
            cells[column] = cells["stage"].map(lambda stage, c=column: with_counts[stage][c])
    remarks = []
    for column in cells.columns:
        if cells[column].dtype == bool:
            cells[column] = cells[column].astype(float)
        elif pd.api.types.is_numeric_dtype(cells[column]) and cells[column].isna().any():
            cells[column] = cells[column].map(lambda v: "not defined" if pd.isna(v) else f"{v:.6g}")
            remarks.append(column)
    groups = [c for c in cells.columns
              if c not in remarks and (not pd.api.types.is_numeric_dtype(cells[c]) or c in ("horizon", "wald_df"))]
    return EffectTable(title, cells.reset_index(drop=True), groups, remarks)


def checked_outputs(outputs: dict[str, StatOutput], rules: DisclosureRules) -> dict[str, Mitigated]:
    """Each output checked; one that fails has its counts rounded (a frequency table, whose steps
    would otherwise give a suppressed count away by difference) or its failing cells suppressed."""
    checked = {}
    for name, output in outputs.items():
        report = check(output, rules)
        if report.verdict == "pass":
            checked[name] = Mitigated(output, "none", "", report)
        elif isinstance(output, FrequencyTable):
            checked[name] = round_counts(output, rules)
        else:
            checked[name] = suppress(output, rules, margins=False)
    return checked


def output_files(name: str, output: StatOutput) -> dict[str, bytes]:
    """The files kept with a recorded output: the shown table as CSV, and a figure's Vega-Lite spec."""
    buffer = io.StringIO()
    output.public_table().to_csv(buffer, index=False)
    files = {f"{name}.csv": buffer.getvalue().encode("utf-8")}
    if isinstance(output, Figure):
        files[f"{name}.vl.json"] = json.dumps(output.spec).encode("utf-8")
    return files


def run_study(pool_dir: Path, governance: Governance, actor: Actor, study: StudyFile,
              progress: Progress | None = None, rules: DisclosureRules | None = None) -> StudyResult:
    """The governed study: open the pool as the analyst under the permit, analyse, check and record outputs."""
    say = progress or (lambda _stage: None)
    say("opening the pool")
    con = open_for_analysis(pool_dir, governance, actor, study.permit, wanted=needed_columns(study))
    try:
        analysis = analyse(con, study, say)
        registers = sorted(needed_columns(study))
    finally:
        con.close()
    rules = rules or DisclosureRules.load(governance.root)
    say("disclosure checks")
    checked = checked_outputs(outputs_of(analysis), rules)
    records = {}
    for name, mitigated in checked.items():
        say(f"recording {name}")
        records[name] = governance.outputs.record(actor, study.permit, mitigated.output,
                                                  output_files(name, mitigated.output), "study", rules,
                                                  mitigation_note=mitigated.note or None)
    result = StudyResult(**vars(analysis), registers=registers, checked=checked, records=records)
    say("report")
    report = render_study_files(result, rules=rules, output_ids={name: record.id for name, record in records.items()})
    document = Document(f"Study report: {study.title}", {name: m.output for name, m in checked.items()})
    result.records["report"] = governance.outputs.record(actor, study.permit, document, report, "study", rules)
    return result
