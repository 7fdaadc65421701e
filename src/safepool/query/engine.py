"""Running an aggregate query in the pool and answering with the cells that pass the checks.

The engine never runs the analyst's text. From the checked query it builds its own SQL that
works out, per cell and per person, what each person contributes (rows counted, values
added), so that every cell can be checked on the persons behind it: a count, sum or mean is
only as safe as the fewest persons and the largest contributors behind it, however the query
was phrased. Those contributions stay in the engine; the answer carries the shown values.

Each aggregate column becomes a disclosure output, is checked, and failing cells are
suppressed (primary and secondary, with the table's totals). A group hidden in one column is
hidden in all of them, so a mean cannot be recomputed from a shown sum and count. A column
whose cells would reveal persons together with earlier answers of the same permit (two cells
apart, or any sum and difference of all shown cells) is withheld through the ledger. Every query, answered or refused, is audited with a digest of its text (never
the text: its literals could be identifiers), and every answer is recorded as an output.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sqlglot import exp

from safepool.disclosure.checks import check
from safepool.disclosure.findings import json_safe
from safepool.disclosure.margins import TOTAL
from safepool.disclosure.mitigation import SECONDARY, SHOWN, Mitigated, suppress
from safepool.disclosure.outputs import STATUS, DisclosureInputError, FrequencyTable, MagnitudeTable, QuantileTable
from safepool.disclosure.rules import DisclosureRules
from safepool.errors import SafepoolError, redact
from safepool.governance.audit import UnsafeAuditField
from safepool.governance.context import Governance
from safepool.governance.users import Actor
from safepool.pool.access import open_for_analysis
from safepool.query.ledger import ALL_ANSWERS, PAIRS, Ledger
from safepool.query.request import AggregateRequest
from safepool.query.sql_guard import AggregateQuery, Measure, QueryRefused, check_sql, parse_statement, refuse, \
    tables_of

MAX_GROUPS = 2  # totals and secondary suppression protect one- and two-way tables
RESERVED = frozenset({"value", "n", "count", "top", "abs_total", "quantile", STATUS})
DIFFERENCING = "suppressed (differencing with earlier answers)"
WITHHELD_NOTES = {
    PAIRS: "Withheld, because with an earlier answer of this permit its cells would single out fewer persons "
           "than the minimum frequency.",
    ALL_ANSWERS: "Withheld, because adding and subtracting its cells and the earlier answers of this permit "
                 "would give away the values of fewer persons than the minimum frequency.",
}
NO_VALUES = "no values"


@dataclass(frozen=True)
class QueryAnswer:
    """What the analyst sees: shown cells (suppressed ones blank), why, and the recorded outputs."""

    title: str
    table: pd.DataFrame  # group columns, one column per aggregate, "status"
    note: str
    output_ids: list[str]
    query_sha256: str


def run_query(pool_dir: Path, governance: Governance, actor: Actor, permit: str, query: str | AggregateRequest,
              rules: DisclosureRules | None = None, title: str | None = None, today: date | None = None
              ) -> QueryAnswer:
    """Check, run, disclosure-check and record one query under the analyst's permit."""
    sql = query.to_sql() if isinstance(query, AggregateRequest) else query
    digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
    title = title or (query.describe() if isinstance(query, AggregateRequest) else f"aggregate query {digest[:12]}")
    rules = rules or DisclosureRules.load(governance.root)
    try:
        statement = parse_statement(sql)
        con = open_for_analysis(pool_dir, governance, actor, permit, {t: [] for t in tables_of(statement)}, today)
        try:
            checked = check_sql(statement, _schema(con))
            _check_shape(checked)
            governance.permits.authorise_access(actor, permit, checked.columns, today=today)
            per_person, cells = _run(con, checked, max(rules.dominance_n, 2))
        finally:
            con.close()
        columns = _mitigate(checked, cells, rules, title)
    except SafepoolError as exc:
        reason = redact(str(exc))
        _audit_refusal(governance, actor, permit, reason, digest)
        raise exc if isinstance(exc, QueryRefused) else QueryRefused(reason) from None
    withheld = _difference_check(pool_dir, permit, checked, per_person, columns, rules)
    table, note = _answer(checked, columns, withheld)
    output_ids = _record(governance, actor, permit, columns, withheld, rules)
    shown = int((table[STATUS] == SHOWN).sum())
    governance.audit.append(actor=actor.name, role=actor.main_role, action="query", permit=permit,
                            target=",".join(t.name for t in checked.tables), rows=shown,
                            detail={"query_sha256": digest, "measures": [m.kind for m in checked.measures],
                                    "cells": len(table), "suppressed": len(table) - shown, "outputs": output_ids,
                                    "withheld": [{"column": j + 1, "measure": checked.measures[j].kind,
                                                  "check": f"differencing ({check})"}
                                                 for j, check in sorted(withheld.items())]})
    return QueryAnswer(title=title, table=table, note=note, output_ids=output_ids, query_sha256=digest)


def _audit_refusal(governance: Governance, actor: Actor, permit: str, reason: str, digest: str) -> None:
    """Log a refused query; a reason the log finds unsafe (it quotes the analyst's names) is left out."""
    entry = {"actor": actor.name, "role": actor.main_role, "action": "query_refused", "permit": permit,
             "outcome": "refused"}
    try:
        governance.audit.append(**entry, detail={"reason": reason, "query_sha256": digest})
    except UnsafeAuditField:
        governance.audit.append(**entry, detail={"reason": "refused (the reason quoted something that looked like "
                                                           "an identifier or a secret)", "query_sha256": digest})


# -- running in the pool ----------------------------------------------------------------------


def _schema(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = "
                       "current_database() AND schema_name = 'main' ORDER BY table_name, column_index").fetchall()
    schema: dict[str, list[str]] = {}
    for table, column in rows:
        schema.setdefault(table, []).append(column)
    return schema


def _check_shape(query: AggregateQuery) -> None:
    if len(query.keys) > MAX_GROUPS:
        raise refuse(f"at most {MAX_GROUPS} grouping columns are allowed (totals and secondary suppression "
                     "protect one- and two-way tables)")
    for name in [k.name for k in query.keys] + [m.name for m in query.measures if m.name.lower() == STATUS]:
        if name.lower() in RESERVED:
            raise refuse(f"the output name {name} is reserved; give the column another alias")


def _run(con: duckdb.DuckDBPyConnection, query: AggregateQuery, width: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-person contributions (person = hash of the pseudonym) and the cells computed from them."""
    keys = [f"k{i}" for i in range(len(query.keys))]
    outputs = [key.expression.copy().as_(name) for key, name in zip(query.keys, keys)]
    outputs.append(exp.func("hash", query.person).as_("person"))
    for j, measure in enumerate(query.measures):
        outputs.append(exp.Count(this=_argument(measure) or exp.Star()).as_(f"r{j}"))
        if measure.kind in ("sum", "mean"):
            outputs.append(exp.cast(exp.Sum(this=_argument(measure)), "DOUBLE").as_(f"c{j}"))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE per_person AS {query.rebuild(outputs)}")
        cells = con.sql(_cells_sql(query, keys, width)).df()
        quantiles = [(j, m) for j, m in enumerate(query.measures) if m.kind == "quantile"]
        if quantiles:
            outputs = [key.expression.copy().as_(name) for key, name in zip(query.keys, keys)] + [
                exp.PercentileCont(this=_argument(m), expression=exp.convert(m.quantile)).as_(f"v{j}")
                for j, m in quantiles]
            values = con.sql(query.rebuild(outputs)).df()
            cells = cells.merge(values, on=keys, how="left") if keys else pd.concat([cells, values], axis=1)
        per_person = con.sql("SELECT * FROM per_person").df()
    except duckdb.Error as exc:
        raise refuse(f"the pool could not run it: {type(exc).__name__}: {redact(str(exc)).splitlines()[0]}") from None
    return per_person, cells


def _argument(measure: Measure) -> exp.Expression | None:
    return measure.argument.copy() if measure.argument is not None else None


def _cells_sql(query: AggregateQuery, keys: list[str], width: int) -> str:
    """Per cell: persons behind each column, its value, and its largest contributions (kept inside)."""
    parts = list(keys)
    for j, measure in enumerate(query.measures):
        contribution = f"c{j}" if measure.kind in ("sum", "mean") else f"r{j}"
        parts.append(f"count(*) FILTER (WHERE r{j} > 0) AS n{j}")
        parts.append(f"max(abs({contribution}), {width}) AS top{j}")
        parts.append(f"coalesce(sum(abs({contribution})), 0) AS abs{j}")
        if measure.kind == "count":
            parts.append(f"coalesce(sum(r{j}), 0) AS v{j}")
        elif measure.kind == "sum":
            parts.append(f"coalesce(sum(c{j}), 0) AS v{j}")
        elif measure.kind == "mean":
            parts.append(f"sum(c{j}) / nullif(sum(r{j}), 0) AS v{j}")
            parts.append(f"coalesce(sum(c{j}), 0) AS s{j}")
            parts.append(f"coalesce(sum(r{j}), 0) AS w{j}")
    group = " GROUP BY ALL" if keys else ""
    return f"SELECT {', '.join(parts)} FROM per_person{group}"


# -- disclosure checks and suppression --------------------------------------------------------


@dataclass
class _Column:
    """One aggregate column as a checked, mitigated disclosure output."""

    measure: Measure
    mitigated: Mitigated | None  # None when no cell has any value
    empty: list[tuple]           # labels of cells without values (a mean or quantile of nothing)


def _mitigate(query: AggregateQuery, cells: pd.DataFrame, rules: DisclosureRules, title: str) -> list[_Column]:
    groups = [k.name for k in query.keys]
    cells = cells.rename(columns={f"k{i}": name for i, name in enumerate(groups)})
    columns = []
    for j, measure in enumerate(query.measures):
        has_value = cells[f"n{j}"] > 0 if measure.kind in ("mean", "quantile") else pd.Series(True, cells.index)
        empty = [_label(row, groups) for _, row in cells[~has_value].iterrows()]
        output = _output(f"{title}: {measure.name}", measure, cells[has_value], groups, j)
        if output is None:
            columns.append(_Column(measure, None, empty))
            continue
        try:
            mitigated = suppress(output, rules, margins=bool(groups))
        except DisclosureInputError as exc:
            raise refuse(f"the answer cannot be checked: {exc}") from None
        if measure.kind == "mean" and groups:
            mitigated = _row_weighted_totals(mitigated, cells[has_value], groups, j)
        columns.append(_Column(measure, mitigated, empty))
    _hide_everywhere(columns, groups, rules)
    return columns


def _output(title: str, measure: Measure, cells: pd.DataFrame, groups: list[str], j: int
            ) -> FrequencyTable | MagnitudeTable | QuantileTable | None:
    if cells.empty:
        return None
    labels = cells[groups].reset_index(drop=True)
    n = cells[f"n{j}"].astype(int).to_numpy()
    if measure.kind == "persons":
        return FrequencyTable(title, labels.assign(count=n), groups)
    if measure.kind == "quantile":
        return QuantileTable(title, labels.assign(quantile=measure.quantile, value=cells[f"v{j}"].to_numpy(), n=n),
                             groups)
    tops = [list(top) if isinstance(top, (list, np.ndarray)) else [] for top in cells[f"top{j}"]]
    return MagnitudeTable(title, labels.assign(value=cells[f"v{j}"].astype(float).to_numpy(), n=n, top=tops,
                                               abs_total=cells[f"abs{j}"].astype(float).to_numpy()),
                          groups, statistic="mean" if measure.kind == "mean" else "sum")


def _row_weighted_totals(mitigated: Mitigated, cells: pd.DataFrame, groups: list[str], j: int) -> Mitigated:
    """Totals of a mean column as the mean over their rows (the margins weigh cells by persons,
    which differs when persons have several rows); which cells are hidden does not change."""
    output = mitigated.output
    table = output.cells.copy()
    for index, row in table.iterrows():
        fixed = {g: row[g] for g in groups if str(row[g]) != TOTAL}
        if len(fixed) == len(groups) or np.isnan(row["value"]):
            continue
        inside = np.ones(len(cells), dtype=bool)
        for group, label in fixed.items():
            inside &= (cells[group] == label).to_numpy()
        rows = cells.loc[inside, f"w{j}"].sum()
        table.loc[index, "value"] = cells.loc[inside, f"s{j}"].sum() / rows if rows else np.nan
    return Mitigated(replace(output, cells=table), mitigated.method, mitigated.note, mitigated.report)


def _label(row: pd.Series, groups: list[str]) -> tuple:
    return tuple(json_safe(row[g]) for g in groups)


def _hide_everywhere(columns: list[_Column], groups: list[str], rules: DisclosureRules) -> None:
    """A group hidden in one column is hidden in every column, so columns cannot be combined."""
    hidden: set[tuple] = set()
    for column in columns:
        if column.mitigated is not None:
            cells = column.mitigated.output.cells
            hidden |= {_label(row, groups) for _, row in cells.iterrows() if row[STATUS] != SHOWN}
    for column in columns:
        if column.mitigated is not None:
            output = column.mitigated.output
            more = [row[STATUS] == SHOWN and _label(row, groups) in hidden for _, row in output.cells.iterrows()]
            if any(more):
                column.mitigated = _hidden(column.mitigated, np.array(more), SECONDARY, rules)


def _hidden(mitigated: Mitigated, rows: np.ndarray, status: str, rules: DisclosureRules) -> Mitigated:
    """The mitigated output with `rows` blanked as well, re-checked as it will be shown."""
    output = mitigated.output
    cells = output.cells.copy()
    blanked = ["count"] if isinstance(output, FrequencyTable) else ["value", "n"]
    for column in blanked:
        cells[column] = pd.to_numeric(cells[column], errors="coerce").astype(float).mask(rows)
    cells.loc[rows, STATUS] = status
    changed = replace(output, cells=cells)
    return Mitigated(changed, mitigated.method, mitigated.note, check(changed, rules))


# -- differencing with earlier answers --------------------------------------------------------


def _difference_check(pool_dir: Path, permit: str, query: AggregateQuery, per_person: pd.DataFrame,
                      columns: list[_Column], rules: DisclosureRules) -> dict[int, str]:
    """Columns withheld, with the ledger check they failed, because their shown cells, totals and
    sums of shown cells would single out fewer persons than the minimum frequency together with
    earlier answers; remembers the rest."""
    groups = [k.name for k in query.keys]
    per_person = per_person.rename(columns={f"k{i}": name for i, name in enumerate(groups)})
    labels = [tuple(json_safe(v) for v in row) for row in per_person[groups].itertuples(index=False)] \
        if groups else [()] * len(per_person)
    per_person = per_person.assign(label=labels).fillna({c: 0.0 for c in per_person.columns if c[0] == "c"})
    incoming, column_of = [], {}
    for j, column in enumerate(columns):
        if column.mitigated is None or column.measure.kind == "quantile":
            continue
        for components in _shown_sets(column.mitigated.output.cells, groups):
            chosen = per_person[per_person["label"].isin(components)]
            members = (chosen[f"r{j}"] > 0).groupby(chosen["person"]).any()
            for contribution in _contributions(column.measure, j, chosen):
                values = contribution.groupby(chosen["person"]).sum()[members]
                cell = len(column_of)
                column_of[cell] = j
                incoming.append(pd.DataFrame({"cell": cell, "person": values.index.to_numpy(dtype="uint64"),
                                              "value": values.to_numpy(dtype=float)}))
    if not incoming:
        return {}
    frame = pd.concat(incoming, ignore_index=True)
    with Ledger(pool_dir, permit) as ledger:
        return ledger.check(frame, column_of, rules.min_frequency)


def _contributions(measure: Measure, j: int, per_person: pd.DataFrame) -> list[pd.Series]:
    """What each person row adds to a cell of this column (a mean is a sum over a count)."""
    if measure.kind == "persons":
        return [(per_person[f"r{j}"] > 0).astype(float)]
    if measure.kind == "count":
        return [per_person[f"r{j}"].astype(float)]
    if measure.kind == "sum":
        return [per_person[f"c{j}"]]
    return [per_person[f"c{j}"], per_person[f"r{j}"].astype(float)]


def _shown_sets(cells: pd.DataFrame, groups: list[str]) -> list[set[tuple]]:
    """Sets of inner cells a reader can add up: each shown cell and total, and every line of shown cells."""
    inner_rows = [row for _, row in cells.iterrows() if not any(str(row[g]) == TOTAL for g in groups)]
    inner = [_label(row, groups) for row in inner_rows]
    shown_inner = [label for label, row in zip(inner, inner_rows) if row[STATUS] == SHOWN]
    sets: list[set[tuple]] = []
    for _, row in cells.iterrows():
        if row[STATUS] == SHOWN:
            fixed = {i: json_safe(row[g]) for i, g in enumerate(groups) if str(row[g]) != TOTAL}
            sets.append({label for label in inner if all(label[i] == v for i, v in fixed.items())})
    lines = [dict()] + [{i: value} for i in range(len(groups)) for value in {label[i] for label in shown_inner}]
    for fixed in lines if len(groups) > 0 else []:
        sets.append({label for label in shown_inner if all(label[i] == v for i, v in fixed.items())})
    unique: list[set[tuple]] = []
    for found in sets:
        if found and found not in unique:
            unique.append(found)
    return unique


# -- the answer and its record ----------------------------------------------------------------


def _answer(query: AggregateQuery, columns: list[_Column], withheld: dict[int, str]) -> tuple[pd.DataFrame, str]:
    """One row per cell (and total): group labels, each column's shown value, and a status."""
    groups = [k.name for k in query.keys]
    rows: dict[tuple, dict] = {}
    statuses: dict[tuple, list[str]] = {}
    notes: dict[str, list[str]] = {}  # note -> the columns it is about
    for j, column in enumerate(columns):
        name = column.measure.name
        for label in column.empty:
            rows.setdefault(label, dict(zip(groups, label)))[name] = np.nan
        if column.empty:
            notes.setdefault(f"{len(column.empty)} cell(s) have no values.", []).append(name)
        if column.mitigated is None:
            continue
        output = column.mitigated.output
        quantity = "count" if isinstance(output, FrequencyTable) else "value"
        for _, cell in output.cells.iterrows():
            label = _label(cell, groups)
            status = DIFFERENCING if j in withheld else cell[STATUS]
            rows.setdefault(label, dict(zip(groups, label)))[name] = cell[quantity] if status == SHOWN else np.nan
            statuses.setdefault(label, []).append(status)
        note = WITHHELD_NOTES[withheld[j]] if j in withheld else column.mitigated.note
        notes.setdefault(note, []).append(name)
    table = pd.DataFrame(list(rows.values()), columns=groups + [c.measure.name for c in columns])
    table[STATUS] = [next((s for s in statuses.get(label, []) if s != SHOWN), SHOWN) for label in rows]
    return table, " ".join(f"{', '.join(names)}: {note}" for note, names in notes.items())


def _record(governance: Governance, actor: Actor, permit: str, columns: list[_Column], withheld: dict[int, str],
            rules: DisclosureRules) -> list[str]:
    """Each column with something shown becomes a recorded output of the permit (source "query")."""
    ids = []
    for j, column in enumerate(columns):
        if column.mitigated is None or j in withheld:
            continue
        output = column.mitigated.output
        if not (output.cells[STATUS] == SHOWN).any():
            continue
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", column.measure.name).strip("-._") or "value"
        csv = output.public_table().to_csv(index=False).encode("utf-8")
        record = governance.outputs.record(actor, permit, output, {f"query-{name[:60]}.csv": csv}, source="query",
                                           rules=rules, mitigation_note=column.mitigated.note)
        ids.append(record.id)
    return ids
