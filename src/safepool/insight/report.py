"""The insight report: HTML and PDF written from an insight run's outputs as checked.

The "insight_report" layout of a document output (safepool.disclosure.kinds.document): its parts
are the run's published outputs as checked under the workspace policy, its settings (`about`)
the insight file's title, question, permit and the analysis's sections (text written from the
settings, never from data). Tables show only what the checks let through (a suppressed cell is
blank, with its status); figures draw their checked table's shown rows. When the pool was made
from synthetic registers, every page says so.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import date
from typing import Any

import pandas as pd

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.kinds.base import Mitigated, kind_of, title_of
from safepool.disclosure.kinds.figure import Figure
from safepool.disclosure.outputs import STATUS
from safepool.disclosure.rules import DisclosureRules
from safepool.governance.document import pdf_from_html
from safepool.governance.form import looks_like_identity_code
from safepool.reports.chart_engine import vegalite_to_svg

SYNTHETIC = "Synthetic data: made from synthetic registers, not from real persons"
_CSS = """
@page { size: A4; margin: 18mm 16mm 20mm 16mm;
        @bottom-left { content: string(synthetic); font-size: 8pt; color: #a33; }
        @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; color: #555; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9.5pt; line-height: 1.35; color: #222; }
.synthetic { string-set: synthetic content(); color: #a33; font-weight: bold; }
h1 { font-size: 16pt; margin: 0 0 4pt; } h2 { font-size: 12.5pt; margin: 14pt 0 4pt; break-after: avoid; }
h3 { font-size: 10pt; margin: 10pt 0 3pt; break-after: avoid; }
.meta { color: #555; font-size: 8.5pt; }
table { border-collapse: collapse; margin: 4pt 0 8pt; font-size: 8.5pt; }
th, td { border-bottom: 0.5pt solid #ccc; padding: 2pt 5pt; text-align: left; vertical-align: top; }
td.n { white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; } figure { margin: 6pt 0; break-inside: avoid; } figure svg, figure img { max-width: 100%; height: auto; }
.note { font-size: 8pt; color: #555; }
th.wide { width: 30%; } ul { margin: 2pt 0 6pt; padding-left: 14pt; } li { margin: 1pt 0; }
"""


def document_files(document: Any, checked: Mapping[str, Mitigated], name: str,
                   policy: DisclosureRules) -> dict[str, bytes]:
    """The report's HTML and PDF from its checked parts."""
    page = render_html(document.title, document.about, checked, policy)
    return {f"{name}.html": page.encode("utf-8"), f"{name}.pdf": pdf_from_html(page)}


def render_html(title: str, about: Mapping[str, Any], checked: Mapping[str, Mitigated],
                policy: DisclosureRules) -> str:
    """One standalone page: inline CSS and SVG, nothing fetched."""
    parts = [f"<h1>{_text(title)}</h1>"]
    if about.get("synthetic"):
        parts.append(f'<p class="synthetic">{SYNTHETIC}</p>')
    parts.append(f'<p class="meta">Permit {_text(about.get("permit", ""))} · written {date.today().isoformat()} · '
                 "every number passed the workspace's disclosure checks; blank cells were suppressed.</p>")
    if about.get("question"):
        parts.append(f"<p><strong>Question.</strong> {_text(about['question'])}</p>")
    for section in about.get("sections", []):
        parts.append(f"<h2>{_text(section['heading'])}</h2>{_paragraphs(section['text'])}")
        for output_name in section.get("outputs", []):
            if output_name in checked:
                parts.append(_part(checked[output_name], policy))
    if about.get("features"):
        parts.append("<h2>Feature definitions</h2><p>Each feature the analysis used, as the features layer defines "
                     "it (the same definitions the variables browser shows).</p>"
                     + _table(pd.DataFrame(about["features"]), wide="definition"))
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_text(title)}</title>'
            f"<style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _part(part: Mitigated, policy: DisclosureRules) -> str:
    output = part.output
    heading = f"<h3>{_text(title_of(output))}</h3>"
    note = f'<p class="note">Disclosure control: {_text(part.note)}</p>' if part.note else ""
    if isinstance(output, Figure):
        svg = vegalite_to_svg(output.spec)
        return f"{heading}<figure>{svg[svg.index('<svg'):]}</figure>{note}"
    kind = kind_of(output)
    shown = kind.shown_table(output, policy)
    groups = list(kind.labels(output) or [])
    if len(shown) and not shown_mask(shown).any():
        return f"{heading}{_all_suppressed(shown, groups)}{note}"
    if len(groups) == 2 and "count" in shown.columns:
        return f"{heading}{_cross_table(shown, groups)}{note}"
    return f"{heading}{_table(shown.drop(columns=[STATUS], errors='ignore'))}{note}"


def _all_suppressed(shown: pd.DataFrame, groups: list[str]) -> str:
    """A table the checks blanked whole is told in a sentence, with the labels its rows would have
    had (code labels, never data), rather than pages of empty rows."""
    labels = "; ".join(f"{column.replace('_', ' ')}: {', '.join(dict.fromkeys(shown[column].astype(str)))}"
                       for column in groups if column in shown.columns)
    return (f"<p>Every cell of this table ({len(shown):,} rows) was suppressed by the disclosure checks, so "
            f"no row is printed.{' Its rows: ' + _text(labels) + '.' if labels else ''}</p>")


def _cross_table(shown: pd.DataFrame, groups: list[str]) -> str:
    """A two-way count table as a statistics office prints it: the second group down, the first
    across (its total last); a suppressed cell is a dash."""
    across, down = groups
    columns = list(dict.fromkeys(shown[across].astype(str)))
    rows = list(dict.fromkeys(shown[down].astype(str)))
    value = {(str(a), str(d)): c for a, d, c in zip(shown[across], shown[down], shown["count"])}
    header = f"<th>{_text(down.replace('_', ' '))}</th>" + "".join(f'<th class="n">{_text(c)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{_number(value.get((column, row)))}</td>' for column in columns)
        body.append(f"<tr><td>{_text(row)}</td>{cells}</tr>")
    caption = f'<p class="note">Columns: {_text(across.replace("_", " "))}. – suppressed by the disclosure checks.</p>'
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>{caption}"


def _paragraphs(text: str) -> str:
    """Section text as paragraphs (split on blank lines); a block of lines starting '- ' is a list."""
    blocks = []
    for block in str(text).split("\n\n"):
        lines = block.strip().splitlines()
        if lines and all(line.startswith("- ") for line in lines):
            blocks.append("<ul>" + "".join(f"<li>{_text(line[2:])}</li>" for line in lines) + "</ul>")
        elif lines:
            blocks.append(f"<p>{_text(' '.join(lines))}</p>")
    return "".join(blocks)


def _table(frame: pd.DataFrame, wide: str | None = None) -> str:
    """A table of shown values; the column `wide`, if any, takes the room long text needs."""
    header = "".join(f'<th{" class=wide" if column == wide else ""}>{_text(str(column).replace("_", " "))}</th>'
                     for column in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = [f'<td class="n">{_number(v)}</td>' if _is_number(v) else f"<td>{_breakable('' if _blank(v) else v)}</td>"
                 for v in values]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _breakable(value: object) -> str:
    """Cell text that may wrap after an underscore (false_positive_rate in a narrow column)."""
    return _text(value).replace("_", "_<wbr>")


def _blank(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: object) -> str:
    """A count or value for people: thousands separated, no scientific notation; a blank is a dash."""
    if value is None or _blank(value):
        return "–"
    number = float(value)
    if number.is_integer():
        return f"{number:,.0f}"
    # a rate or a score below 1 keeps three significant digits (a Brier score of 0.0097 is not 0.01)
    return f"{number:.3g}" if abs(number) < 1 else f"{number:,.2f}"


def _text(value: object) -> str:
    """Settings text is shown escaped; an identity code in it is never shown."""
    text = str(value)
    return "[withheld: looks like an identity code]" if looks_like_identity_code(text) else html.escape(text)
