"""The report's sections of a need prediction, its model card, and its one console line.

The text is written from the analysis file's settings and the features layer's definitions
only, never from a value read from the data: every number a reader sees is in a checked output
the section names. The console line is read from the outputs as checked (a suppressed cell
stays unsaid).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.kinds.base import Mitigated
from safepool.features.compile import FeatureSet
from safepool.insight import fairness

if TYPE_CHECKING:
    from safepool.insight.need import NeedResult, NeedSettings

LIMITATIONS = [
    "The model learns from the services the city gave in the past. Where a service reached some families less "
    "(preventive services reach foreign-language families less in the handbook's pilot), their need looks "
    "smaller than it is and the model inherits that: the fairness audit shows where.",
    "A start of the service is what the registers record, not the need itself: a need the city did not meet "
    "is not in the data.",
    "The test quarter comes after every training quarter; the model is judged on one later quarter only and "
    "must be judged again before each use, as the services and the population change.",
    "Predictions are probabilities for groups of similar children, not facts about a child; no decision about "
    "a person may rest on them alone.",
]


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _feature_line(features: FeatureSet, name: str) -> str:
    doc = features.describe(name)
    return f"{name}: {doc.description} ({doc.definition}; unit {doc.unit}; from {', '.join(doc.sources)})"


def model_card(settings: NeedSettings, features: FeatureSet) -> str:
    """The model card's text: what the model is, what it uses, where it is trained and measured, what it
    is for and not for; its metrics and the fairness audit's differences are the tables shown under it."""
    from safepool.insight.need import quarter_index, quarter_label

    train = [quarter_label(t) for t in settings.train.quarters()]
    model = ("logistic regression (numeric predictors standardised, missing values imputed with a flag; "
             "categorical predictors one-hot against their first level); its coefficients are published"
             if settings.model == "logistic" else
             "gradient-boosted trees (scikit-learn HistGradientBoostingClassifier, seeded)")
    test = settings.test
    last_outcome = quarter_label(quarter_index(test) + settings.horizon - 1)
    return "\n\n".join([
        f"Model: {model}. Outcome: {settings.outcome} ({features.describe(settings.outcome).description}) "
        f"starting within {settings.horizon} quarters of the index quarter, for persons aged "
        f"{settings.age[0]}-{settings.age[1]} who had not started it before.",
        "Predictors (each measured before the index quarter):\n\n"
        + _bullets([_feature_line(features, name) for name in settings.predictors]),
        f"Training: index quarters {', '.join(train)}. Test: index quarter {test}, outcomes to the end of "
        f"{last_outcome}. Selection: the {settings.selected_share:.0%} of the test persons with the highest "
        "predicted probability.",
        f"Intended use: {settings.intended_use}."
        + (" Where the permit allows re-identification for preventive services, the persons the model without "
           f"the proxies the screen finds scores at {settings.handover.threshold:g} or more at "
           f"{settings.handover.quarter} are handed to the linkage authority as pseudonyms (never an output; the "
           "analyst sees none of them)."
           if settings.handover else ""),
        "Limitations:\n\n" + _bullets([*LIMITATIONS, *settings.limitations]),
        "Metrics (the first table below): AUC, the chance that a person who started is ranked above one who "
        "did not (0.5 is chance), with a 95% interval (Hanley and McNeil); the Brier score, the mean squared "
        "difference between the predicted probability and what happened. The calibration curve, the importance "
        "of each predictor and the coefficients follow the card.",
        f"Fairness audit (the tables after it): the largest differences between the groups of "
        f"{', '.join(settings.audit)}; a difference above {settings.tolerance:g} or a ratio below "
        f"{settings.ratio_tolerance:g} is flagged. Only groups whose rates the disclosure checks show are "
        "compared; where fewer than two are, no table of differences follows. Every group's rates, and the "
        "predictors that stand in for an audited attribute (the model is shown without them), follow the card.",
    ])


def sections(result: NeedResult, features: FeatureSet, published: set[str]) -> list:
    """The report's sections, each naming the outputs shown under it (of those `published`)."""
    from safepool.insight.analysis import Section

    settings = result.settings
    coefficients = [f"coefficients_{i + 1}" for i, m in enumerate(result.models) if m.coefficients is not None]
    audits = [f"fairness_{i + 1}" for i in range(len(result.models))]
    disparities = [f"disparities_{i + 1}" for i in range(len(result.models))]
    proxies = ", ".join(settings.proxies)
    return [
        Section("The question", (
            f"Which persons aged {settings.age[0]}-{settings.age[1]} start {settings.outcome} "
            f"({features.describe(settings.outcome).description}) within the next {settings.horizon} quarters, "
            "predicted from what the registers held before? Units are persons at index quarters; the model is "
            f"trained on the earlier quarters and judged on {settings.test}, where each person counts once."),
            ["cohort"]),
        Section("Model card", model_card(settings, features),
                ["performance", *[name for name in disparities if name in published]]),
        Section("Calibration", (
            "The observed share starting among test persons by bins of predicted probability (edges "
            f"{', '.join(f'{e:g}' for e in settings.calibration_edges)}); a bin with too few persons or starts is "
            "not shown."),
            ["calibration"]),
        Section("What the model uses", (
            "Permutation importance: how much the test AUC falls when one predictor's values are shuffled among "
            f"the test persons ({settings.permutation_repeats} seeded shuffles)."
            + (" The coefficients of the open model follow (per standard deviation of a numeric predictor)."
               if coefficients else "")),
            ["importance", *coefficients]),
        Section("Fairness audit by group", (
            f"For each group of {', '.join(settings.audit)}: the selection rate, the false positive and false "
            "negative rates and the precision of the selection, with the counts each rests on and 95% bootstrap "
            f"intervals ({settings.bootstrap} seeded replicates). Differences between groups (in the model card) "
            f"are compared over the groups with at least {result.min_group} persons in every count behind a rate. "
            "A group too small to show is suppressed, not described."),
            [name for name in audits if name in published]),
        Section("Proxies", (
            "A predictor that is not an audited attribute's own variable but is associated with it (Cramer's V "
            f"or the correlation ratio at least {settings.proxy_tolerance:g}) stands in for it. The model is "
            "fitted again without the proxies the screen finds"
            + (f" and without {proxies}, named in the analysis file" if proxies else "")
            + "; both models are audited."),
            ["proxies"]),
    ]


def _shown(checked: Mapping[str, Mitigated], name: str) -> pd.DataFrame:
    if name not in checked:
        return pd.DataFrame()
    cells = checked[name].output.cells
    return cells.loc[shown_mask(cells)]


def summary_line(checked: Mapping[str, Mitigated]) -> str:
    """One console line from the checked outputs: the test AUCs, the proxies, the flags."""
    performance = _shown(checked, "performance")
    aucs = [f"{row['auc']:.2f} ({row['model']})" for _, row in performance.iterrows() if pd.notna(row.get("auc"))]
    proxies = _shown(checked, "proxies")
    found = sorted({f"{r['feature']} for {r['attribute']}" for _, r in proxies.iterrows()
                    if r.get("role") == fairness.PROXY})
    flags = pd.concat([_shown(checked, name) for name in sorted(checked) if name.startswith("disparities_")]
                      + [pd.DataFrame({"flag": []})])
    beyond = int((flags["flag"] == "beyond tolerance").sum())
    possibly = int((flags["flag"] == "possibly beyond tolerance").sum())
    parts = [f"test AUC {', '.join(aucs)}" if aucs else "test AUC not shown",
             f"proxies: {', '.join(found)}" if found else "no proxy found",
             f"differences between groups: {beyond} of {len(flags)} beyond tolerance, {possibly} possibly"
             if len(flags) else
             _why_no_difference(checked, performance)]
    return "need prediction: " + "; ".join(parts)


def _why_no_difference(checked: Mapping[str, Mitigated], performance: pd.DataFrame) -> str:
    """None shown is not none found: the checks may have hidden every rate by group (too few
    starts in the test set to split by group), or left fewer
    than two groups of an attribute to compare. The reader is told which, with the starts the
    performance table already shows."""
    if any(len(_shown(checked, name)) for name in checked if name.startswith("fairness_")):
        return "fewer than two groups of an attribute shown, so no difference between groups compared"
    starts = performance["n_positive"].dropna() if "n_positive" in performance.columns else pd.Series([])
    among = f"; {int(starts.iloc[0]):,} starts in the test set" if len(starts) else ""
    return f"no rate by group shown (the checks suppressed every one: too few persons behind them{among})"
