"""The statistical outputs the disclosure checks understand, each defined by its kind's module in
safepool.disclosure.kinds (re-exported here).

Each output is a small dataclass around a DataFrame of cells. Magnitude tables (and quantile and
effect tables that carry them) hold the contributing persons' largest values ("top") and the sum
of their absolute values ("abs_total") because dominance and the p% rule need them; those columns
are for the checks only and never appear in `public_table()`, a file or the register.
"""

from __future__ import annotations

from typing import Any

from safepool.disclosure.cells import CONTRIBUTOR_COLUMNS, STATUS, DisclosureInputError
from safepool.disclosure.kinds.document import Document
from safepool.disclosure.kinds.effect import EffectTable
from safepool.disclosure.kinds.extreme import ExtremeTable
from safepool.disclosure.kinds.figure import Figure
from safepool.disclosure.kinds.frequency import FrequencyTable
from safepool.disclosure.kinds.magnitude import MagnitudeTable
from safepool.disclosure.kinds.model import ModelResult
from safepool.disclosure.kinds.quantile import QuantileTable

StatOutput = Any  # any output of a registered kind (safepool.disclosure.kinds.kind_of tells which)

__all__ = ["CONTRIBUTOR_COLUMNS", "STATUS", "DisclosureInputError", "Document", "EffectTable", "ExtremeTable", "Figure",
           "FrequencyTable", "MagnitudeTable", "ModelResult", "QuantileTable", "StatOutput"]
