"""The insight file: one customer-information analysis, written by the analyst, run under a permit.

    permit: P-2025-017
    title: Paths into child protection by the family's native language
    question: Do preventive services reach immigrant families' children as often?
    seed: 1
    analysis:
      kind: paths          # one of the registered analyses (safepool.insight.analysis.ANALYSES)
      ...                  # that analysis's own settings

Loaded with safepool.yaml_files, so every mistake is named with its field and line; the
analysis's settings are checked by its own model (unknown fields are mistakes).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

import safepool.insight.paths  # noqa: F401  (registers the analysis)
import safepool.insight.need  # noqa: F401  (registers the analysis)
import safepool.insight.segments  # noqa: F401  (registers the analysis)
from safepool.insight.analysis import ANALYSES, Analysis
from safepool.yaml_files import load_model


class _InsightBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    permit: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    question: str = Field("", max_length=2000)
    seed: int = Field(1, ge=0, description="every random step of the analysis is seeded from it")


@cache
def insight_model() -> type[_InsightBase]:
    """The insight file's model: the common fields and the union of every registered analysis's settings."""
    settings = tuple(cls.settings_model for cls in ANALYSES.values())
    union: Any = settings[0] if len(settings) == 1 else Annotated[Union[settings], Field(discriminator="kind")]
    return create_model("InsightFile", __base__=_InsightBase, analysis=(union, ...))


def load_insight(path: Path) -> Any:
    """Read and validate an insight file; a FileProblem names each bad field and its line."""
    return load_model(path, insight_model())


def analysis_of(insight: Any) -> Analysis:
    """The analysis an insight file asks for, with its settings."""
    return ANALYSES[insight.analysis.kind](insight.analysis)
