"""Alembic environment: migrations run on the connection safepool hands over, never from a URL."""

from alembic import context

from safepool.governance.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
