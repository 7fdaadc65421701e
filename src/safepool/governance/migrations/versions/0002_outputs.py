"""Recorded outputs: the outputs with their checks, their status history, reviews and releases.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STATUSES = ("checked", "failed", "release_requested", "returned", "rejected", "approved", "released")


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("permit", sa.String(40), nullable=False),
        sa.Column("released_by", sa.String(40), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_releases_permit", "releases", ["permit"])
    op.create_table(
        "outputs",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("permit", sa.String(40), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("author", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("verdict", sa.String(4), nullable=False),
        sa.Column("checks_json", sa.Text, nullable=False),
        sa.Column("rules_json", sa.Text, nullable=False),
        sa.Column("files_json", sa.Text, nullable=False),
        sa.Column("public_cells_json", sa.Text, nullable=True),
        sa.Column("mitigation", sa.Text, nullable=True),
        sa.Column("context", sa.Text, nullable=True),
        sa.Column("request_round", sa.Integer, nullable=False),
        sa.Column("differencing_json", sa.Text, nullable=False),
        sa.Column("release_id", sa.String(60), sa.ForeignKey("releases.id"), nullable=True),
        sa.CheckConstraint(f"status IN {_STATUSES}", name="ck_outputs_status"),
        sa.CheckConstraint("source IN ('study', 'query', 'analysis')", name="ck_outputs_source"),
        sa.CheckConstraint("verdict IN ('pass', 'fail')", name="ck_outputs_verdict"),
    )
    op.create_index("ix_outputs_permit", "outputs", ["permit"])
    op.create_table(
        "output_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("output", sa.String(60), sa.ForeignKey("outputs.id"), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_output_events_output", "output_events", ["output"])
    op.create_table(
        "output_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("output", sa.String(60), sa.ForeignKey("outputs.id"), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("reviewer", sa.String(40), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("differencing_json", sa.Text, nullable=False),
        sa.CheckConstraint("decision IN ('approve', 'return', 'reject')", name="ck_output_reviews_decision"),
    )
    op.create_index("ix_output_reviews_output", "output_reviews", ["output"])


def downgrade() -> None:
    for table in ("output_reviews", "output_events", "outputs", "releases"):
        op.drop_table(table)
