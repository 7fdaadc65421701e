"""Errors that reach people, and the redaction that keeps identifiers out of them.

Driver messages can quote the value that failed (a name, an identity code, a password in a
URL), so nothing from a driver is shown until it has passed through `redact`.
"""

from __future__ import annotations

import re

_HETU_LIKE = re.compile(r"\d{6}\s*[-+A-FU-Ya-fu-y]\s*\d{3}\s*[0-9A-Ya-y]")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@\s]*@")
_PASSWORD_FIELD = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def redact(text: str) -> str:
    """Mask identity codes, credentials and every quoted value in a message."""
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    text = _PASSWORD_FIELD.sub(r"\1***", text)
    text = _QUOTED.sub("'…'", text)
    return _HETU_LIKE.sub("<identity code>", text)


class SafepoolError(Exception):
    """An error whose message is safe and meant for the person running the command."""


class SourceError(SafepoolError):
    """A register source could not be read; names the register and what went wrong."""

    def __init__(self, register: str, problem: str, cause: BaseException | None = None) -> None:
        self.register = register
        detail = f" ({type(cause).__name__}: {redact(str(cause))})" if cause is not None else ""
        super().__init__(f"register {register}: {problem}{detail}")


class SchemaDrift(SourceError):
    """The source no longer matches the data dictionary."""

    def __init__(self, register: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(register, "schema drift: " + "; ".join(problems))
