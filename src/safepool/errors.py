"""Errors that reach people, and the redaction that keeps identifiers out of them.

Driver messages can quote the value that failed (a name, an identity code, a password in a
URL) or a whole source line, so a source error never shows a driver's message: it names the
register, the file, the line number and the field, and says what kind of fault it was in words
of its own. `redact` remains for other text that must be shown: it masks identity codes in any
spelling (the one pattern of `safepool.identity_pattern`), credentials and quoted values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from safepool.faults import SafepoolError, Unavailable
from safepool.identity_pattern import IDENTITY_CODE

__all__ = ["SafepoolError", "SchemaDrift", "SourceError", "describe_cause", "redact"]

_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@\s]*@")
_PASSWORD_FIELD = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def redact(text: str) -> str:
    """Mask identity codes, credentials and every quoted value in a message."""
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    text = _PASSWORD_FIELD.sub(r"\1***", text)
    text = _QUOTED.sub("'…'", text)
    return IDENTITY_CODE.sub("<identity code>", text)


# What a driver's message is about, said in fixed words; the first that matches is used.
_FAULTS = (
    (r"password authentication failed|authentication failed|no password supplied", "authentication failed"),
    (r"connection refused|could not connect|could not translate host|timeout expired|timed out",
     "the server could not be reached"),
    (r"connection reset|server closed the connection|terminating connection|broken pipe", "the connection broke"),
    (r"permission denied|access denied", "permission denied"),
    (r"file is not a database|not a database|database disk image is malformed", "not a database file"),
    (r"magic bytes|not a parquet|parquet file|too small to be", "not a readable Parquet file"),
    (r"expected number of columns|too many columns|not enough columns|missing columns",
     "a line has the wrong number of fields"),
    (r"unterminated quote", "a quoted field is not closed"),
    (r"invalid unicode|utf-8|utf8|byte sequence", "text that is not valid UTF-8"),
    (r"conversion error|could not convert|cannot be cast|invalid input syntax|out of range",
     "a value could not be read as the field's type"),
    (r"does not exist|no such table|not found|no such file", "not found"),
)
_LINE = re.compile(r"\bline\b\D{0,3}(\d{1,12})", re.IGNORECASE)
_COLUMN = re.compile(r"\bcolumns?\b\W{0,3}\"?([^\s\"',:;()]+)", re.IGNORECASE)


def describe_cause(cause: BaseException, fields: Iterable[str] = (), source: str | None = None) -> str:
    """A driver error as words safe to show: what kind of fault, where (the source, the line
    number, the field) and the error's class.

    The message itself is only searched, never shown: a field is named only when it is one of
    `fields` (the register's own column names from the catalogue), a line only by its number."""
    message = str(cause)
    fault = next((said for pattern, said in _FAULTS if re.search(pattern, message, re.IGNORECASE)),
                 "the driver reported an error")
    where = [source] if source else []
    line = _LINE.search(message)
    if line:
        where.append(f"line {int(line.group(1))}")
    known = set(fields)
    named = sorted({m.group(1) for m in _COLUMN.finditer(message) if m.group(1) in known})
    if named:
        where.append(("fields " if len(named) > 1 else "field ") + ", ".join(named))
    return fault + (f" in {', '.join(where)}" if where else "") + f"; {type(cause).__name__}"


class SourceError(Unavailable):
    """A register source could not be read; names the register and what went wrong, never a value.

    It is `Unavailable`: what the request needs (the register's data) cannot be used until the
    source or its catalogue entry is mended (`safepool registers check` says what is wrong)."""

    def __init__(self, register: str, problem: str, cause: BaseException | None = None,
                 fields: Iterable[str] = (), source: str | None = None) -> None:
        self.register = register
        detail = f" ({describe_cause(cause, fields, source)})" if cause is not None else ""
        super().__init__(f"register {register}: {problem}{detail}")


class SchemaDrift(SourceError):
    """The source no longer matches the data dictionary."""

    def __init__(self, register: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(register, "schema drift: " + "; ".join(problems))
