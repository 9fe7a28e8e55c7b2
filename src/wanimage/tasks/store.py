"""The TaskStore is the queue: SQLAlchemy Core on SQLite (default) or PostgreSQL.

A worker claims the oldest PENDING task in one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
SQLite serialises writers, so the guarded UPDATE alone is safe there). All SQL is in this file."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, RowMapping

from .records import QueueFull, TaskRecord, TaskStatus, engine_lost, worker_lost
from .schema import metadata, tasks, workers

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = threading.Lock()  # alembic's command API keeps module-level state

SUBMIT_LOCK_ID = 7_361_205_002  # PostgreSQL advisory lock: one bounded insert at a time, any process

__all__ = ["MIGRATIONS", "QueueFull", "TaskStore", "metadata"]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _record(row: RowMapping) -> TaskRecord:
    return TaskRecord(
        id=row["id"],
        status=TaskStatus(row["status"]),
        tag=row["model"],
        payload=row["request"],
        submit_time=row["submit_time"],
        scheduled_time=row["scheduled_time"],
        end_time=row["end_time"],
        progress=row["progress"] or 0,
        outcome=row["result"],
        worker_id=row["worker_id"],
        attempts=row["attempts"] or 0,
        cancel_requested=bool(row["cancel_requested"]),
        wants_previews=bool(row["wants_previews"]),
        preview_key=row["preview_key"],
        preview_progress=row["preview_progress"],
        owner=row["owner"],
    )


def _held_by(task_id: str, worker_id: str):
    """The task is RUNNING under this worker (not recovered and handed to another meanwhile)."""
    return and_(
        tasks.c.id == task_id,
        tasks.c.worker_id == worker_id,
        tasks.c.status == TaskStatus.RUNNING.value,
    )


# ---------------------------------------------------------------- the hot path's named queries
# Each sync request runs create, claim, a progress write or two and finish, and its waiter may
# read the row. These statements are built once, with bound parameters (b_*): building an
# SQLAlchemy statement per call cost 0.2-0.3 ms of interpreter time each, executing a built one
# 0.06 ms (SQLite, measured 2026-12-06); on two shared cores the rest of the request waits on
# that time (the interpreter lock).

_HELD = _held_by(bindparam("b_id"), bindparam("b_worker"))  # type: ignore[arg-type]
_NEW_COLUMNS = ("id", "status", "model", "request", "submit_time", "progress", "attempts", "cancel_requested",
                "wants_previews", "owner")  # what `create` writes; the rest start NULL or at their defaults
_PENDING_COUNT = (select(func.count()).select_from(tasks)
                  .where(tasks.c.status == TaskStatus.PENDING.value).scalar_subquery())
GET = select(tasks).where(tasks.c.id == bindparam("b_id"))
INSERT = insert(tasks)
# INSERT ... SELECT ... WHERE (pending count) < b_max: the depth check and the insert in one statement
INSERT_BOUNDED = insert(tasks).from_select(
    list(_NEW_COLUMNS),
    select(*(bindparam(f"v_{c}", type_=tasks.c[c].type) for c in _NEW_COLUMNS)).where(
        _PENDING_COUNT < bindparam("b_max")),
).returning(tasks.c.id)  # psycopg gives no rowcount here
CLAIM = (
    update(tasks)
    .where(
        tasks.c.id == (select(tasks.c.id).where(tasks.c.status == TaskStatus.PENDING.value)
                       .order_by(tasks.c.submit_time).limit(1).with_for_update(skip_locked=True).scalar_subquery()),
        tasks.c.status == TaskStatus.PENDING.value,
    )
    .values(
        status=TaskStatus.RUNNING.value,
        worker_id=bindparam("b_worker"),
        heartbeat_at=bindparam("b_now"),
        scheduled_time=bindparam("b_now"),
        progress=0,
        preview_key=None,  # a re-queued task starts its partial images afresh
        preview_progress=None,
        attempts=tasks.c.attempts + 1,
    )
    .returning(*tasks.c)
)
PROGRESS = update(tasks).where(_HELD).values(progress=bindparam("b_progress"), heartbeat_at=bindparam("b_now"))
CANCEL_REQUESTED = select(tasks.c.cancel_requested).where(tasks.c.id == bindparam("b_id"))
FINISH = {  # by whether the task succeeded: its progress becomes 100, or stays where it stopped
    succeeded: update(tasks).where(_HELD).values(
        status=bindparam("b_status"), end_time=bindparam("b_now"), result=bindparam("b_outcome"),
        progress=100 if succeeded else tasks.c.progress,
    ).returning(*tasks.c)
    for succeeded in (True, False)
}


class TaskStore:
    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock  # epoch seconds; tests pass their own
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent; safe at every start)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with _MIGRATION_LOCK, self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ create / read

    def create(
        self,
        task_id: str,
        tag: str,
        payload: str,
        *,
        wants_previews: bool = False,
        max_pending: int | None = None,
        owner: str | None = None,
    ) -> TaskRecord:
        """Insert a PENDING task. With `max_pending`, the depth check and the insert are one atomic
        step (QueueFull when the queue holds that many already), whatever the number of threads
        or processes submitting at once."""
        values = {
            "id": task_id,
            "status": TaskStatus.PENDING.value,
            "model": tag,
            "request": payload,
            "submit_time": self.clock(),
            "progress": 0,
            "attempts": 0,
            "cancel_requested": False,
            "wants_previews": wants_previews,
            "owner": owner,
        }
        with self.engine.begin() as conn:
            if max_pending is None:
                conn.execute(INSERT, values)
            elif not self._insert_bounded(conn, values, max_pending):
                raise QueueFull(max_pending)
        blank = {c.name: None for c in tasks.c}
        return _record({**blank, **values})  # type: ignore[arg-type]

    def _insert_bounded(self, conn: Connection, values: dict[str, Any], max_pending: int) -> bool:
        """INSERT_BOUNDED: one statement. SQLite takes its write lock when a writing statement
        starts, so the count inside it is current; on PostgreSQL a transaction-scoped advisory
        lock orders concurrent submitters (READ COMMITTED then sees every insert committed
        before the lock was granted)."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SUBMIT_LOCK_ID})
        params = {f"v_{c}": values[c] for c in _NEW_COLUMNS} | {"b_max": max_pending}
        return conn.execute(INSERT_BOUNDED, params).first() is not None

    def get(self, task_id: str) -> TaskRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(GET, {"b_id": task_id}).mappings().first()
        return _record(row) if row else None

    def count(self, status: TaskStatus) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(tasks.c.status == status.value)).scalar_one()

    def list(
        self,
        *,
        page_no: int,
        page_size: int,
        status: TaskStatus | None = None,
        tag: str | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
        owner: str | None = None,
    ) -> tuple[list[TaskRecord], int]:
        """A page of tasks, newest first; `owner` keeps one key's tasks (None: everyone's)."""
        conds = []
        if owner is not None:
            conds.append(tasks.c.owner == owner)
        if status is not None:
            conds.append(tasks.c.status == status.value)
        if tag:
            conds.append(tasks.c.model == tag)
        if start_time is not None:
            conds.append(tasks.c.submit_time >= start_time)
        if end_time is not None:
            conds.append(tasks.c.submit_time <= end_time)
        where = and_(*conds) if conds else None
        query = select(tasks).order_by(tasks.c.submit_time.desc())
        total_q = select(func.count()).select_from(tasks)
        if where is not None:
            query, total_q = query.where(where), total_q.where(where)
        query = query.limit(page_size).offset((page_no - 1) * page_size)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            total = conn.execute(total_q).scalar_one()
        return [_record(r) for r in rows], total

    # ------------------------------------------------------------ worker side

    def claim(self, worker_id: str) -> TaskRecord | None:
        """Take the oldest PENDING task: one statement (CLAIM), safe with many workers."""
        with self.engine.begin() as conn:
            row = conn.execute(CLAIM, {"b_worker": worker_id, "b_now": self.clock()}).mappings().first()
        return _record(row) if row else None

    def report_progress(self, task_id: str, worker_id: str, progress: int) -> bool:
        """Write the task's progress (0-100); False when the task is no longer ours."""
        with self.engine.begin() as conn:
            res = conn.execute(PROGRESS, {"b_id": task_id, "b_worker": worker_id,
                                          "b_progress": max(0, min(100, progress)), "b_now": self.clock()})
        return res.rowcount == 1

    def put_preview(self, task_id: str, worker_id: str, key: str, progress: int) -> bool:
        """Record the latest partial image (stored under `key`); False when the task is no longer ours."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(tasks).where(_held_by(task_id, worker_id)).values(preview_key=key, preview_progress=progress)
            )
        return res.rowcount == 1

    def cancel_requested(self, task_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(CANCEL_REQUESTED, {"b_id": task_id}).scalar())

    def finish(
        self,
        task_id: str,
        worker_id: str,
        status: TaskStatus,
        outcome: str | None = None,
    ) -> TaskRecord | None:
        """End the task; its row as written (RETURNING: no second read), or None when the task
        is no longer this worker's."""
        params = {"b_id": task_id, "b_worker": worker_id, "b_status": status.value, "b_now": self.clock(),
                  "b_outcome": outcome}
        with self.engine.begin() as conn:
            row = conn.execute(FINISH[status is TaskStatus.SUCCEEDED], params).mappings().first()
        return _record(row) if row else None

    def requeue(self, task_id: str, worker_id: str, max_attempts: int) -> TaskStatus | None:
        """Give a task back to the queue after its engine was lost, or fail it once it has used
        `max_attempts`. Returns the new status (None when the task is no longer ours)."""
        with self.engine.begin() as conn:
            if conn.execute(
                update(tasks)
                .where(_held_by(task_id, worker_id), tasks.c.attempts < max_attempts)
                .values(status=TaskStatus.PENDING.value, worker_id=None, progress=0)
            ).rowcount:
                return TaskStatus.PENDING
            if conn.execute(
                update(tasks)
                .where(_held_by(task_id, worker_id))
                .values(
                    status=TaskStatus.FAILED.value,
                    end_time=self.clock(),
                    result=engine_lost(max_attempts),
                )
            ).rowcount:
                return TaskStatus.FAILED
        return None

    # ------------------------------------------------------------ cancel, recovery, retention

    def cancel(self, task_id: str) -> TaskStatus | None:
        """PENDING -> CANCELED at once; RUNNING -> cancel_requested (the worker stops at the next
        step). Returns the status after the call, or None for an unknown id."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status == TaskStatus.PENDING.value)
                .values(status=TaskStatus.CANCELED.value, end_time=self.clock())
            )
            if res.rowcount == 1:
                return TaskStatus.CANCELED
            conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status == TaskStatus.RUNNING.value)
                .values(cancel_requested=True)
            )
            status = conn.execute(select(tasks.c.status).where(tasks.c.id == task_id)).scalar()
        return TaskStatus(status) if status else None

    # ------------------------------------------------------------ workers

    def register_worker(self, worker_id: str) -> None:
        t = self.clock()
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.id == worker_id))
            conn.execute(insert(workers).values(id=worker_id, started_at=t, heartbeat_at=t))

    def beat_worker(self, worker_id: str) -> None:
        """The worker is alive (re-registers it if a recovery pass pruned its row meanwhile)."""
        with self.engine.begin() as conn:
            if not conn.execute(
                update(workers).where(workers.c.id == worker_id).values(heartbeat_at=self.clock())
            ).rowcount:
                conn.execute(insert(workers).values(id=worker_id, started_at=self.clock(), heartbeat_at=self.clock()))

    def unregister_worker(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.id == worker_id))

    def live_workers(self, stale_after: float) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(workers.c.id).where(workers.c.heartbeat_at >= self.clock() - stale_after).order_by(workers.c.id)
            ).scalars())

    def recover_stale(self, stale_after: float, max_attempts: int) -> tuple[int, int]:
        """Tasks RUNNING under a worker whose heartbeat row is older than `stale_after` seconds go
        back to PENDING, or FAILED once `max_attempts` were used; then stale rows are pruned. A
        task whose worker has no row at all (pruned, or a worker from before migration 0003) is
        judged by its own last progress write. Returns (requeued, failed)."""
        cutoff = self.clock() - stale_after
        alive = select(workers.c.id).where(workers.c.heartbeat_at >= cutoff)
        known = select(workers.c.id)
        stale = and_(
            tasks.c.status == TaskStatus.RUNNING.value,
            tasks.c.worker_id.not_in(alive),
            or_(tasks.c.worker_id.in_(known), tasks.c.heartbeat_at < cutoff),
        )
        with self.engine.begin() as conn:
            conn.execute(  # a cancel was asked while it ran: honour it rather than retry
                update(tasks)
                .where(stale, tasks.c.cancel_requested)
                .values(status=TaskStatus.CANCELED.value, end_time=self.clock())
            )
            failed = conn.execute(
                update(tasks)
                .where(stale, tasks.c.attempts >= max_attempts)
                .values(
                    status=TaskStatus.FAILED.value,
                    end_time=self.clock(),
                    result=worker_lost(max_attempts),
                )
            ).rowcount
            requeued = conn.execute(
                update(tasks).where(stale).values(status=TaskStatus.PENDING.value, worker_id=None, progress=0)
            ).rowcount
            conn.execute(delete(workers).where(workers.c.heartbeat_at < cutoff))
        if failed or requeued:
            log.warning("recovered stale tasks: %d re-queued, %d failed", requeued, failed)
        return requeued, failed

    def purge(self, older_than: float) -> list[str]:
        """Delete tasks submitted before `older_than` (epoch seconds); returns their ids."""
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(select(tasks.c.id).where(tasks.c.submit_time < older_than)).scalars()
            )
            if ids:
                conn.execute(delete(tasks).where(tasks.c.id.in_(ids)))
        return ids
