"""The queue's tables, as the migrations create them (tests check that the two agree)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text, false

metadata = MetaData()

tasks = Table(
    "wanimage_tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("model", String(64), nullable=False),  # the record's tag: core puts the model id here
    Column("request", Text, nullable=False),  # the request payload, opaque to the queue
    Column("submit_time", Float, nullable=False, index=True),
    Column("scheduled_time", Float),
    Column("end_time", Float),
    Column("progress", Integer, nullable=False, default=0),
    Column("result", Text),  # the outcome payload, opaque to the queue (a result or an error)
    Column("worker_id", String(128)),
    Column("heartbeat_at", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    # Partial images for a stream whose task may run in another process (migration 0002).
    Column("wants_previews", Boolean, nullable=False, default=False, server_default=false()),
    Column("preview_key", String(256)),
    Column("preview_progress", Integer),
    # The key id of the API key that created the task; None without keys (migration 0004).
    Column("owner", String(64), index=True),
)

# One row per live worker, refreshed every `heartbeat_seconds` (migration 0003): a RUNNING task
# whose worker's row went stale is recovered, wherever that worker ran.
workers = Table(
    "wanimage_workers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False, index=True),
)
