"""The registry of output kinds, and what every kind shares.

An output kind is one module of this package holding the output's dataclass and a subclass of
`OutputKind` registered with `@register`. The kind knows everything the disclosure layer does
with its outputs, so nothing outside it asks "which kind is this?":

  * validation: input that cannot be checked gives "invalid" findings, never a pass;
  * the rules that apply, under the workspace's policy;
  * mitigation: suppression (primary and, for additive tables, secondary) and rounding of counts;
  * its public table, and the same at the precision the policy allows (`shown_table`);
  * its cells for differencing (person counts by group, compared with released tables);
  * its files, written from the checked object (never bytes a caller made);
  * what the output register keeps to check it again under a later policy (`keep`, `restore`,
    `recheck`): the shown cells at the released precision, never contributors' values and
    never the values of suppressed cells;
  * samples for the conformance suite (tests/test_output_kinds.py), so that a new kind is
    tested by adding its module.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from safepool.disclosure.cells import (
    DIFFERENCING,
    ROUNDED,
    SECONDARY,
    SHOWN,
    SMALL_OR_ZERO,
    STATUS,
    DisclosureInputError,
    contributions,
    drop_contributors,
    numbers,
    rounded_mask,
    shown_mask,
)
from safepool.disclosure.findings import CheckReport, Finding, cell_labels, finding, json_safe, report_of
from safepool.disclosure.rules import OUTPUT_SETTINGS, DisclosureRules
from safepool.faults import Conflict

# -- the registry ---------------------------------------------------------------------------

_BY_TYPE: dict[type, OutputKind] = {}
_BY_NAME: dict[str, OutputKind] = {}


def register(kind_class: type[OutputKind]) -> type[OutputKind]:
    """Class decorator: make the kind known by its name and by the type of its outputs."""
    kind = kind_class()
    if kind.name in _BY_NAME:
        raise ValueError(f"output kind {kind.name} is registered twice")
    _BY_NAME[kind.name] = kind
    _BY_TYPE[kind.output_type] = kind
    return kind_class


def kind_of(output: object) -> OutputKind:
    """The kind of a statistical output; DisclosureInputError for anything else."""
    for cls in type(output).__mro__:
        if cls in _BY_TYPE:
            return _BY_TYPE[cls]
    raise DisclosureInputError(f"not a statistical output: {type(output).__name__}")


def kind_named(name: str) -> OutputKind:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise DisclosureInputError(f"no output kind {name!r} (known: {', '.join(sorted(_BY_NAME))})") from None


def registered() -> list[OutputKind]:
    return [_BY_NAME[name] for name in sorted(_BY_NAME)]


class OutputBase:
    """What every output dataclass offers: its kind's name and its public table."""

    kind: ClassVar[str]

    def public_table(self) -> pd.DataFrame:
        return kind_of(self).public_table(self)


# -- what mitigation returns, and what re-checks raise ---------------------------------------


@dataclass
class Mitigated:
    """An output after mitigation, with what was done to it, its check as shown, and the policy used."""

    output: Any
    method: str
    note: str
    report: CheckReport
    rules: DisclosureRules | None = None

    def shown(self) -> Mitigated:
        """The same, its output as an analyst may hold it (`OutputKind.shown_output`): what a run hands
        back to its shell, where the contributors would be single persons' values and numbers at
        full precision would tell more than the released files (a mean times its count is a sum)."""
        if self.rules is None:
            raise DisclosureInputError("an output is shown only as checked under a policy")
        return replace(self, output=kind_of(self.output).shown_output(self.output, self.rules))


class NotRecheckable(Conflict):
    """A recorded output cannot be checked again under the current policy from what was kept."""


# -- conformance samples ----------------------------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    """One rule at its threshold: `make(policy, offset)` gives an output whose deciding cell lies
    `offset` (-1, 0 or +1 in the rule's own unit) from the threshold of `setting`."""

    rule: str
    setting: str
    make: Callable[[DisclosureRules, int], Any]
    fails: Literal["below", "above"] = "below"
    policy: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Samples:
    """What the conformance suite runs on a kind.

    `passing(policy)`: an output that passes (or needs review). `bad`: outputs that cannot be
    checked (empty, text in numbers, NaN, infinities, missing columns). `secret(policy)`: an
    output with failing cells or contributor values, and the texts of those values, none of
    which may appear in a file written after mitigation. `policy`: settings these need (an
    extreme passes only where extremes are allowed)."""

    passing: Callable[[DisclosureRules], Any]
    bad: Mapping[str, Callable[[], Any]]
    boundaries: Sequence[Boundary]
    secret: Callable[[DisclosureRules], tuple[Any, list[str]]]
    policy: Mapping[str, Any] = field(default_factory=dict)  # settings `passing` and `secret` need


# -- the kind ---------------------------------------------------------------------------------

_TOLERANCE = 1e-9
_DECIMAL_TEXT = re.compile(r"^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$")


def _refuse_invalid(output: Any, findings: list[Finding]) -> None:
    """Mitigation of an output that cannot be checked is an error, not a pass."""
    problems = [f.message for f in findings if f.rule == "invalid"]
    if problems:
        raise DisclosureInputError(f"output '{title_of(output)}' cannot be mitigated: " + "; ".join(problems))


class OutputKind:
    """One kind of output. Subclasses set `name` and `output_type` and implement the rules."""

    name: ClassVar[str]
    output_type: ClassVar[type]
    # settings of rules that read contributors' values, which the register does not keep
    contributor_settings: ClassVar[frozenset[str]] = frozenset()

    # -- validation and checks

    def validate(self, output: Any, *, kept: bool = False) -> list[Finding]:
        """Invalid findings (empty when the output can be checked)."""
        raise NotImplementedError

    def rules(self, output: Any, policy: DisclosureRules, *, kept: bool = False) -> list[Finding]:
        """The rules of this kind on a valid output; `kept`: as restored by the register
        (contributors are not kept, so the rules that read them are left out)."""
        raise NotImplementedError

    def check(self, output: Any, policy: DisclosureRules, *, kept: bool = False) -> CheckReport:
        problems = self.validate(output, kept=kept)
        findings = problems or self.rules(output, policy, kept=kept) + self.rounding_rule(output, policy)
        return report_of(title_of(output), self.name, findings)

    def rounding_rule(self, output: Any, policy: DisclosureRules) -> list[Finding]:
        """When the policy rounds every count, a shown count that is not rounded fails."""
        counts = self.count_columns(output)
        if not policy.round_counts or not counts:
            return []
        cells = self.cells_of(output)
        label = ROUNDED.format(base=policy.rounding_base)
        exact = shown_mask(cells) & ~(cells[STATUS].astype(str) == label).to_numpy() if STATUS in cells \
            else np.ones(len(cells), dtype=bool)
        return [finding("rounding", cell_labels(cells, self.labels(output) or [], exact),
                        f"a count is not rounded to base {policy.rounding_base} (the policy rounds every count)")]

    # -- the cells (a model keeps its coefficients instead)

    def cells_of(self, output: Any) -> pd.DataFrame:
        return output.cells

    def with_cells(self, output: Any, cells: pd.DataFrame) -> Any:
        return replace(output, cells=cells)

    def labels(self, output: Any) -> list[str] | None:
        """Columns that name a cell in findings; None when the output passes or fails whole."""
        return list(output.groups)

    def count_columns(self, output: Any) -> list[str]:
        """Columns of shown person counts (rounded together when the policy or a release rounds)."""
        return []

    def blanked_columns(self, output: Any) -> list[str]:
        """The numbers of a cell that suppression removes (labels stay)."""
        labels = self.labels(output) or []
        return [c for c in self.cells_of(output).columns if c not in labels and c != STATUS]

    # -- mitigation

    def additive(self, output: Any, margins: bool) -> bool:
        """Whether totals are added and protected by secondary suppression."""
        return False

    def require_checkable(self, output: Any, policy: DisclosureRules) -> CheckReport:
        """Mitigation needs a valid, not yet mitigated output; invalid input is an error, not a pass.
        Returns the output's check, which mitigation reads next (checked once, not twice)."""
        self._require_unmitigated(output)
        report = self.check(output, policy)
        _refuse_invalid(output, report.findings)
        return report

    def require_valid(self, output: Any) -> Any:
        """`require_checkable` without the rules, for a mitigation that checks the output once it has
        its totals (the rules of the table without them would be read by no one). Returns `output`."""
        self._require_unmitigated(output)
        _refuse_invalid(output, self.validate(output))
        return output

    def _require_unmitigated(self, output: Any) -> None:
        cells = getattr(output, "coefficients" if self.name == "model" else "cells", None)
        if isinstance(cells, pd.DataFrame) and STATUS in cells.columns:
            raise DisclosureInputError(f"output '{title_of(output)}' has already been mitigated")

    def suppress(self, output: Any, policy: DisclosureRules, margins: bool = True,
                 hide: Collection[tuple] = ()) -> Mitigated:
        """Blank every failing cell and the cells labelled as in `hide`; with `margins`, add totals and
        protect against them."""
        additive = self.additive(output, margins)
        if additive:
            output = self.with_margins(self.require_valid(output), policy)
            report = self.check(output, policy)
        else:
            report = self.require_checkable(output, policy)
        cells = self.cells_of(output).reset_index(drop=True)
        failing = self.failing_or_hidden(output, report, policy, hide)
        primary = np.array([bool(found) for found in failing], dtype=bool)
        hidden = self.secondary(output, policy, failing) if self.protects(output, margins) else primary
        status = [f"suppressed (primary: {', '.join(found)})" if found else SECONDARY if hide else SHOWN
                  for found, hide in zip(failing, hidden)]
        mitigated = self.with_cells(output, blank(cells, self.blanked_columns(output), hidden).assign(**{STATUS: status}))
        note = suppression_note(failing, int((hidden & ~primary).sum()), additive)
        return Mitigated(mitigated, "suppression", note, self.check(mitigated, policy), policy)

    def protects(self, output: Any, margins: bool) -> bool:
        """Whether a hidden cell is protected by secondary suppression against totals, its own (an
        additive table) or shown in other outputs."""
        return self.additive(output, margins)

    def with_margins(self, output: Any, policy: DisclosureRules) -> Any:
        raise NotImplementedError

    def secondary(self, output: Any, policy: DisclosureRules, failing: list[list[str]]) -> np.ndarray:
        raise NotImplementedError

    def round_counts(self, output: Any, policy: DisclosureRules) -> Mitigated:
        """Mitigation by rounding instead of suppression (frequency tables only)."""
        raise DisclosureInputError(f"only frequency tables can be rounded, not {type(output).__name__}")

    def rounded(self, mitigated: Mitigated, policy: DisclosureRules) -> Mitigated:
        """The shown counts of a mitigated output rounded to the policy's base, halves up.

        Conventional (deterministic) rounding: the same table always rounds the same way, so
        repeating a request cannot average it away. A row whose rounded count fails is suppressed."""
        output = mitigated.output
        counts = self.count_columns(output)
        if not counts:
            return mitigated
        base = policy.rounding_base
        cells = self.cells_of(output).reset_index(drop=True).copy()
        shown = shown_mask(cells)
        for column in counts:
            values = numbers(cells, column)
            cells[column] = np.where(shown, np.floor(values / base + 0.5) * base, values)
        label = ROUNDED.format(base=base)
        earlier = cells[STATUS].astype(str).to_numpy() if STATUS in cells.columns else np.full(len(cells), SHOWN)
        cells[STATUS] = np.where(shown, label, earlier)
        table = self.with_cells(output, cells)
        report = self.check(table, policy)
        failing = self.failing_rules(table, report, policy)
        still = np.array([bool(found) for found in failing], dtype=bool) & shown
        if still.any():
            cells[STATUS] = [f"suppressed (primary: {', '.join(found)})" if stop else status
                             for found, stop, status in zip(failing, still, cells[STATUS])]
            table = self.with_cells(output, blank(cells, self.blanked_columns(output), still))
            report = self.check(table, policy)
        note = (f"Counts rounded to the nearest multiple of {base} (halves up), so each shown count may differ "
                f"from the true count by up to {base // 2}.")
        if still.any():
            note += f" {int(still.sum())} rounded count(s) still below {policy.min_frequency} persons were suppressed."
        method = "rounding" if mitigated.method in ("none", "rounding") else f"{mitigated.method} and rounding"
        note = f"{mitigated.note} {note}".strip() if mitigated.method != "none" else note
        return Mitigated(table, method, note, report, policy)

    def mitigate(self, output: Any, policy: DisclosureRules, *, margins: bool, rounding: bool,
                 hide: Collection[tuple] = ()) -> Mitigated:
        """What publishing does: suppress what fails (and the cells labelled as in `hide`), then round
        the counts if the release rounds."""
        mitigated = self.suppress(output, policy, margins, hide)
        return self.rounded(mitigated, policy) if rounding else mitigated

    def failing_or_hidden(self, output: Any, report: CheckReport, policy: DisclosureRules,
                          hide: Collection[tuple]) -> list[list[str]]:
        """`failing_rules`, with DIFFERENCING for each cell that passes them and whose group labels (as
        plain values, totals by their label) are in `hide`: the caller's own reason to hide a cell it
        has checked. A cell that fails on its own is protected as it would be without the caller's
        reason, so that the reason changes nothing of how it is hidden."""
        failing = self.failing_rules(output, report, policy)
        if not hide:
            return failing
        rows = self.cells_of(output)[list(output.groups)].itertuples(index=False, name=None)
        return [[DIFFERENCING] if not found and tuple(json_safe(v) for v in row) in hide else found
                for found, row in zip(failing, rows)]

    def failing_rules(self, output: Any, report: CheckReport, policy: DisclosureRules) -> list[list[str]]:
        """For each row of the output, the rules it fails (empty when it passes).

        When zeros are suppressed, small and zero counts share one name ("min_frequency or
        zeros"), and a cell that fails it names no other rule: naming the zeros rule, or a rule a
        small cell fails and an empty one cannot (dominance), would tell which it is. The rounding
        rule is no reason to suppress: it is met by rounding (`rounded`)."""
        cells, columns = self.cells_of(output), self.labels(output)
        failed = [replace(f, rule=SMALL_OR_ZERO) if policy.zeros == "suppress" and f.rule in ("zeros", "min_frequency")
                  else f for f in report.findings if f.verdict == "fail" and f.rule != "rounding"]
        if columns is None:
            rules = list(dict.fromkeys(f.rule for f in failed))
            return [[SMALL_OR_ZERO] if SMALL_OR_ZERO in rules else rules] * len(cells)
        by_cell: dict[tuple, list[str]] = {}
        for found in failed:
            for cell in found.cells:
                named = by_cell.setdefault(tuple(cell.get(c) for c in columns), [])
                named += [found.rule] if found.rule not in named else []
        keys = cells[columns].itertuples(index=False, name=None) if columns else [()] * len(cells)
        found = [by_cell.get(tuple(json_safe(v) for v in key), []) for key in keys]
        return [[SMALL_OR_ZERO] if SMALL_OR_ZERO in rules else rules for rules in found]

    # -- what is shown

    def public_table(self, output: Any) -> pd.DataFrame:
        return drop_contributors(self.cells_of(output), also=self.unshown_columns(output))

    def shown_output(self, output: Any, policy: DisclosureRules) -> Any:
        """The output with its table as released for cells (`shown_table`): no contributors, no
        column never shown, suppressed rows blank, numbers at the policy's precision."""
        return self.with_cells(output, self.shown_table(output, policy))

    def unshown_columns(self, output: Any) -> list[str]:
        """Columns the rules read that are never shown (besides contributors): not in the public
        table or a file; the register keeps them apart, for checking again."""
        return []

    def shown_table(self, output: Any, policy: DisclosureRules) -> pd.DataFrame:
        """The public table as released: suppressed rows blank beyond their labels, counts whole,
        other numbers to the policy's decimals."""
        public = self.public_table(output).reset_index(drop=True).copy()
        labels = set(self.labels(output) or []) | self.fixed_labels(output)
        hidden = ~shown_mask(public)
        counts = set(self.count_columns(output))
        for column in public.columns:
            if column in labels or column == STATUS:
                continue
            series = public[column]
            if hidden.any():
                series = series.astype(object).where(~hidden, None)
            if column in counts:
                public[column] = pd.to_numeric(series, errors="coerce").round().astype("Int64")
            else:
                public[column] = at_precision(series, policy.decimals)
        return public

    def fixed_labels(self, output: Any) -> set[str]:
        """Label columns beyond those that name a cell (e.g. a model's term)."""
        return set()

    def differencing_cells(self, output: Any) -> list:
        """Person counts by group (safepool.disclosure.differencing.FrequencyCells), compared with
        the tables already released under the permit."""
        return []

    def files(self, output: Any, name: str, policy: DisclosureRules) -> dict[str, bytes]:
        """The output's files, written from the checked object: its shown table as CSV."""
        return {f"{name}.csv": csv_bytes(self.shown_table(output, policy))}

    def rounded_to(self, output: Any) -> int | None:
        """The base every shown count is rounded to, if they all are (None otherwise or without counts)."""
        counts = self.count_columns(output)
        if not counts:
            return None
        cells = self.cells_of(output)
        shown = shown_mask(cells)
        if not shown.any():
            return None
        statuses = set(cells.loc[shown, STATUS].astype(str)) if STATUS in cells.columns else {SHOWN}
        bases = {int(s.rsplit(" ", 1)[1]) for s in statuses if s.startswith("rounded to base ")}
        return bases.pop() if len(bases) == 1 and len(statuses) == 1 else None

    def has_counts(self, output: Any) -> bool:
        return bool(self.count_columns(output)) and bool(shown_mask(self.cells_of(output)).any())

    # -- what the register keeps, and checking again under a later policy

    def keep(self, output: Any, policy: DisclosureRules) -> dict[str, Any]:
        """The shown cells at the released precision, and what the rules need besides them."""
        shown = self.shown_table(output, policy)
        cells = self.cells_of(output).reset_index(drop=True)
        visible = shown_mask(cells)
        unshown = {column: [json_safe(v) if seen else None for v, seen in zip(cells[column], visible)]
                   for column in self.unshown_columns(output)}
        return {"title": title_of(output), "columns": [str(c) for c in shown.columns],
                "rows": [[json_safe(v) for v in row] for row in shown.itertuples(index=False, name=None)],
                "contributors": self.has_contributors(output), "decimals": policy.decimals,
                **({"unshown": unshown} if unshown else {}), **self.kept_fields(output)}

    def kept_fields(self, output: Any) -> dict[str, Any]:
        return {"groups": list(output.groups)}

    def has_contributors(self, output: Any) -> bool:
        return False

    def restore(self, kept: Mapping[str, Any]) -> Any:
        """The output as kept (no contributors), for `check(..., kept=True)`."""
        cells = pd.DataFrame([list(row) for row in kept["rows"]], columns=list(kept["columns"]))
        for column, values in kept.get("unshown", {}).items():
            cells[column] = pd.array(values, dtype="Int64")
        fields = {k: v for k, v in kept.items()
                  if k not in ("title", "columns", "rows", "contributors", "decimals", "unshown")}
        return self.output_type(kept["title"], cells, **fields)

    def recheck(self, kept: Mapping[str, Any], recorded: DisclosureRules, policy: DisclosureRules) -> CheckReport:
        """The output checked again under `policy` from what was kept; NotRecheckable when a setting
        changed that a rule reads from what is not kept (contributors' values) or that the files
        were written under (fewer decimals now)."""
        blocked = self.blocked_settings(kept, recorded, policy)
        if blocked:
            raise NotRecheckable(f"the policy's {', '.join(blocked)} changed since it was checked, and what that "
                                 "needs is not kept")
        return self.check(self.restore(kept), policy, kept=True)

    def blocked_settings(self, kept: Mapping[str, Any], recorded: DisclosureRules,
                         policy: DisclosureRules) -> list[str]:
        changed = [s for s in sorted(OUTPUT_SETTINGS) if getattr(recorded, s) != getattr(policy, s)]
        blocked = [s for s in changed if s in self.contributor_settings and kept.get("contributors")]
        if policy.decimals < int(kept.get("decimals", recorded.decimals)):
            blocked.append("decimals")
        return blocked

    # -- conformance

    def samples(self) -> Samples:
        raise NotImplementedError


# -- helpers the kinds share --------------------------------------------------------------------


def title_of(output: Any) -> str:
    title = getattr(output, "title", "")
    return title if isinstance(title, str) else str(title)


def blank(cells: pd.DataFrame, columns: list[str], hidden: np.ndarray) -> pd.DataFrame:
    """The cells with `columns` blanked (NaN) in the `hidden` rows; numbers stay numbers."""
    cells = cells.reset_index(drop=True).copy()
    for column in columns:
        if column == STATUS:
            continue
        numeric = pd.to_numeric(cells[column], errors="coerce")
        if numeric.notna().sum() == cells[column].notna().sum() and not pd.api.types.is_bool_dtype(cells[column]):
            cells[column] = numeric.astype(float).mask(hidden)
        else:  # text (remarks) or lists (contributors): blanked as missing
            cells[column] = cells[column].astype(object).where(~np.asarray(hidden, dtype=bool), None)
    return cells


TOTALS_NOTE = "Row, column and grand totals are shown as cells labelled Total."


def suppression_note(failing: list[list[str]], secondary: int, margins: bool) -> str:
    primary = Counter(rule for found in failing if found for rule in found)
    cells = sum(1 for found in failing if found)
    totals = f" {TOTALS_NOTE}" if margins else ""
    if not cells:
        return "No cell failed the disclosure checks; nothing was suppressed." + totals
    reasons = ", ".join(f"{rule} ({count})" for rule, count in sorted(primary.items()))
    note = f"Suppressed {cells} cell(s) that failed the disclosure checks: {reasons}."
    if secondary:
        note += (f" Suppressed {secondary} further cell(s) (secondary suppression) so that no suppressed "
                 "cell can be worked out from the totals shown.")
    return note + totals


def at_precision(series: pd.Series, decimals: int) -> pd.Series:
    """Numbers rounded to `decimals` (numbers carried as text too); words and flags as they are."""
    if pd.api.types.is_bool_dtype(series):
        return series
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float).round(decimals)

    def one(value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)) or value is None:
            return value
        if isinstance(value, (int, float, np.integer, np.floating)):
            return round(float(value), decimals) if np.isfinite(value) else value
        if isinstance(value, str) and _DECIMAL_TEXT.match(value):
            return str(round(float(value), decimals))
        return value

    return series.map(one)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def small_counts(cells: pd.DataFrame, column: str, labels: list[str], policy: DisclosureRules,
                 shown: np.ndarray) -> list[Finding]:
    """min_frequency on counts 1..threshold-1, and the zeros policy on counts of 0 (a rounded zero
    is not a zero count)."""
    count = numbers(cells, column)
    small = shown & (count > 0) & (count < policy.min_frequency)
    findings = [finding("min_frequency", cell_labels(cells, labels, small),
                        f"{column} is below {policy.min_frequency} persons")]
    if policy.zeros == "suppress":
        zero = shown & (count == 0) & ~rounded_mask(cells)
        findings.append(finding("zeros", cell_labels(cells, labels, zero), f"{column} is zero (zeros are suppressed here)"))
    return findings


def contributor_rules(cells: pd.DataFrame, labels: list[str], policy: DisclosureRules, shown: np.ndarray, *,
                      top: str = "top", total: str = "abs_total", what: str = "") -> list[Finding]:
    """Dominance (the n largest contributors hold more than k of the cell) and the p% rule (the rest
    of the cell is below p of its largest contributor), from the contributors' values."""
    width = max(policy.dominance_n, 2)
    largest = contributions(cells, width, top)
    size = numbers(cells, total)
    slack = _TOLERANCE * np.maximum(size, 1.0)
    of = f" ({what})" if what else ""
    dominated = shown & (largest[:, : policy.dominance_n].sum(axis=1) - policy.dominance_k * size > slack)
    remainder = size - largest[:, 0] - largest[:, 1]
    guessable = shown & (largest[:, 0] > 0) & (policy.p_ratio * largest[:, 0] - remainder > slack)
    return [finding("dominance", cell_labels(cells, labels, dominated),
                    f"the {policy.dominance_n} largest contributors{of} hold more than {policy.dominance_k:.0%} "
                    "of the cell"),
            finding("p_ratio", cell_labels(cells, labels, guessable),
                    f"the rest of the cell{of} is below {policy.p_ratio:.0%} of its largest contributor")]
