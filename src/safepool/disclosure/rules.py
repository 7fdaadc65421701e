"""The disclosure thresholds of one environment.

Defaults follow the design (5 persons per cell, dominance 2/90 %, p-ratio 10 %, residual
degrees of freedom 10); an environment overrides them in `<workspace>/disclosure.yaml`, so
a stricter site changes its verdicts without a code change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safepool.yaml_files import load_model

RULES_FILE = "disclosure.yaml"


class DisclosureRules(BaseModel):
    """Thresholds applied to every output; see checks.py for how each kind uses them."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    min_frequency: int = Field(5, ge=1, description="persons per cell, per quantile/mean and per arm of an effect")
    dominance_n: int = Field(2, ge=1, description="how many largest contributors the dominance rule adds up")
    dominance_k: float = Field(0.90, gt=0, le=1, description="fail when those contributors hold more than this share")
    p_ratio: float = Field(0.10, ge=0, le=1, description="fail when the rest of the cell is below this share of the largest")
    min_residual_df: int = Field(10, ge=0, description="residual degrees of freedom a model must keep")
    zeros: Literal["allow", "suppress"] = Field("allow", description="whether a zero count is itself a finding")
    rounding_base: int = Field(5, ge=1, description="base that counts are rounded to")
    allow_extremes: bool = Field(False, description="whether the minimum or maximum of a group may be shown")
    max_cells: int = Field(1000, ge=1, description="query budget: cells an answer may have (known before it runs)")
    max_seconds: float = Field(10.0, gt=0, description="query budget: seconds a query may run")
    max_memory_mb: int = Field(1024, ge=64, description="query budget: memory a query may use, MB")

    @classmethod
    def load(cls, workspace_root: Path) -> DisclosureRules:
        """Rules from `<workspace_root>/disclosure.yaml`, or the defaults when there is none."""
        path = Path(workspace_root) / RULES_FILE
        if not path.exists():
            return cls()
        return load_model(path, cls)
