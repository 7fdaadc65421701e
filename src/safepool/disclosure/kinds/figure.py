"""Figures: a chart (Vega-Lite) drawn from a table; it is disclosive exactly when the table is.

A figure is checked, mitigated, kept and compared for differencing through its table. Its files
are the table's shown cells as CSV and the chart's Vega-Lite JSON whose data are those same
cells: whatever data the given spec carried (inline values, named datasets, data of a layer)
is left out, so the chart can only draw what the checks let through.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Mapping

import pandas as pd

from safepool.disclosure.cells import DisclosureInputError
from safepool.disclosure.findings import CheckReport, Finding, invalid, json_safe, report_of
from safepool.disclosure.kinds.base import (
    Boundary,
    Mitigated,
    OutputBase,
    OutputKind,
    Samples,
    csv_bytes,
    kind_named,
    kind_of,
    register,
    title_of,
)
from safepool.disclosure.rules import DisclosureRules

_DATA_KEYS = ("data", "datasets")


@dataclass
class Figure(OutputBase):
    """A chart (Vega-Lite spec); it is disclosive exactly when the table behind it is."""

    title: str
    table: Any
    spec: dict[str, Any]
    kind: ClassVar[str] = "figure"


def _table_kind(figure: Figure) -> OutputKind | None:
    try:
        kind = kind_of(figure.table)
    except DisclosureInputError:
        return None
    return None if kind.name in ("figure", "document") else kind


def spec_with_rows(spec: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The spec without any data of its own, drawing `rows`."""

    def without_data(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_data(v) for k, v in node.items() if k not in _DATA_KEYS}
        if isinstance(node, list):
            return [without_data(v) for v in node]
        return node

    drawn = without_data(spec) if isinstance(spec, dict) else {}
    drawn["data"] = {"values": rows}
    return drawn


@register
class FigureKind(OutputKind):
    name = "figure"
    output_type = Figure

    def validate(self, output: Figure, *, kept: bool = False) -> list[Finding]:
        if _table_kind(output) is None:
            return [invalid(f"figure '{title_of(output)}' has no table behind it")]
        if not isinstance(output.spec, dict):
            return [invalid(f"figure '{title_of(output)}': its spec must be a Vega-Lite mapping")]
        return []

    def check(self, output: Figure, policy: DisclosureRules, *, kept: bool = False) -> CheckReport:
        problems = self.validate(output)
        if problems:
            return report_of(title_of(output), self.name, problems)
        inner = _table_kind(output).check(output.table, policy, kept=kept)
        prefix = f"figure '{output.title}' (table '{title_of(output.table)}'): "
        return report_of(output.title, self.name, [Finding(f.rule, f.verdict, f.cells, prefix + f.message)
                                                   for f in inner.findings])

    def cells_of(self, output: Figure) -> pd.DataFrame:
        return _table_kind(output).cells_of(output.table)

    def labels(self, output: Figure) -> list[str] | None:
        return _table_kind(output).labels(output.table)

    def count_columns(self, output: Figure) -> list[str]:
        return _table_kind(output).count_columns(output.table)

    def suppress(self, output: Figure, policy: DisclosureRules, margins: bool = True,
                 hide: Collection[tuple] = ()) -> Mitigated:
        self._require_valid(output)
        return self._through_table(output, _table_kind(output).suppress(output.table, policy, margins, hide), policy)

    def mitigate(self, output: Figure, policy: DisclosureRules, *, margins: bool, rounding: bool,
                 hide: Collection[tuple] = ()) -> Mitigated:
        self._require_valid(output)
        inner = _table_kind(output).mitigate(output.table, policy, margins=margins, rounding=rounding,
                                             **({"hide": hide} if hide else {}))
        return self._through_table(output, inner, policy)

    def rounded(self, mitigated: Mitigated, policy: DisclosureRules) -> Mitigated:
        figure = mitigated.output
        table = Mitigated(figure.table, mitigated.method, mitigated.note, mitigated.report, policy)
        return self._through_table(figure, _table_kind(figure).rounded(table, policy), policy)

    def round_counts(self, output: Figure, policy: DisclosureRules) -> Mitigated:
        self._require_valid(output)
        return self._through_table(output, _table_kind(output).round_counts(output.table, policy), policy)

    def _require_valid(self, output: Figure) -> None:
        problems = self.validate(output)
        if problems:
            raise DisclosureInputError(f"output '{title_of(output)}' cannot be mitigated: {problems[0].message}")

    def _through_table(self, figure: Figure, inner: Mitigated, policy: DisclosureRules) -> Mitigated:
        rows = _rows(_table_kind(figure).public_table(inner.output))
        changed = Figure(figure.title, inner.output, spec_with_rows(figure.spec, rows))
        return Mitigated(changed, inner.method, inner.note, self.check(changed, policy), policy)

    def public_table(self, output: Figure) -> pd.DataFrame:
        return _table_kind(output).public_table(output.table)

    def shown_output(self, output: Figure, policy: DisclosureRules) -> Figure:
        return replace(output, table=_table_kind(output).shown_output(output.table, policy))

    def shown_table(self, output: Figure, policy: DisclosureRules) -> pd.DataFrame:
        return _table_kind(output).shown_table(output.table, policy)

    def differencing_cells(self, output: Figure) -> list:
        return _table_kind(output).differencing_cells(output.table)

    def rounded_to(self, output: Figure) -> int | None:
        return _table_kind(output).rounded_to(output.table)

    def has_counts(self, output: Figure) -> bool:
        return _table_kind(output).has_counts(output.table)

    def files(self, output: Figure, name: str, policy: DisclosureRules) -> dict[str, bytes]:
        shown = self.shown_table(output, policy)
        spec = spec_with_rows(output.spec, _rows(shown))
        return {f"{name}.csv": csv_bytes(shown),
                f"{name}.vl.json": json.dumps(spec, ensure_ascii=False, allow_nan=False).encode("utf-8")}

    def keep(self, output: Figure, policy: DisclosureRules) -> dict[str, Any]:
        table_kind = _table_kind(output)
        return {"title": output.title, "table": {"kind": table_kind.name, "kept": table_kind.keep(output.table, policy)}}

    def restore(self, kept: Mapping[str, Any]) -> Figure:
        table = kept["table"]
        return Figure(kept["title"], kind_named(table["kind"]).restore(table["kept"]), {})

    def recheck(self, kept: Mapping[str, Any], recorded: DisclosureRules, policy: DisclosureRules) -> CheckReport:
        table = kept["table"]
        inner = kind_named(table["kind"]).recheck(table["kept"], recorded, policy)
        prefix = f"figure '{kept['title']}': "
        return report_of(kept["title"], self.name, [Finding(f.rule, f.verdict, f.cells, prefix + f.message)
                                                    for f in inner.findings])

    def samples(self) -> Samples:
        table = kind_named("frequency").samples()

        def figure(output: Any) -> Figure:
            spec = {"mark": "bar", "title": "Persons by area", "encoding": {"x": {"field": "area", "type": "nominal"},
                                                                           "y": {"field": "count", "type": "quantitative"}},
                    "datasets": {"raw": [{"area": "x", "count": 2}]}}
            return Figure("Chart of persons by area", output, spec)

        def secret(policy: DisclosureRules) -> tuple[Figure, list[str]]:
            output, texts = table.secret(policy)
            return figure(output), texts + ['"raw"']

        return Samples(
            passing=lambda policy: figure(table.passing(policy)),
            bad={"empty": lambda: figure(table.bad["empty"]()),
                 "text in numbers": lambda: figure(table.bad["text in numbers"]()),
                 "NaN": lambda: figure(table.bad["NaN"]()),
                 "inf": lambda: figure(table.bad["inf"]()),
                 "missing column": lambda: figure(table.bad["missing column"]()),
                 "no table": lambda: Figure("f", "a table, honestly", {})},
            boundaries=[Boundary(b.rule, b.setting, lambda policy, offset, b=b: figure(b.make(policy, offset)), b.fails,
                                 b.policy) for b in table.boundaries],
            secret=secret,
        )


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): json_safe(v) for k, v in row.items()} for row in frame.to_dict("records")]
