"""Finnish personal identity codes (HETU): normalisation and a reason for every refusal.

Validation itself is python-stdnum's; this module only adds the steward's view: which codes
were repaired, and why each rejected code was rejected, so that nothing is silently dropped. It
runs once per distinct code, never per row.

A code is first brought to its plain spelling (`safepool.identity_pattern.plain_code`: NFKC,
digits of any script as ASCII digits, any dash as '-', white space and invisible characters
dropped, upper case). What stdnum accepts from that is the one canonical ASCII code the
pseudonym is computed from, so one person has one pseudonym however the code was written;
anything else is quarantined. A code that needed any of this is counted as `normalised`.
"""

from __future__ import annotations

from enum import StrEnum

import pyarrow as pa
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength
from stdnum.fi import hetu

from safepool.identity_pattern import plain_code


class CodeStatus(StrEnum):
    """Outcome of checking one identity code; only `valid` and `normalised` link."""

    valid = "valid"
    normalised = "normalised"  # valid once its spelling was repaired (case, spaces, dashes, digits)
    missing = "missing"
    malformed = "malformed"
    invalid_date = "invalid_date"
    invalid_individual_number = "invalid_individual_number"
    wrong_check_character = "wrong_check_character"
    temporary = "temporary"  # individual number 900-999: not a permanent identity

    @property
    def links(self) -> bool:
        return self in (CodeStatus.valid, CodeStatus.normalised)


def normalise(code: str) -> str:
    """The code in plain spelling (see `safepool.identity_pattern.plain_code`), not yet validated."""
    return plain_code(code)


def classify(code: str | None) -> tuple[str | None, CodeStatus]:
    """Return the canonical code (None when it cannot link) and its status."""
    if code is None or not code.strip():
        return None, CodeStatus.missing
    compact = normalise(code)
    if not compact.isascii():
        return None, CodeStatus.malformed  # a letter of another script, a mark: never guessed at
    try:
        canonical = hetu.validate(compact, allow_temporary=True)
    except (InvalidFormat, InvalidLength):
        return None, CodeStatus.malformed
    except InvalidChecksum:
        return None, CodeStatus.wrong_check_character
    except InvalidComponent:
        individual = compact[7:10]
        status = (
            CodeStatus.invalid_individual_number
            if individual.isdigit() and int(individual) < 2
            else CodeStatus.invalid_date
        )
        return None, status
    if not canonical.isascii() or len(canonical) != 11:
        return None, CodeStatus.malformed
    if int(canonical[7:10]) >= 900:
        return None, CodeStatus.temporary
    return canonical, CodeStatus.valid if canonical == code else CodeStatus.normalised


def classify_array(codes: pa.Array) -> pa.Table:
    """Classify distinct raw codes; the table keeps `raw` so callers can join back to rows."""
    raw = codes.to_pylist()
    normalised: list[str | None] = []
    statuses: list[str] = []
    for code in raw:
        compact, status = classify(code)
        normalised.append(compact)
        statuses.append(status.value)
    return pa.table(
        {
            "raw": pa.array(raw, pa.string()),
            "code": pa.array(normalised, pa.string()),
            "status": pa.array(statuses, pa.string()),
        }
    )
