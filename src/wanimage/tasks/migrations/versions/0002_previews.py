"""Partial images across processes: the submitter asks for them, a worker in any process leaves
the latest one in the image store and its key here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wanimage_tasks") as batch:
        batch.add_column(sa.Column("wants_previews", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("preview_key", sa.String(256)))
        batch.add_column(sa.Column("preview_progress", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("wanimage_tasks") as batch:
        batch.drop_column("preview_progress")
        batch.drop_column("preview_key")
        batch.drop_column("wants_previews")
