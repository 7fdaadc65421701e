"""Safe outputs: disclosure rules, checks and their mitigation (analyst zone)."""

from safepool.disclosure.checks import check
from safepool.disclosure.findings import CheckReport, Finding
from safepool.disclosure.outputs import (
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
)
from safepool.disclosure.mitigation import Mitigated, round_counts, suppress
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.table_files import load_table
