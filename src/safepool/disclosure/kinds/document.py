"""Documents: a report made of checked outputs, written as HTML (and PDF) by a layout.

A document shows nothing of the data that its parts do not, so its automatic check is the check
of every part (it fails when one fails). Its text around the parts (title, captions, settings,
limitations) is not data the rules can read, so a document that passes its parts still needs a
person's review: its verdict is "review", and a checker approving it must comment.

The document's files are written by its layout from its parts as checked, never from bytes a
caller made: "parts" (built in) lists each part's shown table; other layouts are named in
`LAYOUTS` and imported when first used (the study report: safepool.reports.study_report).
A layout is `files(document, checked, name, policy) -> {file name: bytes}` where `checked` maps
each part's name to the part as checked under the workspace policy (a Mitigated).
"""

from __future__ import annotations

import html
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import Any, Callable, ClassVar, Mapping

import pandas as pd

from safepool.disclosure.cells import DisclosureInputError
from safepool.disclosure.findings import CheckReport, Finding, invalid, needs_review, report_of
from safepool.disclosure.kinds.base import (
    Mitigated,
    OutputBase,
    OutputKind,
    Samples,
    kind_named,
    kind_of,
    register,
    title_of,
)
from safepool.disclosure.rules import DisclosureRules
from safepool.governance.form import looks_like_identity_code

LAYOUTS = {"parts": f"{__name__}:parts_layout", "study_report": "safepool.reports.study_report:document_files",
           "insight_report": "safepool.insight.report:document_files"}
Layout = Callable[[Any, Mapping[str, Mitigated], str, DisclosureRules], dict[str, bytes]]


@dataclass
class Document(OutputBase):
    """A report made of checked outputs; `about` holds its plain settings (question, permit, methods...)
    and `notes` what mitigation did to each part."""

    title: str
    parts: dict[str, Any]
    layout: str = "parts"
    about: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    kind: ClassVar[str] = "document"


def layout_named(name: str) -> Layout:
    module, _, function = LAYOUTS[name].partition(":")
    return getattr(import_module(module), function)


def _part_kind(part: Any) -> OutputKind | None:
    try:
        kind = kind_of(part)
    except DisclosureInputError:
        return None
    return None if kind.name == "document" else kind


_REVIEW = ("the text around its checked parts (title, captions, settings, limitations) is not checked "
           "automatically: a checker must read it")


@register
class DocumentKind(OutputKind):
    name = "document"
    output_type = Document

    def validate(self, output: Document, *, kept: bool = False) -> list[Finding]:
        title = title_of(output)
        if not isinstance(output.parts, dict) or not output.parts:
            return [invalid(f"document '{title}' has no parts")]
        problems = [invalid(f"document '{title}': part '{name}' is not a table or figure")
                    for name, part in output.parts.items() if _part_kind(part) is None]
        if output.layout not in LAYOUTS:
            problems.append(invalid(f"document '{title}': no layout {output.layout!r} (known: {', '.join(LAYOUTS)})"))
        if not _plain(output.about) or not _plain(output.notes) or looks_like_identity_code(title):
            problems.append(invalid(f"document '{title}': its settings and notes must be plain text, numbers "
                                    "and lists, without identity codes"))
        return problems

    def check(self, output: Document, policy: DisclosureRules, *, kept: bool = False) -> CheckReport:
        problems = self.validate(output)
        if problems:
            return report_of(title_of(output), self.name, problems)
        findings = [Finding(f.rule, f.verdict, f.cells, f"part '{name}': {f.message}")
                    for name, part in output.parts.items()
                    for f in _part_kind(part).check(part, policy, kept=kept).findings]
        return report_of(output.title, self.name, findings + [needs_review("text", _REVIEW)])

    def cells_of(self, output: Document) -> pd.DataFrame:
        return self.public_table(output)

    def labels(self, output: Document) -> None:
        return None

    def suppress(self, output: Document, policy: DisclosureRules, margins: bool = True,
                 hide: Collection[tuple] = ()) -> Mitigated:
        raise DisclosureInputError(f"document '{title_of(output)}' is mitigated through its parts, not as a whole")

    def mitigate(self, output: Document, policy: DisclosureRules, *, margins: bool, rounding: bool) -> Mitigated:
        """Published as its parts were given (each already mitigated), their counts rounded when the
        release rounds."""
        mitigated = Mitigated(output, "none", "", self.check(output, policy), policy)
        return self.rounded(mitigated, policy) if rounding and not self.validate(output) else mitigated

    def rounded(self, mitigated: Mitigated, policy: DisclosureRules) -> Mitigated:
        document = mitigated.output
        parts = {}
        for name, part in document.parts.items():
            kind = _part_kind(part)
            parts[name] = kind.rounded(Mitigated(part, "none", "", kind.check(part, policy), policy), policy).output
        rounded = replace(document, parts=parts)
        return Mitigated(rounded, "rounding", f"Counts rounded to the nearest multiple of {policy.rounding_base}.",
                         self.check(rounded, policy), policy)

    def public_table(self, output: Document) -> pd.DataFrame:
        return pd.DataFrame({"part": list(output.parts), "title": [title_of(p) for p in output.parts.values()],
                             "kind": [getattr(p, "kind", "?") for p in output.parts.values()]})

    def shown_table(self, output: Document, policy: DisclosureRules) -> pd.DataFrame:
        return self.public_table(output)

    def shown_output(self, output: Document, policy: DisclosureRules) -> Document:
        return replace(output, parts={name: _part_kind(part).shown_output(part, policy)
                                      for name, part in output.parts.items()})

    def differencing_cells(self, output: Document) -> list:
        return [cells for part in output.parts.values() for cells in _part_kind(part).differencing_cells(part)]

    def has_counts(self, output: Document) -> bool:
        return any(_part_kind(part).has_counts(part) for part in output.parts.values())

    def rounded_to(self, output: Document) -> int | None:
        counted = [part for part in output.parts.values() if _part_kind(part).has_counts(part)]
        bases = {_part_kind(part).rounded_to(part) for part in counted}
        return bases.pop() if len(bases) == 1 else None

    def files(self, output: Document, name: str, policy: DisclosureRules) -> dict[str, bytes]:
        checked = {part_name: Mitigated(part, "checked", output.notes.get(part_name, ""),
                                        _part_kind(part).check(part, policy), policy)
                   for part_name, part in output.parts.items()}
        return layout_named(output.layout)(output, checked, name, policy)

    def keep(self, output: Document, policy: DisclosureRules) -> dict[str, Any]:
        return {"title": output.title, "layout": output.layout,
                "parts": {name: {"kind": _part_kind(part).name, "kept": _part_kind(part).keep(part, policy)}
                          for name, part in output.parts.items()}}

    def restore(self, kept: Mapping[str, Any]) -> Document:
        return Document(kept["title"], {name: kind_named(part["kind"]).restore(part["kept"])
                                        for name, part in kept["parts"].items()}, kept["layout"])

    def recheck(self, kept: Mapping[str, Any], recorded: DisclosureRules, policy: DisclosureRules) -> CheckReport:
        findings = [Finding(f.rule, f.verdict, f.cells, f"part '{name}': {f.message}")
                    for name, part in kept["parts"].items()
                    for f in kind_named(part["kind"]).recheck(part["kept"], recorded, policy).findings]
        return report_of(kept["title"], self.name, findings + [needs_review("text", _REVIEW)])

    def samples(self) -> Samples:
        frequency, figure = kind_named("frequency"), kind_named("figure")

        def document(**parts: Any) -> Document:
            return Document("Report on persons by area", parts)

        def secret(policy: DisclosureRules) -> tuple[Document, list[str]]:
            table, texts = kind_named("magnitude").samples().secret(policy)
            mitigated = kind_named("magnitude").suppress(table, policy)
            return document(table=mitigated.output, counts=frequency.samples().passing(policy)), texts

        return Samples(
            passing=lambda policy: document(table=frequency.samples().passing(policy),
                                            chart=figure.samples().passing(policy)),
            bad={"empty": lambda: Document("r", {}),
                 "text in numbers": lambda: document(table=frequency.samples().bad["text in numbers"]()),
                 "NaN": lambda: document(table=frequency.samples().bad["NaN"]()),
                 "inf": lambda: document(table=frequency.samples().bad["inf"]()),
                 "missing column": lambda: document(table=frequency.samples().bad["missing column"]()),
                 "a part that is not an output": lambda: document(text="not a table"),
                 "a document inside": lambda: document(inner=Document("inner", {"t": frequency.samples().passing(
                     DisclosureRules())}))},
            boundaries=[type(b)(b.rule, b.setting, lambda policy, offset, b=b: document(table=b.make(policy, offset)),
                                b.fails, b.policy) for b in frequency.samples().boundaries],
            secret=secret,
        )


def parts_layout(document: Document, checked: Mapping[str, Mitigated], name: str,
                 policy: DisclosureRules) -> dict[str, bytes]:
    """One HTML page: the document's title, then each part's shown table and note."""
    sections = []
    for part_name, part in checked.items():
        shown = _part_kind(part.output).shown_table(part.output, policy)  # suppressed rows: labels only
        table = shown.astype(object).where(pd.notna(shown), "")
        note = f"<p>Disclosure control: {html.escape(part.note)}</p>" if part.note else ""
        sections.append(f"<h2>{html.escape(title_of(part.output))}</h2>\n{table.to_html(index=False, escape=True)}\n"
                        f"{note}")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(document.title)}"
            f"</title></head>\n<body><h1>{html.escape(document.title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n")
    return {f"{name}.html": page.encode("utf-8")}


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return not looks_like_identity_code(value)
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(k) and _plain(v) for k, v in value.items())
    return False
