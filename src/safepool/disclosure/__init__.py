"""Safe outputs: the workspace's disclosure policy, the registry of output kinds with their
checks and mitigation, and the output register that publishes them (analyst zone)."""

from safepool.disclosure.cells import SECONDARY, SHOWN, STATUS, DisclosureInputError
from safepool.disclosure.checks import check
from safepool.disclosure.findings import CheckReport, Finding
from safepool.disclosure.kinds import NotRecheckable, OutputKind, kind_of, kind_named, registered
from safepool.disclosure.mitigation import Mitigated, round_counts, suppress
from safepool.disclosure.outputs import (
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
from safepool.disclosure.rules import DisclosureRules
from safepool.disclosure.table_files import load_table

__all__ = ["SECONDARY", "SHOWN", "STATUS", "CheckReport", "DisclosureInputError", "DisclosureRules", "Document",
           "EffectTable", "ExtremeTable", "Figure", "Finding", "FrequencyTable", "MagnitudeTable", "Mitigated",
           "ModelResult", "NotRecheckable", "OutputKind", "QuantileTable", "StatOutput", "check", "kind_named",
           "kind_of", "load_table", "registered", "round_counts", "suppress"]
