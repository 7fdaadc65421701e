"""Plain text a person can read in a terminal of 80 columns.

Rules: an id, a number or a path is never cut or split across lines; a table that does not fit
wraps its text columns, and when even that does not fit each row is shown as a short record; a
path goes on a line of its own. Everything here returns lines; `cli.common.say` prints them.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from safepool.prose import listed

MIN_WRAP = 16  # a wrapped column narrower than this is no longer readable: show records instead
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
          title: str | None = None, keys: int = 1) -> list[str]:
    """An aligned table that fits the terminal, numbers right-aligned. When it is too wide, the
    `wrap_columns` (free text: titles, messages) wrap; when that is not enough, each row becomes a
    short record (`records`), led by its first `keys` columns, which say what the row is."""
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
        return out + wrap(f"Too wide for {width()} columns: each row is shown as a record, led by its "
                          f"{listed(headers[:max(keys, 1)])}.") + records(headers, cells, keys)
    lines = [_row(headers, widths, [False] * len(headers))]
    lines.append(GAP.join("-" * w for w in widths).rstrip())
    for row in cells:
        parts = [wrap(c, at=w) if wrappable[i] and len(c) > w else [c] for i, (c, w) in enumerate(zip(row, widths))]
        for k in range(max(len(p) for p in parts)):
            lines.append(_row([p[k] if k < len(p) else "" for p in parts], widths, numeric))
    return out + lines


RECORD_INDENT = "    "
STATUS_COLUMN = "status"  # a record's status goes on its first line


def records(headers: Sequence[str], cells: list[list[str]], keys: int = 1) -> list[str]:
    """Each row as a short record, as an output checker reads a wide table row by row: a numbered
    line of its first `keys` columns ("12. stage after, covariate age") and its status; its numbers
    (and words no longer than they) as 'name value' pairs in a grid of aligned columns across the
    terminal (one layout for every record, so that a column is in the same place in each); then
    its longer words ('name value; ...'). Blank values (a suppressed row's) are left out."""
    keys = max(1, min(keys, len(headers)))
    status = headers.index(STATUS_COLUMN) if STATUS_COLUMN in headers[keys:] else None
    rest = [i for i in range(keys, len(headers)) if i != status]
    numeric = [i for i in rest if all(_NUMBER.match(row[i]) for row in cells)]
    value_width = max((len(row[i]) for row in cells for i in numeric), default=0)
    numbers = [i for i in rest if i in numeric or all(len(row[i]) <= value_width for row in cells)]
    words = [i for i in rest if i not in numbers]
    name_width = max((len(headers[i]) for i in numbers), default=0)
    across = max(1, (width() - len(RECORD_INDENT) + len(GAP)) // (name_width + 1 + value_width + len(GAP)))
    lines: list[str] = []
    for n, row in enumerate(cells, 1):
        head = ", ".join(f"{headers[i]} {row[i]}" if row[i] else headers[i] for i in range(keys))
        lines += [""] + wrap(f"{n}. {head}" + (f": {row[status]}" if status is not None else ""),
                             hanging=RECORD_INDENT)
        pairs = [f"{headers[i]:<{name_width}} {row[i]:>{value_width}}" for i in numbers if row[i]]
        for start in range(0, len(pairs), across):
            lines.append((RECORD_INDENT + GAP.join(pairs[start:start + across])).rstrip())
        said = "; ".join(f"{headers[i]} {row[i]}" for i in words if row[i])
        lines += wrap(said, RECORD_INDENT, "  ") if said else []
    return lines


def _fit(natural: list[int], wrappable: list[bool]) -> list[int] | None:
    available = width()
    if sum(natural) + len(GAP) * (len(natural) - 1) <= available:
        return natural
    fixed = sum(w for w, flex in zip(natural, wrappable) if not flex) + len(GAP) * (len(natural) - 1)
    flexible = [w for w, flex in zip(natural, wrappable) if flex]
    room = available - fixed
    if not flexible or room < MIN_WRAP * len(flexible):
        return None
    # the room shared fairly: a column narrower than its share keeps its width, the rest share what is left
    given = list(flexible)
    left = room
    for n, k in enumerate(sorted(range(len(flexible)), key=flexible.__getitem__)):
        given[k] = min(flexible[k], left // (len(flexible) - n))
        left -= given[k]
    if any(g < min(w, MIN_WRAP) for g, w in zip(given, flexible)):
        return None
    shares = iter(given)
    return [next(shares) if flex else w for w, flex in zip(natural, wrappable)]


def _row(values: list[str], widths: list[int], numeric: list[bool]) -> str:
    return GAP.join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()


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
