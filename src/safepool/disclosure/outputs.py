"""The statistical outputs the disclosure checks understand.

Each output is a small dataclass around a DataFrame of cells. Magnitude tables carry the
contributing persons' largest values ("top") and the sum of their absolute values
("abs_total") because dominance and the p% rule need them; those two columns are for the
checks only and never appear in `public_table()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

import pandas as pd

from safepool.errors import SafepoolError

CONTRIBUTOR_COLUMNS = ("top", "abs_total")
STATUS = "status"


class DisclosureInputError(SafepoolError):
    """Something handed to the disclosure checks is not a statistical output or not a table."""


@dataclass
class FrequencyTable:
    """Counts of persons by groups: columns groups + "count"."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    kind: str = field(default="frequency", init=False)

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.cells)


@dataclass
class MagnitudeTable:
    """Sums or means by groups: groups + "value" + "n" + "top" + "abs_total"."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    statistic: Literal["sum", "mean"]
    kind: str = field(default="magnitude", init=False)

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.cells)


@dataclass
class QuantileTable:
    """Medians and percentiles by groups: groups + "quantile" + "value" + "n"."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    kind: str = field(default="quantile", init=False)

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.cells)


@dataclass
class ExtremeTable:
    """Minimum or maximum by groups: groups + "statistic" ("min"/"max") + "value" + "n"."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    kind: str = field(default="extreme", init=False)

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.cells)


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
    kind: str = field(default="model", init=False)

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.coefficients)


@dataclass
class EffectTable:
    """Effect estimates by groups: groups + estimate columns + "n_treated" + "n_control"."""

    title: str
    cells: pd.DataFrame
    groups: list[str]
    kind: str = field(default="effect", init=False)

    def public_table(self) -> pd.DataFrame:
        return _shown_columns(self.cells)


TableOutput = Union[FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable]


@dataclass
class Figure:
    """A chart (Vega-Lite spec); it is disclosive exactly when the table behind it is."""

    title: str
    table: TableOutput
    spec: dict[str, Any]
    kind: str = field(default="figure", init=False)

    def public_table(self) -> pd.DataFrame:
        return self.table.public_table()


StatOutput = Union[FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable, Figure]
STAT_OUTPUT_TYPES = (FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable, Figure)


def _shown_columns(cells: Any) -> pd.DataFrame:
    if not isinstance(cells, pd.DataFrame):
        raise DisclosureInputError(f"cells must be a table (DataFrame), got {type(cells).__name__}")
    return cells.drop(columns=[c for c in CONTRIBUTOR_COLUMNS if c in cells.columns])
