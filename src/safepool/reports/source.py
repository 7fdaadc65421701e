"""What the study report reads: a study's description and its outputs after the disclosure layer.

The report is written against these protocols rather than against the study package, so it
renders anything that carries the same fields (the study run's StudyResult, or a test's fake).
Only checked outputs are read, and only through `public_table()`: a raw frame has no way in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from safepool.disclosure import CheckReport, DisclosureInputError, DisclosureRules, Figure, ModelResult, StatOutput, check
from safepool.disclosure.outputs import STATUS
from safepool.disclosure.validation import shown_mask
from safepool.errors import SafepoolError

OUTPUT_NAMES = ("cohort_flow", "balance", "love_plot", "effects", "event_study", "subgroups", "placebo",
                "sensitivity", "naive")


class ReportError(SafepoolError):
    """The study report cannot be written from what it was given; names the field or output."""


class CheckedOutput(Protocol):
    """An output as the disclosure layer left it (safepool.disclosure.mitigation.Mitigated fits).

    `output` is the mitigated output (failing cells blanked, "status" column), `report` the
    check of exactly that output, `note` the sentence saying what was done and why.
    """

    @property
    def output(self) -> StatOutput: ...

    @property
    def report(self) -> CheckReport: ...

    @property
    def note(self) -> str | None: ...


class StudyReportSource(Protocol):
    """The fields of a study run that the report shows (no identifiers among them)."""

    @property
    def title(self) -> str: ...

    @property
    def question(self) -> str: ...

    @property
    def permit(self) -> str: ...

    @property
    def registers(self) -> Sequence[str]: ...

    @property
    def period(self) -> tuple[str, str]: ...  # first and last quarter (or date) of the study

    @property
    def methods(self) -> Mapping[str, object]: ...  # setting name -> value (matching, estimators, CI)

    @property
    def checked(self) -> Mapping[str, CheckedOutput]: ...  # by name, every name in OUTPUT_NAMES


@dataclass(frozen=True)
class ShownTable:
    """The public cells of one checked output, with suppressed rows blanked beyond their labels."""

    name: str
    title: str
    kind: str
    frame: pd.DataFrame  # public table without the status column
    labels: list[str]  # the columns that name a cell (never blanked)
    suppressed: np.ndarray  # per row: a mitigation suppressed it
    note: str | None
    report: CheckReport

    @property
    def n_suppressed(self) -> int:
        return int(self.suppressed.sum())


def shown_tables(source: StudyReportSource, rules: DisclosureRules) -> dict[str, ShownTable]:
    """Every output the report needs, each checked again with `rules`; refuses any that fails."""
    checked = field_of(source, "checked")
    if not isinstance(checked, Mapping):
        raise ReportError(f"study report: field checked must map output names to checked outputs, "
                          f"got {type(checked).__name__}")
    missing = [name for name in OUTPUT_NAMES if name not in checked]
    if missing:
        raise ReportError(f"study report: checked output(s) missing: {', '.join(missing)}")
    return {name: shown_table(name, checked[name], rules) for name in OUTPUT_NAMES}


def shown_table(name: str, checked: CheckedOutput, rules: DisclosureRules) -> ShownTable:
    """What the disclosure layer says may be shown of one output: public_table() of the mitigated output."""
    output = getattr(checked, "output", None)
    carried = getattr(checked, "report", None)
    if output is None or not isinstance(carried, CheckReport):
        raise ReportError(f"study report: output {name} is not a checked output (needs .output and .report)")
    if carried.verdict != "pass":
        raise ReportError(f"study report: output {name} ('{carried.title}') did not pass its disclosure checks "
                          f"(failed rules: {_failed_rules(carried)}); only outputs that passed are shown")
    try:
        again = check(output, rules)
    except DisclosureInputError as error:
        raise ReportError(f"study report: output {name}: {error}") from None
    if again.verdict != "pass":
        raise ReportError(f"study report: output {name} ('{again.title}') fails the disclosure checks "
                          f"under this environment's rules (failed rules: {_failed_rules(again)})")
    public = output.public_table().reset_index(drop=True)
    suppressed = ~shown_mask(public)
    labels = [column for column in _label_columns(output) if column in public.columns]
    frame = public.drop(columns=[STATUS], errors="ignore")
    if suppressed.any():  # a suppressed row shows its labels only, whatever the mitigation left in it
        for column in (c for c in frame.columns if c not in labels):
            frame[column] = _blankable(frame[column])
            frame.loc[suppressed, column] = np.nan
    note = getattr(checked, "note", None)
    return ShownTable(name=name, title=output.title, kind=output.kind, frame=frame, labels=labels,
                      suppressed=suppressed, note=note or None, report=again)


def _blankable(series: pd.Series) -> pd.Series:
    """The column in a dtype that can hold a blank (numpy ints and booleans cannot)."""
    if pd.api.types.is_bool_dtype(series) and series.dtype != "boolean":
        return series.astype("boolean")
    if pd.api.types.is_integer_dtype(series) and not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        return series.astype("float64")
    return series


def _label_columns(output: StatOutput) -> list[str]:
    inner = output.table if isinstance(output, Figure) else output
    if isinstance(inner, ModelResult):
        return ["term"]
    return list(inner.groups)


def _failed_rules(report: CheckReport) -> str:
    return ", ".join(sorted({finding.rule for finding in report.findings if finding.verdict == "fail"})) or "none named"


def field_of(source: object, field: str) -> object:
    try:
        return getattr(source, field)
    except AttributeError:
        raise ReportError(f"study report: the study result has no field {field}") from None
