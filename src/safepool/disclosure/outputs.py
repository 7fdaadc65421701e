"""The statistical outputs the disclosure checks understand.

Each output is a small dataclass around a DataFrame of cells. Magnitude tables carry the
contributing persons' largest values ("top") and the sum of their absolute values
("abs_total") because dominance and the p% rule need them; those two columns are for the
checks only and never appear in `public_table()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union

import pandas as pd

from safepool.errors import SafepoolError

CONTRIBUTOR_COLUMNS = ("top", "abs_total")
STATUS = "status"


class DisclosureInputError(SafepoolError):
    """Something handed to the disclosure checks is not a statistical output or not a table."""


@dataclass
class _GroupedTable:
    """Cells by group columns; subclasses say which value columns the cells carry."""

    title: str
    cells: pd.DataFrame
    groups: list[str]

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.cells)


@dataclass
class FrequencyTable(_GroupedTable):
    """Counts of persons by groups: columns groups + "count"."""

    kind: ClassVar[str] = "frequency"


@dataclass
class MagnitudeTable(_GroupedTable):
    """Sums or means by groups: groups + "value" + "n" + "top" + "abs_total"."""

    statistic: Literal["sum", "mean"]
    kind: ClassVar[str] = "magnitude"


@dataclass
class QuantileTable(_GroupedTable):
    """Medians and percentiles by groups: groups + "quantile" + "value" + "n"."""

    kind: ClassVar[str] = "quantile"


@dataclass
class ExtremeTable(_GroupedTable):
    """Minimum or maximum by groups: groups + "statistic" ("min"/"max") + "value" + "n"."""

    kind: ClassVar[str] = "extreme"


@dataclass
class ModelResult:
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

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.coefficients)


@dataclass
class EffectTable(_GroupedTable):
    """Effect estimates by groups: groups + estimate columns + "n_treated" + "n_control"."""

    kind: ClassVar[str] = "effect"


TableOutput = Union[FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable]


@dataclass
class Figure:
    """A chart (Vega-Lite spec); it is disclosive exactly when the table behind it is."""

    title: str
    table: TableOutput
    spec: dict[str, Any]
    kind: ClassVar[str] = "figure"

    def public_table(self) -> pd.DataFrame:
        return self.table.public_table()


StatOutput = Union[FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable, Figure]
STAT_OUTPUT_TYPES = (FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable, Figure)


def _shown_columns(cells: Any) -> pd.DataFrame:
    if not isinstance(cells, pd.DataFrame):
        raise DisclosureInputError(f"cells must be a table (DataFrame), got {type(cells).__name__}")
    return cells.drop(columns=[c for c in CONTRIBUTOR_COLUMNS if c in cells.columns])
