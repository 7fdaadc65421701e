"""The report's tables, written for people from the checked tables.

Every builder reads a ShownTable (the public cells of one checked output) and the report's label
book, and returns HumanTables: headers with units, rows of text. Labels come from the book, never a
column name; numbers from safepool.reports.numbers; a row the disclosure layer suppressed keeps
its labels and reads "suppressed". A builder shows only the columns that mean something for its
table (no matched sets for the unmatched comparison; the placebo's joint test once per outcome).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from safepool.governance.form import mask_identity_codes
from safepool.reports import numbers as num
from safepool.reports.labels import SHARE, Labels, Outcome, words
from safepool.reports.source import ShownTable
from safepool.study.estimand import NOT_MATCHED

SUPPRESSED = "suppressed"
BALANCE_ROWS = 30  # covariates per balance table, so that each fits its page
ESTIMATORS = {"att": "Matched difference", "did": "Matched difference-in-differences",
              "naive": "Unmatched difference", "placebo": "Placebo"}
ESTIMATOR_ROWS = {"att": "Matched difference: clients against their comparison persons at the horizon",
                  "did": "Matched difference-in-differences: the same, for the change from the quarter before entry"}
P_VALUE = "p\u2011value"  # a non-breaking hyphen: the header never splits
REMOVED = "removed: "


@dataclass
class HumanTable:
    """A table ready for the template: header labels and rows of text, and what was done to it."""

    title: str
    columns: list[str]
    numeric: list[bool]  # per column: numbers, aligned right
    rows: list[list[str]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # per row: "", "suppressed", "group" or "indent"
    note: str | None = None
    wide: bool = False
    groups: list[tuple[str, int]] = field(default_factory=list)  # a header row above the columns: label, span
    css: str = ""  # the table's class (column widths)

    def add(self, cells: Sequence[str], kind: str = "") -> None:
        self.rows.append(list(cells))
        self.classes.append(kind)


@dataclass(frozen=True)
class Scale:
    """How one outcome's numbers are written: its labels, the factor (a share in %) and decimals."""

    outcome: Outcome
    decimals: int

    def effect(self, value: object) -> str:
        return num.number(value, self.decimals, signed=True, factor=self.outcome.factor())

    def interval(self, low: object, high: object) -> str:
        return num.interval(low, high, self.decimals, factor=self.outcome.factor())

    def level(self, value: object) -> str:
        return num.number(value, self.decimals, factor=self.outcome.factor())


def scales(effects: ShownTable, labels: Labels, *others: ShownTable) -> dict[str, Scale]:
    """Per outcome, decimals that fit its intervals (a share's effect in percentage points: one)."""
    rows = pd.concat([t.frame.loc[~t.suppressed] for t in (effects, *others) if "outcome" in t.frame.columns],
                     ignore_index=True)
    result = {}
    for name in _outcomes(rows):
        part = rows.loc[rows["outcome"].astype(str) == name]
        binary = "outcome_type" in part.columns and (part["outcome_type"].astype(str) == "binary").all()
        outcome = labels.outcome(name, binary=binary)
        if outcome.scale == SHARE:
            decimals = 1
        else:
            halves = [(_f(h) - _f(l)) / 2 for l, h in zip(part.get("ci_low", []), part.get("ci_high", []))
                      if _f(h) is not None and _f(l) is not None]
            decimals = num.decimals_for(halves)
        result[name] = Scale(outcome, decimals)
    return result


def scale_of(scales_: Mapping[str, Scale], name: str, labels: Labels) -> Scale:
    return scales_.get(name) or Scale(labels.outcome(name), 2)


# --- cohort flow -------------------------------------------------------------------------------

def cohort_flow_table(shown: ShownTable) -> HumanTable:
    """The steps with the persons each kept, the clients not matched under "clients matched", then
    the persons left out along the way, by reason."""
    table = HumanTable(_title(shown), ["Step", "Persons"], [False, True], note=shown.note)
    frame = shown.frame
    left_out = []
    for position, row in enumerate(frame.to_dict("records")):
        step, persons = str(row.get("step", "")), _count(row.get("count"), shown.suppressed[position])
        if step.startswith(REMOVED):
            left_out.append((step.removeprefix(REMOVED), persons))
        elif step.startswith(NOT_MATCHED):
            table.add([f"not matched: {step.removeprefix(NOT_MATCHED)}", persons], "indent")
        else:
            table.add([_sentence_case(step), persons], "suppressed" if shown.suppressed[position] else "")
    if left_out:
        table.add(["Left out along the way, by reason", ""], "group")
        for reason, persons in left_out:
            table.add([reason.replace("; ", " or "), persons], "indent")
    return table


def flow_counts(shown: ShownTable) -> dict[str, float]:
    """The checked cohort flow's shown counts by step (suppressed steps left out)."""
    frame = shown.frame.loc[~shown.suppressed]
    if not {"step", "count"} <= set(frame.columns):
        return {}
    counts = {}
    for step, value in zip(frame["step"].astype(str), frame["count"]):
        number = num.as_float(value)
        if number is not None:
            counts[step] = number
    return counts


# --- balance -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BalanceRow:
    label: str
    binary: bool
    before: Mapping[str, object]
    after: Mapping[str, object]
    suppressed: bool


def balance_rows(shown: ShownTable, labels: Labels) -> list[BalanceRow]:
    frame = shown.frame
    if not {"stage", "covariate"} <= set(frame.columns):
        return []
    stages: dict[str, dict[str, tuple[Mapping[str, object], bool]]] = {"before": {}, "after": {}}
    order: list[str] = []
    for position, row in enumerate(frame.to_dict("records")):
        covariate = str(row["covariate"])
        stages.setdefault(str(row["stage"]), {})[covariate] = (row, bool(shown.suppressed[position]))
        if covariate not in order:
            order.append(covariate)
    rows = []
    for covariate in order:
        before, hidden_before = stages["before"].get(covariate, ({}, False))
        after, hidden_after = stages["after"].get(covariate, ({}, False))
        flag = after.get("binary", before.get("binary"))
        binary = num.as_float(flag) == 1.0 or str(after.get("variance_ratio", "")) == "binary"
        rows.append(BalanceRow(labels.covariate(covariate), binary, before, after, hidden_before or hidden_after))
    return rows


def balance_tables(shown: ShownTable, labels: Labels) -> list[HumanTable]:
    """One row per covariate: means and SMD before and after matching, the variance ratio after,
    whether it is within the limits; means of 0/1 covariates as percentages."""
    rows = balance_rows(shown, labels)
    columns = ["Covariate", "Mean, clients", "Mean, eligible persons", "SMD", "Mean, clients",
               "Mean, comparison persons", "SMD", "Variance ratio", "Within limits"]
    numeric = [False, True, True, True, True, True, True, True, False]
    tables = []
    for start in range(0, max(len(rows), 1), BALANCE_ROWS):
        part = rows[start:start + BALANCE_ROWS]
        title = _title(shown) if start == 0 else f"{_title(shown)} (continued)"
        table = HumanTable(title, columns, numeric, wide=True, css="balance",
                           groups=[("", 1), ("Before matching", 3), ("After matching", 5)])
        for row in part:
            if row.suppressed:
                table.add([row.label] + [SUPPRESSED] * (len(columns) - 1), "suppressed")
                continue
            mean = (lambda v: num.number(v, 1, factor=100.0) + "%" if num.as_float(v) is not None else num.DASH) \
                if row.binary else num.plain
            ok = [num.as_float(row.after.get(flag)) for flag in ("smd_ok", "vr_ok") if flag in row.after]
            within = num.DASH if not ok or any(v is None for v in ok) else "yes" if all(v == 1 for v in ok) else "no"
            ratio = "0/1 covariate" if row.binary else num.plain(row.after.get("variance_ratio"))
            table.add([row.label, mean(row.before.get("mean_treated")), mean(row.before.get("mean_control")),
                       num.number(row.before.get("smd"), 3), mean(row.after.get("mean_treated")),
                       mean(row.after.get("mean_control")), num.number(row.after.get("smd"), 3), ratio, within])
        tables.append(table)
    if tables:
        tables[-1].note = shown.note
    return tables


def balance_counts(shown: ShownTable) -> dict[str, tuple[float | None, float | None]]:
    """Persons behind each stage: clients, and eligible or comparison persons."""
    frame = shown.frame.loc[~shown.suppressed]
    counts = {}
    if {"stage", "n_treated", "n_control"} <= set(frame.columns):
        for stage, part in frame.groupby(frame["stage"].astype(str)):
            counts[stage] = (num.as_float(part["n_treated"].iloc[0]), num.as_float(part["n_control"].iloc[0]))
    return counts


def unbalanced(shown: ShownTable, labels: Labels) -> list[str]:
    """The covariates outside the balance limits after matching."""
    failing = []
    for row in balance_rows(shown, labels):
        flags = [num.as_float(row.after.get(flag)) for flag in ("smd_ok", "vr_ok") if flag in row.after]
        if any(flag == 0.0 for flag in flags):
            failing.append(row.label)
    return failing


# --- effects -----------------------------------------------------------------------------------

def effect_tables(shown: ShownTable, labels: Labels, scales_: Mapping[str, Scale], ci: str
                  ) -> list[tuple[Outcome, HumanTable]]:
    """Per outcome: effect, interval and p-value by horizon and estimator, with the persons behind
    each row, the matched sets, and the two groups' means."""
    result = []
    for name, part in _by_outcome(shown):
        scale = scale_of(scales_, name, labels)
        unit = scale.outcome.level_unit
        columns = ["Quarters after entry", f"Effect ({scale.outcome.short_unit})" if
                   scale.outcome.short_unit else "Effect", ci, P_VALUE, "Clients", "Comparison persons",
                   "Matched sets", _with_unit("Mean, clients", unit), _with_unit("Mean, comparison", unit)]
        table = HumanTable(scale.outcome.heading, columns, [True] * 9, wide=True, css="effects")
        method = None
        for row, hidden in part:
            if str(row.get("method")) != method:
                method = str(row.get("method"))
                table.add([ESTIMATOR_ROWS.get(method, ESTIMATORS.get(method, words(method)))], "group")
            labels_ = [_horizon(row.get("horizon"))]
            if hidden:
                table.add(labels_ + [SUPPRESSED] * 8, "suppressed")
                continue
            table.add(labels_ + [scale.effect(row.get("estimate")), scale.interval(row.get("ci_low"), row.get("ci_high")),
                                 num.p_value(row.get("p_value")), num.count(row.get("n_treated")),
                                 num.count(row.get("n_control")), num.count(row.get("n_clusters")),
                                 scale.level(row.get("mean_treated")), scale.level(row.get("mean_control"))])
        result.append((scale.outcome, table))
    return result


def naive_table(shown: ShownTable, labels: Labels, scales_: Mapping[str, Scale], ci: str) -> HumanTable:
    """Clients against every eligible non-client, unmatched: no matched sets here."""
    columns = ["Quarters after entry", "Difference", ci, P_VALUE, "Clients", "Eligible non-clients",
               "Mean, clients", "Mean, non-clients"]
    table = HumanTable(_title(shown), columns, [True] * 8, note=shown.note, wide=True, css="naive")
    for name, part in _by_outcome(shown):
        scale = scale_of(scales_, name, labels)
        unit = scale.outcome.level_unit
        table.add([scale.outcome.heading], "group")
        for row, hidden in part:
            if hidden:
                table.add([_horizon(row.get("horizon"))] + [SUPPRESSED] * 7, "suppressed")
                continue
            table.add([_horizon(row.get("horizon")), scale.effect(row.get("estimate")),
                       scale.interval(row.get("ci_low"), row.get("ci_high")), num.p_value(row.get("p_value")),
                       num.count(row.get("n_treated")), num.count(row.get("n_control")),
                       _level(scale, row.get("mean_treated"), unit), _level(scale, row.get("mean_control"), unit)])
    return table


def event_tables(shown: ShownTable, labels: Labels, scales_: Mapping[str, Scale], ci: str
                 ) -> list[tuple[Outcome, HumanTable]]:
    result = []
    for name, part in _by_outcome(shown):
        scale = scale_of(scales_, name, labels)
        columns = ["Quarters from entry", f"Effect ({scale.outcome.short_unit})" if scale.outcome.short_unit
                   else "Effect", ci, P_VALUE, "Clients", "Comparison persons"]
        table = HumanTable(scale.outcome.heading, columns, [True] * 6, css="event")
        for row, hidden in part:
            horizon = _horizon(row.get("horizon"))
            if hidden:
                table.add([horizon] + [SUPPRESSED] * 5, "suppressed")
                continue
            table.add([horizon, scale.effect(row.get("estimate")), scale.interval(row.get("ci_low"), row.get("ci_high")),
                       num.p_value(row.get("p_value")), num.count(row.get("n_treated")),
                       num.count(row.get("n_control"))])
        result.append((scale.outcome, table))
    return result


@dataclass(frozen=True)
class Placebo:
    outcome: Outcome
    first: int | None
    last: int | None
    statistic: float | None
    df: float | None
    p_value: float | None


def placebo_tests(shown: ShownTable, labels: Labels, scales_: Mapping[str, Scale]) -> list[Placebo]:
    """The joint pre-trend test, once per outcome (the table repeats it on every pre-entry row)."""
    tests = []
    for name, part in _by_outcome(shown):
        rows = [row for row, hidden in part if not hidden]
        if not rows:
            continue
        horizons = [int(h) for h in (num.as_float(row.get("horizon")) for row in rows) if h is not None]
        first = rows[0]
        tests.append(Placebo(scale_of(scales_, name, labels).outcome, min(horizons, default=None),
                             max(horizons, default=None), num.as_float(first.get("wald_chi2")),
                             num.as_float(first.get("wald_df")), num.as_float(first.get("joint_p_value"))))
    return tests


def placebo_table(tests: Sequence[Placebo], shown: ShownTable) -> HumanTable:
    table = HumanTable(_title(shown), ["Outcome", "Quarters tested", "Wald χ²", "Degrees of freedom", P_VALUE,
                                       "Reading"], [False, False, True, True, True, False], note=shown.note)
    for test in tests:
        quarters = (f"{num.fixed(test.first, 0, True)} to {num.fixed(test.last, 0, True)}"
                    if test.first is not None and test.last is not None else num.DASH)
        reading = num.DASH if test.p_value is None else \
            "differences before entry" if test.p_value < 0.05 else "no sign of differing trends"
        table.add([test.outcome.label, quarters, num.number(test.statistic, 2), num.count(test.df),
                   num.p_value(test.p_value), reading])
    return table


def subgroup_table(shown: ShownTable, labels: Labels, scales_: Mapping[str, Scale], ci: str) -> HumanTable:
    columns = ["Subgroup", "Group", "Effect", ci, P_VALUE, "Clients", "Comparison persons"]
    table = HumanTable(_title(shown), columns, [False, False] + [True] * 5, note=shown.note, wide=True)
    last = None
    for row, hidden in _rows(shown):
        scale = scale_of(scales_, str(row.get("outcome", "")), labels)
        subgroup = str(row.get("subgroup", ""))
        name = labels.subgroup(subgroup) if subgroup != last else ""
        last = subgroup
        cells = [name, labels.level(subgroup, str(row.get("level", "")))]
        if hidden:
            table.add(cells + [SUPPRESSED] * 5, "suppressed")
            continue
        effect = scale.effect(row.get("estimate"))
        table.add(cells + [f"{effect} {scale.outcome.short_unit}".strip() if effect != num.DASH else effect,
                           scale.interval(row.get("ci_low"), row.get("ci_high")), num.p_value(row.get("p_value")),
                           num.count(row.get("n_treated")), num.count(row.get("n_control"))])
    return table


def sensitivity_table(shown: ShownTable, labels: Labels, scales_: Mapping[str, Scale], ci: str,
                      largest_gamma: float | None) -> tuple[HumanTable | None, int]:
    """E-values and the Rosenbaum gamma for the effects whose interval excludes no effect: for the
    others no hidden bias is needed to explain them away, so there is nothing to bound. Returns the
    table (None when no row means something) and how many effects were left out."""
    columns = ["Outcome", "Quarters after entry", "Effect", ci, "E-value", "E-value of the interval",
               "Rosenbaum Γ"]
    table = HumanTable(_title(shown), columns, [False] + [True] * 6, note=shown.note, wide=True)
    left_out = 0
    for row, hidden in _rows(shown):
        if str(row.get("method", "att")) != "att":
            continue
        interval_e = num.as_float(row.get("e_value_ci"))
        low, high = num.as_float(row.get("ci_low")), num.as_float(row.get("ci_high"))
        excludes = low is not None and high is not None and (low > 0 or high < 0)
        if hidden or not excludes or interval_e is None or interval_e <= 1.0:
            left_out += 1
            continue
        scale = scale_of(scales_, str(row.get("outcome", "")), labels)
        gamma = num.as_float(row.get("rosenbaum_gamma"))
        gamma_text = "not significant at Γ = 1" if gamma is None else \
            f"≥ {num.fixed(gamma, 2)}" if largest_gamma is not None and gamma >= largest_gamma else num.fixed(gamma, 2)
        effect = scale.effect(row.get("estimate"))
        table.add([scale.outcome.label, _horizon(row.get("horizon")), f"{effect} {scale.outcome.short_unit}".strip(),
                   scale.interval(row.get("ci_low"), row.get("ci_high")), num.number(row.get("e_value"), 2),
                   num.number(interval_e, 2), gamma_text])
    return (table if table.rows else None), left_out


def checks_table(shown: Mapping[str, ShownTable], output_ids: Mapping[str, str]) -> HumanTable:
    table = HumanTable("Disclosure checks of the outputs in this report",
                       ["Recorded output", "Output", "Kind", "Checks", "Suppressed cells"],
                       [False, False, False, False, True], css="checks")
    for name, part in shown.items():
        rules = sorted({finding.rule for finding in part.report.findings})
        checks = f"{part.report.verdict}: {', '.join(rule.replace('_', ' ') for rule in rules)}"
        table.add([mask_identity_codes(output_ids[name]) if output_ids.get(name) else num.DASH, _title(part),
                    part.kind, checks, str(part.n_suppressed)])
    return table


# --- helpers -----------------------------------------------------------------------------------

def _rows(shown: ShownTable) -> Iterator[tuple[dict, bool]]:
    for position, row in enumerate(shown.frame.to_dict("records")):
        yield row, bool(shown.suppressed[position])


def _by_outcome(shown: ShownTable) -> list[tuple[str, list[tuple[dict, bool]]]]:
    groups: dict[str, list[tuple[dict, bool]]] = {}
    for row, hidden in _rows(shown):
        groups.setdefault(str(row.get("outcome", "")), []).append((row, hidden))
    return list(groups.items())


def _outcomes(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["outcome"].astype(str))) if "outcome" in frame.columns else []


def _f(value: object) -> float | None:
    return num.as_float(value)


def _count(value: object, suppressed: bool) -> str:
    return SUPPRESSED if suppressed and num.is_blank(value) else num.count(value)


def _horizon(value: object) -> str:
    x = num.as_float(value)
    return num.DASH if x is None else num.fixed(x, 0)


def _level(scale: Scale, value: object, unit: str) -> str:
    text = scale.level(value)
    return f"{text}%" if unit == "%" and text != num.DASH else text


def _with_unit(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def _title(shown: ShownTable) -> str:
    return mask_identity_codes(shown.title)


def _sentence_case(text: str) -> str:
    text = mask_identity_codes(text)
    return text[:1].upper() + text[1:]
