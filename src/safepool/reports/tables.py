"""Checked tables written for people: plain column names, rounded numbers, "suppressed" cells.

Works on a ShownTable only, so every number it writes is one the disclosure layer let through.
A blank in a suppressed row reads "suppressed"; any other blank (not estimable, not observed)
reads as a dash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from safepool.governance.form import mask_identity_codes
from safepool.reports.source import ShownTable

SUPPRESSED = "suppressed"
MISSING = "–"
CI = "Confidence interval"

COLUMN_LABELS = {
    "stage": "Stage",
    "covariate": "Covariate",
    "mean_treated": "Mean, clients",
    "mean_control": "Mean, comparison",
    "smd": "SMD",
    "variance_ratio": "Variance ratio",
    "ecdf_mean": "eCDF mean",
    "ecdf_max": "eCDF max",
    "smd_ok": "SMD within limit",
    "vr_ok": "Variance ratio within range",
    "binary": "0/1 covariate",
    "outcome": "Outcome",
    "horizon": "Quarters from entry",
    "method": "Estimator",
    "estimand": "Estimand",
    "estimate": "Estimate",
    "std_error": "Std. error",
    "n_treated": "Clients",
    "n_control": "Comparison persons",
    "subgroup": "Subgroup",
    "level": "Group",
    "count": "Persons",
    "n": "Persons",
    "step": "Step",
    "reason": "Reason",
    "p_value": "p-value",
    "e_value": "E-value",
    "e_value_ci": "E-value of the CI limit",
    "statistic": "Statistic",
    "term": "Term",
    "df": "Degrees of freedom",
    "persons": "Persons",
    "units": "Person-quarters",
    "removed": "Left out",
    "n_clusters": "Matched sets",
    "n_sets": "Matched sets",
    "joint_p_value": "Joint p-value",
    "wald_chi2": "Wald chi²",
    "wald_df": "Wald df",
    "risk_ratio": "Risk ratio",
    "gamma": "Gamma",
    "p_upper": "Upper p-value",
    "rosenbaum_gamma": "Rosenbaum gamma",
    "ci_method": "Confidence intervals",
    "ci": "Confidence intervals",
}
WHOLE_NUMBER_COLUMNS = {"count", "n", "n_treated", "n_control", "n_obs", "df", "horizon", "persons", "units", "removed",
                        "n_clusters", "n_sets", "wald_df"}
# Columns that say how a number was computed, told once in the methods section instead of on every row.
DETAIL_COLUMNS = {"outcome_type", "ci_method", "conversion", "binary", "sd_control"}
_DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+(e[-+]?\d+)?|e[-+]?\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class HumanTable:
    """A table ready for the template: header labels and rows of text, and what was done to it."""

    title: str
    columns: list[str]
    numeric: list[bool]  # per column: numbers, aligned right
    rows: list[list[str]]
    suppressed_rows: list[bool]
    note: str | None
    common: list[tuple[str, str]]  # labels that are the same on every row, told once above the table


def human_table(shown: ShownTable) -> HumanTable:
    """The shown cells with human column names and numbers; the CI limits joined into one column."""
    frame = shown.frame
    common = [column for column in shown.labels
              if len(frame) > 1 and frame[column].nunique(dropna=False) == 1 and column not in DETAIL_COLUMNS]
    columns = [column for column in frame.columns if column not in DETAIL_COLUMNS and column not in common]
    joined_ci = "ci_low" in columns and "ci_high" in columns
    header, numeric, rows = [], [], []
    for column in columns:
        if column == "ci_high" and joined_ci:
            continue
        header.append(CI if column == "ci_low" and joined_ci else column_label(column))
        numeric.append(_is_numeric(frame[column]))
    whole = WHOLE_NUMBER_COLUMNS | set(shown.labels)
    told_once = [(column_label(c), cell_text(c, frame[c].iloc[0], False, whole=c in whole)) for c in common]
    for position, row in enumerate(frame.to_dict("records")):
        suppressed = bool(shown.suppressed[position])
        cells = []
        for column in columns:
            if column == "ci_high" and joined_ci:
                continue
            if column == "ci_low" and joined_ci:
                cells.append(interval(row["ci_low"], row["ci_high"], suppressed))
            else:
                cells.append(cell_text(column, row[column], suppressed, whole=column in whole))
        rows.append(cells)
    return HumanTable(title=mask_identity_codes(shown.title), columns=header, numeric=numeric, rows=rows,
                      suppressed_rows=[bool(s) for s in shown.suppressed], note=shown.note, common=told_once)


def _is_numeric(series: pd.Series) -> bool:
    """Numbers, or decimals carried as text; flags and words are not."""
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    texts = [str(v).strip() for v in series if not is_blank(v)]
    decimals = [bool(_DECIMAL_TEXT.match(text)) for text in texts]
    words = [not any(ch.isdigit() for ch in text) for text in texts]  # e.g. "binary" in a column of ratios
    return any(decimals) and all(d or w for d, w in zip(decimals, words))


def settings_rows(settings: Mapping[str, object]) -> list[tuple[str, str]]:
    """Study settings (e.g. the matching method and caliper) as label and text."""
    return [(column_label(str(name)), value_text(value)) for name, value in settings.items()]


def column_label(column: str) -> str:
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    text = mask_identity_codes(str(column)).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def cell_text(column: str, value: object, suppressed: bool, whole: bool = False) -> str:
    """One cell as text: blanks as "suppressed" or a dash, flags as pass/fail or yes/no.

    `whole`: the column holds counts or labels, so a float that is a whole number is shown as one.
    A decimal number carried as text (a label column of numbers) is shown like any other number.
    """
    if is_blank(value):
        return SUPPRESSED if suppressed else MISSING
    if column.endswith("_ok") and isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating)) \
            and value in (0, 1):
        return "pass" if value else "fail"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        value = float(value)
    if isinstance(value, (float, np.floating)):
        if whole and float(value).is_integer():
            return f"{int(value):,}"
        if "p_value" in column or column.startswith("p_"):
            return p_value_text(float(value))
        return number_text(float(value))
    return mask_identity_codes(str(value))


def interval(low: object, high: object, suppressed: bool) -> str:
    if is_blank(low) or is_blank(high):
        return SUPPRESSED if suppressed else MISSING
    return f"{number_text(float(low))} to {number_text(float(high))}"


def number_text(value: float) -> str:
    """Three decimals for small numbers, fewer as they grow, thousands separated."""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value.is_integer() and abs(value) >= 100:
        return f"{value:,.0f}"
    size = abs(value)
    if 0 < size < 0.001:
        return f"{value:.1e}"
    decimals = 0 if size >= 1000 else 1 if size >= 100 else 2 if size >= 10 else 3
    return f"{value:,.{decimals}f}"


def p_value_text(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def value_text(value: object) -> str:
    """A setting's value: lists joined, flags as yes/no, numbers as numbers, words without underscores."""
    if isinstance(value, Mapping):
        return "; ".join(f"{column_label(str(k))}: {value_text(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(value_text(item) for item in value) if value else "none"
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return mask_identity_codes(str(value)).replace("_", " ")


def is_blank(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)
