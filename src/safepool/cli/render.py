"""Plain text a person can read in a terminal of 80 columns.

Rules: an id, a number or a path is never cut or split across lines; a table that does not fit
wraps its text columns, and when even that does not fit it is shown as one block per row; a
path goes on a line of its own. Everything here returns lines; `cli.common.say` prints them.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

MIN_WRAP = 16  # a wrapped column narrower than this is no longer readable: show blocks instead
GAP = "  "
_NUMBER = re.compile(r"^[-+−]?[\d,]+(\.\d+)?%?$|^-$|^$")


def width() -> int:
    """The terminal's width (COLUMNS when set), never below 40."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def wrap(text: str, indent: str = "", hanging: str = "", at: int | None = None) -> list[str]:
    """Text wrapped at word boundaries; a word longer than the line (an id, a path) is kept whole."""
    return textwrap.wrap(str(text), width=at or width(), initial_indent=indent, subsequent_indent=indent + hanging,
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def path_lines(label: str, path: Path | str) -> list[str]:
    """A label, then the path on a line of its own (so that it can be copied whole)."""
    return [label.rstrip() if label.rstrip().endswith(":") else label.rstrip() + ":", f"  {path}"]


def fields(pairs: Iterable[tuple[str, object]], indent: str = "") -> list[str]:
    """'label: value' lines, labels aligned; long values wrap under themselves."""
    items = [(label, "" if value is None else str(value)) for label, value in pairs]
    if not items:
        return []
    pad = max(len(label) for label, _ in items) + 2
    lines: list[str] = []
    for label, value in items:
        head = f"{indent}{label + ':':<{pad}}"
        if len(head) + 20 > width():
            lines += [f"{indent}{label}:"] + wrap(value, indent + "  ")
        else:
            body = wrap(value, at=width() - len(head)) if value else [""]
            lines.append((head + body[0]).rstrip())
            lines += [" " * len(head) + more for more in body[1:]]
    return lines


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, wrap_columns: Iterable[str] = (),
          title: str | None = None, keys: int = 1, split: bool = True) -> list[str]:
    """An aligned table that fits the terminal, numbers right-aligned. When it is too wide, the
    `wrap_columns` (free text: titles, messages) wrap; when that is not enough, the columns are
    shown in groups that fit, each with the first `keys` columns again; when even that does not
    fit, each row becomes a block: its first cell, then 'header: value' lines."""
    cells = [[_text(c) for c in row] for row in rows]
    out = wrap(title) if title else []
    if not cells:
        return out + ["(none)"]
    headers = list(headers)
    natural = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(_NUMBER.match(r[i]) for r in cells) for i in range(len(headers))]
    wrappable = [h in set(wrap_columns) for h in headers]
    widths = _fit(natural, wrappable)
    if widths is None:
        groups = _column_groups(natural, wrappable, keys) if split else None
        if groups is None:
            return out + _blocks(headers, cells)
        lines = list(out)
        for n, group in enumerate(groups, 1):
            chosen = list(range(keys)) + group
            lines += ([""] if n > 1 else []) + [f"(columns {n} of {len(groups)})"]
            lines += table([headers[i] for i in chosen], [[row[i] for i in chosen] for row in cells],
                           wrap_columns=wrap_columns, split=False)
        return lines
    lines = [_row(headers, widths, [False] * len(headers))]
    lines.append(GAP.join("-" * w for w in widths).rstrip())
    for row in cells:
        parts = [wrap(c, at=w) if wrappable[i] and len(c) > w else [c] for i, (c, w) in enumerate(zip(row, widths))]
        for k in range(max(len(p) for p in parts)):
            lines.append(_row([p[k] if k < len(p) else "" for p in parts], widths, numeric))
    return out + lines


def _column_groups(natural: list[int], wrappable: list[bool], keys: int) -> list[list[int]] | None:
    """The columns after the first `keys`, in groups that fit beside the keys (None if one cannot)."""
    key_width = sum(natural[:keys]) + len(GAP) * keys
    room = width() - key_width
    groups: list[list[int]] = [[]]
    used = 0
    for i in range(keys, len(natural)):
        need = (MIN_WRAP if wrappable[i] else natural[i]) + (len(GAP) if groups[-1] else 0)
        if groups[-1] and used + need > room:
            groups.append([])
            used, need = 0, need - len(GAP)
        if need > room:
            return None
        groups[-1].append(i)
        used += need
    return groups if len(groups) > 1 or groups[0] else None


def _fit(natural: list[int], wrappable: list[bool]) -> list[int] | None:
    available = width()
    if sum(natural) + len(GAP) * (len(natural) - 1) <= available:
        return natural
    fixed = sum(w for w, flex in zip(natural, wrappable) if not flex) + len(GAP) * (len(natural) - 1)
    flexible = [w for w, flex in zip(natural, wrappable) if flex]
    room = available - fixed
    if not flexible or room < MIN_WRAP * len(flexible):
        return None
    total = sum(flexible)
    shares = iter(max(MIN_WRAP, room * w // total) for w in flexible)
    widths = [next(shares) if flex else w for w, flex in zip(natural, wrappable)]
    return widths if sum(widths) + len(GAP) * (len(widths) - 1) <= available else None


def _row(values: list[str], widths: list[int], numeric: list[bool]) -> str:
    return GAP.join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()


def _blocks(headers: Sequence[str], cells: list[list[str]]) -> list[str]:
    lines: list[str] = []
    for row in cells:
        if lines:
            lines.append("")
        lines += wrap(f"{headers[0]} {row[0]}")
        lines += fields([(h, v) for h, v in zip(headers[1:], row[1:]) if v], indent="  ")
    return lines


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return " ".join(str(value).split())


def when(moment) -> str:  # type: ignore[no-untyped-def]
    """A time to the minute, in UTC: '2026-01-31 08:00'."""
    import datetime as dt

    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def events(title: str, items: Iterable[tuple[object, str]]) -> list[str]:
    """A titled list of (time, what happened) lines, each text wrapped under itself."""
    lines = [title]
    for moment, text in items:
        head = f"  {when(moment)}  "
        body = wrap(text, at=width() - len(head))
        lines += [head + body[0]] + [" " * len(head) + more for more in body[1:]]
    return lines if len(lines) > 1 else lines + ["  (none)"]


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


# What each identity code status means, in words ("3 rows with a wrong check character").
CODE_STATUS_WORDS: Mapping[str, str] = {
    "valid": "with a valid identity code",
    "normalised": "with an identity code repaired in spelling (case, spaces, dashes or digits)",
    "missing": "with no identity code",
    "malformed": "with an identity code that is not one (malformed)",
    "invalid_date": "with an impossible birth date in the identity code",
    "invalid_individual_number": "with an impossible individual number",
    "wrong_check_character": "with a wrong check character",
    "temporary": "with a temporary identity code (individual number 900-999)",
}


def rows_in_words(counts: Mapping[str, int]) -> list[str]:
    """Counts of rows by identity code status, each in words: '3 rows with a wrong check character'."""
    return [f"{plural(n, 'row')} {CODE_STATUS_WORDS.get(status, 'counted as ' + status.replace('_', ' '))}"
            for status, n in counts.items()]
