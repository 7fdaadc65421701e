"""Outputs of customer-information analyses: the source "insight" beside study, query and analysis.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _sources(sources: tuple[str, ...]) -> None:
    """SQLite cannot change a constraint in place, so its table is rebuilt; PostgreSQL changes
    only the constraint (a rebuild would drop the key that reviews and releases refer to)."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("outputs", recreate="always") as batch:
            batch.drop_constraint("ck_outputs_source", type_="check")
            batch.create_check_constraint("ck_outputs_source", f"source IN {sources}")
        return
    op.drop_constraint("ck_outputs_source", "outputs", type_="check")
    op.create_check_constraint("ck_outputs_source", "outputs", f"source IN {sources}")


def upgrade() -> None:
    _sources(("study", "query", "analysis", "insight"))


def downgrade() -> None:
    _sources(("study", "query", "analysis"))
