"""The disclosure policy of a workspace: the thresholds every output is checked against.

Defaults follow the design (5 persons per cell, dominance 2/90 %, p-ratio 10 %, residual
degrees of freedom 10). A workspace has exactly one policy, kept by `safepool.disclosure.policy`
(changed only by an admin, audited); no caller passes thresholds of its own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


MOST_DECIMALS = 12  # the most decimals a policy may release (the CLI prints up to them)


class DisclosureRules(BaseModel):
    """Thresholds applied to every output; see the kinds in safepool.disclosure.kinds for how each uses them."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    min_frequency: int = Field(5, ge=1, description="persons per cell, per quantile/mean and per arm of an effect")
    dominance_n: int = Field(2, ge=1, description="how many largest contributors the dominance rule adds up")
    dominance_k: float = Field(0.90, gt=0, le=1, description="fail when those contributors hold more than this share")
    p_ratio: float = Field(0.10, ge=0, le=1, description="fail when the rest of the cell is below this share of the largest")
    min_residual_df: int = Field(10, ge=0, description="residual degrees of freedom a model must keep")
    zeros: Literal["allow", "suppress"] = Field("allow", description="whether a zero count is itself a finding")
    rounding_base: int = Field(5, ge=1, description="base that counts are rounded to")
    round_counts: bool = Field(False, description="round every count of every output to the rounding base")
    decimals: int = Field(3, ge=0, le=MOST_DECIMALS, description="decimals of estimates in released files (counts are whole)")
    allow_extremes: bool = Field(False, description="whether the minimum or maximum of a group may be shown")
    max_cells: int = Field(1000, ge=1, description="query budget: cells an answer may have (known before it runs)")
    max_seconds: float = Field(10.0, gt=0, description="query budget: seconds a query may run")
    max_memory_mb: int = Field(1024, ge=64, description="query budget: memory a query may use, MB")
    max_check_seconds: float = Field(120.0, gt=0, description="query budget: seconds the differencing ledger may "
                                                               "take to check an answer against earlier answers")


BUDGET_SETTINGS = frozenset({"max_cells", "max_seconds", "max_memory_mb", "max_check_seconds"})
OUTPUT_SETTINGS = frozenset(DisclosureRules.model_fields) - BUDGET_SETTINGS  # what a recorded output depends on
