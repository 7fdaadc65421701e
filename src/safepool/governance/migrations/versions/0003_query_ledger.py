"""Query ledgers bound to the metadata store; audit outcome 'withheld'.

- query_ledgers: per permit, the number of cells its differencing ledger remembers and the
  digest chained over them (see safepool.governance.ledger_state), so that a ledger file moved
  away, replaced or rolled back is detected.
- audit_records.outcome may be 'withheld': a query answered with some columns withheld by the
  differencing checks. SQLite cannot change a CHECK constraint in place, so the table is
  rebuilt (rows copied as they are: the hash chain is unchanged) and its append-only triggers
  are created again.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from safepool.governance.audit import APPEND_ONLY_DDL

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OLD_OUTCOMES = "outcome IN ('ok', 'refused', 'error')"
_NEW_OUTCOMES = "outcome IN ('ok', 'refused', 'error', 'withheld')"


def upgrade() -> None:
    op.create_table(
        "query_ledgers",
        sa.Column("permit", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("cells", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("pending_cells", sa.BigInteger, nullable=True),
        sa.Column("pending_digest", sa.String(64), nullable=True),
        sa.Column("stopped_reason", sa.Text, nullable=True),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.CheckConstraint("status IN ('active', 'stopped')", name="ck_query_ledgers_status"),
        sa.CheckConstraint("cells >= 0", name="ck_query_ledgers_cells"),
    )
    _outcomes(_NEW_OUTCOMES)


def downgrade() -> None:
    _outcomes(_OLD_OUTCOMES)  # fails if a 'withheld' record exists: the log is never rewritten
    op.drop_table("query_ledgers")


def _outcomes(check: str) -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_constraint("ck_audit_records_outcome", type_="check")
        batch.create_check_constraint("ck_audit_records_outcome", check)
    if dialect == "sqlite":  # the rebuilt table lost its triggers
        for statement in APPEND_ONLY_DDL["sqlite"]:
            op.execute(statement)
