"""Register holders keep to their own registers: holder-scoped stewards and each holder's release.

- steward_holders: which steward stewards which register holder (as the catalogue names it), and
  who is the linkage authority (kind 'linkage', holder ''). A steward with no row acts for nobody.
- permit_releases: each register holder's one decision on its registers in a permit (release,
  release with fewer variables, refuse), with the variables withheld, the reason, who and when.
  The primary key (permit, holder) keeps it to one decision per holder and permit.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "steward_holders",
        sa.Column("user", sa.String(40), sa.ForeignKey("users.name"), primary_key=True),
        sa.Column("holder", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("assigned_by", sa.String(40), nullable=False),
        sa.Column("assigned_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "permit_releases",
        sa.Column("permit", sa.String(40), primary_key=True),
        sa.Column("holder", sa.String(200), primary_key=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("registers_json", sa.Text, nullable=False),
        sa.Column("withheld_json", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_by", sa.String(40), nullable=False),
        sa.Column("decided_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("permit_releases")
    op.drop_table("steward_holders")
