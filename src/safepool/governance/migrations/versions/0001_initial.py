"""The first schema: audit log, users and roles, permits with their transitions and approvals.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from safepool.governance.audit import APPEND_ONLY_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(50), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("permit", sa.String(200), nullable=True),
        sa.Column("target", sa.String(500), nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=True),
        sa.Column("result_hash", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("seq >= 1", name="ck_audit_records_seq"),
        sa.CheckConstraint("outcome IN ('ok', 'refused', 'error')", name="ck_audit_records_outcome"),
    )
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    op.create_index("ix_audit_records_actor", "audit_records", ["actor"])
    op.create_index("ix_audit_records_permit", "audit_records", ["permit"])
    for statement in APPEND_ONLY_DDL.get(op.get_bind().dialect.name, ()):
        op.execute(statement)

    op.create_table(
        "users",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "user_roles",
        sa.Column("user", sa.String(40), sa.ForeignKey("users.name"), primary_key=True),
        sa.Column("role", sa.String(20), primary_key=True),
        sa.Column("function", sa.String(40), primary_key=True),
    )
    op.create_table(
        "permits",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("requested_by", sa.String(40), nullable=False),
        sa.Column("request_yaml", sa.Text, nullable=False),
        sa.Column("assessment_json", sa.Text, nullable=False),
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("expiry", sa.String(10), nullable=False),
        sa.Column("built_by", sa.String(40), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "permit_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("permit", sa.String(40), nullable=False),
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_permit_transitions_permit", "permit_transitions", ["permit"])
    op.create_table(
        "permit_approvals",
        sa.Column("permit", sa.String(40), primary_key=True),
        sa.Column("approval_role", sa.String(40), primary_key=True),
        sa.Column("round", sa.Integer, primary_key=True),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    for table in ("permit_approvals", "permit_transitions", "permits", "user_roles", "users", "audit_records"):
        op.drop_table(table)
