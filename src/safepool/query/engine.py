"""Answering an aggregate question in the pool with the cells that pass the checks.

The question arrives as SQL or as a structured request and becomes an `AggregateModel` checked
against the pool's data dictionary and the workspace's policy (its cells are counted against the
budget before anything runs). The engine runs SQL compiled from the model (never the analyst's
text) under the policy's time and memory budget (and the ledger's checks under the policy's time for
them: `safepool.query.deadline`), works out per cell and person what each person
contributes, and checks every cell on the persons behind it. Failing cells are suppressed
(primary and secondary, with totals); a group hidden in one column is hidden in all. Cells that,
with the earlier answers of the permit, would single out fewer persons than the minimum
frequency (or that differ from one by no one, under another question) are hidden like cells of
too few persons: the ledger names them, suppression runs again with them hidden, and the
ledger checks what would be shown then, until it passes. So a reader cannot tell a cell hidden
for the earlier answers from one hidden for its own few persons, nor (for cells found by
comparison) by the steps the answer took: every row is compared first, hidden or not, and
suppression runs again whenever any cell is hidden, whatever hid it, before the full check.
Every query, answered, withheld or refused, is audited with a digest of its text (never the
text), and every answer is recorded as an output.
No message from the engine carries its own text: a failure names the step that failed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from safepool.disclosure import DisclosureRules, FrequencyTable, MagnitudeTable, Mitigated, QuantileTable, check
from safepool.disclosure.cells import DIFFERENCING
from safepool.disclosure.kinds import kind_of
from safepool.disclosure.kinds.base import TOTALS_NOTE, at_precision
from safepool.disclosure.mitigation import SECONDARY, SHOWN
from safepool.disclosure.findings import row_labels
from safepool.disclosure.margins import TOTAL
from safepool.disclosure.outputs import STATUS, DisclosureInputError
from safepool.disclosure.policy import workspace_policy
from safepool.errors import SafepoolError
from safepool.governance.audit import UnsafeAuditField
from safepool.governance.context import Governance
from safepool.governance.form import looks_like_identity_code
from safepool.governance.users import Actor
from safepool.pool.access import analysis_connection, dictionary_in, manifest as pool_manifest
from safepool.pool.ledger_keys import LedgerKeys, ledger_keys
from safepool.process_settings import collector_paused, python_strings, small_pages
from safepool.query.budget import Budget
from safepool.query.compile import Compiler, PersonRows
from safepool.query.deadline import Deadline, watched
from safepool.query.definitions import EntryDefinitions, entry_definitions, person_tables, splits_of
from safepool.query.grid_labels import numbered
from safepool.query.ledger import WORKSPACE_LEDGER, Ledger, query_outcome, withheld_entries
from safepool.query.ledger_carry_over import carry_over
from safepool.query.person_sums import EntryRows, cell_person_order, entry_rows
from safepool.query.person_periods import PersonPeriod, period_salt, person_period, person_rows, unit_keys
from safepool.query.pool_facts import PoolFacts
from safepool.query.model import AggregateModel, Dictionary, Measure, QueryRefused, VariableRef, \
    check_model, group_labels, refuse
from safepool.query.quantile_window import window_rows
from safepool.query.request import AggregateRequest
from safepool.query.sql_syntax import model_from_sql

SUPPRESSED = "suppressed"  # every cell an answer hides, whatever hid it (see `_as_answered`)


@dataclass(frozen=True)
class QueryAnswer:
    """What the analyst sees: shown cells (suppressed ones blank), why, and the recorded outputs."""

    title: str
    table: pd.DataFrame  # group columns, one column per measure, "status"
    note: str
    output_ids: list[str]
    query_sha256: str


def run_query(pool_dir: Path, governance: Governance, actor: Actor, permit: str, query: str | AggregateRequest,
              title: str | None = None, today: date | None = None) -> QueryAnswer:
    """Check, run, disclosure-check and record one query under the analyst's permit and the workspace
    policy (with the cycle collector paused: its full collections walked every object of the
    process several times per query, about a tenth of a query's time; NumPy's advice of huge pages
    off, and pandas' text kept as Python strings: see `safepool.process_settings`)."""
    with collector_paused(), small_pages(), python_strings():
        return _answered(pool_dir, governance, actor, permit, query, title, today)


def _answered(pool_dir: Path, governance: Governance, actor: Actor, permit: str, query: str | AggregateRequest,
              title: str | None, today: date | None) -> QueryAnswer:
    text = query if isinstance(query, str) else query.model_dump_json()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        policy = answer_rules(workspace_policy(governance))
        deadline = Deadline(policy.max_seconds)
        governance.permits.authorise_access(actor, permit, today=today)
        Ledger.prepare(pool_dir, WORKSPACE_LEDGER)  # made while the pool is opened and asked
        built = pool_manifest(pool_dir, permit)
        dictionary, facts = dictionary_in(built, permit), PoolFacts(built, permit)
        persons = ledger_keys(pool_dir, permit)
        model = model_from_sql(query, dictionary) if isinstance(query, str) else query.model(dictionary)
        model = check_model(model, dictionary, policy.max_cells)
        title = _title(title or (query.describe() if isinstance(query, AggregateRequest) else model.describe()))
        with analysis_connection(pool_dir, governance, actor, permit, model.variables(), today,
                                 memory_limit_mb=policy.max_memory_mb) as con, Budget(con, deadline) as budget:
            unit = person_period(model, dictionary, facts.one_row_per_person, facts.one_row_per_period)
            columns = _run(budget, model, dictionary, policy, persons, unit, person_rows(
                model, dictionary, facts.one_row_per_person, facts.one_row_per_period))
            _mitigate(model, columns, policy, title)
            tables = person_tables(model, facts.holds_every_person)
            entries = partial(_incoming, model, dictionary, columns, tables, facts.outside)
            every_row = entries(every_row=True)
    except SafepoolError as exc:
        reason = str(exc) if isinstance(exc, QueryRefused) else f"query refused: {exc}"
        _audit_refusal(governance, actor, permit, reason, digest)
        raise exc if isinstance(exc, QueryRefused) else QueryRefused(reason) from None
    try:
        with watched(Deadline(policy.max_check_seconds)), \
                Ledger.open(pool_dir, governance, actor, WORKSPACE_LEDGER, permit=permit) as ledger:
            carry_over(ledger, pool_dir, governance, actor, permit, policy.min_frequency)
            hidden = _hidden_for_the_ledger(ledger, model, columns, policy, title, entries, every_row)
            table, note = _answer(model, dictionary, columns, policy)
            output_ids = _record(governance, actor, permit, title, columns)
            shown = int(table[STATUS].map(visible).sum())
            governance.audit.append(
                actor=actor.name, role=actor.main_role, action="query", permit=permit,
                outcome=query_outcome(hidden), target=",".join(model.tables), rows=shown,
                detail={"query_sha256": digest, "measures": [m.kind for m in model.measures], "cells": len(table),
                        "suppressed": len(table) - shown, "outputs": output_ids,
                        "withheld": withheld_entries([(j, check) for (j, _), check in hidden.items()],
                                                     [m.kind for m in model.measures]),
                        **ledger.state()})
    except QueryRefused as exc:  # past its time in the ledger's checks: nothing of it was remembered
        _audit_refusal(governance, actor, permit, str(exc), digest)
        raise
    return QueryAnswer(title=title, table=table, note=note, output_ids=output_ids, query_sha256=digest)


def _hidden_for_the_ledger(ledger: Ledger, model: AggregateModel, columns: list[_Column], policy: DisclosureRules,
                           title: str, entries: Callable[..., _Entries], every_row: _Entries
                           ) -> dict[tuple[int, tuple], str]:
    """The cells hidden for the earlier answers ((column, labels) -> the check that found them), in
    steps that do not depend on what the ledger finds, so that the time an answer takes does not
    tell a cell hidden for the earlier answers from one hidden for its own few persons:
    - every row of the answer (`every_row`: hidden or not) is compared with the remembered cells
      (a question asked again whose rows were all shown before is answered as it was),
      and those close to one are hidden as small cells are (a row that fails on its own stays
      hidden as it was; one hidden only to protect others is hidden for itself, so that the next
      suppression cannot show it);
    - suppression runs again whenever any cell is hidden (for its few persons or for the earlier
      answers alike; with none hidden it would give what it gave, and what is shown is every row),
      and the ledger checks what would be shown then in full; what it finds is hidden, and so on
      until it finds nothing and remembers the answer. Each round hides at least one more cell, so
      it ends.
    `entries` makes the answer's entries again (the facts of the pool they need were all asked for
    the first: they depend on the model alone)."""
    groups = [g.name for g in model.groups]
    hidden: dict[tuple[int, tuple], str] = {}
    found, asked_again = ledger.pairs(every_row.frame, every_row.column_of, policy.min_frequency,
                                      sums=every_row.sums, definitions=every_row.definitions)
    if asked_again:  # every row shown before under this definition: the reader knows the answer
        return {}
    more = {(j, labels): check for (j, labels), check in _to_hide(found, every_row, columns).items()
            if labels not in columns[j].failing}  # hidden for its own few persons, not for the ledger
    while True:
        hidden.update(more)
        if hidden or not _every_cell_shown(columns):
            _mitigate(model, columns, policy, title, {labels for _, labels in hidden})
            incoming = entries()
        else:  # nothing hidden at all: suppression would give what it gave, and every row is what is shown
            incoming = every_row
        found = ledger.check(incoming.frame, incoming.column_of, policy.min_frequency, sums=incoming.sums,
                             definitions=incoming.definitions, persons=incoming.persons)
        if not found:
            return hidden
        more = _to_hide(found, incoming, columns)
        if more.keys() <= hidden.keys():  # cannot happen (a cell found is shown): hide the whole answer
            check = next(iter(found.values()))
            more = {(j, label): check for j, column in enumerate(columns) if column.mitigated is not None
                    for label in row_labels(column.mitigated.output.cells, groups)}


def answer_rules(policy: DisclosureRules) -> DisclosureRules:
    """The workspace's policy as answers apply it: a cell no one is in is a finding like a cell of too
    few, whatever the policy says of zeros in other outputs. The analyst's filters can leave one
    known person in scope, and then a zero would say the person is not in that cell."""
    return policy.model_copy(update={"zeros": "suppress"})


def _title(text: str) -> str:
    """A title is a label too: plain words of the request, never longer than a line, never an
    identity code."""
    if looks_like_identity_code(text):
        raise refuse("the title looks like it holds a personal identity code")
    return re.sub(r"[^\w .,:()'+%/-]+", " ", text).strip()[:120] or "aggregate query"


def _audit_refusal(governance: Governance, actor: Actor, permit: str, reason: str, digest: str) -> None:
    """Log a refused query; a reason the log finds unsafe (a name in it looks like an identity code)
    is replaced by a fixed one."""
    entry = {"actor": actor.name, "role": actor.main_role, "action": "query_refused", "permit": permit,
             "outcome": "refused"}
    try:
        governance.audit.append(**entry, detail={"reason": reason, "query_sha256": digest})
    except UnsafeAuditField:
        governance.audit.append(**entry, detail={"reason": "query refused (the reason named something that looked "
                                                           "like an identity code)", "query_sha256": digest})


# -- running in the pool ----------------------------------------------------------------------


@dataclass
class _Column:
    """One measure: its cells and the checked, mitigated output; each person's contribution to each
    cell (`rows`: cell, person, value, rows) stays in the engine."""

    measure: Measure
    cells: pd.DataFrame                # cell number, g0.. labels, n, s (sum), w (rows), top, abs_total
    rows: dict[str, np.ndarray]
    mitigated: Mitigated | None = None
    failing: frozenset[tuple] = frozenset()  # labels of the rows that fail the checks on their own
    period: np.ndarray | None = None  # the code of the period whose rows its amounts add up, if one


def _run(budget: Budget, model: AggregateModel, dictionary: Dictionary, policy: DisclosureRules,
         persons: LedgerKeys, unit: PersonPeriod | None, handed: PersonRows) -> list[_Column]:
    """Every measure's cells, computed under the policy's budget. The pool adds up each person's rows
    per group of keys and hands them over once; the cells are added up from them here, so that the
    persons behind the cells (which the ledger needs, by their ledger keys) are not read from the
    pool a second time (`handed`: how, see `person_periods.person_rows`). A measure that adds up
    `unit`'s rows carries its period's code."""
    compiler = Compiler(model, dictionary)
    grid = compiler.grid()
    width = max(policy.dominance_n, 2)
    summed = in_cells(budget.arrays("add up each person's rows", compiler.per_person(handed)), compiler.keys) \
        if any(m.kind != "quantile" for m in model.measures) else {}
    columns = []
    for j, measure in enumerate(model.measures):
        step = f"compute {measure.describe()}"
        if measure.kind == "quantile":
            found = window_rows(in_cells(budget.arrays(step, compiler.quantile_values(j)), compiler.keys),
                                compiler.keys, measure.quantile or 0.5, policy.min_frequency)
            value, rows = found["c"], found["r"]
        else:
            found = summed
            rows = found["n_rows"] if measure.kind in ("persons", "rows") else found[f"r{j}"]
            value = {"persons": np.ones(len(rows)), "rows": rows}.get(measure.kind, found.get(f"c{j}"))
        rows = np.asarray(rows, dtype=np.float64)
        with_rows = rows > 0
        taken = int(with_rows.sum())
        kept = slice(None) if taken == len(rows) else with_rows  # (every person's row: none copied)
        labels, cell = numbered(budget, step, compiler, grid, [np.asarray(found[key], dtype=np.int64)[kept]
                                                                for key in compiler.keys], taken)
        # in the order of cell and person once, for the cells' largest values and the ledger's entries
        order, cell, distinct, rank = cell_person_order(cell, persons.ordered(np.asarray(found["person"])[kept]))
        contributions = {"cell": cell, "person": distinct[rank], "distinct": distinct, "rank": rank,
                         "value": np.asarray(value, dtype=np.float64)[kept][order], "rows": rows[kept][order]}
        period = period_salt(unit.table, unit.grain, unit.period) if unit is not None and unit.takes(
            measure.kind, measure.variable.table if measure.variable else None) else None
        columns.append(_Column(measure, _cells(labels, contributions, width), contributions, period=period))
    return columns


def in_cells(found: dict[str, np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
    """The rows the pool handed over that fall in a cell: a row of no cell (a missing label, a code
    not in the code list, a date outside the years: a key below 0) is left out here rather than by
    the statement (see `Compiler.per_person`). Columns with missing values stay masked arrays."""
    if not keys:
        return found
    inside = np.logical_and.reduce([np.asarray(found[key]) >= 0 for key in keys])
    return found if inside.all() else {name: column[inside] for name, column in found.items()}


def _cells(labels: pd.DataFrame, rows: dict[str, np.ndarray], width: int) -> pd.DataFrame:
    """Per cell (`labels` in the order of their numbers; `rows` in the order of their cells): its
    labels, persons, value, rows, the `width` largest contributions and the sum of their sizes. The
    rows of a cell are one run, so each sum is a reduction of its run (a twentieth of the time of
    `np.bincount` with weights), and a cell whose contributions are all of one size (a count's)
    needs no partition of them."""
    cell, size = rows["cell"], np.abs(rows["value"])
    count = len(labels)
    persons = np.bincount(cell, minlength=count).astype(np.int64)
    starts = np.r_[0, np.cumsum(persons)[:-1]][persons > 0]

    def per_cell(reduce: np.ufunc, values: np.ndarray) -> np.ndarray:
        found = np.zeros(count)
        if len(starts):
            found[persons > 0] = reduce.reduceat(values, starts)
        return found

    largest, smallest = per_cell(np.maximum, size), per_cell(np.minimum, size)
    bounds = np.r_[0, np.cumsum(persons)]
    top = []
    for c in range(count):
        if largest[c] == smallest[c]:
            top.append([float(largest[c])] * min(int(persons[c]), width))
            continue
        sizes = size[bounds[c]:bounds[c + 1]]
        kept = -np.partition(-sizes, width - 1)[:width] if len(sizes) > width else sizes
        top.append(sorted(kept.tolist(), reverse=True))
    return pd.DataFrame({"cell": np.arange(count, dtype=np.int64), **{name: labels[name] for name in labels.columns},
                         "n": persons, "s": per_cell(np.add, rows["value"]), "w": per_cell(np.add, rows["rows"]),
                         "top": top, "abs_total": per_cell(np.add, size)}, index=labels.index)


# -- disclosure checks and suppression --------------------------------------------------------


def _mitigate(model: AggregateModel, columns: list[_Column], policy: DisclosureRules, title: str,
              hide: Collection[tuple] = ()) -> None:
    """Each column's checked output, its failing cells and the cells labelled as in `hide` (cells the
    ledger found) suppressed with what protects them, a group hidden in one column hidden in all."""
    groups = [g.name for g in model.groups]
    for column in columns:
        cells = column.cells.rename(columns={f"g{i}": name for i, name in enumerate(groups)})
        output = _output(f"{title}: {column.measure.name}", column.measure, cells, groups)
        if output is None:
            continue
        additive = _additive(column.measure, groups)
        try:
            mitigated = kind_of(output).suppress(output, policy, additive, hide)
        except DisclosureInputError:
            raise refuse(f"the answer of {column.measure.name} cannot be checked") from None
        column.failing = _failing(mitigated.output.cells, groups)
        if column.measure.kind == "mean" and groups:
            mitigated = _row_weighted_totals(mitigated, cells, groups)
        if column.measure.kind == "share":
            mitigated = _as_shares(mitigated, groups)
        column.mitigated = mitigated
    _hide_everywhere(columns, groups, policy)
    for column in columns:
        if column.mitigated is not None:
            if policy.round_counts:  # the policy rounds every count: rounded after suppression, as published
                column.mitigated = kind_of(column.mitigated.output).rounded(column.mitigated, policy)
            column.mitigated = _as_answered(column.mitigated, column.measure, _additive(column.measure, groups), policy)


def _failing(cells: pd.DataFrame, groups: list[str]) -> frozenset[tuple]:
    """The labels of the rows suppressed for a rule they fail themselves (not to protect others, not
    only for the ledger, whose mark a failing row never gets)."""
    return frozenset(label for label, status in zip(row_labels(cells, groups), cells[STATUS])
                     if status not in (SHOWN, SECONDARY) and DIFFERENCING not in str(status))


def _additive(measure: Measure, groups: list[str]) -> bool:
    """Whether a column's table gets totals (and secondary suppression): grouped, and not quantiles."""
    return measure.kind != "quantile" and bool(groups)


def _as_answered(mitigated: Mitigated, measure: Measure, additive: bool, policy: DisclosureRules) -> Mitigated:
    """The output as the answer shows it and the register records it: every cell not shown has the one
    status "suppressed", and the note says how many cells are, never why. A rule named (a small or
    empty cell: 0 to 4 persons; dominance: at least 5) or "secondary" (a cell that passed: at least 5)
    tells how many persons a cell has, and with the totals shown, whether the one person a question
    leaves in scope is in a cell (a review read persons' income bins so)."""
    cells = mitigated.output.cells.copy()
    hidden = ~cells[STATUS].map(visible).to_numpy(dtype=bool)
    cells.loc[hidden, STATUS] = SUPPRESSED
    parts = [f"{int(hidden.sum())} of {len(cells)} cell(s) suppressed: cells that fail the frequency check (an "
             "empty cell fails it too), the dominance or the p% check, cells that with each other or with "
             "earlier answers (of any permit) would single out fewer persons than the minimum frequency, and "
             "cells that would let one of those be worked out." if hidden.any() else "No cell is suppressed."]
    if additive:
        parts.append(TOTALS_NOTE)
    if policy.round_counts and kind_of(mitigated.output).count_columns(mitigated.output):
        parts.append(f"Counts are rounded to multiples of {policy.rounding_base} (halves up).")
    if measure.kind == "share":
        parts.append("Shares are percentages of the grand total.")
    return Mitigated(replace(mitigated.output, cells=cells), mitigated.method, " ".join(parts), mitigated.report,
                     mitigated.rules)


def visible(status: str) -> bool:
    """Whether a cell's value is shown: as it is, or rounded by the policy."""
    return status == SHOWN or str(status).startswith("rounded")


def _output(title: str, measure: Measure, cells: pd.DataFrame, groups: list[str]
            ) -> FrequencyTable | MagnitudeTable | QuantileTable | None:
    if cells.empty:
        return None
    labels = cells[groups].reset_index(drop=True)
    n = cells["n"].astype(int).to_numpy()
    if measure.kind == "persons":
        return FrequencyTable(title, labels.assign(count=n), groups)
    tops = [list(top) if isinstance(top, (list, np.ndarray)) else [] for top in cells["top"]]
    contributors = dict(n=n, top=tops, abs_total=cells["abs_total"].astype(float).to_numpy())
    s, w = cells["s"].to_numpy(dtype=float), cells["w"].to_numpy(dtype=float)
    mean = np.divide(s, w, out=np.zeros(len(s)), where=w > 0)  # a cell no one is in: 0, never shown
    # the persons behind a cell are checked but shown only by a count of persons, as the answer shows them:
    # the ledger knows what an answer shows, and a mean's persons are not its rows (`PersonsColumn`)
    if measure.kind == "quantile":
        return QuantileTable(title, labels.assign(quantile=measure.quantile, value=mean, **contributors), groups,
                             persons_shown=False)
    value = mean if measure.kind == "mean" else s
    return MagnitudeTable(title, labels.assign(value=value, **contributors), groups,
                          statistic="mean" if measure.kind == "mean" else "sum", persons_shown=False)


def _row_weighted_totals(mitigated: Mitigated, cells: pd.DataFrame, groups: list[str]) -> Mitigated:
    """Totals of a mean column as the mean over their rows (the margins weigh cells by persons,
    which differs when persons have several rows); which cells are hidden does not change."""
    output = mitigated.output
    table = output.cells.copy()
    for index, labels, value in zip(table.index, table[groups].itertuples(index=False, name=None), table["value"]):
        fixed = {g: label for g, label in zip(groups, labels) if str(label) != TOTAL}
        if len(fixed) == len(groups) or np.isnan(value):
            continue
        inside = np.ones(len(cells), dtype=bool)
        for group, label in fixed.items():
            inside &= (cells[group] == label).to_numpy()
        rows = cells.loc[inside, "w"].sum()
        table.loc[index, "value"] = cells.loc[inside, "s"].sum() / rows if rows else np.nan
    return Mitigated(replace(output, cells=table), mitigated.method, mitigated.note, mitigated.report)


def _as_shares(mitigated: Mitigated, groups: list[str]) -> Mitigated:
    """A checked sum column as percentages of its grand total; a share is the sum divided by a shown
    constant, so the sum's suppression protects it. Without a grand total to divide by (hidden, or
    zero) no share can be shown: every cell is hidden with it, never shown blank (and a sum shown
    beside the shares would give the hidden total away). The note says so (`_as_answered`)."""
    output = mitigated.output
    table = output.cells.copy()
    grand = table["value"].iloc[-1] if groups else table["value"].iloc[0]
    if grand and np.isfinite(grand):
        table["value"] = 100.0 * table["value"] / grand
    else:
        shown = _shown(table)
        table["value"] = np.nan
        table.loc[shown, STATUS] = SECONDARY
    return Mitigated(replace(output, cells=table), mitigated.method, mitigated.note, mitigated.report)


def _every_cell_shown(columns: list[_Column]) -> bool:
    """Whether no cell of any column's checked output is hidden."""
    return all(column.mitigated is None or bool(_shown(column.mitigated.output.cells).all()) for column in columns)


def _shown(cells: pd.DataFrame) -> np.ndarray:
    """Whether each row's value is shown."""
    return cells[STATUS].map(visible).to_numpy(dtype=bool)


def _hide_everywhere(columns: list[_Column], groups: list[str], policy: DisclosureRules) -> None:
    """A group hidden in one column is hidden in every column, so columns cannot be combined."""
    hidden: set[tuple] = set()
    for column in columns:
        if column.mitigated is not None:
            cells = column.mitigated.output.cells
            hidden |= {label for label, shown in zip(row_labels(cells, groups), _shown(cells)) if not shown}
    for column in columns:
        if column.mitigated is not None:
            output = column.mitigated.output
            more = [shown and label in hidden for label, shown in zip(row_labels(output.cells, groups), _shown(output.cells))]
            if any(more):
                column.mitigated = _hidden(column.mitigated, np.array(more), policy)


def _hidden(mitigated: Mitigated, rows: np.ndarray, policy: DisclosureRules) -> Mitigated:
    """The mitigated output with `rows` blanked as well, re-checked as it will be shown."""
    output = mitigated.output
    cells = output.cells.copy()
    blanked = ["count"] if isinstance(output, FrequencyTable) else ["value", "n"]
    for column in blanked:
        cells[column] = pd.to_numeric(cells[column], errors="coerce").astype(float).mask(rows)
    cells.loc[rows, STATUS] = SECONDARY
    changed = replace(output, cells=cells)
    return Mitigated(changed, mitigated.method, mitigated.note, check(changed, policy))


# -- differencing with earlier answers --------------------------------------------------------


@dataclass(frozen=True)
class _Entries:
    """What an answer would show, as the ledger takes it (see `_incoming`), and each entry's inner
    cells (labels), by which what the ledger finds is hidden."""

    frame: pd.DataFrame  # cell (the entry), person, value
    column_of: dict[int, int]
    sums: dict[int, list[int]]
    definitions: EntryDefinitions
    members: dict[int, frozenset[tuple]]
    persons: np.ndarray | None = None  # the distinct persons the frame's column rank points into, if it has one


def _incoming(model: AggregateModel, dictionary: Dictionary, columns: list[_Column], tables: list[str],
              outside: Callable[[VariableRef], frozenset[str]], every_row: bool = False) -> _Entries:
    """For the ledger: each shown cell, total and sum of shown cells a reader can add up (a mean or
    quantile is a sum over a count, so both enter), the column of each, and which of them are sums
    of shown cells that are entries themselves. Each person's contribution comes for every entry but
    those sums: the ledger makes a sum's rows from its cells' when it needs them (they are the
    persons' sums over its cells, made by the same `entry_rows`), which is most of the rows of a
    table with margins. Rows come sorted by entry and person (the ledger's own order). Each entry
    comes with its definition, and the ways it splits into other entries (`safepool.query.definitions`).
    `every_row`: each row of the answer, shown or not (for the first comparison)."""
    groups = [g.name for g in model.groups]
    pieces: list[tuple[EntryRows, np.ndarray | None]] = []  # each entry's rows, the persons they are ranked among
    column_of: dict[int, int] = {}
    sums: dict[int, list[int]] = {}
    definitions: dict[int, str] = {}
    splits: dict[int, list[list[int]]] = {}
    members_of: dict[int, frozenset[tuple]] = {}
    for j, column in enumerate(columns):
        if column.mitigated is None:
            continue
        position = {label: int(number) for label, number in
                    zip(row_labels(column.cells, [f"g{i}" for i in range(len(groups))]), column.cells["cell"])}
        parts = ["value", "rows"] if column.measure.kind in ("mean", "quantile") else ["value"]
        alone: dict[tuple[int, int], int] = {}  # (part, cell number) -> the entry of that cell alone
        added: list[tuple[int, int, list[int]]] = []
        entries: list[tuple[int, int, list[int]]] = []  # (entry, part, cell numbers)
        labelled: list[dict[int, frozenset[tuple]]] = [{} for _ in parts]  # per part: entry -> its inner cells
        shown_sets = _shown_sets(column.mitigated.output.cells, groups, column.measure.kind == "quantile", every_row)
        defined = entry_definitions(model, dictionary, tables, outside, column.measure, shown_sets)
        for members, definition in zip(shown_sets, defined):
            numbers = sorted({position[label] for label in members if label in position})
            for part in range(len(parts)):
                entry = len(column_of)
                column_of[entry] = j
                definitions[entry] = definition
                labelled[part][entry] = members_of[entry] = frozenset(members)
                entries.append((entry, part, numbers))
                if len(numbers) == 1:
                    alone[(part, numbers[0])] = entry
                else:
                    added.append((entry, part, numbers))
        for entry, part, numbers in added:
            if numbers and all((part, number) in alone for number in numbers):
                sums[entry] = [alone[(part, number)] for number in numbers]
        pieces += _entry_rows(column, [entry for entry in entries if entry[0] not in sums])
        for of_part in labelled:
            splits.update(splits_of(of_part))
    frame = {name: np.concatenate([getattr(rows, field) for rows, _ in pieces]) if pieces else empty
             for name, field, empty in (("cell", "entry", np.empty(0, np.int64)),
                                        ("person", "person", np.empty(0, np.uint64)),
                                        ("value", "total", np.empty(0)))}
    among = {id(persons): persons for _, persons in pieces}
    ranked = next(iter(among.values())) if len(among) == 1 else None
    if ranked is not None:  # every row ranked among one array of persons: the ledger's look-up needs no search
        frame["rank"] = np.concatenate([rows.rank for rows, _ in pieces])
    return _Entries(pd.DataFrame(frame, copy=False), column_of, sums, EntryDefinitions(definitions, splits),
                    members_of, ranked)


def _entry_rows(column: _Column, entries: list[tuple[int, int, list[int]]]
                ) -> list[tuple[EntryRows, np.ndarray | None]]:
    """The rows of a column's entries, in the order of the entries, each with the distinct persons its
    ranks point into (None: among no array the ledger knows): persons by their ledger keys, but in
    the amounts of a measure that adds up one period's rows of a register, each person's rows in
    that period (`safepool.query.person_periods`); a mean's persons counted stay persons."""
    rows = column.rows
    if column.period is None:
        return [(found, rows["distinct"]) for found in entry_rows(rows, entries)]
    units = {"cell": rows["cell"], "person": unit_keys(rows["person"], column.period), "value": rows["value"],
             "rows": rows["rows"]}
    made = dict(zip([entry[0] for entry in entries if entry[1] == 0],
                    [(found, None) for found in entry_rows(units, [entry for entry in entries if entry[1] == 0])]))
    made |= zip([entry[0] for entry in entries if entry[1] == 1],
                [(found, rows["distinct"]) for found in entry_rows(rows, [entry for entry in entries if entry[1] == 1])])
    return [made[entry[0]] for entry in entries]


def _covered(labels: list[tuple]) -> list[set[tuple]]:
    """The inner cells (labels without a total) that each row of a table (labels) adds up."""
    is_total = [[str(v) == TOTAL for v in label] for label in labels]
    inner = [label for label, total in zip(labels, is_total) if not any(total)]
    return [{cell for cell in inner if all(t or cell[i] == v for i, (v, t) in enumerate(zip(label, total)))}
            for label, total in zip(labels, is_total)]


def _shown_sets(cells: pd.DataFrame, groups: list[str], single: bool, every_row: bool = False) -> list[set[tuple]]:
    """Sets of inner cells a reader can add up: each shown cell and total, and every line of shown
    cells (`single`: quantiles do not add up, so each shown cell alone; `every_row`: as if every row
    were shown)."""
    labels = row_labels(cells, groups)
    shown = np.ones(len(labels), dtype=bool) if every_row else _shown(cells)
    shown_inner = [label for label, seen in zip(labels, shown) if seen and not any(str(v) == TOTAL for v in label)]
    if single:
        return [{label} for label in shown_inner]
    sets = [covered for covered, seen in zip(_covered(labels), shown) if seen]
    lines = [dict()] + [{i: value} for i in range(len(groups)) for value in {label[i] for label in shown_inner}]
    for fixed in lines if groups else []:
        sets.append({label for label in shown_inner if all(label[i] == v for i, v in fixed.items())})
    unique: list[set[tuple]] = []
    for found in sets:
        if found and found not in unique:
            unique.append(found)
    return unique


def _to_hide(found: dict[int, str], entries: _Entries, columns: list[_Column]) -> dict[tuple[int, tuple], str]:
    """The cells to hide for the entries the ledger found, (column, labels) -> the check: the row of
    the column's table that adds up the entry's inner cells, or for a line of shown cells that no row
    adds up, its cell of the fewest persons (the first in the table's order among equals)."""
    hide: dict[tuple[int, tuple], str] = {}
    for entry, check in found.items():
        j, members = entries.column_of[entry], entries.members[entry]
        output = columns[j].mitigated.output  # type: ignore[union-attr]  # an entry's column has an output
        labels = row_labels(output.cells, list(output.groups))
        rows = [label for label, covered in zip(labels, _covered(labels)) if covered == members]
        if not rows:
            persons = dict(zip(labels, output.cells["count" if isinstance(output, FrequencyTable) else "n"]))
            place = {label: i for i, label in enumerate(labels)}
            rows = sorted(members, key=lambda label: (persons.get(label, 0), place.get(label, len(place))))
        hide[(j, rows[0])] = check
    return hide


# -- the answer and its record ----------------------------------------------------------------


def _answer(model: AggregateModel, dictionary: Dictionary, columns: list[_Column], policy: DisclosureRules
            ) -> tuple[pd.DataFrame, str]:
    """One row per cell (and total) in the dictionary's order: labels, each column's shown value (at
    the precision the policy allows, as in the recorded files), a status."""
    groups = [g.name for g in model.groups]
    rows: dict[tuple, dict] = {}
    statuses: dict[tuple, list[str]] = {}
    notes: dict[str, list[str]] = {}  # note -> the columns it is about
    for j, column in enumerate(columns):
        name = column.measure.name
        if column.mitigated is None:
            continue
        output = column.mitigated.output
        quantity = "count" if isinstance(output, FrequencyTable) else "value"
        shown = at_precision(output.cells[quantity], 0 if quantity == "count" else policy.decimals)
        for label, value, status in zip(row_labels(output.cells, groups), shown, output.cells[STATUS]):
            rows.setdefault(label, dict(zip(groups, label)))[name] = value if visible(status) else np.nan
            statuses.setdefault(label, []).append((name, status))
        note = column.mitigated.note
        if note:
            notes.setdefault(note, []).append(name)
    order = [{label: i for i, label in enumerate(group_labels(g, dictionary[g.variable.table][g.variable.name]))}
             for g in model.groups]
    labels = sorted(rows, key=lambda label: [o.get(v, len(o)) for o, v in zip(order, label)])
    table = pd.DataFrame([rows[label] for label in labels], columns=groups + [c.measure.name for c in columns])
    table[STATUS] = [_row_status(statuses.get(label, [])) for label in labels]
    return table, " ".join(f"{', '.join(names)}: {note}" for note, names in notes.items())


def _row_status(statuses: list[tuple[str, str]]) -> str:
    """A row's status: its columns' one status when they agree, else the columns not shown, each
    with its own ("q: suppressed"), so that a shown value beside a hidden one is not called
    suppressed."""
    hidden = [(name, status) for name, status in statuses if status != SHOWN]
    if not hidden:
        return SHOWN
    if len(hidden) == len(statuses) and len({status for _, status in hidden}) == 1:
        return hidden[0][1]
    return "; ".join(f"{name}: {status}" for name, status in hidden)


def _record(governance: Governance, actor: Actor, permit: str, title: str, columns: list[_Column]) -> list[str]:
    """Each column with something shown becomes a recorded output of the permit (source "query")."""
    ids = []
    for column in columns:
        if column.mitigated is None:
            continue
        output = column.mitigated.output
        if not output.cells[STATUS].map(visible).any():
            continue
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", column.measure.name).strip("-._") or "value"
        record = governance.outputs.record(actor, permit, output, source="query", name=f"query-{name[:60]}",
                                           mitigation_note=column.mitigated.note or None)
        ids.append(record.id)
    return ids
