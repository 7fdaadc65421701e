"""The audit log's anchors, kept outside the metadata database (in the steward zone).

The hash chain alone shows a record that was changed, removed, slipped in or moved while the
records after it were left alone. It cannot show records cut off the end, nor a chain rewritten
from a changed record onwards with every hash recomputed: the hash is not keyed. So the chain's
head is also written where someone who can change the database cannot, and `AuditLog.verify`
compares the chain with it:

  steward/audit-anchors   append-only, one JSON line per anchor: {"seq", "hash", "at", "why"}.
                          Written every `every` records (100 by default: the governance setting
                          `audit_anchor_every`), at every release (the release's own record;
                          the head before it is also printed in the release's MANIFEST.json, so
                          it leaves the environment with the release) and on `AuditLog.anchor()`.
                          Each line is flushed to disk (fsync).
  steward/audit-witness   append-only, one line per record, "<seq> <first 16 hex digits of its
                          hash>", written right after the record's transaction commits. It is
                          what catches the last few records being cut off between two anchors,
                          and it lets `verify` name the very record a rewrite started at.

Both files are mode 0600 (and their folder 0700, if this module makes it). They are written after
the database transaction commits, never before: a line never names a record that was rolled back.
A process killed between the commit and the write leaves a record without its line, which only
means that record is checked by the chain alone. A line that cannot be parsed (a write torn by a
crash) is skipped. The files belong to the workspace's metadata database: moving to another
database means starting them afresh.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ANCHORS_FILE = "audit-anchors"
WITNESS_FILE = "audit-witness"
WITNESS_DIGITS = 16
DEFAULT_EVERY = 100

_log = logging.getLogger(__name__)
_HASH = re.compile(r"^[0-9a-f]{64}$")
_WITNESS_LINE = re.compile(r"^([1-9][0-9]*) ([0-9a-f]{%d})$" % WITNESS_DIGITS)


@dataclass(frozen=True)
class Claim:
    """What the outside world says record `seq`'s hash is (all of it, or its first digits)."""

    seq: int
    hash: str
    source: str  # "anchor" (the anchors file), "witness" (the witness file) or "saved anchor" (a caller's)

    def holds_for(self, record_hash: str) -> bool:
        return isinstance(record_hash, str) and record_hash.startswith(self.hash)


class AnchorStore:
    """The two append-only files of one workspace's audit log, in `folder` (its steward zone)."""

    def __init__(self, folder: Path, every: int = DEFAULT_EVERY) -> None:
        if every < 1:
            raise ValueError("anchors are written every 1 record or more")
        self.folder = folder
        self.every = every

    @property
    def anchors_path(self) -> Path:
        return self.folder / ANCHORS_FILE

    @property
    def witness_path(self) -> Path:
        return self.folder / WITNESS_FILE

    # -- writing ----------------------------------------------------------------------------

    def committed(self, heads: Iterable[tuple[int, str]], release: str | None = None) -> None:
        """After a transaction committed the records `heads` ((seq, hash) in order): witness each,
        anchor those whose seq is a multiple of `every`, and the last one when it is a release's."""
        heads = list(heads)
        if not heads:
            return
        try:
            self._append(self.witness_path, "".join(f"{seq} {digest[:WITNESS_DIGITS]}\n" for seq, digest in heads),
                         sync=False)
            for seq, digest in heads:
                if seq % self.every == 0:
                    self.anchor(seq, digest, f"every {self.every} records")
            if release is not None:
                self.anchor(*heads[-1], f"release {release}")
        except OSError as error:  # the records are committed; say so, never undo them
            _log.warning("audit anchors could not be written to %s: %s", self.folder, error.strerror)

    def anchor(self, seq: int, digest: str, why: str) -> None:
        """Append one anchor line and flush it to disk."""
        line = {"seq": seq, "hash": digest, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "why": why}
        self._append(self.anchors_path, json.dumps(line, sort_keys=True) + "\n", sync=True)

    def _append(self, path: Path, text: str, *, sync: bool) -> None:
        if not self.folder.is_dir():
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.folder, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)  # whatever the umask was when it was made
            os.write(fd, text.encode("ascii"))  # one write: appends never interleave
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading ----------------------------------------------------------------------------

    def anchors(self) -> list[Claim]:
        """The anchors, in file order (lines that do not parse are skipped)."""
        found = []
        for line in _lines(self.anchors_path):
            try:
                entry = json.loads(line)
                seq, digest = entry["seq"], entry["hash"]
            except (ValueError, TypeError, KeyError):
                continue
            if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1 and isinstance(digest, str) \
                    and _HASH.match(digest):
                found.append(Claim(seq, digest, "anchor"))
        return found

    def claims(self) -> dict[int, list[Claim]]:
        """Every claim of both files, by sequence number."""
        by_seq: dict[int, list[Claim]] = {}
        for claim in self.anchors():
            by_seq.setdefault(claim.seq, []).append(claim)
        for line in _lines(self.witness_path):
            match = _WITNESS_LINE.match(line)
            if match:
                seq = int(match.group(1))
                by_seq.setdefault(seq, []).append(Claim(seq, match.group(2), "witness"))
        return by_seq


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def merge_claims(*sources: Mapping[int, list[Claim]]) -> dict[int, list[Claim]]:
    merged: dict[int, list[Claim]] = {}
    for source in sources:
        for seq, claims in source.items():
            merged.setdefault(seq, []).extend(claims)
    return merged
