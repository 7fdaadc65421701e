"""Where each permit's query ledger is bound: its state in the metadata database.

The differencing ledger itself (`safepool.query.ledger`) is a DuckDB file beside the pool; this
table holds, per permit, how many cells that file must remember and the digest chained over
them, so that a file moved away, replaced or rolled back is noticed. Declared on the governance
`metadata` so that the migration history (0003) covers it. It holds counts and digests only.

  status          'active', or 'stopped' once a mismatch was found (stays stopped: every later
                  query of the permit is refused until a data security officer investigates)
  cells, digest   what the file holds after the last completed update
  pending_cells,  the state an update in progress will reach (set before the file is written,
  pending_digest  cleared once it is); a crash in between is resolved on the next open
  stopped_reason  why the permit's queries were stopped (fixed text, never data)
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, String, Table, Text

from safepool.governance.db import metadata

ACTIVE = "active"
STOPPED = "stopped"

query_ledgers_table = Table(
    "query_ledgers",
    metadata,
    Column("permit", String(200), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("cells", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("pending_cells", BigInteger, nullable=True),
    Column("pending_digest", String(64), nullable=True),
    Column("stopped_reason", Text, nullable=True),
    Column("updated_at", String(40), nullable=False),
    CheckConstraint(f"status IN ('{ACTIVE}', '{STOPPED}')", name="ck_query_ledgers_status"),
    CheckConstraint("cells >= 0", name="ck_query_ledgers_cells"),
)
