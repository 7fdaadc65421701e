"""The report's first page: the question, the headline effects, who was compared, balance, caveats.

Every number on it is a shown cell of a checked output (the effect table, the cohort flow, the
balance table, the placebo test), written by safepool.reports.numbers; counts are as published
(rounded when the release rounds), and a share is computed from two published counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from safepool.reports import numbers as num
from safepool.reports.labels import Labels
from safepool.reports.source import ShownTable
from safepool.reports.tables import Placebo, Scale, balance_counts, balance_rows, flow_counts, scale_of, unbalanced
from safepool.study.estimand import ATT, MATCHED_ONLY, MATCHED_STEP, NOT_MATCHED, TREATED_STEP

CONTROLS_STEP = "matched controls"


@dataclass(frozen=True)
class Headline:
    """One outcome's effects at the study's horizons: (effect, interval, interval excludes zero)."""

    label: str
    unit: str
    cells: list[tuple[str, str, bool] | None]


@dataclass
class Summary:
    horizons: list[int]
    headlines: list[Headline]
    compared: list[str] = field(default_factory=list)  # sentences: who was compared
    balance: str | None = None
    caveats: list[str] = field(default_factory=list)
    any_significant: bool = False


def summary(shown: Mapping[str, ShownTable], labels: Labels, scales: Mapping[str, Scale],
            placebo: Sequence[Placebo], estimand: str | None, limitations: Sequence[str]) -> Summary:
    effects = shown["effects"]
    frame = effects.frame.assign(_hidden=effects.suppressed)
    att = frame.loc[frame["method"].astype(str) == "att"] if "method" in frame.columns else frame
    horizons = sorted({int(h) for h in (num.as_float(v) for v in effects.frame.get("horizon", [])) if h is not None})
    headlines = []
    for name in dict.fromkeys(effects.frame["outcome"].astype(str)) if "outcome" in effects.frame.columns else []:
        scale = scale_of(scales, name, labels)
        rows = att.loc[att["outcome"].astype(str) == name]
        cells: list[tuple[str, str, bool] | None] = []
        for horizon in horizons:
            row = rows.loc[rows["horizon"].map(num.as_float) == horizon]
            if row.empty:
                cells.append(None)
                continue
            r = row.iloc[0]
            if r["_hidden"]:
                cells.append(("suppressed", "", False))
                continue
            low, high = num.as_float(r.get("ci_low")), num.as_float(r.get("ci_high"))
            cells.append((scale.effect(r.get("estimate")), scale.interval(r.get("ci_low"), r.get("ci_high")),
                          low is not None and high is not None and (low > 0 or high < 0)))
        headlines.append(Headline(scale.outcome.label, scale.outcome.unit, cells))
    result = Summary(horizons, headlines)
    result.any_significant = any(cell and cell[2] for h in headlines for cell in h.cells)
    result.compared = compared(shown, labels)
    result.balance = balance_sentence(shown["balance"], labels)
    result.caveats = caveats(placebo, estimand, limitations)
    return result


def compared(shown: Mapping[str, ShownTable], labels: Labels) -> list[str]:
    """Who was compared with whom, in published counts."""
    counts = flow_counts(shown["cohort_flow"])
    sentences = []
    treated, matched = counts.get(TREATED_STEP), counts.get(MATCHED_STEP)
    controls = counts.get(CONTROLS_STEP)
    if treated:
        text = f"{num.count(treated)} clients were eligible at their {labels.treatment}"
        if matched is not None:
            text += f"; {num.count(matched)} of them ({num.share(matched, treated)}) were matched"
            if controls is not None:
                text += f" to {num.count(controls)} comparison persons"
            text += (": immigrants who, in the same quarter, were eligible but had not (yet) entered, "
                     "with a similar background")
        sentences.append(text + ".")
        reasons = [(step.removeprefix(NOT_MATCHED), n) for step, n in counts.items()
                   if step.startswith(NOT_MATCHED) and n > 0]
        if reasons:
            sentences.append("Not matched: " + "; ".join(f"{reason} ({num.count(n)})" for reason, n in reasons) + ".")
    follow = follow_up(shown["effects"])
    if follow:
        sentences.append("Clients with the outcome observed: " + ", ".join(
            f"{num.count(n)} after {h} quarters" for h, n in follow) +
            ". Later entrants are followed for a shorter time, so later horizons rest on fewer clients "
            "and have wider intervals.")
    return sentences


def follow_up(effects: ShownTable) -> list[tuple[int, float]]:
    """Clients behind the first outcome's effect at each horizon."""
    frame = effects.frame.loc[~effects.suppressed]
    if not {"outcome", "horizon", "n_treated"} <= set(frame.columns) or frame.empty:
        return []
    first = frame.loc[frame["outcome"].astype(str) == str(frame["outcome"].iloc[0])]
    if "method" in first.columns:
        first = first.loc[first["method"].astype(str) == "att"]
    result = []
    for horizon, n in zip(first["horizon"], first["n_treated"]):
        h, count = num.as_float(horizon), num.as_float(n)
        if h is not None and count is not None:
            result.append((int(h), count))
    return result


def balance_sentence(shown: ShownTable, labels: Labels) -> str | None:
    rows = balance_rows(shown, labels)
    if not rows:
        return None
    limits = limits_text(labels)
    failing = unbalanced(shown, labels)
    before = sum(1 for row in rows if any(num.as_float(row.before.get(f)) == 0.0 for f in ("smd_ok", "vr_ok")))
    counts = balance_counts(shown)
    clients, eligible = counts.get("before", (None, None))
    between = f" between the {num.count(clients)} clients and the {num.count(eligible)} eligible persons" \
        if clients is not None and eligible is not None else ""
    text = f"Before matching, {before} of the {len(rows)} covariates differed{between} beyond the limits{limits}"
    if failing:
        text += (f". After matching, {len(failing)} still did: {', '.join(failing)}; the effects may carry part "
                 "of those differences.")
    else:
        text += ". After matching, every covariate is within the limits."
    return text


def limits_text(labels: Labels) -> str:
    smd, ratio = labels.smd_limit, labels.variance_ratio
    parts = []
    if smd is not None:
        parts.append(f"standardised mean difference below {num.short(smd)}")
    if ratio is not None:
        parts.append(f"variance ratio between {num.short(ratio[0])} and {num.short(ratio[1])}")
    return f" ({' and '.join(parts)})" if parts else ""


def caveats(placebo: Sequence[Placebo], estimand: str | None, limitations: Sequence[str]) -> list[str]:
    items = []
    if estimand == MATCHED_ONLY:
        items.append("Fewer clients were matched than the study requires: the estimates are the effect on the "
                     "matched clients, not on all clients (ATT).")
    elif estimand == ATT:
        items.append("The estimates are the effect on the clients (ATT): enough of them were matched.")
    rejecting = [test.outcome.label for test in placebo if test.p_value is not None and test.p_value < 0.05]
    if placebo:
        if rejecting:
            items.append(f"Before entry, clients and comparison persons already differed in: "
                         f"{', '.join(rejecting)} (pre-trend test, p < 0.05); read those effects with care.")
        else:
            smallest = min((t.p_value for t in placebo if t.p_value is not None), default=None)
            items.append("Before entry, clients and comparison persons followed the same course in every outcome "
                         f"(pre-trend test{', smallest p = ' + num.p_value(smallest) if smallest is not None else ''}).")
    items.extend(limitations)
    return items
