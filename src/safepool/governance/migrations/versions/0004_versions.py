"""A version number on every permit and output, for compare-and-set.

Every change of a permit (an approval, a phase, a rejection, the build) or of an output (a
revision, a release request, a review, the release) is written as
`UPDATE ... SET ..., version = version + 1 WHERE id = ? AND version = <the version read>`: when
another action changed it in between, no row matches and the action is a Conflict, so two
actions made on the same state never both go through. Existing rows start at 0.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("permits", "outputs"):
        op.add_column(table, sa.Column("version", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    for table in ("permits", "outputs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
