"""Running a study file: cohort, matching, balance, effects, and every table recorded as an output.

`analyse` is the analysis on an open pool connection (also what the validity benchmark runs on
synthetic pools); `run_study` is the governed path: the analyst opens the pool under the permit
named in the study file (scope-checked and audited), analyses, and publishes every table and
figure as one release through the output register (checked under the workspace's policy,
failing cells suppressed; the cohort flow is rounded rather than suppressed when it fails, and
then every count of every table is rounded the same way), then the report made of them.
No person identifier leaves this module: the pseudonym column is used for joins and for
clustering only, and never reaches an output. The per-person contributions behind each arm's
mean (for the dominance checks) are handed to the checks and dropped after publishing.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from safepool.disclosure import Document, EffectTable, Figure, FrequencyTable, Mitigated, StatOutput
from safepool.disclosure.cells import is_contributor_column, shown_mask
from safepool.disclosure.findings import json_safe
from safepool.disclosure.policy import workspace_policy
from safepool.disclosure.register import OutputRecord
from safepool.governance.context import Governance
from safepool.governance.users import Actor
from safepool.one_thread import one_thread
from safepool.pool.access import POOL_FILE, open_for_analysis
from safepool.pool.publish import Scratch
from safepool.reports import OUTPUT_NAMES
from safepool.reports.chart_engine import chart_engine_started
from safepool.reports.labels import report_context
from safepool.reports.study_report import REPORT_NAME
from safepool.study.balance import Balance
from safepool.study.arm_values import ArmValues, RowsFound
from safepool.study.balance_values import balance_values, shown_balance_cells
from safepool.study.censoring import censoring_weights, weighted_cells
from safepool.study.cohort import Cohort, attach_outcomes, build_cohort, needed_columns, outcome_rows
from safepool.study.differencing import check_study, cohort_definition, described_units, study_groups
from safepool.study.effects import effect_table, estimate_cells, naive_cells, naive_table
from safepool.study.estimand import MATCHED_STEP, NOT_MATCHED, TREATED_STEP, MatchingSummary
from safepool.study.event_study import pretrend_placebo
from safepool.study.inference import without_interval
from safepool.study.matching import RiskSetMatcher
from safepool.study.row_persons import baseline_hidden, row_persons, shown_row_cells, split_row_persons
from safepool.study.sensitivity import sensitivity
from safepool.study.studyfile import StudyFile
from safepool.study.table_checks import StudyTableError, is_binary, numeric_matrix

PERSON = "pid"
# The study's engine memory. DuckDB keeps the pool's blocks it has read, and its allocator what the
# cohort's queries freed, until memory runs short: at 300,000 persons that was 300-400 MB held
# through the matching, where the study's largest arrays are. Bound to a multiple of the pool
# file's size (the cohort's queries took 1.2x of it at 300,000 persons, 2x at 30,000, which the
# floor covers), the engine lets them go; beyond the bound it spills to a scratch folder in the pool
# zone, and a study whose queries still do not fit runs once more without the bound.
STUDY_ENGINE_PER_POOL_BYTE = 1.5
STUDY_ENGINE_FLOOR_MB = 128
CONTRIBUTORS = 10  # largest per-person contributions handed to the dominance checks (dominance_n up to 10)
Progress = Callable[[str], None]
TABLES = ("cohort_flow", "balance", "effects", "event_study", "subgroups", "placebo", "sensitivity", "naive",
          "unmatched")


class EstimandWarning(UserWarning):
    """Too few clients were matched for the estimate to be read as the ATT (see safepool.study.estimand)."""


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
    love_plot: dict[str, Any]  # a Vega-Lite spec
    n_treated: int
    n_matched: int
    n_described: int  # the clients the tables before matching describe (see described_units)
    seconds: float
    # the share of clients matched, why the others were not, and the estimand it makes (see
    # safepool.study.estimand): matching.sentence() and matching.warning are for the console
    matching: MatchingSummary = field(default_factory=lambda: MatchingSummary(0, 0, 0.9))
    # per table, the contributors behind each arm's mean (rows as in the table): for the checks only
    contributors: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    # the pseudonyms of the run's groups (study_groups): for the differencing ledger only
    groups: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # per effect table, each row's arms' persons and levels (safepool.study.row_persons): for the ledger only
    row_persons: dict[str, pd.Series] = field(default_factory=dict, repr=False)
    # per effect table, the rows of a difference in differences not shown for what their baselines
    # would tell together (safepool.study.row_persons.baseline_hidden): hidden as the checks hide a row
    baseline_hidden: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # per (stage, covariate) of the balance table, each arm's persons and values
    # (safepool.study.balance_values): for the ledger only
    balance_values: dict[tuple[str, str], dict[str, ArmValues]] = field(default_factory=dict, repr=False)

    @property
    def share_matched(self) -> float:
        return self.matching.share

    @property
    def estimand(self) -> str:
        """ATT, or "effect on the matched clients" when fewer than matching.min_share_matched were matched."""
        return self.matching.estimand

    @property
    def warnings(self) -> list[str]:
        """What the reader must know before reading the estimates (empty when nothing)."""
        return [w for w in (self.matching.warning,) if w]


@dataclass
class StudyResult:
    """A governed run as its analyst (in any shell) gets it: the outputs as the disclosure layer left
    them and their records, never the analysis's frames, which hold what the checks suppress (a
    suppressed effect's means, exact counts, the clients not matched)."""

    study: StudyFile
    seconds: float
    balance_passed: bool
    estimand: str  # ATT, or "effect on the matched clients" (see safepool.study.estimand)
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

    def published_matching(self) -> MatchingSummary | None:
        """The share of clients matched, the reasons for the others and the run's estimand, from the
        cohort flow as it was published (rounded with the rest of the release, if it was), so a
        console says no count the checks suppressed or rounded; None if the counts were suppressed."""
        checked = self.checked["cohort_flow"]
        rounded = checked.rules.rounding_base if checked.rules and "rounding" in checked.method else None
        flow = checked.output.public_table()
        shown = flow.loc[shown_mask(flow)]
        counts = dict(zip(shown["step"].astype(str), shown["count"].astype(float)))
        if MATCHED_STEP not in counts or TREATED_STEP not in counts:
            return None
        reasons = {step.removeprefix(NOT_MATCHED): n for step, n in counts.items() if step.startswith(NOT_MATCHED)}
        return MatchingSummary(counts[TREATED_STEP], counts[MATCHED_STEP], self.study.matching.min_share_matched,
                               reasons, named=self.estimand, rounded_to=rounded)



INTERVALS = {
    "cluster_jackknife": "cluster jackknife by matched set and by person, t on the effective number of clusters",
    "cluster_robust": "cluster-robust by matched set and by person, t on the clusters",
    "cluster_bootstrap": "cluster bootstrap of sets sharing a person, {} replications",
}


def study_methods(study: StudyFile) -> dict[str, object]:
    """The settings a reader needs to know how the numbers were made."""
    m = study.matching
    nearest = m.method == "nearest"
    return {"treatment": study.treatment.label, "eligible ages": f"{study.eligible.age[0]}-{study.eligible.age[1]}",
            "covariates": ", ".join(study.covariates),
            "matching method": "nearest neighbour" if nearest else "optimal full matching",
            "distance": "propensity logit" if m.distance == "propensity" else "Mahalanobis within the caliper",
            "exact": ", ".join(m.exact) or "none",
            "caliper (SD of the logit)": m.caliper if m.caliper is not None else "none",
            **({"ratio": m.ratio, "with replacement": m.replace, "balance refinement": m.refine} if nearest else {}),
            "ATT when at least this share of clients is matched": f"{m.min_share_matched:.0%}",
            "horizons": ", ".join(map(str, study.horizons)),
            "event window": f"{study.event_window.first}..{study.event_window.last}", "baseline": study.baseline,
            "estimators": "ATT and matched difference-in-differences",
            "controls entering later": "censored from their own entry, inverse probability of censoring weights",
            "confidence intervals": f"{INTERVALS[study.inference.ci].format(study.inference.replications)}, "
                                    f"{100 * (1 - study.inference.alpha):.0f}%"}


def study_matcher(study: StudyFile, covariates: list[str]) -> RiskSetMatcher:
    """The matcher the study file's matching settings describe, on the cohort's covariate columns."""
    m = study.matching
    return RiskSetMatcher(covariates, exact=m.exact, method=m.distance, caliper=m.caliper, ratio=m.ratio,
                          replace=m.replace, refine=m.refine, random_state=m.random_state, matching=m.method)


def analyse(con: duckdb.DuckDBPyConnection, study: StudyFile, min_frequency: int, progress: Progress | None = None,
            cohort: Cohort | None = None) -> StudyAnalysis:
    """The whole study on an open pool connection; `min_frequency` is the workspace policy's (fewer
    clients not matched are left out of the tables before matching too: see
    `safepool.study.differencing`); `cohort`, if given, is build_cohort's on this connection for a
    study with the same cohort settings (the validity benchmark matches one cohort several ways)."""
    started = time.perf_counter()
    say = progress or (lambda _stage: None)
    cohort = cohort if cohort is not None else build_cohort(con, study, progress=say)
    say("matching")
    m = study.matching
    matcher = study_matcher(study, cohort.covariates).fit(cohort.units)
    reasons = matcher.unmatched_.groupby("reason")["n_treated"].sum() if len(matcher.unmatched_) else pd.Series()
    summary = MatchingSummary(matcher.n_treated_, matcher.n_matched_, m.min_share_matched,
                              {str(reason): int(n) for reason, n in reasons.items()})
    if summary.warning:
        warnings.warn(summary.warning, EstimandWarning, stacklevel=2)
    described = described_units(cohort.units, matcher.match_status_, min_frequency)
    say("balance")
    balance = Balance(cohort.covariates, smd_limit=study.balance.smd_limit,
                      vr_range=study.balance.variance_ratio).fit(described, matcher.matched_)
    say("outcomes")
    horizons = sorted(set(study.event_horizons) | set(study.horizons))
    matched = attach_outcomes(con, matcher.matched_, list(study.outcomes), horizons)
    matched = censoring_weights(cohort.units, matcher.propensity_, matched, horizons, person=PERSON)
    say("effects")
    estimates = Estimates(study, matched)
    effects, effect_persons, effect_contributors = split_kept_apart(estimates.effects())
    say("event study")
    event, event_persons, event_contributors = split_kept_apart(estimates.event_study())
    placebo = estimates.placebo()
    say("subgroups")
    subgroups, subgroup_persons, subgroup_contributors = split_kept_apart(estimates.subgroups())
    say("sensitivity")
    sensitive = sensitivity(effects.loc[effects["method"] == "att"], matched, alpha=study.inference.alpha,
                            unit_col=PERSON)
    say("naive comparison")
    naive, naive_persons, naive_contributors = split_kept_apart(
        naive_comparison(con, study, described, estimates.followed))
    flow = matched_flow(cohort.flow, matcher)
    hidden = baseline_hidden({"effects": effects, "event_study": event},
                             {"effects": effect_persons, "event_study": event_persons}, study.baseline, min_frequency)
    effects, event, subgroups = (with_estimand(table, summary.estimand) for table in (effects, event, subgroups))
    return StudyAnalysis(
        study=study, cohort_flow=flow, balance=balance.table_, balance_passed=bool(balance.passed_), effects=effects,
        event_study=event, subgroups=subgroups, placebo=placebo, sensitivity=sensitive, naive=naive,
        unmatched=matcher.unmatched_, love_plot=balance.love_plot(), n_treated=matcher.n_treated_,
        n_matched=matcher.n_matched_, n_described=int(described["treated"].sum()),
        seconds=time.perf_counter() - started, matching=summary,
        contributors={"effects": effect_contributors, "event_study": event_contributors,
                      "subgroups": subgroup_contributors, "naive": naive_contributors},
        groups=study_groups(described, matcher.matched_, PERSON),
        row_persons={"effects": effect_persons, "event_study": event_persons, "subgroups": subgroup_persons,
                     "naive": naive_persons}, baseline_hidden=hidden,
        balance_values=balance_values({"before": described, "after": matcher.matched_}, cohort.covariates, PERSON,
                                      "weight"))


def with_estimand(table: pd.DataFrame, estimand: str) -> pd.DataFrame:
    """The table with its estimand named after the estimator column: "ATT" or "effect on the matched clients"."""
    at = list(table.columns).index("method") + 1 if "method" in table.columns else 0
    table = table.copy()
    table.insert(at, "estimand", estimand)
    return table


def split_kept_apart(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """An effect table as published, each row's persons (for the ledger) and its contributors (for
    the checks), the rows in the same order."""
    table, persons = split_row_persons(table)
    columns = [c for c in table.columns if is_contributor_column(c)]
    return table.drop(columns=columns), persons, table[columns]


class Estimates:
    """The effect estimators of one study on its matched table (censoring-weighted where it matters)."""

    def __init__(self, study: StudyFile, matched: pd.DataFrame) -> None:
        self.study = study
        self.matched = matched
        inference = study.inference
        self.options = dict(baseline=study.baseline, ci=inference.ci, alpha=inference.alpha,
                            n_boot=inference.replications, random_state=inference.random_state, unit_col=PERSON)
        self.followed: dict[str, pd.DataFrame] = {}  # outcome -> the clients its ATT follows (horizon, person)

    def _effects(self, matched: pd.DataFrame, outcome: str, horizons: list[int], method: str,
                 part: bool = False) -> pd.DataFrame:
        """Censoring-weighted effect rows, with the contributors behind each arm's mean (as
        safepool.study.censoring.censoring_weighted_effects, keeping the cells for them). A `part`
        of the matched sets with cells but too few clusters for an interval still gives its rows,
        estimates not defined: it is in the effect of all the sets."""
        o = self.options
        cells = weighted_cells(matched, outcome, horizons, method, o["baseline"], o["unit_col"])
        try:
            result = estimate_cells(cells, o["ci"], o["alpha"], o["n_boot"], o["random_state"],
                                    f"effects of {outcome}")
        except StudyTableError:
            if not part or cells.empty:
                raise
            result = without_interval(cells)
        if method == "att" and not part:  # the cells' units are codes of the matched rows' persons
            clients = cells.loc[cells["treated"].to_numpy(bool)]
            persons = pd.factorize(matched[PERSON])[1]
            self.followed[outcome] = pd.DataFrame({"horizon": clients["horizon"].to_numpy(),
                                                   "person": np.asarray(persons)[clients["unit"].to_numpy()]})
        levels = numeric_matrix(matched, [f"{outcome}@{h}" for h in horizons], outcome, allow_missing=True)
        table = effect_table(outcome, method, cells, result, o["ci"], is_binary(levels.ravel()))
        table = table.merge(arm_contributors(cells), on="horizon", how="left")
        baseline = o["baseline"] if method == "did" else None  # its estimate tells the arms' baselines too
        return table.merge(row_persons(cells, matched, PERSON, outcome, baseline, outcome_rows(outcome)),
                           on="horizon", how="left")

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
        each level of the treated unit's subgroup: the levels split the effect at that horizon (a
        level with too few sets for an interval has its estimates not defined, one with no cell
        observed then is in no row of either)."""
        treated = self.matched["treated"].to_numpy() == 1
        tables = []
        for name in self.study.subgroups:
            column = f"subgroup:{name}"
            level_of_set = self.matched.loc[treated].groupby("set_id")[column].first().fillna("(missing)").astype(str)
            levels = self.matched["set_id"].map(level_of_set)
            for level in sorted(level_of_set.unique()):
                part = self.matched.loc[(levels == level).to_numpy()]
                try:
                    rows = self._effects(part, self.study.outcomes[0], [self.study.effect_horizon], "att", part=True)
                except StudyTableError:
                    continue
                tables.append(rows.assign(subgroup=name, level=level))
        if not tables:
            return pd.DataFrame(columns=["subgroup", "level", "outcome", "horizon", "estimate"])
        table = pd.concat(tables, ignore_index=True)
        return table[["subgroup", "level", *[c for c in table.columns if c not in ("subgroup", "level")]]]


def arm_contributors(cells: pd.DataFrame) -> pd.DataFrame:
    """Per horizon, for the mean of each arm (as effect_table computes it: weights times levels),
    each person's contribution: the largest CONTRIBUTORS of them and the total of their sizes."""
    parts = pd.DataFrame({"horizon": cells["horizon"].to_numpy(), "treated": cells["treated"].to_numpy(bool),
                          "unit": cells["unit"].to_numpy(),
                          "part": cells["w"].to_numpy(float) * cells["level"].to_numpy(float)})
    per_person = parts.groupby(["horizon", "treated", "unit"], sort=True)["part"].sum()
    arms = {key: np.abs(per_person.iloc[rows].to_numpy(float))
            for key, rows in per_person.groupby(level=[0, 1], sort=False).indices.items()}
    rows = []
    for horizon in sorted(parts["horizon"].unique()):
        row: dict[str, object] = {"horizon": int(horizon)}
        for treated, mean in ((True, "mean_treated"), (False, "mean_control")):
            arm = arms.get((horizon, treated), np.zeros(0))
            row[f"top:{mean}"] = sorted(arm.tolist(), reverse=True)[:CONTRIBUTORS]
            row[f"abs_total:{mean}"] = float(arm.sum())
        rows.append(row)
    return pd.DataFrame(rows, columns=["horizon", "top:mean_treated", "abs_total:mean_treated", "top:mean_control",
                                       "abs_total:mean_control"])


def naive_comparison(con: duckdb.DuckDBPyConnection, study: StudyFile, units: pd.DataFrame,
                     followed: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The clients each effect follows at a horizon (`followed`: outcome -> horizon, person) against every
    eligible unit of the persons who never entered, unmatched. Other clients' outcomes are left out:
    the two tables' means of the same outcome over clients who differ by a few would tell theirs."""
    never = units["entry_t"].isna().to_numpy()
    chosen = units.loc[(units["treated"] == 1).to_numpy() | never, [PERSON, "t", "treated", "entry_t"]]
    frame = attach_outcomes(con, chosen, list(study.outcomes), study.horizons)
    clients = frame["treated"].to_numpy() == 1
    for outcome in study.outcomes:
        for horizon in study.horizons:
            kept = followed[outcome].loc[followed[outcome]["horizon"].to_numpy() == horizon, "person"]
            frame.loc[clients & ~frame[PERSON].isin(kept).to_numpy(), f"{outcome}@{horizon}"] = np.nan
    source = frame[[PERSON, "t"]].copy()  # the rows' persons and times, for the ledger (row_persons)
    frame[PERSON] = pd.factorize(frame[PERSON])[0]  # the persons as codes, told apart once for every outcome
    tables = []
    for outcome in study.outcomes:  # with the contributors behind each arm's mean, as the effects
        cells = naive_cells(frame, outcome, study.horizons, unit_col=PERSON)
        table = naive_table(cells, outcome, study.inference.alpha).merge(arm_contributors(cells), on="horizon",
                                                                         how="left")
        tables.append(table.merge(row_persons(cells, source, PERSON, outcome, rows_of=outcome_rows(outcome)),
                                  on="horizon", how="left"))
    return pd.concat(tables, ignore_index=True)


def matched_flow(flow: pd.DataFrame, matcher: RiskSetMatcher) -> pd.DataFrame:
    """The cohort flow with the matching step: clients matched, then one row per reason the others were not."""
    treated = matcher.n_treated_
    reasons = matcher.unmatched_.groupby("reason")["n_treated"].sum() if len(matcher.unmatched_) else pd.Series()
    rows = [{"step": MATCHED_STEP, "persons": matcher.n_matched_, "units": matcher.n_matched_,
             "removed": treated - matcher.n_matched_, "reason": "; ".join(reasons.index) or ""}]
    rows += [{"step": NOT_MATCHED + str(reason), "persons": int(n), "units": int(n), "removed": 0, "reason": ""}
             for reason, n in reasons.items()]
    matched = matcher.matched_
    controls = matched.loc[matched["treated"] == 0]
    rows.append({"step": "matched controls", "persons": controls[PERSON].nunique(),
                 "units": int(controls.index.nunique()), "removed": 0, "reason": ""})
    return pd.concat([flow, pd.DataFrame(rows)], ignore_index=True)


# --- outputs ---------------------------------------------------------------------------------


def outputs_of(analysis: StudyAnalysis) -> dict[str, StatOutput]:
    """Each table and figure as the disclosure checks understand it (no identifiers in any); the
    effect tables carry the contributors behind their arms' means for the dominance checks."""
    study = analysis.study
    flow = analysis.cohort_flow
    cells = pd.concat([
        pd.DataFrame({"step": flow["step"], "count": flow["persons"]}),
        pd.DataFrame({"step": "removed: " + flow["reason"], "count": flow["removed"]}).loc[flow["removed"] > 0],
    ], ignore_index=True)
    # the variance ratio is text ("binary" where undefined) about a row's numbers, not a label: a row hidden
    # hides it too
    balance = effect_output("Covariate balance before and after matching", balance_cells(analysis.balance),
                            with_counts=balance_counts(analysis), remarks=["variance_ratio"])

    def effects(title: str, name: str, parts: list[str] | None = None) -> EffectTable:
        frame = getattr(analysis, name)
        contributors = analysis.contributors.get(name)
        return effect_output(title, frame if contributors is None else frame.join(contributors), parts=parts)

    outputs: dict[str, StatOutput] = {
        "cohort_flow": FrequencyTable("Cohort flow: persons kept at each step, and why the others left", cells,
                                      ["step"]),
        "balance": balance,
        "effects": effects("Effects on the treated (ATT and matched difference-in-differences)", "effects"),
        "event_study": effects("Event study: matched difference-in-differences by quarter from entry", "event_study"),
        # the levels of a subgroup split the matched clients of the effect at that horizon
        "subgroups": effects(f"Effects by subgroup at {study.effect_horizon} quarters after entry", "subgroups",
                             parts=["level"]),
        "placebo": effect_output("Pre-trend placebo test before entry", placebo_test(analysis.placebo)),
        "sensitivity": effect_output("Sensitivity to hidden bias: E-values and Rosenbaum bounds",
                                     with_effect_arms(analysis.sensitivity,
                                                      analysis.effects.join(analysis.contributors.get("effects")))),
        "naive": effects("Naive comparison: the clients followed against all eligible non-clients, unmatched",
                         "naive"),
    }
    outputs["love_plot"] = Figure("Love plot: standardised mean differences before and after matching", balance,
                                  analysis.love_plot)
    return outputs


ROW_TABLES = {"effects": "effects", "event_study": "event study", "subgroups": "subgroups",
              "naive": "naive comparison"}


def row_labels(name: str, table: pd.DataFrame) -> pd.Series:
    """Each row of an effect table named for a message: its table, outcome, method and horizon
    (and a subgroup's name, never its level: a withheld run shows no label of its data)."""
    if table.empty:
        return pd.Series([], dtype=str)
    label = (ROW_TABLES[name] + ": " + table["outcome"].astype(str) + " (" + table["method"].astype(str) + ") at "
             + table["horizon"].astype(str) + " quarters")
    if "subgroup" in table.columns:
        label = label + " by " + table["subgroup"].astype(str)
    return label.reset_index(drop=True)


def checked_in_ledger(pool_dir: Path, governance: Governance, actor: Actor, analysis: StudyAnalysis,
                      mitigated: Mapping[str, Mitigated]) -> None:
    """The run's groups, the arms of the rows its outputs show and those of the balance means they
    show, as they would be recorded, checked in the differencing ledger (StudyWithheld, nothing
    recorded, when it finds one)."""
    shown = {name: shown_mask(mitigated[name].output.cells) for name in analysis.row_persons}
    labels = {name: row_labels(name, getattr(analysis, name)) for name in analysis.row_persons}
    balance = mitigated["balance"].output.cells
    members, sums = shown_row_cells(analysis.row_persons, shown, labels)
    check_study(pool_dir, governance, actor, analysis.study.permit, analysis.groups, members,
                sums | shown_balance_cells(analysis.balance_values, zip(balance["stage"], balance["covariate"]),
                                           shown_mask(balance)),
                cohort_definition(analysis.study))


# tables whose rows are about another table's rows (the table and the columns that name the row): the
# sensitivity of an effect tells its estimate
# a table about another's rows hides what that one hides: the sensitivity of an effect, and the
# subgroups' levels of one effect, which add up to it (the sexes' rows at entry rebuilt an effect
# row the ledger had found)
ROWS_OF_ANOTHER = {"sensitivity": ("effects", ["outcome", "horizon", "method"]),
                   "subgroups": ("effects", ["outcome", "horizon", "method"])}


def hidden_labels(outputs: Mapping[str, StatOutput], hidden: Mapping[str, np.ndarray]) -> dict[str, set[tuple]]:
    """Per table, the group labels of its rows hidden before the checks (rows of a difference in
    differences for their baselines, rows whose means the ledger found), as the checks name the
    cells they are told to hide."""
    hidden = dict(hidden)
    for name, (table, keys) in ROWS_OF_ANOTHER.items():  # a table about another's rows hides what it hides
        if table in hidden and name in outputs and len(outputs[name].cells):
            theirs = pd.MultiIndex.from_frame(outputs[table].cells.loc[hidden[table], keys])
            hidden[name] = pd.MultiIndex.from_frame(outputs[name].cells[keys]).isin(theirs) | hidden.get(name, False)
    labels = {}
    for name, rows in hidden.items():
        output = outputs[name]
        groups = output.cells.loc[rows, list(output.groups)] if len(output.cells) else output.cells
        labels[name] = {tuple(json_safe(v) for v in row) for row in groups.itertuples(index=False, name=None)}
    # a figure drawn from a table (the love plot from the balance) hides what its table hides
    labels.update({name: labels[table] for name, output in outputs.items() if isinstance(output, Figure)
                   for table in list(labels) if output.table is outputs[table]})
    return {name: found for name, found in labels.items() if found}


def balance_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The balance table with the variance ratio, undefined for 0/1 covariates, as text ("binary" there)."""
    cells = table.copy()
    binary = cells["variance_ratio"].isna()
    cells["variance_ratio"] = cells["variance_ratio"].map(lambda v: f"{v:.3f}").where(~binary, "binary")
    cells["vr_ok"] = cells["vr_ok"].astype(float).where(~binary, 1.0)
    return cells


def balance_counts(analysis: StudyAnalysis) -> dict[str, dict[str, int]]:
    """Persons behind each stage of the balance table: the clients described and the eligible units, then
    the matched."""
    flow = analysis.cohort_flow.set_index("step")
    before_control = int(flow.loc[flow.index.str.startswith("persons eligible as controls"), "persons"].iloc[0])
    after_control = int(flow.loc["matched controls", "persons"])
    return {"before": {"n_treated": analysis.n_described, "n_control": before_control},
            "after": {"n_treated": analysis.n_matched, "n_control": after_control}}


def with_effect_arms(table: pd.DataFrame, effects: pd.DataFrame) -> pd.DataFrame:
    """Sensitivity rows with the arms of the effect each belongs to: their persons, and their means with
    the contributors behind them, so that a row is checked as its effect is (the sensitivity of an
    effect suppressed for one large contributor told its estimate)."""
    keys = ["outcome", "horizon", "method"]
    arms = [c for c in ("n_treated", "n_control", "mean_treated", "mean_control") if c not in table.columns]
    arms += [c for c in effects.columns if is_contributor_column(c)]
    return table.merge(effects[keys + arms], on=keys, how="left")


def placebo_test(table: pd.DataFrame) -> pd.DataFrame:
    """The pre-trend test as it is published: the joint test on each pre-entry row with the persons
    behind it, not the estimates and means it is made of (those are the event study's, checked
    there; the placebo's own, unweighted, repeated rows the event study suppressed)."""
    made_of = ["estimate", "std_error", "ci_low", "ci_high", "p_value", "mean_treated", "mean_control", "sd_control"]
    return table.drop(columns=[c for c in made_of if c in table.columns])


def effect_output(title: str, frame: pd.DataFrame, with_counts: dict[str, dict[str, int]] | None = None,
                  parts: list[str] | None = None, remarks: Sequence[str] = ()) -> EffectTable:
    """An effect-like table: text columns become labels, the rest are numbers; n_treated and n_control kept,
    contributor columns (lists, for the checks) neither; `parts` as EffectTable's; `remarks` text columns
    about a row's numbers (blanked with them), as are numeric columns with undefined values."""
    cells = frame.copy()
    if with_counts is not None:
        for column in ("n_treated", "n_control"):
            cells[column] = cells["stage"].map(lambda stage, c=column: with_counts[stage][c])
    remarks = list(remarks)
    for column in (c for c in cells.columns if not is_contributor_column(c)):
        if cells[column].dtype == bool:
            cells[column] = cells[column].astype(float)
        elif pd.api.types.is_numeric_dtype(cells[column]) and cells[column].isna().any():
            cells[column] = cells[column].map(lambda v: "not defined" if pd.isna(v) else f"{v:.6g}")
            remarks.append(column)
    groups = [c for c in cells.columns if c not in remarks and not is_contributor_column(c)
              and (not pd.api.types.is_numeric_dtype(cells[c]) or c in ("horizon", "wald_df"))]
    return EffectTable(title, cells.reset_index(drop=True), groups, remarks, parts=parts or [])


def study_document(result: StudyResult, context: dict[str, object] | None = None) -> Document:
    """The study report as a document output: its parts are the published outputs as checked;
    `context` adds the report's label book and the pool's synthetic registers (report_context)."""
    about = {"title": result.title, "question": result.question, "permit": result.permit,
             "registers": list(result.registers), "period": list(result.period),
             "methods": {k: v for k, v in result.methods.items()},
             "output_ids": {name: record.id for name, record in result.records.items()}, **(context or {})}
    return Document(f"Study report: {result.title}", {name: result.checked[name].output for name in OUTPUT_NAMES},
                    layout="study_report", about=about,
                    notes={name: result.checked[name].note for name in OUTPUT_NAMES if result.checked[name].note})


def run_study(pool_dir: Path, governance: Governance, actor: Actor, study: StudyFile,
              progress: Progress | None = None) -> StudyResult:
    """The governed study: open the pool as the analyst under the permit, analyse, publish the outputs
    as one release under the workspace's policy, then the report made of them."""
    say = progress or (lambda _stage: None)
    with chart_engine_started(), one_thread():
        return _run_study(pool_dir, governance, actor, study, say)


def study_engine_mb(pool_dir: Path, permit: str) -> int:
    """The study's engine memory bound for this pool (see STUDY_ENGINE_PER_POOL_BYTE)."""
    try:
        size = (pool_dir / permit / POOL_FILE).stat().st_size
    except OSError:  # no pool: opening it says so, after the permit check
        size = 0
    return max(STUDY_ENGINE_FLOOR_MB, int(STUDY_ENGINE_PER_POOL_BYTE * size) >> 20)


def analyse_in_pool(pool_dir: Path, governance: Governance, actor: Actor, study: StudyFile,
                    say: Progress) -> StudyAnalysis:
    """The analysis on the pool opened as the analyst, its engine bounded (study_engine_mb), and
    once more without the bound if its queries do not fit (each opening audited)."""
    governance.permits.authorise_access(actor, study.permit, needed_columns(study))  # before anything is made
    min_frequency = workspace_policy(governance).min_frequency
    with Scratch(pool_dir, f"spill-{study.permit}") as spill:  # in the pool zone: pseudonyms only
        for bound in (study_engine_mb(pool_dir, study.permit), None):
            say("opening the pool")
            con = open_for_analysis(pool_dir, governance, actor, study.permit, wanted=needed_columns(study),
                                    memory_limit_mb=bound, spill=spill.path)
            try:
                return analyse(con, study, min_frequency, say)
            except duckdb.OutOfMemoryException:
                if bound is None:
                    raise
            finally:
                con.close()
    raise AssertionError("the unbounded pass returns or raises")


def _run_study(pool_dir: Path, governance: Governance, actor: Actor, study: StudyFile,
               say: Progress) -> StudyResult:
    analysis = analyse_in_pool(pool_dir, governance, actor, study, say)
    registers = sorted(needed_columns(study))
    say("disclosure checks")
    outputs = outputs_of(analysis)
    hidden = dict(analysis.baseline_hidden)
    while True:  # rows whose means the ledger finds are hidden as the checks hide a row, and checked again
        try:
            published = governance.outputs.publish_all(actor, study.permit, outputs, "study",
                                                       round_if_failing={"cohort_flow"},
                                                       hide=hidden_labels(outputs, hidden),
                                                       before_recording=partial(checked_in_ledger, pool_dir,
                                                                                governance, actor, analysis))
            break
        except RowsFound as found:
            for name, positions in found.rows.items():
                rows = hidden.get(name, np.zeros(len(outputs[name].cells), dtype=bool)).copy()
                rows[sorted(positions)] = True
                hidden[name] = rows
    result = StudyResult(study, analysis.seconds, analysis.balance_passed, analysis.estimand, registers,
                         checked={name: m for name, (m, _) in published.items()},
                         records={name: record for name, (_, record) in published.items()})
    say("report")
    document = study_document(result, report_context(pool_dir, study))
    _, result.records["report"] = governance.outputs.publish(actor, study.permit, document, "study", REPORT_NAME)
    result.checked = {name: mitigated.shown() for name, mitigated in result.checked.items()}  # for the shell
    return result
