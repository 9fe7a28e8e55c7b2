"""Tenants: each task records the id of the API key that created it (a hash, never the key), so a
key lists, reads and cancels only its own tasks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wanimage_tasks") as batch:
        batch.add_column(sa.Column("owner", sa.String(64)))
        batch.create_index("ix_wanimage_tasks_owner", ["owner"])


def downgrade() -> None:
    with op.batch_alter_table("wanimage_tasks") as batch:
        batch.drop_index("ix_wanimage_tasks_owner")
        batch.drop_column("owner")
