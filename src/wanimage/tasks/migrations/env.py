"""Alembic environment: migrations run on the connection TaskStore hands over (never from a URL in
an ini file), inside one transaction, under an advisory lock on PostgreSQL so that API and worker
processes starting together migrate once."""

from alembic import context
from sqlalchemy import text

from wanimage.tasks.store import metadata

MIGRATION_LOCK_ID = 7_361_205_001  # any constant shared by every wanimage process

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="wanimage_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.run_migrations()
