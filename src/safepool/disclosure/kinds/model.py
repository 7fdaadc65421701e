"""Model results: a fitted model's coefficients (term, estimate, std_error, ...) and its sizes.

Rules: the residual degrees of freedom, and min_frequency on the persons per level of its
categorical terms (`cell_counts`: label columns + "count", checked and kept for re-checks, never
shown). A model passes or fails whole: suppression blanks every coefficient. Without
`cell_counts` nothing shows that no coefficient rests on a small group, so a person must review
the model (verdict "review").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.findings import Finding, invalid, json_safe, needs_review
from safepool.disclosure.kinds.base import Boundary, OutputBase, OutputKind, Samples, register, small_counts
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.validation import numeric_problems, table_problems


@dataclass
class ModelResult(OutputBase):
    """A fitted model: coefficients (term, estimate, std_error, ...) and its sizes.

    `cell_counts` holds persons per level of the categorical terms (label columns + "count");
    it is checked but not shown.
    """

    title: str
    coefficients: pd.DataFrame
    n_obs: int
    df_resid: float
    cell_counts: pd.DataFrame | None = None
    kind: ClassVar[str] = "model"


@register
class Model(OutputKind):
    name = "model"
    output_type = ModelResult

    def cells_of(self, output: ModelResult) -> pd.DataFrame:
        return output.coefficients

    def with_cells(self, output: ModelResult, cells: pd.DataFrame) -> ModelResult:
        return replace(output, coefficients=cells)

    def labels(self, output: ModelResult) -> None:
        return None

    def fixed_labels(self, output: ModelResult) -> set[str]:
        return {"term"}

    def blanked_columns(self, output: ModelResult) -> list[str]:
        return [c for c in output.coefficients.columns if c not in ("term", "status")]

    def validate(self, output: ModelResult, *, kept: bool = False) -> list[Finding]:
        where = f"model '{output.title}'"
        problems = table_problems(output.coefficients, ["term", "estimate"], f"{where} coefficients")
        if problems:
            return problems
        coefficients = output.coefficients
        numeric = [c for c in ("estimate", "std_error") if c in coefficients.columns]
        problems = numeric_problems(coefficients, numeric, ["term"])
        if not _finite_number(output.df_resid) or not _finite_number(output.n_obs) or output.n_obs < 0:
            problems.append(invalid(f"{where}: n_obs and df_resid must be finite numbers"))
        if output.cell_counts is not None:
            problems += table_problems(output.cell_counts, ["count"], f"{where} cell_counts")
            if not problems:
                labels = _count_labels(output.cell_counts)
                problems += numeric_problems(output.cell_counts, ["count"], labels, counts=True)
        return problems

    def rules(self, output: ModelResult, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        if not shown_mask(output.coefficients).any():
            return [Finding("residual_df", "pass", [], "residual_df: no coefficient is shown")]
        enough = float(output.df_resid) >= policy.min_residual_df
        findings = [Finding("residual_df", "pass" if enough else "fail", [],
                            f"residual_df: {'at least' if enough else 'fewer than'} {policy.min_residual_df} "
                            "residual degrees of freedom")]
        counts = output.cell_counts
        if counts is None:
            return findings + [needs_review("levels", "the persons per level of the categorical terms were not "
                                            "given, so nothing shows that no coefficient rests on a small group")]
        return findings + small_counts(counts, "count", _count_labels(counts), policy, shown_mask(counts))

    def kept_fields(self, output: ModelResult) -> dict[str, Any]:
        counts = output.cell_counts
        kept_counts = None
        if counts is not None and shown_mask(output.coefficients).any():  # only what shown coefficients rest on
            shown = counts.loc[shown_mask(counts)]
            kept_counts = {"columns": [str(c) for c in shown.columns],
                           "rows": [[json_safe(v) for v in row] for row in shown.itertuples(index=False, name=None)]}
        return {"n_obs": json_safe(output.n_obs), "df_resid": json_safe(output.df_resid), "cell_counts": kept_counts}

    def restore(self, kept: Mapping[str, Any]) -> ModelResult:
        coefficients = pd.DataFrame([list(r) for r in kept["rows"]], columns=list(kept["columns"]))
        counts = kept.get("cell_counts")
        cell_counts = pd.DataFrame([list(r) for r in counts["rows"]], columns=counts["columns"]) if counts else None
        return ModelResult(kept["title"], coefficients, kept["n_obs"], kept["df_resid"], cell_counts)

    def samples(self) -> Samples:
        def model(df_resid: Any = 400.0, level_count: int = 400, **changes: Any) -> ModelResult:
            coefficients = pd.DataFrame({"term": ["const", "sex[m]"], "estimate": [1.5, -0.25],
                                         "std_error": [0.125, 0.0625], **changes})
            counts = pd.DataFrame({"term": ["sex", "sex"], "level": ["f", "m"], "count": [level_count, 400]})
            return ModelResult("Employment model", coefficients, n_obs=900, df_resid=df_resid, cell_counts=counts)

        return Samples(
            passing=lambda policy: model(),
            bad={"empty": lambda: ModelResult("m", pd.DataFrame(columns=["term", "estimate"]), 100, 90.0),
                 "text in numbers": lambda: model(df_resid="many"),
                 "NaN": lambda: model(estimate=[np.nan, 1.0]),
                 "inf": lambda: model(estimate=[np.inf, 1.0]),
                 "missing column": lambda: ModelResult("m", pd.DataFrame({"term": ["a"]}), 100, 90.0)},
            boundaries=[Boundary("residual_df", "min_residual_df",
                                 lambda policy, offset: model(df_resid=float(policy.min_residual_df + offset))),
                        Boundary("min_frequency", "min_frequency",
                                 lambda policy, offset: model(level_count=policy.min_frequency + offset))],
            secret=lambda policy: (model(df_resid=float(policy.min_residual_df - 1), estimate=[1.625, -7.375],
                                         level_count=4321),
                                   ["1.625", "7.375", "4321"]),
        )


def _count_labels(counts: pd.DataFrame) -> list[str]:
    return [c for c in counts.columns if c not in ("count", "status")]


def _finite_number(value: object) -> bool:
    try:
        return bool(np.isfinite(float(value))) and not isinstance(value, bool)
    except (TypeError, ValueError):
        return False
