"""The one place that knows what a Finnish identity code (HETU) looks like, in any spelling.

Two jobs share it. The steward zone (`safepool.identity.hetu`) brings a code to its plain
spelling before python-stdnum validates it, so that one person never gets two pseudonyms; and
everything that shows text to people (errors, permit forms, reports, audit checks) finds codes in
free text to refuse or mask them. Both read a code the same way: each character in its NFKC form,
a decimal digit of any script (fullwidth, Arabic-Indic, Devanagari, ...) as its ASCII digit, and
any dash (en dash, minus sign, U+2010-U+2015, fullwidth hyphen, ...) as '-'.

This module sits outside the steward zone on purpose: analyst-side code may import it (it holds a
pattern, never a code).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Dashes that are not in Unicode's dash punctuation category (Pd) but read as one.
_OTHER_DASHES = frozenset("\u00ad\u02d7\u2043\u2212\u2796\u207b\u208b")
_IGNORABLE = ("Cf", "Mn", "Me")  # invisible format characters and combining marks

_D = "[0-9]"
_GAP = r"\s*"
# With a century sign: + (1800s), - or Y X W V U (1900s), A-F (2000s); white space anywhere.
_SIGNED = (r"(?<![0-9])" + _GAP.join([_D] * 6) + _GAP + "[-+A-FU-Y]" + _GAP + _GAP.join([_D] * 3)
           + _GAP + "[0-9A-Y](?![0-9])")
# Without a sign (written as ten characters): only with a plausible day and month.
_UNSIGNED = (r"(?<![0-9])(?:0[1-9]|[12][0-9]|3[01])(?:0[1-9]|1[0-2])[0-9]{2}" + _GAP + "[0-9]{3}" + _GAP
             + "[0-9A-Y](?![0-9A-Z])")
_PATTERN = re.compile(f"{_SIGNED}|{_UNSIGNED}", re.IGNORECASE)
# A whole code in plain spelling in python-stdnum's format: ddmmyy, century sign, individual
# number, check character (G, I, O, Q and Z are never one).
PLAIN_FORM = "^[0-3][0-9][01][0-9]{3}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]$"


def is_dash(character: str) -> bool:
    return character in _OTHER_DASHES or unicodedata.category(character) == "Pd"


def _plain_character(character: str) -> str:
    if character.isascii():
        return character
    digit = unicodedata.decimal(character, None)
    if digit is not None:
        return str(digit)
    if is_dash(character):
        return "-"
    return character


def plain_character(character: str) -> str:
    """One character in plain spelling: its NFKC form with digits of any script in ASCII and dashes as '-'.

    The result may be longer than one character (NFKC expands some, e.g. a circled 10)."""
    if character.isascii():
        return character
    if is_dash(character):  # before NFKC, which turns a soft hyphen into nothing
        return "-"
    return "".join(_plain_character(c) for c in unicodedata.normalize("NFKC", character))


def plain_code(text: str) -> str:
    """An identity code as written, in plain spelling: white space and invisible characters
    dropped, letters in upper case. What is left is for python-stdnum to accept or refuse."""
    plain = "".join(plain_character(c) for c in text if unicodedata.category(c) != "Cf" or is_dash(c))
    return "".join(plain.split()).upper()


@dataclass(frozen=True)
class Found:
    """Where an identity code was found, in the text as it was given."""

    start: int
    end: int


class IdentityCodePattern:
    """Finds identity codes in any spelling; `search` and `sub` work like a compiled regex's."""

    pattern = _PATTERN

    def finditer(self, text: str) -> list[Found]:
        if text.isascii():
            return [Found(m.start(), m.end()) for m in _PATTERN.finditer(text)]
        folded: list[str] = []
        origin: list[int] = []
        for index, character in enumerate(text):
            if not character.isascii() and unicodedata.category(character) in _IGNORABLE and not is_dash(character):
                continue  # a zero-width space or a combining mark must not hide a code
            for plain in plain_character(character):
                folded.append(plain)
                origin.append(index)
        return [Found(origin[m.start()], origin[m.end() - 1] + 1) for m in _PATTERN.finditer("".join(folded))]

    def search(self, text: str) -> Found | None:
        found = self.finditer(text)
        return found[0] if found else None

    def sub(self, replacement: str, text: str) -> str:
        parts, last = [], 0
        for found in self.finditer(text):
            parts += [text[last:found.start], replacement]
            last = found.end
        return "".join(parts) + text[last:]


IDENTITY_CODE = IdentityCodePattern()


def looks_like_identity_code(text: str) -> bool:
    return IDENTITY_CODE.search(text) is not None


def mask_identity_codes(text: str, replacement: str = "[identity code removed]") -> str:
    """Replace anything that looks like an identity code, in any spelling."""
    return IDENTITY_CODE.sub(replacement, text)
