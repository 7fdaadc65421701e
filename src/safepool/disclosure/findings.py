"""What a disclosure check found, in a form that is safe to record.

A finding names the rule, its verdict and the cells it concerns by their group labels only:
the values of failed cells and the contributors' values never enter a finding, so a report
can be written to the output register and shown to a checker as it is.

Verdicts: "pass", "fail", and "review" for what the automatic rules cannot establish and a
person must look at (as ACRO has): a report fails when any finding fails, needs review when
none fails and one asks for review, and passes otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

Verdict = Literal["pass", "review", "fail"]


@dataclass(frozen=True)
class Finding:
    """One rule applied to one output: which cells it concerns, never their values."""

    rule: str
    verdict: Verdict
    cells: list[dict]
    message: str

    def to_record(self) -> dict:
        return {"rule": self.rule, "verdict": self.verdict, "cells": self.cells, "message": self.message}


@dataclass(frozen=True)
class CheckReport:
    """Every finding for one output; it fails when any finding fails, needs review when one asks."""

    title: str
    kind: str
    verdict: Verdict
    findings: list[Finding]

    def failed_cells(self) -> list[dict]:
        """The labels of every cell some failing rule concerns, each once."""
        seen: list[dict] = []
        for finding in self.findings:
            if finding.verdict == "fail":
                seen.extend(cell for cell in finding.cells if cell not in seen)
        return seen

    def to_record(self) -> dict:
        """JSON-safe summary: rules, verdicts and affected cells, no values of failed cells."""
        return {
            "title": self.title,
            "kind": self.kind,
            "verdict": self.verdict,
            "findings": [finding.to_record() for finding in self.findings],
        }


def report_of(title: str, kind: str, findings: list[Finding]) -> CheckReport:
    """A report whose verdict follows from its findings; no findings at all is a failure."""
    verdicts = {finding.verdict for finding in findings}
    verdict: Verdict = "fail" if not findings or "fail" in verdicts else "review" if "review" in verdicts else "pass"
    return CheckReport(title=title, kind=kind, verdict=verdict, findings=findings)


def needs_review(rule: str, why: str) -> Finding:
    """A finding the automatic rules cannot settle: a checker must look, and comment on approval."""
    return Finding(rule, "review", [], f"{rule} (needs a person's review): {why}")


def finding(rule: str, failing: list[dict], what: str) -> Finding:
    """A finding for `rule` that fails when `failing` is not empty; `what` says when a cell fails."""
    if failing:
        return Finding(rule, "fail", failing, f"{rule} (fails when {what}): {len(failing)} cell(s) fail")
    return Finding(rule, "pass", [], f"{rule} (fails when {what}): every cell passes")


def invalid(problem: str, cells: list[dict] | None = None) -> Finding:
    """Input that cannot be checked: always a failure, never a silent pass."""
    return Finding("invalid", "fail", cells or [], f"invalid: {problem}")


def cell_labels(cells: pd.DataFrame, label_columns: list[str], mask: np.ndarray | pd.Series) -> list[dict]:
    """JSON-safe group labels of the rows selected by `mask`."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    return [dict(zip(label_columns, label)) for label in row_labels(cells.loc[mask], label_columns)]


def row_labels(cells: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Each row's values of `columns`, as plain JSON values (`json_safe`): read column by column,
    several times quicker than row by row (a table's labels are read several times per answer)."""
    if not columns:
        return [()] * len(cells)
    return list(zip(*([json_safe(value) for value in cells[column].tolist()] for column in columns)))


def json_safe(value: Any) -> Any:
    """A label as a plain JSON value (numpy scalars, missing values and dates included)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
