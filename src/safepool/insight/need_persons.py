"""The persons behind the need analysis's tables, for the differencing ledger
(safepool.insight.differencing).

Every count the analysis shows is a count of its units: the cohort's units by set and outcome
(training units are person-quarters, so a person adds one per quarter), the test persons behind
each model's performance, importance and proxy screen, the test persons in each calibration bin,
and, in the fairness audit, the test persons of a group among whom a rate is taken and those it
counts. Each is named by the labels its units have (set, outcome, the model's bin, selected or
not, the audited group), so that one set shown in two tables is one question: the test persons
who started are the cohort's cell and the performance table's n_positive alike. A second run over
nearly the same units (an age range a year narrower) is then set against the first, cell by
cell, as the queries are.

A disparity's n repeats one count of the fairness audit (the fewest persons behind a compared
rate, of the groups the checked fairness table shows: `need.DisparitiesShown`, made as the run
publishes) and enters as that count, the same question: hidden where the fairness table's is found.
What does not enter: the models' estimates (coefficients, AUC, importance, intervals), which are
not sums over persons.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from safepool.features.compile import PERSON
from safepool.insight import fairness
from safepool.insight.differencing import PersonsBehind
from safepool.insight.need import DisparitiesShown, NeedResult, calibration_bins, outcome_labels

TEST = "test"
STARTED, NOT_STARTED = outcome_labels(np.array([1, 0]))
# the labels of the test persons each count of the fairness audit counts (fairness.COUNTS)
COUNT_LABELS = {
    "n": {}, "n_positive": {"outcome": STARTED}, "n_negative": {"outcome": NOT_STARTED},
    "n_selected": {"selected": "yes"},
    "n_true_positive": {"selected": "yes", "outcome": STARTED},
    "n_false_positive": {"selected": "yes", "outcome": NOT_STARTED},
    "n_false_negative": {"selected": "no", "outcome": STARTED},
    "n_true_negative": {"selected": "no", "outcome": NOT_STARTED},
}


def persons_behind(result: NeedResult, outputs: Mapping[str, Any], derived: Mapping[str, DisparitiesShown],
                   seed: int) -> dict[str, PersonsBehind]:
    """Who is behind each count the analysis shows (see the module docstring). The units are
    decided by the service (nobody who started it before), ages, residence and index quarters;
    whether a unit started by the horizon; the models' scores by their settings and the run's
    seed, a bin also by the edges, a selection also by the share selected (so a run that changes
    only the share asks the calibration's questions again, and its selections anew)."""
    settings, frame, pids = result.settings, result.units.frame, result.units.pids
    population = settings.model_dump_json(include={"outcome", "age", "age_feature", "resident_feature", "train",
                                                   "test"})
    started_by = json.dumps({"horizon": settings.horizon})
    fitted = {"seed": seed, **settings.model_dump(mode="json", include={  # what decides the models' scores
        "predictors", "proxies", "model", "proxy_tolerance", "audit"})}
    binned_by = json.dumps({**fitted, "edges": settings.calibration_edges}, sort_keys=True)
    units = pd.DataFrame({PERSON: pids, "set": frame["set"].to_numpy(),
                          "outcome": outcome_labels(frame["outcome"].to_numpy())})
    test = units[units["set"] == TEST].reset_index(drop=True)
    of_test = {"n": {"set": TEST}, "n_positive": {"set": TEST, "outcome": STARTED},
               "n_negative": {"set": TEST, "outcome": NOT_STARTED}}
    behind = {"cohort": PersonsBehind(units, ("set", "outcome"), population, {"outcome": started_by})}
    for name in ("performance", "importance", "proxies"):  # every row is over all test persons
        shown = [c for c in of_test if c in outputs[name].cells.columns]
        behind[name] = PersonsBehind(units, (), population, {"outcome": started_by},
                                     counted=lambda _row, shown=shown: {c: of_test[c] for c in shown})
    binned = pd.concat([test.assign(model=model.label, predicted=np.asarray(labels)[which])
                        for model in result.models for labels, which in [calibration_bins(settings, model.score)]],
                       ignore_index=True)
    behind["calibration"] = PersonsBehind(binned, ("model", "predicted"), population,
                                          {"model": binned_by, "outcome": started_by},
                                          counted=lambda _row: of_test)
    groups = frame.loc[frame["set"] == TEST, list(settings.audit.values())].reset_index(drop=True)
    groups.columns = list(settings.audit)
    for i, model in enumerate(result.models):
        audited = pd.concat([test.assign(selected=np.where(model.selected, "yes", "no"), attribute=attribute,
                                         group=groups[attribute].astype(str).to_numpy())
                             for attribute in groups.columns], ignore_index=True)
        decided_by = {"attribute": json.dumps(settings.audit, sort_keys=True), "outcome": started_by,
                      "selected": json.dumps({**fitted, "share": settings.selected_share, "model": model.label,
                                              "predictors": model.predictors}, sort_keys=True)}
        behind[f"fairness_{i + 1}"] = PersonsBehind(audited, ("attribute",), population, decided_by,
                                                    counted=_rate_counts)
        disparities = derived[f"disparities_{i + 1}"]  # made as the run publishes, from the shown rates
        behind[f"disparities_{i + 1}"] = PersonsBehind(audited, ("attribute",), population, decided_by,
                                                       counted=lambda row, made=disparities: _fewest_count(made, row))
    return behind


def _rate_counts(row: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A fairness row's n and n_events: the test persons of its group its metric is over and counts."""
    over, counted = fairness.METRIC_COUNTS[row["metric"]][:2]
    return {"n": {"set": TEST, "group": str(row["group"]), **COUNT_LABELS[over]},
            "n_events": {"set": TEST, "group": str(row["group"]), **COUNT_LABELS[counted]}}


def _fewest_count(disparities: DisparitiesShown, row: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A disparity's n: the count of the fairness audit it repeats (a group's, the fewest)."""
    group, count = disparities.fewest()[(str(row["attribute"]), str(row["metric"]))]
    return {"n": {"set": TEST, "group": group, **COUNT_LABELS[count]}}
