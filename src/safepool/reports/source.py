"""What the study report reads: a study's description and its outputs after the disclosure layer.

The report is written against these protocols rather than against the study package, so it
renders anything that carries the same fields (the study run's StudyResult, a report document's
settings, or a test's fake). Only checked outputs are read, each checked again under the policy
it was checked with (the workspace's, when the output register publishes the report), and only
through its kind's shown table: a raw frame has no way in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from safepool.disclosure import CheckReport, DisclosureInputError, DisclosureRules, StatOutput, kind_of
from safepool.disclosure.cells import STATUS, shown_mask
from safepool.faults import Invalid

OUTPUT_NAMES = ("cohort_flow", "balance", "love_plot", "effects", "event_study", "subgroups", "placebo",
                "sensitivity", "naive")


class ReportError(Invalid):
    """The study report cannot be written from what it was given; names the field or output."""


class CheckedOutput(Protocol):
    """An output as the disclosure layer left it (safepool.disclosure.mitigation.Mitigated fits).

    `output` is the mitigated output (failing cells blanked, "status" column), `report` the
    check of exactly that output, `note` the sentence saying what was done and why, `rules` the
    policy it was checked under.
    """

    @property
    def output(self) -> StatOutput: ...

    @property
    def report(self) -> CheckReport: ...

    @property
    def note(self) -> str | None: ...

    @property
    def rules(self) -> DisclosureRules | None: ...


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
    rounded_to: int | None = None  # the base every shown count is rounded to, if they are
    statuses: tuple[str, ...] = ()  # per row: its status in the public table ("suppressed (primary: ...)")

    @property
    def n_suppressed(self) -> int:
        return int(self.suppressed.sum())

    def suppressed_for(self, rule: str) -> bool:
        """Whether any row is suppressed with `rule` among its primary reasons (the public table says so)."""
        return any(hidden and rule in status.partition("primary:")[2]
                   for hidden, status in zip(self.suppressed, self.statuses))


def shown_tables(source: StudyReportSource) -> dict[str, ShownTable]:
    """Every output the report needs, each checked again under its policy; refuses any that fails."""
    checked = field_of(source, "checked")
    if not isinstance(checked, Mapping):
        raise ReportError(f"study report: field checked must map output names to checked outputs, "
                          f"got {type(checked).__name__}")
    missing = [name for name in OUTPUT_NAMES if name not in checked]
    if missing:
        raise ReportError(f"study report: checked output(s) missing: {', '.join(missing)}")
    return {name: shown_table(name, checked[name]) for name in OUTPUT_NAMES}


def shown_table(name: str, checked: CheckedOutput) -> ShownTable:
    """What the disclosure layer says may be shown of one output: its kind's shown table (suppressed
    rows blank beyond their labels, at the policy's precision)."""
    output = getattr(checked, "output", None)
    carried = getattr(checked, "report", None)
    policy = getattr(checked, "rules", None)
    if output is None or not isinstance(carried, CheckReport) or not isinstance(policy, DisclosureRules):
        raise ReportError(f"study report: output {name} is not a checked output (needs .output, .report and the "
                          ".rules it was checked under)")
    if carried.verdict == "fail":
        raise ReportError(f"study report: output {name} ('{carried.title}') did not pass its disclosure checks "
                          f"(failed rules: {_failed_rules(carried)}); only outputs that passed are shown")
    try:
        kind = kind_of(output)
        again = kind.check(output, policy)
    except DisclosureInputError as error:
        raise ReportError(f"study report: output {name}: {error}") from None
    if again.verdict == "fail":
        raise ReportError(f"study report: output {name} ('{again.title}') fails the disclosure checks "
                          f"under the policy it was checked with (failed rules: {_failed_rules(again)})")
    public = kind.shown_table(output, policy).reset_index(drop=True)
    suppressed = ~shown_mask(public)
    labels = [c for c in (kind.labels(output) or sorted(kind.fixed_labels(output))) if c in public.columns]
    frame = public.drop(columns=[STATUS], errors="ignore")
    note = getattr(checked, "note", None)
    statuses = tuple(str(status) for status in public[STATUS]) if STATUS in public.columns else ()
    return ShownTable(name=name, title=output.title, kind=kind.name, frame=frame, labels=labels,
                      suppressed=suppressed, note=note or None, report=again, rounded_to=kind.rounded_to(output),
                      statuses=statuses)


def _failed_rules(report: CheckReport) -> str:
    return ", ".join(sorted({finding.rule for finding in report.findings if finding.verdict == "fail"})) or "none named"


def field_of(source: object, field: str) -> object:
    try:
        return getattr(source, field)
    except AttributeError:
        raise ReportError(f"study report: the study result has no field {field}") from None
