"""Finnish personal identity codes (HETU): normalisation and a reason for every refusal.

Validation itself is python-stdnum's; this module only adds the steward's view: which codes
were repaired by normalising case and whitespace, and why each rejected code was rejected, so
that nothing is silently dropped. It runs once per distinct code, never per row.
"""

from __future__ import annotations

import re
from enum import StrEnum

import pyarrow as pa
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength
from stdnum.fi import hetu

_WHITESPACE = re.compile(r"\s+")


class CodeStatus(StrEnum):
    """Outcome of checking one identity code; only `valid` and `normalised` link."""

    valid = "valid"
    normalised = "normalised"  # valid once case and whitespace were repaired
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
    return _WHITESPACE.sub("", code).upper()


def classify(code: str | None) -> tuple[str | None, CodeStatus]:
    """Return the normalised code (None when it cannot link) and its status."""
    if code is None or not code.strip():
        return None, CodeStatus.missing
    compact = normalise(code)
    try:
        hetu.validate(compact, allow_temporary=True)
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
    if int(compact[7:10]) >= 900:
        return None, CodeStatus.temporary
    return compact, CodeStatus.valid if compact == code else CodeStatus.normalised


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
