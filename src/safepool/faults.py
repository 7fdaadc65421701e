"""The typed errors every interface maps: what went wrong, in a message safe to show.

Each is a `SafepoolError` (so `except SafepoolError` still catches everything expected), and
each message is written for the person who ran the command: it names the part of the request
that failed (a permit, an output, a field), never a value taken from the data, never a driver's
words. The command line maps them to exit codes and a later HTTP layer to status codes:

  NotFound     the permit, output, user or file named does not exist           (HTTP 404)
  Refused      a governance rule forbids it; always audited before it is raised (HTTP 403)
  Invalid      the request itself is wrong: a form, a field, a query            (HTTP 422)
  Conflict     someone changed the same thing at the same time; look again     (HTTP 409)
  Unavailable  what the request needs cannot be used now: the metadata database    (HTTP 503)
               is locked or cannot be reached, a register's source cannot be
               read as its catalogue says, the key store cannot be opened

`safepool.governance.users.Refused` is this `Refused`. Every error the package raises for a
person is one of these five (a test reads every `raise` in the source to hold it so);
`SafepoolError` itself, defined here and re-exported by `safepool.errors`, is only their base.
"""

from __future__ import annotations

__all__ = ["Conflict", "Invalid", "NotFound", "Refused", "SafepoolError", "Unavailable", "database_unavailable"]


class SafepoolError(Exception):
    """An error whose message is safe and meant for the person running the command."""


class NotFound(SafepoolError):
    """What the request names does not exist."""


class Refused(SafepoolError):
    """An action refused by a governance rule; always audited before it is raised."""


class Invalid(SafepoolError):
    """The request is malformed or names something it may not; nothing was changed."""


class Conflict(SafepoolError):
    """The state changed between reading it and acting on it (or another action won the race);
    nothing of this action was changed. Look again and retry if it still makes sense."""


class Unavailable(SafepoolError):
    """What the request needs cannot be used now: the metadata database is locked by another
    process or cannot be reached, a register's source cannot be read (safepool.errors.SourceError),
    the key store cannot be opened. Nothing of the request was changed; try again once it is mended."""


def database_unavailable(error: BaseException) -> Unavailable:
    """An `Unavailable` for a database driver's error, without the driver's words (they can hold
    a URL with its password, a file path or a value)."""
    text = str(getattr(error, "orig", None) or error).lower()
    if "locked" in text or "busy" in text or "lock timeout" in text or "lock_timeout" in text \
            or "could not obtain lock" in text or "canceling statement due to lock" in text:
        why = "it is locked by another process"
    elif "unable to open" in text or "readonly" in text or "read-only" in text or "disk i/o" in text:
        why = "its file cannot be opened or written"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        why = "its file is damaged or is not a database"
    else:
        why = "it cannot be reached"
    return Unavailable(f"the metadata database is not available ({why}); try again later")
