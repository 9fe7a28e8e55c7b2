"""The queue carries opaque payloads: the endpoint a task came from moves into its request payload,
and a failure's code and message into its outcome payload, as the error it was (status, code,
field, message). The columns `origin`, `code` and `message` go.

Rows written before this revision are converted once: the request is wrapped as a submission
without a job (shown by the task list, never run again), and a failure gets the HTTP status its
code always had (the table the API used to look codes up in).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_STATUS_OF_CODE = {"InvalidParameter": 400, "DataInspectionFailed": 400, "Canceled": 409,
                   "ModelUnavailable": 503, "StorageFull": 507}

tasks = sa.table("wanimage_tasks", sa.column("id", sa.String), sa.column("origin", sa.String),
                 sa.column("request", sa.Text), sa.column("result", sa.Text), sa.column("code", sa.String),
                 sa.column("message", sa.Text))


def _error(code: str, message: str | None) -> str:
    status = next((s for prefix, s in _STATUS_OF_CODE.items() if code.startswith(prefix)), 500)
    return json.dumps({"status": status, "code": code, "field": None, "message": message or "",
                       "retry_after": 30 if status == 507 else None, "should_retry": False if status >= 500 else None})


def upgrade() -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(tasks)).mappings().all():
        request = json.loads(row["request"])
        if "asked" in request:  # already a submission
            continue
        values = {"request": json.dumps({"version": 0, "origin": row["origin"], "asked": request, "job": None})}
        if row["code"]:
            values["result"] = _error(row["code"], row["message"])
        conn.execute(sa.update(tasks).where(tasks.c.id == row["id"]).values(**values))
    with op.batch_alter_table("wanimage_tasks") as batch:
        batch.drop_column("origin")
        batch.drop_column("code")
        batch.drop_column("message")


def downgrade() -> None:
    with op.batch_alter_table("wanimage_tasks") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="generation"))
        batch.add_column(sa.Column("code", sa.String(64)))
        batch.add_column(sa.Column("message", sa.Text))
