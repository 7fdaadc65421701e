"""How a pseudonym is shown to a person, and read back from one.

The pool stores a pseudonym as a BIGINT, the first 60 bits of the keyed MAC: a number is written,
joined and grouped several times faster than a string of digits. People see it, and hand it
back, as that number zero-padded to 19 digits ("shown as a number string", DESIGN.md), so this
module is the one place that turns one form into the other. It holds no key and sits outside the
steward zone: an analysis that hands pseudonyms to the steward writes them in the shown form.
"""

from __future__ import annotations

from safepool.faults import Invalid

BITS = 60
DIGITS = 19  # 2**60 - 1 has 19 decimal digits


class MalformedPseudonym(Invalid):
    """Text given as a pseudonym is not one; the message never quotes the text."""


def shown(pid: int) -> str:
    """The pseudonym `pid` as people see and write it: 19 digits, zero-padded."""
    return f"{pid:0{DIGITS}d}"


def parse(text: str) -> int:
    """The pseudonym shown as `text` (white space around it ignored)."""
    digits = text.strip()
    if len(digits) != DIGITS or not (digits.isascii() and digits.isdigit()) or int(digits) >> BITS:
        raise MalformedPseudonym(f"a pseudonym is shown as {DIGITS} digits")
    return int(digits)


def parse_lines(text: str, source: str) -> list[str]:
    """The pseudonyms of a file with one a line (blank lines skipped), each checked; an error names
    `source` and the line, never what the line holds."""
    wanted = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            wanted.append(shown(parse(line)))
        except MalformedPseudonym as exc:
            raise MalformedPseudonym(f"{source}, line {number}: not a pseudonym ({exc})") from None
    return wanted
