"""Where recorded outputs live in the metadata database: the outputs, their status history,
their reviews and the releases that took them out.

Declared on the governance `metadata` so that one migration history (0002) covers them; the
columns hold what a checker needs (checks, context, reviews) and never the values of failed
cells: `public_cells_json` is filled only for outputs whose checks passed.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, String, Table, Text

from safepool.governance.db import metadata


class OutputStatus(StrEnum):
    """Where an output stands between its checks and the release folder."""

    checked = "checked"  # passed its checks; may be asked for
    failed = "failed"  # failed its checks; never released (mitigate and record again)
    release_requested = "release_requested"
    returned = "returned"  # a checker asked for changes; the author may revise and ask again
    rejected = "rejected"  # final
    approved = "approved"  # enough independent checkers approved; waiting for release
    released = "released"


STATUSES = tuple(status.value for status in OutputStatus)
SOURCES = ("study", "query", "analysis", "insight")
DECISIONS = ("approve", "return", "reject")

releases_table = Table(
    "releases",
    metadata,
    Column("id", String(60), primary_key=True),
    Column("permit", String(40), nullable=False, index=True),
    Column("released_by", String(40), nullable=False),
    Column("at", String(40), nullable=False),
    Column("folder", Text, nullable=False),  # relative to the workspace root
    Column("manifest_sha256", String(64), nullable=False),
)

outputs_table = Table(
    "outputs",
    metadata,
    Column("id", String(60), primary_key=True),
    Column("permit", String(40), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("source", String(20), nullable=False),
    Column("author", String(40), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("status", String(30), nullable=False),
    Column("verdict", String(4), nullable=False),
    Column("checks_json", Text, nullable=False),  # CheckReport.to_record(): rules, verdicts, cells affected
    Column("rules_json", Text, nullable=False),  # the DisclosureRules the checks ran with
    Column("files_json", Text, nullable=False),  # [{name, sha256, bytes}]
    Column("public_cells_json", Text, nullable=True),  # a passing frequency table's cells, for differencing
    Column("mitigation", Text, nullable=True),
    Column("context", Text, nullable=True),
    Column("request_round", Integer, nullable=False),  # 0 until first requested; +1 per request
    Column("differencing_json", Text, nullable=False),  # the latest differencing flags
    Column("release_id", String(60), ForeignKey("releases.id"), nullable=True),
    Column("version", Integer, nullable=False, server_default="0"),  # +1 on every change (0004)
    CheckConstraint(f"status IN {STATUSES}", name="ck_outputs_status"),
    CheckConstraint(f"source IN {SOURCES}", name="ck_outputs_source"),
    CheckConstraint("verdict IN ('pass', 'fail')", name="ck_outputs_verdict"),
)

output_events_table = Table(
    "output_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("output", String(60), ForeignKey("outputs.id"), nullable=False, index=True),
    Column("status", String(30), nullable=False),
    Column("actor", String(40), nullable=False),
    Column("at", String(40), nullable=False),
    Column("note", Text, nullable=False),
)

output_reviews_table = Table(
    "output_reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("output", String(60), ForeignKey("outputs.id"), nullable=False, index=True),
    Column("round", Integer, nullable=False),
    Column("reviewer", String(40), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", String(40), nullable=False),
    Column("differencing_json", Text, nullable=False),  # the flags the reviewer was shown
    CheckConstraint(f"decision IN {DECISIONS}", name="ck_output_reviews_decision"),
)
