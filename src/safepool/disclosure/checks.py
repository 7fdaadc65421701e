"""The disclosure rules, applied by the kind of output.

Every rule reads the cells that will be shown (rows a mitigation suppressed are skipped) and
produces one finding, passing or failing. Input that cannot be checked fails with an
"invalid" finding before any rule runs, so nothing passes by default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from safepool.disclosure.findings import CheckReport, Finding, cell_labels, finding, invalid, report_of
from safepool.disclosure.outputs import (
    STAT_OUTPUT_TYPES,
    DisclosureInputError,
    Document,
    EffectTable,
    ExtremeTable,
    Figure,
    FrequencyTable,
    MagnitudeTable,
    ModelResult,
    QuantileTable,
    StatOutput,
    STATUS,
)
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.validation import (
    contributor_problems,
    duplicate_problems,
    group_problems,
    numeric_problems,
    shown_mask,
    table_problems,
)

__all__ = ["CheckReport", "Finding", "check", "contributions", "numbers"]

_TOLERANCE = 1e-9


def check(output: StatOutput, rules: DisclosureRules) -> CheckReport:
    """Apply every rule for the output's kind; raises DisclosureInputError if it is no output."""
    if not isinstance(output, STAT_OUTPUT_TYPES):
        raise DisclosureInputError(f"not a statistical output: {type(output).__name__}")
    if isinstance(output, Figure):
        return _check_figure(output, rules)
    if isinstance(output, Document):
        return _check_document(output, rules)
    return report_of(output.title, output.kind, _findings(output, rules))


def numbers(cells: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats (blanks and text become NaN); the checks validate before reading."""
    return pd.to_numeric(cells[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def contributions(cells: pd.DataFrame, width: int) -> np.ndarray:
    """The `width` largest absolute contributions per cell, padded with zeros, largest first."""
    matrix = np.zeros((len(cells), width))
    for row, top in enumerate(cells["top"]):
        try:
            values = np.sort(np.abs(np.asarray(top, dtype=float)))[::-1][:width]
        except (TypeError, ValueError):
            continue
        matrix[row, : len(values)] = values
    return matrix


def _findings(output: StatOutput, rules: DisclosureRules) -> list[Finding]:
    if isinstance(output, FrequencyTable):
        return _frequency(output, rules)
    if isinstance(output, MagnitudeTable):
        return _magnitude(output, rules)
    if isinstance(output, QuantileTable):
        return _quantile(output, rules)
    if isinstance(output, ExtremeTable):
        return _extreme(output, rules)
    if isinstance(output, ModelResult):
        return _model(output, rules)
    return _effect(output, rules)


def _check_figure(figure: Figure, rules: DisclosureRules) -> CheckReport:
    if not isinstance(figure.table, STAT_OUTPUT_TYPES) or isinstance(figure.table, Figure):
        return report_of(figure.title, figure.kind, [invalid(f"figure '{figure.title}' has no table behind it")])
    inner = check(figure.table, rules)
    prefix = f"figure '{figure.title}' (table '{figure.table.title}'): "
    findings = [Finding(f.rule, f.verdict, f.cells, prefix + f.message) for f in inner.findings]
    return report_of(figure.title, figure.kind, findings)


def _check_document(document: Document, rules: DisclosureRules) -> CheckReport:
    if not document.parts:
        return report_of(document.title, document.kind, [invalid(f"document '{document.title}' has no parts")])
    findings = []
    for name, part in document.parts.items():
        if isinstance(part, Document) or not isinstance(part, STAT_OUTPUT_TYPES):
            findings.append(invalid(f"document '{document.title}': part '{name}' is not a table or figure"))
            continue
        findings += [Finding(f.rule, f.verdict, f.cells, f"part '{name}': {f.message}")
                     for f in check(part, rules).findings]
    return report_of(document.title, document.kind, findings)


def _table_input(output: StatOutput, numeric: list[str], counts: list[str], extra: list[str], key_extra: list[str]):
    """Invalid findings for a grouped table, or none (then the rules may read the cells)."""
    where = f"table '{output.title}'"
    problems = table_problems(output.cells, numeric + counts + extra, where)
    if problems:
        return problems
    problems = group_problems(output.groups, output.cells, where)
    if problems:
        return problems
    labels = list(output.groups) + key_extra
    problems = numeric_problems(output.cells, numeric, labels) + numeric_problems(output.cells, counts, labels, counts=True)
    if isinstance(output, (FrequencyTable, MagnitudeTable)):
        problems += duplicate_problems(output.cells, labels, where)
    return problems


def _small_counts(cells: pd.DataFrame, column: str, labels: list[str], rules: DisclosureRules, shown: np.ndarray,
                  rounded: np.ndarray | None = None) -> list[Finding]:
    """min_frequency on counts 1..threshold-1, and the zeros policy on counts of 0."""
    count = numbers(cells, column)
    small = shown & (count > 0) & (count < rules.min_frequency)
    findings = [finding("min_frequency", cell_labels(cells, labels, small),
                        f"{column} is below {rules.min_frequency} persons")]
    if rules.zeros == "suppress":
        zero = shown & (count == 0)
        if rounded is not None:
            zero &= ~rounded
        findings.append(finding("zeros", cell_labels(cells, labels, zero), f"{column} is zero (zeros are suppressed here)"))
    return findings


def _frequency(table: FrequencyTable, rules: DisclosureRules) -> list[Finding]:
    problems = _table_input(table, [], ["count"], [], [])
    if problems:
        return problems
    shown = shown_mask(table.cells)
    rounded = table.cells[STATUS].astype(str).str.startswith("rounded").to_numpy() if STATUS in table.cells else None
    return _small_counts(table.cells, "count", list(table.groups), rules, shown, rounded)


def _magnitude(table: MagnitudeTable, rules: DisclosureRules) -> list[Finding]:
    if table.statistic not in ("sum", "mean"):
        return [invalid(f"table '{table.title}': statistic must be sum or mean")]
    problems = _table_input(table, ["value"], ["n"], ["top", "abs_total"], [])
    width = max(rules.dominance_n, 2)
    labels = list(table.groups)
    problems = problems or contributor_problems(table.cells, labels, width)
    if problems:
        return problems
    cells, shown = table.cells, shown_mask(table.cells)
    findings = _small_counts(cells, "n", labels, rules, shown)
    top = contributions(cells, width)
    total = numbers(cells, "abs_total")
    slack = _TOLERANCE * np.maximum(total, 1.0)
    dominated = shown & (top[:, : rules.dominance_n].sum(axis=1) - rules.dominance_k * total > slack)
    findings.append(finding("dominance", cell_labels(cells, labels, dominated),
                            f"the {rules.dominance_n} largest contributors hold more than {rules.dominance_k:.0%} of the cell"))
    remainder = total - top[:, 0] - top[:, 1]
    guessable = shown & (top[:, 0] > 0) & (rules.p_ratio * top[:, 0] - remainder > slack)
    findings.append(finding("p_ratio", cell_labels(cells, labels, guessable),
                            f"the rest of the cell is below {rules.p_ratio:.0%} of its largest contributor"))
    return findings


def _quantile(table: QuantileTable, rules: DisclosureRules) -> list[Finding]:
    problems = _table_input(table, ["quantile", "value"], ["n"], [], ["quantile"])
    if problems:
        return problems
    labels = list(table.groups) + ["quantile"]
    few = shown_mask(table.cells) & (numbers(table.cells, "n") < rules.min_frequency)
    return [finding("min_frequency", cell_labels(table.cells, labels, few),
                    f"a quantile is of fewer than {rules.min_frequency} persons")]


def _extreme(table: ExtremeTable, rules: DisclosureRules) -> list[Finding]:
    problems = _table_input(table, ["value"], ["n"], ["statistic"], ["statistic"])
    if problems:
        return problems
    cells, labels, shown = table.cells, list(table.groups) + ["statistic"], shown_mask(table.cells)
    unknown = shown & ~cells["statistic"].isin(["min", "max"]).to_numpy()
    if unknown.any():
        return [invalid("column statistic: must be min or max", cell_labels(cells, labels, unknown))]
    few = shown & (numbers(cells, "n") < rules.min_frequency)
    extremes = (
        Finding("extremes", "pass", [], "extremes: allowed in this environment")
        if rules.allow_extremes
        else finding("extremes", cell_labels(cells, labels, shown), "a minimum or maximum (one person's value) is shown")
    )
    return [finding("min_frequency", cell_labels(cells, labels, few), f"an extreme is of fewer than {rules.min_frequency} persons"), extremes]


def _model(model: ModelResult, rules: DisclosureRules) -> list[Finding]:
    where = f"model '{model.title}'"
    problems = table_problems(model.coefficients, ["term", "estimate"], f"{where} coefficients")
    if problems:
        return problems
    coefficients = model.coefficients
    numeric = [c for c in ("estimate", "std_error") if c in coefficients.columns]
    problems = numeric_problems(coefficients, numeric, ["term"])
    if not _finite_number(model.df_resid) or not _finite_number(model.n_obs) or model.n_obs < 0:
        problems.append(invalid(f"{where}: n_obs and df_resid must be finite numbers"))
    if model.cell_counts is not None:
        problems += table_problems(model.cell_counts, ["count"], f"{where} cell_counts")
        if not problems:
            labels = [c for c in model.cell_counts.columns if c != "count"]
            problems += numeric_problems(model.cell_counts, [], labels, counts=False)
            problems += numeric_problems(model.cell_counts, ["count"], labels, counts=True)
    if problems:
        return problems
    if not shown_mask(coefficients).any():
        return [Finding("residual_df", "pass", [], "residual_df: no coefficient is shown")]
    findings = [
        Finding("residual_df", "pass", [], f"residual_df: at least {rules.min_residual_df} residual degrees of freedom")
        if float(model.df_resid) >= rules.min_residual_df
        else Finding("residual_df", "fail", [], f"residual_df: fewer than {rules.min_residual_df} residual degrees of freedom")
    ]
    if model.cell_counts is not None:
        labels = [c for c in model.cell_counts.columns if c != "count"]
        findings += _small_counts(model.cell_counts, "count", labels, rules, shown_mask(model.cell_counts))
    return findings


def _effect(table: EffectTable, rules: DisclosureRules) -> list[Finding]:
    problems = _table_input(table, [], ["n_treated", "n_control"], [], [])
    if problems:
        return problems
    cells, labels, shown = table.cells, list(table.groups), shown_mask(table.cells)
    estimates = [c for c in cells.columns if c not in (*labels, *table.remarks, "n_treated", "n_control", STATUS)]
    if not estimates:
        return [invalid(f"table '{table.title}' has no estimate columns")]
    problems = numeric_problems(cells, estimates, labels)
    if problems:
        return problems
    few = shown & ((numbers(cells, "n_treated") < rules.min_frequency) | (numbers(cells, "n_control") < rules.min_frequency))
    return [finding("min_frequency", cell_labels(cells, labels, few),
                    f"the treated or the control arm has fewer than {rules.min_frequency} persons")]


def _finite_number(value: object) -> bool:
    try:
        return bool(np.isfinite(float(value))) and not isinstance(value, bool)
    except (TypeError, ValueError):
        return False
