"""A heartbeat row per worker: recovery finds dead workers by the age of their row, on any host.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wanimage_workers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("wanimage_workers")
