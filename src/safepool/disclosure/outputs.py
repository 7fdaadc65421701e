"""The statistical outputs the disclosure checks understand.

Each output is a small dataclass around a DataFrame of cells. Magnitude tables carry the
contributing persons' largest values ("top") and the sum of their absolute values
("abs_total") because dominance and the p% rule need them; those two columns are for the
checks only and never appear in `public_table()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """Effect estimates by groups: groups + estimate columns + "n_treated" + "n_control".

    `remarks` are text columns about a cell's numbers (e.g. "not defined" where a statistic
    does not exist): not labels, so suppressing the cell blanks them with its numbers."""

    remarks: list[str] = field(default_factory=list)
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


@dataclass
class Document:
    """A report made of checked outputs (its HTML or PDF is the file); it passes only if every part does.

    The document itself shows nothing the parts do not, so checking it is checking each part again."""

    title: str
    parts: dict[str, TableOutput | Figure]
    kind: ClassVar[str] = "document"

    def public_table(self) -> pd.DataFrame:
        return pd.DataFrame({"part": list(self.parts), "title": [p.title for p in self.parts.values()],
                             "kind": [p.kind for p in self.parts.values()]})


StatOutput = Union[FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable, Figure,
                   Document]
STAT_OUTPUT_TYPES = (FrequencyTable, MagnitudeTable, QuantileTable, ExtremeTable, ModelResult, EffectTable, Figure,
                     Document)


def _shown_columns(cells: Any) -> pd.DataFrame:
    if not isinstance(cells, pd.DataFrame):
        raise DisclosureInputError(f"cells must be a table (DataFrame), got {type(cells).__name__}")
    return cells.drop(columns=[c for c in CONTRIBUTOR_COLUMNS if c in cells.columns])
