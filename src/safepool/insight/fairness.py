"""The fairness audit of a selection: rates by group, their intervals, the flags, and proxies.

For each audited attribute (sex, the family's native language, age group, ... as the analysis
file names them) fairlearn's MetricFrame gives, per group, the selection rate, the false
positive and false negative rates and the precision, and the counts each rests on (persons,
positives, negatives, selected, true and false positives and negatives): every rate is released
with the counts behind it, so the disclosure checks (the rates output kind) never show a rate
over, or of, fewer persons than the workspace's minimum frequency (`released_table`: the
selection rate and the error rates of a group are suppressed apart, see `RATE_KINDS`).

Intervals: a seeded bootstrap of the persons (percentile intervals), drawn as the multinomial
counts of the joint categories (every attribute's group and the confusion cell), which is the
same distribution as drawing persons and costs nothing per person; every attribute's intervals
come from the same replicates. The
disparity of a metric within an attribute is its largest minus its smallest group value, over
the groups with at least `min_group` persons in each count (smaller groups cannot be compared
reliably), and their ratio is the smallest over the largest. A disparity is flagged "beyond
tolerance" when the interval of the difference lies above the tolerance or that of the ratio
below the ratio tolerance (the four-fifths rule's 0.8 by default), "possibly beyond tolerance"
when only an estimate does.

Proxies: a predictor that is not built on an audited attribute's own source variables but is
associated with the attribute (Cramer's V for a categorical predictor, the correlation ratio
for a numeric one) at or above the proxy tolerance stands in for it; the need analysis fits
the model again without it so that the report shows both.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from safepool.disclosure.kinds.rates import RateTable
from safepool.features.compile import FeatureSet

METRICS = ("selection_rate", "false_positive_rate", "false_negative_rate", "precision")
COUNTS = ("n", "n_positive", "n_negative", "n_selected", "n_true_positive", "n_false_positive",
          "n_false_negative", "n_true_negative")
# the counts each metric rests on (numerator and denominator, and what the rest of the group is)
METRIC_COUNTS = {
    "selection_rate": ("n", "n_selected"),
    "false_positive_rate": ("n_negative", "n_false_positive", "n_true_negative"),
    "false_negative_rate": ("n_positive", "n_false_negative", "n_true_positive"),
    "precision": ("n_selected", "n_true_positive", "n_false_positive"),
}
# the kinds of rate a group's rows are suppressed by: whom the selection reaches rests on the
# persons and the selected alone, the error rates on the four cells of the confusion table (each
# checked in one of their rows), so showing the first never lets a small cell of the second be
# worked out, and a group whose true positives are too few still shows its selection rate
RATE_KINDS = {"selection_rate": "selection", "false_positive_rate": "errors", "false_negative_rate": "errors",
              "precision": "errors"}
PROXY, DIRECT = "proxy", "direct use"
MIN_GROUP = 10


@dataclass
class Audit:
    """One model's audit: the table by group, and the bootstrap replicates of each metric."""

    groups: pd.DataFrame  # attribute, group, metrics with _low/_high, counts
    replicates: dict[tuple[str, str], np.ndarray]  # (attribute, metric) -> (reps, groups) in table order


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """(TN, FP, FN, TP) of 0/1 arrays, rows weighted by how many persons each stands for."""
    cell = 2 * np.asarray(y_true, dtype=np.int64) + np.asarray(y_pred, dtype=np.int64)
    return np.rint(np.bincount(cell, weights=sample_weight, minlength=4)).astype(np.int64)


_COUNT_OF = {"n": lambda c: c.sum(axis=-1), "n_positive": lambda c: c[..., 2] + c[..., 3],
             "n_negative": lambda c: c[..., 0] + c[..., 1], "n_selected": lambda c: c[..., 1] + c[..., 3],
             "n_true_positive": lambda c: c[..., 3], "n_false_positive": lambda c: c[..., 1],
             "n_false_negative": lambda c: c[..., 2], "n_true_negative": lambda c: c[..., 0]}


def group_metrics(y: np.ndarray, selected: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    """Rates and counts by group, disaggregated by fairlearn's MetricFrame (groups in sorted order).

    MetricFrame gives each group's confusion counts (one metric over the persons summed by group
    and cell, so the data is split once and no row is handled one by one in Python); the
    rates follow from them with the definitions of fairlearn's selection_rate, false_positive_rate
    and false_negative_rate and scikit-learn's precision (tested against them), NaN where a rate
    is not defined (no negatives, positives or selected)."""
    from fairlearn.metrics import MetricFrame

    # one row per group and confusion cell, weighted by its persons: MetricFrame splits a few rows
    rows = pd.DataFrame({"group": groups.astype(str).to_numpy(), "y": np.asarray(y, dtype=np.int64),
                         "selected": np.asarray(selected, dtype=np.int64)}).value_counts().reset_index(name="weight")
    frame = MetricFrame(metrics={"confusion": _confusion}, y_true=rows["y"].to_numpy(),
                        y_pred=rows["selected"].to_numpy(), sensitive_features=rows["group"],
                        sample_params={"confusion": {"sample_weight": rows["weight"].to_numpy()}})
    by_group = frame.by_group["confusion"]
    counts = np.stack([np.asarray(c, dtype=np.int64) for c in by_group.to_numpy()])
    table = pd.DataFrame({"group": by_group.index.astype(str)})
    for name, values in _rates(counts).items():
        table[name] = values
    for name, count in _COUNT_OF.items():
        table[name] = count(counts).astype(int)
    return table.sort_values("group", kind="stable").reset_index(drop=True)


def _rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Rates from confusion counts [..., 4] = (TN, FP, FN, TP); NaN where not defined."""
    tn, fp, fn, tp = (counts[..., i].astype(float) for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"selection_rate": (fp + tp) / (tn + fp + fn + tp), "false_positive_rate": fp / (fp + tn),
                "false_negative_rate": fn / (fn + tp), "precision": tp / (tp + fp)}


def bootstrap(y: np.ndarray, selected: np.ndarray, codes: list[np.ndarray], sizes: list[int], reps: int,
              seed: int) -> list[np.ndarray]:
    """Each attribute's confusion counts per replicate, (reps, groups, 4), persons drawn with
    replacement. Only the counts of the joint categories (the group of every attribute and the
    confusion cell) matter, and those of n persons drawn with replacement are multinomial with
    the observed shares: drawn so, exactly the same distribution, in O(reps x categories), and
    one draw serves every attribute (the intervals of all attributes come from the same replicates)."""
    rng = np.random.default_rng(seed)
    strides = np.cumprod([1, *sizes[:-1]], dtype=np.int64)  # the groups of all attributes as one number
    together = sum((code * stride for code, stride in zip(codes, strides)), np.zeros(len(y), dtype=np.int64))
    joint = 4 * together + 2 * np.asarray(y, dtype=np.int64) + np.asarray(selected, dtype=np.int64)
    kinds, inverse = np.unique(joint, return_inverse=True)
    drawn = rng.multinomial(len(joint), np.bincount(inverse) / len(joint), size=reps)  # (reps, categories)
    out = []
    for size, stride in zip(sizes, strides):
        column = (kinds // 4 // stride) % size * 4 + kinds % 4  # the attribute's group and the cell
        mapping = np.zeros((len(kinds), size * 4))
        mapping[np.arange(len(kinds)), column] = 1.0
        out.append((drawn @ mapping).reshape(reps, size, 4))
    return out


def audit(y: np.ndarray, selected: np.ndarray, groups: pd.DataFrame, reps: int, seed: int) -> Audit:
    """The audit of one selection by every attribute (the columns of `groups`)."""
    tables, codes = [], []
    for attribute in groups.columns:
        values = groups[attribute].astype(str)
        table = group_metrics(y, selected, values)
        codes.append(pd.Categorical(values, categories=table["group"].tolist()).codes.astype(np.int64))
        tables.append(table.assign(attribute=attribute))
    counts = bootstrap(y, selected, codes, [len(t) for t in tables], reps, seed)
    replicates = {}
    for table, drawn in zip(tables, counts):
        for metric, values in _rates(drawn).items():
            with warnings.catch_warnings():  # a group with no replicate where the rate is defined: blank
                warnings.simplefilter("ignore", RuntimeWarning)
                table[f"{metric}_low"], table[f"{metric}_high"] = np.nanpercentile(values, [2.5, 97.5], axis=0)
            replicates[(table["attribute"].iloc[0], metric)] = values
    columns = ["attribute", "group"] + [c for m in METRICS for c in (m, f"{m}_low", f"{m}_high")] + list(COUNTS)
    return Audit(pd.concat(tables, ignore_index=True)[columns], replicates)


def released_table(title: str, audit_: Audit) -> RateTable:
    """The audit as the rates output kind checks it (`by_metric`): a group's rows of one kind of
    rate are a unit, and an attribute's groups of one kind a partition (a hidden group's counts
    would follow from the others' and the total)."""
    return RateTable(title, by_metric(audit_), ["attribute", "group", "rates", "metric"],
                     partition=["attribute", "rates"], unit=["attribute", "group", "rates"])


def by_metric(audit_: Audit) -> pd.DataFrame:
    """The audit as released: one row per attribute, group and metric with its kind of rate
    (`RATE_KINDS`), estimate, interval, the persons it is over (n) and the persons it counts
    (n_events); a group's rows of one kind are suppressed together (their counts follow from each
    other)."""
    rows = []
    for record in audit_.groups.to_dict("records"):
        for metric in METRICS:
            over, counted = METRIC_COUNTS[metric][:2]
            rows.append({"attribute": record["attribute"], "group": record["group"], "rates": RATE_KINDS[metric],
                         "metric": metric,
                         "estimate": record[metric], "low": record[f"{metric}_low"], "high": record[f"{metric}_high"],
                         "n": int(record[over]), "n_events": int(record[counted])})
    return pd.DataFrame(rows)


def disparities(audit_: Audit, tolerance: float, ratio_tolerance: float, min_group: int = MIN_GROUP,
                 shown: Collection[tuple[str, str, str]] | None = None) -> pd.DataFrame:
    """Per attribute and metric: the largest minus the smallest group value and the smallest over
    the largest, their intervals, the flag, the highest and lowest group, and (n) the fewest
    persons in any count the compared groups' rates rest on. `shown`: the (attribute, group,
    metric) rows the released fairness table shows, the only groups compared (a difference from
    a group whose rate the checks hid, beside the other group's rate, would give the hidden one)."""
    rows = []
    for attribute, table in audit_.groups.groupby("attribute", sort=False):
        table = table.reset_index(drop=True)
        for metric in METRICS:
            needed = list(METRIC_COUNTS[metric])
            usable = _comparable(table, metric, min_group, shown)
            if usable.sum() < 2:
                continue
            values = table.loc[usable, metric].to_numpy()
            drawn = audit_.replicates[(attribute, metric)][:, usable]
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                top, bottom = np.nanmax(drawn, axis=1), np.nanmin(drawn, axis=1)
                difference_low, difference_high = np.nanpercentile(top - bottom, [2.5, 97.5])
                ratio_low, ratio_high = np.nanpercentile(np.where(top > 0, bottom / top, np.nan), [2.5, 97.5])
            difference = float(values.max() - values.min())
            ratio = float(values.min() / values.max()) if values.max() > 0 else 1.0
            if difference_low > tolerance or ratio_high < ratio_tolerance:
                flag = "beyond tolerance"
            elif difference > tolerance or ratio < ratio_tolerance:
                flag = "possibly beyond tolerance"
            else:
                flag = "within tolerance"
            groups = table.loc[usable, "group"].to_numpy()
            rows.append({"attribute": attribute, "metric": metric, "difference": difference,
                         "difference_low": float(difference_low), "difference_high": float(difference_high),
                         "ratio": ratio, "ratio_low": float(ratio_low), "ratio_high": float(ratio_high),
                         "highest / lowest": f"{groups[values.argmax()]} / {groups[values.argmin()]}",
                         "flag": flag, "n": int(table.loc[usable, needed].to_numpy().min())})
    return pd.DataFrame(rows, columns=["attribute", "metric", "difference", "difference_low", "difference_high",
                                       "ratio", "ratio_low", "ratio_high", "highest / lowest", "flag", "n"])


# -- proxies --------------------------------------------------------------------------------------


def _comparable(table: pd.DataFrame, metric: str, min_group: int,
                shown: Collection[tuple[str, str, str]] | None) -> np.ndarray:
    """The groups of one attribute's table whose metric is defined, rests on `min_group` persons in
    every count, and is `shown` (when given)."""
    usable = (table[list(METRIC_COUNTS[metric])] >= min_group).all(axis=1).to_numpy() & table[metric].notna().to_numpy()
    if shown is not None:
        usable &= np.array([(str(attribute), str(group), metric) in shown
                            for attribute, group in zip(table["attribute"], table["group"])], dtype=bool)
    return usable


def fewest(audit_: Audit, min_group: int = MIN_GROUP, shown: Collection[tuple[str, str, str]] | None = None
           ) -> dict[tuple[str, str], tuple[str, str]]:
    """Per attribute and metric that `disparities` shows (of the same `shown` rows), the group and
    count its n is: the persons behind it, for the differencing ledger."""
    found = {}
    for attribute, table in audit_.groups.groupby("attribute", sort=False):
        table = table.reset_index(drop=True)
        for metric in METRICS:
            usable = _comparable(table, metric, min_group, shown)
            if usable.sum() >= 2:
                counts = table.loc[usable, list(METRIC_COUNTS[metric])]
                row, column = np.unravel_index(np.argmin(counts.to_numpy()), counts.shape)
                found[(attribute, metric)] = (str(table.loc[usable, "group"].iloc[row]), counts.columns[column])
    return found


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    """Cramer's V of two categorical variables (0: independent, 1: one determines the other)."""
    from scipy.stats.contingency import association

    codes_a, levels_a = pd.factorize(a.astype(str), sort=True)
    codes_b, levels_b = pd.factorize(b.astype(str), sort=True)
    table = np.bincount(codes_a * len(levels_b) + codes_b, minlength=len(levels_a) * len(levels_b))
    table = table.reshape(len(levels_a), len(levels_b))
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return 0.0
    return float(association(table, method="cramer"))


def correlation_ratio(groups: pd.Series, values: pd.Series) -> float:
    """eta: the square root of the share of a numeric variable's spread that lies between the groups
    (missing values at the median)."""
    x = values.astype(float).to_numpy()
    x = np.where(np.isnan(x), np.nanmedian(x) if np.isfinite(x).any() else 0.0, x)
    total = float(((x - x.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    codes, _ = pd.factorize(groups.astype(str), sort=True)
    size, sums = np.bincount(codes), np.bincount(codes, weights=x)
    means = sums[size > 0] / size[size > 0]
    between = float((size[size > 0] * (means - x.mean()) ** 2).sum())
    return float(np.sqrt(between / total))


def proxy_screen(units: pd.DataFrame, predictors: list[str], audited: Mapping[str, str], features: FeatureSet,
                 tolerance: float) -> pd.DataFrame:
    """Per audited attribute and predictor: the association, and whether the predictor is built on
    the attribute's own variables (direct use), stands in for it (a proxy: association at or above
    the tolerance, for an attribute the model is not given directly), or neither; n is the persons
    it was measured on."""
    sources = {p: {s for name in features.closure([p]) for s in features.describe(name).sources} for p in predictors}
    rows = []
    for attribute, feature in audited.items():
        theirs = {s for name in features.closure([feature]) for s in features.describe(name).sources}
        direct = {p for p in predictors if sources[p] & theirs}
        for predictor in predictors:
            column = units[predictor]
            numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
            association = correlation_ratio(units[feature], column) if numeric else cramers_v(column, units[feature])
            # a predictor stands in for an attribute the model is not given; one it is given is used directly
            role = DIRECT if predictor in direct else PROXY if association >= tolerance and not direct else ""
            rows.append({"feature": predictor, "attribute": attribute, "association": association,
                         "measure": "correlation ratio" if numeric else "Cramer's V", "role": role,
                         "n": int(len(units))})
    return pd.DataFrame(rows)[["feature", "attribute", "association", "measure", "role", "n"]]
