"""The tasks table.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wanimage_tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("submit_time", sa.Float, nullable=False),
        sa.Column("scheduled_time", sa.Float),
        sa.Column("end_time", sa.Float),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("code", sa.String(64)),
        sa.Column("message", sa.Text),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    op.create_index("ix_wanimage_tasks_status", "wanimage_tasks", ["status"])
    op.create_index("ix_wanimage_tasks_submit_time", "wanimage_tasks", ["submit_time"])


def downgrade() -> None:
    op.drop_table("wanimage_tasks")
